//! The gateway's shared view of the cluster: the topology (refreshed every
//! second and whenever a `MOVED` reply shows it stale), each node's
//! health (active: a PING every [`HEALTH_EVERY`], two missed in a row;
//! passive: a connection that fails), and the pool of idle upstream
//! connections.
//!
//! Routing a slot: the node a `MOVED` named since the last refresh, else
//! the shard's leader, else, while the leader is unhealthy, the shard's
//! first healthy replica (which answers what the cluster answers: MOVED
//! to the new leader, or CLUSTERDOWN during the election).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::node_stream::NodeStream;
use polis_resp::{ProtocolVersion, Reply};
use polis_types::limits::{GATEWAY_IDLE_PER_NODE_MAX, GATEWAY_LANES_PER_NODE_MAX};

use crate::auth::Users;
use crate::lane::Lane;
use crate::topology::{ask, Addr, Moves, Topology};

/// How often the topology is read again.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// How often every node is sent a PING.
pub const HEALTH_EVERY: Duration = Duration::from_millis(500);
/// PINGs in a row a node may miss before it is unhealthy.
const PINGS_MISSED_MAX: u32 = 2;
/// How long a PING or a topology read may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// An idle connection to a node, and the client id the node gave it.
type Idle = (NodeStream, i64);

/// What the gateway knows of the cluster, shared by every client.
pub struct Cluster {
    seeds: Vec<String>,
    topology: RwLock<Arc<Topology>>,
    moves: RwLock<Moves>,
    unhealthy: RwLock<HashSet<Addr>>,
    /// Bumped when a node turns unhealthy: sessions drop their
    /// connections to it.
    health_epoch: tokio::sync::watch::Sender<u64>,
    refresh: tokio::sync::Notify,
    /// The ACL users, read from the nodes.
    users: RwLock<Arc<Users>>,
    idle: Mutex<HashMap<(Addr, bool), Vec<Idle>>>,
    /// The connections clients share, by node and protocol (RESP3?).
    lanes: Mutex<HashMap<(Addr, bool), Lanes>>,
    next_client_id: std::sync::atomic::AtomicU64,
    /// Each client's connections: the node and the client id the node
    /// gave it (for CLIENT UNBLOCK by the gateway's id).
    clients: Mutex<HashMap<u64, Vec<(Addr, i64)>>>,
    /// The gateway's own figures (its `/metrics`).
    pub metrics: crate::metrics::Metrics,
}

/// The lanes to one node in one protocol.
type Lanes = Vec<Arc<Lane>>;

impl Cluster {
    /// Reads the topology from the first of `seeds` that answers.
    ///
    /// # Errors
    /// No seed answered `CLUSTER SHARDS` with a topology.
    pub async fn connect(seeds: Vec<String>) -> Result<Arc<Self>, String> {
        let topology = read_topology(seeds.iter().map(String::as_str)).await?;
        let table = read_users(seeds.iter().map(String::as_str)).await?;
        Ok(Arc::new(Self {
            users: RwLock::new(Arc::new(Users {
                generation: 1,
                table,
            })),
            seeds,
            topology: RwLock::new(Arc::new(topology)),
            moves: RwLock::new(Moves::default()),
            unhealthy: RwLock::new(HashSet::new()),
            health_epoch: tokio::sync::watch::channel(0).0,
            refresh: tokio::sync::Notify::new(),
            idle: Mutex::new(HashMap::new()),
            lanes: Mutex::new(HashMap::new()),
            next_client_id: std::sync::atomic::AtomicU64::new(1),
            metrics: crate::metrics::Metrics::new(),
            clients: Mutex::new(HashMap::new()),
        }))
    }

