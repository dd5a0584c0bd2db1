//! A running node: its host of Raft groups (the meta replica and the shard
//! replicas the map gives it), its copy of the cluster map, its listeners,
//! and the state every connection shares.
//!
//! ```text
//!   run ─> bind listeners ─> Host (storage, peers) ─> Node::start
//!            Node::start ─> bootstrap (identity, map: create / register / reopen)
//!                       ─> replicas (meta + shards from the map)
//!                       ─> tasks: map follower, controller, expiry, eviction
//! ```
//!
//! [`Node`] holds no socket: the simulation runs the same node on a
//! simulated host and drives it through [`crate::dispatch`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use polis_cluster::{MapView, MetaMachine};
use polis_raft::{FaultInjector, Group, Host, PeerAddr};
use polis_resp::DecodeLimits;
use polis_types::{limits, GroupId, NodeId, META_GROUP};
use tokio::net::TcpListener;

use crate::clients::Clients;
use crate::config::ServerConfig;
use crate::machine::DataMachine;
use crate::map_state::MapState;
use crate::settings::Settings;
use crate::stats::Stats;
use crate::{admin, bootstrap, connection, controller, eviction, expiry, removal, replicas, rpc};

/// Why a node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot bind {what} address {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("storage: {0}")]
    Storage(std::io::Error),
    #[error("{0}")]
    Bootstrap(String),
    #[error("{0}")]
    Removed(String),
}

/// A shard replica this node hosts.
pub type ShardGroup = Arc<Group<DataMachine>>;

