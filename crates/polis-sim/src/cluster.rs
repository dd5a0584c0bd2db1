//! The simulated cluster: each node the real polis node
//! ([`polis_server::Node`]: bootstrap, the meta replica and its shard
//! replicas from the cluster map, the control loop, routing) on a
//! simulated host (polis-raft's [`Host`] over its own simulated disk and
//! the simulated network).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use polis_raft::group::Clock;
use polis_raft::mem_log_store::{DiskObserver, LogSummary, MemDisk};
use polis_raft::sim_network::SimNet;
use polis_raft::{FaultInjector, Host, RaftSettings};
use polis_server::{ClusterShape, MemberSpec, Node, ServerConfig};
use polis_types::{limits, GroupId, NodeId, META_GROUP};

use crate::config::{stream_seed, SimConfig};
use crate::network::Links;
use crate::observe::{MapHistory, Observer};
use crate::trace::{Trace, TraceEvent};

/// The wall-clock time the virtual clock starts at (2024-01-01), so
/// proposals carry realistic timestamps.
const EPOCH_MS: u64 = 1_704_067_200_000;

/// Name of the violation a node that fails to start reports.
pub const NODE_STARTS: &str = "node-starts";

struct Running {
    node: Arc<Node>,
    alive: Arc<AtomicBool>,
    /// The node's start-up (bootstrap, opening its replicas): a crash ends
    /// it where it stands, as it ends a process.
    starting: tokio::task::JoinHandle<()>,
}

struct NodeSlot {
    disk: MemDisk,
    /// Which run of the node is current (or next, while it is down).
    incarnation: u64,
    running: Option<Running>,
    /// Peer addresses a node that joined a running cluster asked to join
    /// (empty for the first members).
    join: Vec<String>,
    /// The cluster removed the node: it stopped for good.
    removed: bool,
}

/// Returns the simulated address of `node`'s listener `kind`.
pub fn address(node: NodeId, kind: &str) -> String {
    format!("sim-node-{node}-{kind}:0")
}

/// Returns the shard that owns `slot` in `map`.
pub fn owner_of(map: &polis_cluster::ClusterMap, slot: u16) -> Option<GroupId> {
    map.shards
        .values()
        .find(|shard| {
            shard
                .slots
                .iter()
                .any(|range| range.start.get() <= slot && slot <= range.end.get())
        })
        .map(|shard| shard.id)
}

/// Returns the node an address of [`address`] names.
pub fn node_of_address(addr: &str) -> Option<NodeId> {
    let rest = addr.strip_prefix("sim-node-")?;
    let (id, _) = rest.split_once('-')?;
    id.parse().ok().map(NodeId)
}

/// The cluster. Cloning shares it.
#[derive(Clone)]
pub struct SimCluster {
    nodes: Arc<Mutex<BTreeMap<NodeId, NodeSlot>>>,
    net: SimNet,
    trace: Trace,
    history: MapHistory,
    settings: RaftSettings,
    members: Vec<MemberSpec>,
    shape: ClusterShape,
    clock: Clock,
    /// What a node's disk is made with.
    disks: DiskRecipe,
}

/// How the cluster makes a node's disk.
#[derive(Clone)]
struct DiskRecipe {
    seed: u64,
    flush_delay_max: Duration,
    lying: bool,
    observer: Arc<dyn DiskObserver>,
}

impl DiskRecipe {
    fn make(&self, node: NodeId) -> MemDisk {
        let seed = stream_seed(self.seed, &format!("disk-{node}"));
        let disk = MemDisk::new(
            node,
            seed,
            self.flush_delay_max,
            Some(self.observer.clone()),
        );
        disk.set_lying(self.lying);
        disk
    }
}