    /// Returns the ACL users as last read.
    pub fn users(&self) -> Arc<Users> {
        self.users
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Keeps the users read from `addrs`, when they changed.
    async fn refresh_users(&self, addrs: &[&str]) {
        match read_users(addrs.iter().copied()).await {
            Ok(table) => {
                let mut users = self
                    .users
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if users.table != table {
                    *users = Arc::new(Users {
                        generation: users.generation + 1,
                        table,
                    });
                }
            }
            Err(error) => {
                tracing::warn!(%error, "gateway: ACL users not read (the last ones stay)")
            }
        }
    }

    /// Returns the topology now.
    pub fn topology(&self) -> Arc<Topology> {
        self.topology
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Returns the node to send a command on `slot` to.
    pub fn route(&self, slot: u16) -> Option<Addr> {
        if let Some(addr) = self
            .moves
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .slots
            .get(&slot)
        {
            return Some(addr.clone());
        }
        let topology = self.topology();
        let shard = topology.shards.get(topology.shard_of(slot)?)?;
        self.healthy_first(&shard.nodes)
    }

    /// Returns a healthy replica of `slot`'s shard other than its leader
    /// (for READONLY clients), else the leader.
    pub fn route_replica(&self, slot: u16, pick: usize) -> Option<Addr> {
        let topology = self.topology();
        let shard = topology.shards.get(topology.shard_of(slot)?)?;
        let replicas: Vec<&Addr> = shard
            .nodes
            .iter()
            .skip(1)
            .filter(|addr| self.is_healthy(addr))
            .collect();
        match replicas.len() {
            0 => self.route(slot),
            len => Some(replicas[pick % len].clone()),
        }
    }

    /// Returns the node leading the shard at `index` (its first healthy
    /// node).
    pub fn route_shard(&self, index: usize) -> Option<Addr> {
        let topology = self.topology();
        self.healthy_first(&topology.shards.get(index)?.nodes)
    }

    /// Returns a healthy node (the first in address order), for commands
    /// that any node answers.
    pub fn any_node(&self) -> Option<Addr> {
        self.healthy_first(&self.topology().nodes())
    }

    fn healthy_first(&self, nodes: &[Addr]) -> Option<Addr> {
        nodes
            .iter()
            .find(|addr| self.is_healthy(addr))
            .or_else(|| nodes.first())
            .cloned()
    }

    /// Returns false while the node failed its last check.
    pub fn is_healthy(&self, addr: &str) -> bool {
        !self
            .unhealthy
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(addr)
    }

    /// Takes `slot` to be at `addr` (a `MOVED` said so), and reads the
    /// topology again soon.
    pub fn moved(&self, slot: u16, addr: &str) {
        self.moves
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .slots
            .insert(slot, Addr::from(addr));
        self.refresh.notify_one();
    }

    /// Marks `addr` unhealthy (a connection to it failed) until a PING
    /// succeeds.
    pub fn failed(&self, addr: &str) {
        let newly = self
            .unhealthy
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(Addr::from(addr));
        if newly {
            tracing::warn!(node = addr, "node unhealthy: traffic leaves it");
            self.health_epoch.send_modify(|epoch| *epoch += 1);
            self.refresh.notify_one();
        }
    }

    fn recovered(&self, addr: &str) {
        let was = self
            .unhealthy
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(addr);
        if was {
            tracing::info!(node = addr, "node healthy again");
        }
    }

    /// Returns a receiver that changes when a node turns unhealthy.
    pub fn health_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.health_epoch.subscribe()
    }

    /// Takes an idle connection to `addr` in `protocol`, if one is open.
    pub fn lease(&self, addr: &Addr, protocol: ProtocolVersion) -> Option<(NodeStream, i64)> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let streams = idle.get_mut(&(addr.clone(), protocol == ProtocolVersion::Resp3))?;
        while let Some((stream, id)) = streams.pop() {
            // A connection the node closed meanwhile reads as end of file.
            if stream.idle_and_open() {
                return Some((stream, id));
            }
        }
        None
    }