/// What every connection of a node shares.
pub struct Node {
    pub config: ServerConfig,
    pub host: Arc<Host>,
    /// The cluster map the node routes from.
    pub map: MapState,
    meta: RwLock<Option<Group<MetaMachine>>>,
    shards: RwLock<BTreeMap<GroupId, ShardGroup>>,
    pub clients: Arc<Clients>,
    /// Clients blocked on keys of shards this node leads.
    pub blocking: crate::blocking::Blocking,
    /// This node's pub/sub subscribers.
    pub pubsub: crate::pubsub::PubSub,
    /// Queues of pub/sub messages to the other nodes.
    pub fanout: crate::fanout::Fanout,
    /// `notify-keyspace-events`, as flags.
    pub key_events: crate::notify::KeyEvents,
    pub stats: Stats,
    /// ACL refusals: ACL LOG and INFO's counts.
    pub acl_log: crate::acl::AclLog,
    /// SLOWLOG's entries.
    pub slowlog: crate::slowlog::SlowLog,
    /// LATENCY's events.
    pub latency: crate::latency::LatencyMonitor,
    /// MONITOR's clients.
    pub monitors: crate::monitor::Monitors,
    pub settings: Settings,
    /// `maxmemory` and what keeps the node within it.
    pub eviction: crate::eviction::Eviction,
    /// The keys of eventual namespaces.
    pub eventual: crate::eventual::Eventual,
    pub started_at: Instant,
    /// Random per process, like Redis's run_id.
    pub run_id: String,
    pub resp_port: u16,
    /// Network fault injection (inert unless enabled in the config).
    pub faults: Arc<FaultInjector>,
    /// The node held data when it started (identity or groups on disk).
    pub(crate) has_data: AtomicBool,
    /// The registration token of the data directory (set as the node
    /// starts, before it answers peers).
    token: AtomicU64,
    /// Groups with a membership or ownership change under way.
    pub(crate) work: controller::Work,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Returns the wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// Returns the Redis Cluster-style 40-hex-digit name of node `id`.
pub fn node_name(id: NodeId) -> String {
    format!("{:040x}", id.get())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Node {
    /// Returns a node on `host` that has not started yet.
    pub fn new(
        config: ServerConfig,
        host: Arc<Host>,
        faults: Arc<FaultInjector>,
        resp_port: u16,
    ) -> Arc<Self> {
        let settings = Settings::new(
            config.proto_max_bulk_len,
            config.client_query_buffer_limit,
            config.maxclients,
        );
        if let Err(error) = settings.set_all(&config.parameters) {
            // validate() tried them already.
            tracing::error!(error = %error.render(), "a configuration parameter was refused");
        }
        let eviction_seed = polis_raft::runtime::random_u64();
        tracing::debug!(eviction_seed, "eviction's random picks");
        let key_events = crate::notify::KeyEvents::new(settings.key_event_flags());
        let slowlog = crate::slowlog::SlowLog::new();
        let latency = crate::latency::LatencyMonitor::default();
        crate::server_commands::slowlog::configure(&settings, &slowlog, &latency);
        Arc::new(Self {
            eviction: crate::eviction::Eviction::new(settings.eviction(), eviction_seed),
            pubsub: crate::pubsub::PubSub::new(settings.pubsub_output_limit()),
            monitors: crate::monitor::Monitors::new(settings.pubsub_output_limit()),
            slowlog,
            latency,
            fanout: crate::fanout::Fanout::default(),
            eventual: crate::eventual::Eventual::new(
                config.node_id,
                u64::try_from(settings.integer("eventual-max-clock-ahead-ms")).unwrap_or(500),
            ),
            key_events,
            settings,
            config,
            host,
            map: MapState::default(),
            meta: RwLock::new(None),
            shards: RwLock::new(BTreeMap::new()),
            clients: Arc::new(Clients::default()),
            blocking: crate::blocking::Blocking::default(),
            stats: Stats::default(),
            acl_log: crate::acl::AclLog::default(),
            started_at: Instant::now(),
            run_id: format!(
                "{:020x}{:020x}",
                polis_raft::runtime::random_u64(),
                polis_raft::runtime::random_u64()
            ),
            resp_port,
            faults,
            has_data: AtomicBool::new(false),
            token: AtomicU64::new(0),
            work: controller::Work::default(),
            tasks: Mutex::new(Vec::new()),
        })
    }

    /// Joins or creates the cluster, opens this node's replicas and starts
    /// its background tasks. Peers must be able to reach the host already
    /// (a bootstrapping cluster talks while it starts).
    ///
    /// # Errors
    /// Returns an error if the data directory belongs to another node or
    /// format, or storage fails.
    pub async fn start(self: &Arc<Self>) -> Result<(), ServerError> {
        let token = bootstrap::registration_token(self).await?;
        self.token.store(token, Ordering::Relaxed);
        self.host.set_app_handler(Arc::new(rpc::Handler {
            node: Arc::downgrade(self),
        }));
        self.host.start_background();
        let identity = bootstrap::establish(self).await?;
        self.eventual
            .start(self.host.storage(), identity.incarnation)
            .await
            .map_err(ServerError::Storage)?;
        replicas::open(self, &identity).await?;
        let tasks = vec![
            tokio::spawn(replicas::follow_map(self.clone())),
            tokio::spawn(controller::run(self.clone())),
            tokio::spawn(expiry::run(self.clone())),
            tokio::spawn(crate::feed_forward::run(self.clone())),
            tokio::spawn(eviction::run(self.clone())),
            tokio::spawn(crate::eventual::run_anti_entropy(self.clone())),
            tokio::spawn(crate::eventual::run_hints(self.clone())),
            tokio::spawn(crate::eventual::run_handoff(self.clone())),
        ];
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend(tasks);
        tracing::info!(
            node = %self.config.node_id,
            map_version = self.map.version(),
            shards = read(&self.shards).len(),
            "node started"
        );
        Ok(())
    }

    /// Stops the background tasks and every group.
    pub async fn shutdown(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .drain(..)
        {
            task.abort();
        }
        self.host.shutdown().await;
    }

    /// Returns the limits the request decoder enforces now.
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            bulk_len_max: self.settings.integer("proto-max-bulk-len").max(0) as u64,
            multibulk_len_max: limits::MULTIBULK_LEN_MAX,
            inline_len_max: limits::INLINE_LEN_MAX,
            query_buffer_len_max: self.settings.integer("client-query-buffer-limit").max(0) as u64,
        }
    }