impl SimCluster {
    /// Returns a cluster of `config.nodes` stopped nodes with empty disks.
    pub fn new(config: &SimConfig, trace: &Trace, links: Arc<Links>) -> Self {
        let disks = DiskRecipe {
            seed: config.seed,
            flush_delay_max: Duration::from_micros(config.flush_delay_max_us),
            lying: config.lying_disks,
            observer: Arc::new(trace.clone()),
        };
        let mut nodes = BTreeMap::new();
        let mut members = Vec::new();
        for node in config.node_ids() {
            nodes.insert(
                node,
                NodeSlot {
                    disk: disks.make(node),
                    incarnation: 0,
                    running: None,
                    join: Vec::new(),
                    removed: false,
                },
            );
            members.push(MemberSpec {
                id: node,
                peer_addr: address(node, "peer"),
                resp_addr: address(node, "resp"),
                admin_addr: address(node, "admin"),
            });
        }
        let origin = tokio::time::Instant::now();
        let clock: Clock = Arc::new(move || EPOCH_MS + origin.elapsed().as_millis() as u64);
        Self {
            nodes: Arc::new(Mutex::new(nodes)),
            net: SimNet::new(links).with_resolver(Arc::new(node_of_address)),
            trace: trace.clone(),
            history: MapHistory::default(),
            settings: RaftSettings {
                heartbeat_ms: config.heartbeat_ms,
                election_timeout_min_ms: config.election_timeout_min_ms,
                election_timeout_max_ms: config.election_timeout_max_ms,
                snapshot_every_entries: config.snapshot_every_entries,
                // Unused: the simulation paces snapshots by entries only.
                snapshot_log_bytes_min: u64::MAX,
                snapshot_step_items: config.snapshot_step_keys,
                snapshot_bytes_per_sec: 0,
                entries_kept_after_snapshot: config.entries_kept_after_snapshot,
                request_timeout_ms: config.request_timeout_ms,
                hibernate: config.hibernate,
                idle_before_park_ms: config.idle_before_park_ms,
            },
            members,
            shape: ClusterShape {
                shards: config.shards,
                replicas: 3,
            },
            clock,
            disks,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<NodeId, NodeSlot>> {
        self.nodes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns the maps the meta group applied so far.
    pub fn history(&self) -> &MapHistory {
        &self.history
    }

    fn server_config(&self, node: NodeId, join: Vec<String>) -> ServerConfig {
        // A node that joins knows only itself and whom to ask.
        let members = if join.is_empty() {
            self.members.clone()
        } else {
            vec![MemberSpec {
                id: node,
                peer_addr: address(node, "peer"),
                resp_addr: address(node, "resp"),
                admin_addr: address(node, "admin"),
            }]
        };
        ServerConfig {
            node_id: node,
            data_dir: format!("sim-node-{node}").into(),
            resp_addr: address(node, "resp"),
            admin_addr: address(node, "admin"),
            peer_addr: address(node, "peer"),
            members,
            init: false,
            join,
            shape: self.shape,
            raft: self.settings.clone(),
            leader_moves_per_minute: 30,
            down_after: std::time::Duration::from_secs(1800),
            migration_pause_max: std::time::Duration::from_secs(2),
            migration_bytes_per_sec: 0,
            scheduler: false,
            split_above: polis_cluster::reshape::SplitAbove::default(),
            proto_max_bulk_len: limits::PROTO_MAX_BULK_LEN_DEFAULT,
            client_query_buffer_limit: limits::QUERY_BUFFER_LEN_MAX_DEFAULT,
            maxclients: limits::CLIENTS_MAX_DEFAULT,
            parameters: Vec::new(),
            enable_fault_injection: false,
            entry_format_max: polis_cluster::ENTRY_FORMAT_MAX,
            tls: None,
            peer_tls: None,
            encryption_key: None,
        }
    }

    /// Starts `node` from what its disk holds, unless it runs already.
    /// The node bootstraps in the background, as a real one does.
    ///
    /// # Errors
    /// Returns an error if there is no such node.
    pub async fn start(&self, node: NodeId) -> io::Result<()> {
        let (disk, incarnation, join) = {
            let nodes = self.lock();
            let Some(slot) = nodes.get(&node) else {
                return Err(io::Error::other(format!("no node {node}")));
            };
            if slot.running.is_some() || slot.removed {
                return Ok(());
            }
            (slot.disk.clone(), slot.incarnation, slot.join.clone())
        };
        if incarnation > 0 {
            self.trace.record(TraceEvent::Restart { node, incarnation });
        }
        let alive = Arc::new(AtomicBool::new(true));
        let host = Host::simulated(
            node,
            disk,
            self.settings.clone(),
            &self.net,
            incarnation,
            self.clock.clone(),
        );
        host.set_apply_observer(Arc::new(Observer {
            node,
            incarnation,
            alive: alive.clone(),
            trace: self.trace.clone(),
            history: self.history.clone(),
        }));
        let faults = Arc::new(FaultInjector::new(false, 0));
        let server = Node::new(self.server_config(node, join), host, faults, 0);
        let starting = server.clone();
        let trace = self.trace.clone();
        let alive_now = alive.clone();
        let starting = tokio::spawn(async move {
            if let Err(error) = starting.start().await {
                if alive_now.load(Ordering::Relaxed) {
                    trace.violation(NODE_STARTS, format!("node {node}: {error}"));
                }
            }
        });
        if let Some(slot) = self.lock().get_mut(&node) {
            slot.running = Some(Running {
                node: server,
                alive,
                starting,
            });
        }
        Ok(())
    }

    /// Adds node `node`, with an empty disk, and starts it asking the
    /// first members' peers to let it join (`--join`).
    ///
    /// # Errors
    /// Returns an error if the node exists already.
    pub async fn join(&self, node: NodeId) -> io::Result<()> {
        {
            let mut nodes = self.lock();
            if nodes.contains_key(&node) {
                return Err(io::Error::other(format!("node {node} exists already")));
            }
            let join = self
                .members
                .iter()
                .map(|member| member.peer_addr.clone())
                .collect();
            nodes.insert(
                node,
                NodeSlot {
                    disk: self.disks.make(node),
                    incarnation: 0,
                    running: None,
                    join,
                    removed: false,
                },
            );
        }
        self.start(node).await
    }

    /// Stops `node` for good, as a node the cluster removed stops itself.
    pub fn remove(&self, node: NodeId) {
        self.crash(node);
        if let Some(slot) = self.lock().get_mut(&node) {
            slot.removed = true;
        }
    }

    /// Returns every node the run has had, removed ones included.
    pub fn ever(&self) -> Vec<NodeId> {
        self.lock().keys().copied().collect()
    }

    /// Returns every node not removed, running or not.
    pub fn members_now(&self) -> Vec<NodeId> {
        self.lock()
            .iter()
            .filter(|(_, slot)| !slot.removed)
            .map(|(node, _)| *node)
            .collect()
    }

    /// Stops `node` abruptly: what its disk had not flushed is lost, and
    /// nothing its stopped tasks still do reaches anyone.
    pub fn crash(&self, node: NodeId) {
        let mut nodes = self.lock();
        let Some(slot) = nodes.get_mut(&node) else {
            return;
        };
        let Some(running) = slot.running.take() else {
            return;
        };
        self.trace.record(TraceEvent::Crash { node });
        running.alive.store(false, Ordering::Relaxed);
        running.starting.abort();
        self.net.detach(node);
        let server = running.node;
        tokio::spawn(async move { server.shutdown().await });
        slot.disk.crash();
        slot.incarnation += 1;
    }

    /// Returns `node` and which run of it this is, if it runs.
    pub fn node(&self, node: NodeId) -> Option<(Arc<Node>, u64)> {
        let nodes = self.lock();
        let slot = nodes.get(&node)?;
        let running = slot.running.as_ref()?;
        Some((running.node.clone(), slot.incarnation))
    }

    /// Returns true while run `incarnation` of `node` is the one running.
    pub fn is_running(&self, node: NodeId, incarnation: u64) -> bool {
        self.lock()
            .get(&node)
            .is_some_and(|slot| slot.running.is_some() && slot.incarnation == incarnation)
    }

    /// Returns the nodes running now, or down now (a removed node is
    /// neither).
    pub fn nodes(&self, running: bool) -> Vec<NodeId> {
        self.lock()
            .iter()
            .filter(|(_, slot)| !slot.removed && slot.running.is_some() == running)
            .map(|(node, _)| *node)
            .collect()
    }

    /// Returns a running node that believes it leads `group`, if any.
    pub fn leader(&self, group: GroupId) -> Option<NodeId> {
        self.lock().iter().find_map(|(node, slot)| {
            let running = slot.running.as_ref()?;
            let leads = if group == META_GROUP {
                running.node.meta().is_some_and(|meta| meta.is_leader())
            } else {
                running
                    .node
                    .shard(group)
                    .is_some_and(|shard| shard.is_leader())
            };
            leads.then_some(*node)
        })
    }

    /// Returns the groups the map has (the meta group and every shard).
    pub fn groups(&self) -> BTreeSet<GroupId> {
        let mut groups: BTreeSet<GroupId> = [META_GROUP].into();
        if let Some(map) = self.history.latest() {
            groups.extend(map.shards.keys().copied());
        }
        groups
    }

    /// Returns every node's log of `group` as the node sees it, or as it
    /// would survive a crash (`durable`).
    pub fn logs(&self, group: GroupId, durable: bool) -> Vec<(NodeId, LogSummary)> {
        self.lock()
            .iter()
            .map(|(node, slot)| {
                let log = if durable {
                    slot.disk.durable_log_summary(group)
                } else {
                    slot.disk.log_summary(group)
                };
                (*node, log)
            })
            .collect()
    }

    /// Records the map version each running node routes from.
    pub fn note_routing(&self) {
        let routed: Vec<(NodeId, u64)> = self
            .lock()
            .iter()
            .filter_map(|(node, slot)| Some((*node, slot.running.as_ref()?.node.map.version())))
            .filter(|(_, version)| *version > 0)
            .collect();
        for (node, version) in routed {
            self.trace.record(TraceEvent::MapRouted { node, version });
        }
    }
}