    /// Gives an idle connection back (at most
    /// [`GATEWAY_IDLE_PER_NODE_MAX`] per node are kept).
    pub fn give_back(&self, addr: Addr, protocol: ProtocolVersion, stream: NodeStream, id: i64) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let streams = idle
            .entry((addr, protocol == ProtocolVersion::Resp3))
            .or_default();
        if streams.len() < GATEWAY_IDLE_PER_NODE_MAX {
            streams.push((stream, id));
        }
    }

    /// Returns the least busy lane to `addr`, or None when there is none,
    /// or all have requests in flight and another may open.
    pub(crate) fn lane(&self, addr: &Addr, protocol: ProtocolVersion) -> Option<Arc<Lane>> {
        let mut lanes = self
            .lanes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let lanes = lanes.get_mut(&(addr.clone(), protocol == ProtocolVersion::Resp3))?;
        lanes.retain(|lane| !lane.ended());
        let least = lanes.iter().min_by_key(|lane| lane.in_flight())?;
        if least.in_flight() > 0 && lanes.len() < GATEWAY_LANES_PER_NODE_MAX {
            return None;
        }
        Some(least.clone())
    }

    /// Returns how many lanes to `addr` are open, in both protocols.
    pub fn lanes_to(&self, addr: &str) -> usize {
        self.lanes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .filter(|((node, _), _)| &**node == addr)
            .map(|(_, lanes)| lanes.iter().filter(|lane| !lane.ended()).count())
            .sum()
    }

    /// Adds a lane to `addr` opened by a client, unless enough opened
    /// meanwhile; returns the lane the client takes.
    pub(crate) fn add_lane(
        &self,
        addr: &Addr,
        protocol: ProtocolVersion,
        lane: Arc<Lane>,
    ) -> Arc<Lane> {
        let mut lanes = self
            .lanes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let lanes = lanes
            .entry((addr.clone(), protocol == ProtocolVersion::Resp3))
            .or_default();
        lanes.retain(|lane| !lane.ended());
        if lanes.len() >= GATEWAY_LANES_PER_NODE_MAX {
            if let Some(least) = lanes.iter().min_by_key(|lane| lane.in_flight()) {
                return least.clone();
            }
        }
        lanes.push(lane.clone());
        lane
    }

    /// Returns a new client's id (CLIENT ID through the gateway).
    pub fn new_client(&self) -> u64 {
        self.next_client_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Notes the connections of client `id` to the nodes (empty: the
    /// client left).
    pub fn note_connections(&self, id: u64, connections: Vec<(Addr, i64)>) {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if connections.is_empty() {
            clients.remove(&id);
        } else {
            clients.insert(id, connections);
        }
    }

    /// Returns the connections of client `id` to the nodes.
    pub fn connections_of(&self, id: u64) -> Vec<(Addr, i64)> {
        self.clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&id)
            .cloned()
            .unwrap_or_default()
    }

    /// Reads the topology every second, or sooner when asked, until
    /// aborted.
    pub async fn keep_topology(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(REFRESH_EVERY) => {}
                () = self.refresh.notified() => {}
            }
            let known = self.topology().nodes();
            let healthy: Vec<&str> = known
                .iter()
                .filter(|addr| self.is_healthy(addr))
                .map(|addr| &**addr)
                .chain(self.seeds.iter().map(String::as_str))
                .collect();
            self.refresh_users(&healthy).await;
            match read_topology(healthy.into_iter()).await {
                Ok(topology) => {
                    *self
                        .topology
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(topology);
                    self.moves
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .slots
                        .clear();
                }
                Err(error) => tracing::debug!(%error, "topology not read"),
            }
        }
    }

    /// Sends every node a PING every [`HEALTH_EVERY`], until aborted: a
    /// node that does not answer in time is unhealthy, one that answers
    /// is healthy again.
    pub async fn keep_health(self: Arc<Self>) {
        let mut missed: HashMap<Addr, u32> = HashMap::new();
        loop {
            tokio::time::sleep(HEALTH_EVERY).await;
            let nodes = self.topology().nodes();
            let probes = nodes
                .iter()
                .map(|addr| async move { (addr, ask(addr, &["PING"], PROBE_TIMEOUT).await) });
            for (addr, answer) in futures::future::join_all(probes).await {
                match answer {
                    Ok(_) => {
                        missed.remove(addr);
                        self.recovered(addr);
                    }
                    Err(error) => {
                        tracing::debug!(node = &**addr, %error, "PING failed");
                        let count = missed.entry(addr.clone()).or_default();
                        *count += 1;
                        // One late PING on a busy machine is not a dead
                        // node; a refused connection marks it at once
                        // (the passive check).
                        if *count >= PINGS_MISSED_MAX {
                            self.failed(addr);
                        }
                    }
                }
            }
        }
    }
}

/// Reads the ACL users (`ACL LIST`) from the first of `addrs` that
/// answers.
async fn read_users<'a>(
    addrs: impl Iterator<Item = &'a str>,
) -> Result<std::collections::BTreeMap<String, Arc<polis_commands::acl::User>>, String> {
    let mut last_error = "no node to ask".to_owned();
    for addr in addrs {
        match ask(addr, &["ACL", "LIST"], PROBE_TIMEOUT).await {
            Ok(Reply::Error(error)) => {
                last_error = format!(
                    "{addr} refused ACL LIST ({error}): give the gateway a user that may run it \
                     (--user, --password-file)"
                )
            }
            Ok(reply) => return Users::read(&reply),
            Err(error) => last_error = format!("{addr}: {error}"),
        }
    }
    Err(last_error)
}

/// Reads `CLUSTER SHARDS` from the first of `addrs` that answers.
async fn read_topology<'a>(addrs: impl Iterator<Item = &'a str>) -> Result<Topology, String> {
    let mut last_error = "no node to ask".to_owned();
    for addr in addrs {
        match ask(addr, &["CLUSTER", "SHARDS"], PROBE_TIMEOUT).await {
            Ok(reply) => match Topology::from_shards_reply(&reply) {
                Ok(topology) if !topology.shards.is_empty() => return Ok(topology),
                Ok(_) => last_error = format!("{addr} knows no shards yet"),
                Err(error) => last_error = format!("{addr}: {error}"),
            },
            Err(error) => last_error = format!("{addr}: {error}"),
        }
    }
    Err(last_error)
}