    /// Returns the map the node routes from, once it has one.
    pub fn view(&self) -> Option<Arc<MapView>> {
        self.map.current()
    }

    /// Returns this node's replica of the meta group, once it runs.
    pub fn meta(&self) -> Option<Group<MetaMachine>> {
        read(&self.meta).clone()
    }

    pub(crate) fn set_meta(&self, group: Group<MetaMachine>) {
        *write(&self.meta) = Some(group);
    }

    /// Returns this node's replica of `shard`, if it hosts one.
    pub fn shard(&self, shard: GroupId) -> Option<ShardGroup> {
        read(&self.shards).get(&shard).cloned()
    }

    /// Returns every shard replica this node hosts.
    pub fn shards(&self) -> BTreeMap<GroupId, ShardGroup> {
        read(&self.shards).clone()
    }

    pub(crate) fn insert_shard(&self, group: ShardGroup) {
        write(&self.shards).insert(group.id(), group);
    }

    pub(crate) fn remove_shard(&self, shard: GroupId) -> Option<ShardGroup> {
        write(&self.shards).remove(&shard)
    }

    /// Returns the shard replicas this node leads, in shard order.
    pub fn led_shards(&self) -> Vec<ShardGroup> {
        read(&self.shards)
            .values()
            .filter(|group| group.is_leader())
            .cloned()
            .collect()
    }

    /// Returns the node leading `group` (the meta group or a shard), as
    /// this node knows: its own replica's view, else the peers' beats.
    pub fn leader_of(&self, group: GroupId) -> Option<NodeId> {
        let local = if group == META_GROUP {
            self.meta().and_then(|meta| meta.leader())
        } else {
            self.shard(group).and_then(|shard| shard.leader())
        };
        if let Some((_, peer)) = local {
            return Some(peer.node_id);
        }
        self.host.leaders().get(&group).map(|(node, _)| *node)
    }

    /// Returns the node leading the meta group, as this node knows.
    pub fn meta_leader(&self) -> Option<NodeId> {
        self.leader_of(META_GROUP)
    }

    /// Returns the leader of every group this node knows of.
    pub fn leaders(&self) -> BTreeMap<GroupId, NodeId> {
        let mut leaders: BTreeMap<GroupId, NodeId> = self
            .host
            .leaders()
            .into_iter()
            .map(|(group, (node, _))| (group, node))
            .collect();
        for (shard, group) in self.shards() {
            if let Some((_, peer)) = group.leader() {
                leaders.insert(shard, peer.node_id);
            }
        }
        if let Some((_, peer)) = self.meta().and_then(|meta| meta.leader()) {
            leaders.insert(META_GROUP, peer.node_id);
        }
        leaders
    }

    /// Returns where to reach `node`, from the map or the member list.
    pub fn peer_addr(&self, node: NodeId) -> Option<PeerAddr> {
        let from_map = self.view().and_then(|view| {
            view.map()
                .node(node)
                .map(|record| record.addrs.peer.clone())
        });
        let addr = from_map.or_else(|| {
            self.config
                .members
                .iter()
                .find(|member| member.id == node)
                .map(|member| member.peer_addr.clone())
        })?;
        Some(PeerAddr { node, addr })
    }

    /// Returns the registration token of the node's data directory (0
    /// until the node starts).
    pub fn token(&self) -> u64 {
        self.token.load(Ordering::Relaxed)
    }

    /// Returns true once the node holds data of its own.
    pub fn has_data(&self) -> bool {
        self.has_data.load(Ordering::Relaxed)
    }
}

async fn bind(what: &'static str, addr: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            what,
            addr: addr.to_owned(),
            source,
        })
}

/// Runs a node until `shutdown` completes.
///
/// # Errors
/// Returns an error if the configuration is invalid, an address cannot be
/// bound, storage cannot be opened, or the data directory is not this
/// node's.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    config.validate().map_err(ServerError::Config)?;
    let peer_listener = bind("peer", &config.peer_addr).await?;
    let resp_listener = bind("RESP", &config.resp_addr).await?;
    let admin_listener = bind("admin", &config.admin_addr).await?;
    let tls = match &config.tls {
        Some(listen) => Some((
            bind("TLS", &listen.addr).await?,
            polis_tls::Reloading::new(listen.files.clone()).map_err(ServerError::Config)?,
        )),
        None => None,
    };
    let tls_port = tls
        .as_ref()
        .and_then(|(listener, _)| listener.local_addr().ok())
        .map(|addr| addr.port());
    let resp_port = resp_listener
        .local_addr()
        .map(|addr| addr.port())
        .unwrap_or(0);

    let fault_seed: u64 = rand::random();
    if config.enable_fault_injection {
        tracing::warn!(fault_seed, "fault injection enabled");
    }
    let faults = Arc::new(FaultInjector::new(
        config.enable_fault_injection,
        fault_seed,
    ));
    let peer_tls = match &config.peer_tls {
        Some(files) => Some(Arc::new(
            polis_tls::PeerTls::load(files).map_err(ServerError::Config)?,
        )),
        None => None,
    };
    let host = Host::open(
        config.node_id,
        &config.data_dir,
        config.raft.clone(),
        faults.clone(),
        peer_tls.clone(),
        config.encryption_key.as_deref(),
    )
    .map_err(ServerError::Storage)?;
    let node = Node::new(config, host.clone(), faults, resp_port);
    tracing::info!(
        node_id = %node.config.node_id,
        resp = %node.config.resp_addr,
        admin = %node.config.admin_addr,
        peer = %node.config.peer_addr,
        "node listening"
    );
    let peers = tokio::spawn(async move {
        if let Err(error) = host.serve_peers(peer_listener, peer_tls).await {
            tracing::error!(%error, "peer server stopped");
        }
    });
    let admin = tokio::spawn(admin::serve(node.clone(), admin_listener));
    let accept = tokio::spawn(accept_loop(node.clone(), resp_listener, None));
    let tls_accept = tls.map(|(listener, reloading)| {
        [
            tokio::spawn(reloading.clone().keep_reloading()),
            tokio::spawn(accept_loop(node.clone(), listener, Some(reloading))),
        ]
    });

    tokio::pin!(shutdown);
    let started = tokio::select! {
        started = node.start() => started,
        () = &mut shutdown => Ok(()),
    };
    if let Err(error) = started {
        accept.abort();
        tls_accept.iter().flatten().for_each(|task| task.abort());
        admin.abort();
        node.shutdown().await;
        peers.abort();
        return Err(error);
    }
    let publish = tokio::spawn(crate::tls_publish::run(node.clone(), tls_port));
    let announce = tokio::spawn(crate::announce::run(node.clone()));
    let removed = tokio::select! {
        () = &mut shutdown => None,
        removed = removal::watch(node.clone()) => Some(removed),
    };
    if let Some(removed) = &removed {
        tracing::error!("{removed}");
    }
    tracing::info!("node stopping");
    publish.abort();
    announce.abort();
    accept.abort();
    tls_accept.iter().flatten().for_each(|task| task.abort());
    admin.abort();
    node.shutdown().await;
    peers.abort();
    removed.map_or(Ok(()), |removed| Err(ServerError::Removed(removed)))
}

async fn accept_loop(
    node: Arc<Node>,
    listener: TcpListener,
    tls: Option<Arc<polis_tls::Reloading>>,
) {
    loop {
        let (stream, addr) = polis_tls::accept(&listener, "a client").await;
        Stats::bump(&node.stats.connections_received);
        match &tls {
            None => tokio::spawn(connection::serve(
                node.clone(),
                connection::ClientStream::Plain(stream),
                addr,
            )),
            Some(tls) => tokio::spawn(connection::serve_tls(
                node.clone(),
                stream,
                addr,
                tls.acceptor(),
            )),
        };
    }
}
