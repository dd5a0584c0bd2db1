//! The Raft side of one node: its storage, its transport, and every group
//! it hosts a replica of, whatever their state machines.
//!
//! ```text
//!             ┌──────────────────── Host (one per node) ───────────────────┐
//!  peers ═══> │ Dispatcher ──> group endpoints ──> openraft (per group)    │
//!             │            ──> beats (liveness, who leads what)           │
//!             │            ──> application handler                        │
//!             │ Storage: one log engine, one group-commit fsync thread     │
//!             │ Budget:  proposals and bytes in flight, all groups         │
//!             │ background: beats out + hibernation supervisor, per beat   │
//!             └────────────────────────────────────────────────────────────┘
//! ```
//!
//! A group's life: [`Host::start_group`] creates it (or opens what its
//! storage holds), [`Host::stop_group`] stops its tasks, and
//! [`Host::destroy_group`] stops it and then removes its data.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use polis_types::{GroupId, NodeId, ReplicaId};
use tracing::Instrument;

use crate::beats::{Beat, Beats, Leadership};
use crate::faults::FaultInjector;
use crate::group::{Budget, Clock, Group};
use crate::group_network::{GroupNetwork, RaftEndpoint};
use crate::hibernate::Hibernation;
use crate::mem_log_store::MemDisk;
use crate::network::{GrpcTransport, PeerService};
use crate::read_rounds::ReadRounds;
use crate::settings::{group_config, RaftSettings};
use crate::sim_network::SimNet;
use crate::snapshot_pace::SnapshotPace;
use crate::state_machine::{ApplyObserver, LogGrowth, SmStore, SnapshotPacing, StateMachine};
use crate::storage::Storage;
use crate::transport::{
    AppHandler, CallError, Dispatcher, MessageKind, PeerAddr, PeerRequest, Transport,
};
use crate::types::{PeerNode, Raft};

/// What a group needs to start on this node.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub group: GroupId,
    /// The replica this node hosts.
    pub replica: ReplicaId,
    /// The membership a brand-new group starts with; `None` for a replica
    /// that joins an existing group (the leader adds it).
    pub bootstrap: Option<BTreeMap<ReplicaId, PeerNode>>,
}

#[path = "host/hosted.rs"]
mod hosted;

use hosted::{Hosted, HostedGroup};

/// The Raft side of one node.
pub struct Host {
    node_id: NodeId,
    settings: RaftSettings,
    storage: Storage,
    transport: Transport,
    dispatcher: Arc<Dispatcher>,
    beats: Arc<Beats>,
    hibernation: Arc<Hibernation>,
    budget: Arc<Budget>,
    snapshot_pace: Arc<SnapshotPace>,
    clock: Clock,
    hosted: Mutex<BTreeMap<GroupId, Arc<dyn Hosted>>>,
    /// Peers the application named (every node of the cluster map).
    peers: Mutex<BTreeMap<NodeId, String>>,
    background: Mutex<Option<tokio::task::JoinHandle<()>>>,
    observer: Mutex<Option<Arc<dyn ApplyObserver>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Host {
    /// Opens the Raft side of node `node_id` on its data directory, with
    /// the real network (gRPC) under `faults`, over mutual TLS when
    /// `peer_tls` is given, encrypted at rest when `master_key` is.
    ///
    /// # Errors
    /// Returns an error if the data directory or the log engine cannot be
    /// opened.
    pub fn open(
        node_id: NodeId,
        data_dir: &Path,
        settings: RaftSettings,
        faults: Arc<FaultInjector>,
        peer_tls: Option<Arc<polis_tls::PeerTls>>,
        master_key: Option<&crate::MasterKey>,
    ) -> io::Result<Arc<Self>> {
        let storage = Storage::open_disk(data_dir, master_key)?;
        let beats = Arc::new(Beats::new(node_id, settings.liveness_timeout()));
        let dispatcher = Arc::new(Dispatcher::new(beats.clone(), Some(faults.clone())));
        let transport = Transport::Grpc(GrpcTransport::new(faults, peer_tls));
        Ok(Arc::new(Self::assemble(
            node_id,
            settings,
            storage,
            transport,
            dispatcher,
            beats,
            crate::group::system_clock(),
        )))
    }

    /// Returns a simulated node: incarnation `generation` of `node_id` on
    /// `disk`, attached to `net`, stamping proposals with `clock`.
    pub fn simulated(
        node_id: NodeId,
        disk: MemDisk,
        settings: RaftSettings,
        net: &SimNet,
        generation: u64,
        clock: Clock,
    ) -> Arc<Self> {
        let beats = Arc::new(Beats::new(node_id, settings.liveness_timeout()));
        let dispatcher = Arc::new(Dispatcher::new(beats.clone(), None));
        let transport = Transport::Sim(net.attach(node_id, generation, dispatcher.clone()));
        Arc::new(Self::assemble(
            node_id,
            settings,
            Storage::Memory(disk.bound()),
            transport,
            dispatcher,
            beats,
            clock,
        ))
    }

    fn assemble(
        node_id: NodeId,
        settings: RaftSettings,
        storage: Storage,
        transport: Transport,
        dispatcher: Arc<Dispatcher>,
        beats: Arc<Beats>,
        clock: Clock,
    ) -> Self {
        let hibernation = Arc::new(Hibernation::new(settings.hibernation(), beats.clone()));
        let snapshot_pace = Arc::new(SnapshotPace::new(settings.snapshot_bytes_per_sec));
        Self {
            node_id,
            settings,
            storage,
            transport,
            dispatcher,
            beats,
            hibernation,
            budget: Arc::new(Budget::default()),
            snapshot_pace,
            clock,
            hosted: Mutex::new(BTreeMap::new()),
            peers: Mutex::new(BTreeMap::new()),
            background: Mutex::new(None),
            observer: Mutex::new(None),
        }
    }

    /// Returns this node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Returns the settings of this node's groups.
    pub fn settings(&self) -> &RaftSettings {
        &self.settings
    }

    /// Returns the node's storage (its small files, its stored groups).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Returns what this node heard from its peers.
    pub fn beats(&self) -> &Arc<Beats> {
        &self.beats
    }

    /// Returns the hibernation of this node's groups.
    pub fn hibernation(&self) -> &Arc<Hibernation> {
        &self.hibernation
    }

    /// Returns the clock proposals are stamped with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Serves peer messages on `listener` until the future is dropped;
    /// with `tls`, only to peers that pass its mutual TLS (a refused one is
    /// logged).
    ///
    /// # Errors
    /// Returns an error if the server fails.
    pub async fn serve_peers(
        &self,
        listener: tokio::net::TcpListener,
        tls: Option<Arc<polis_tls::PeerTls>>,
    ) -> io::Result<()> {
        let server = tonic::transport::Server::builder()
            .add_service(PeerService::server(self.dispatcher.clone()));
        let served = match tls {
            None => {
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                server.serve_with_incoming(incoming).await
            }
            Some(tls) => {
                server
                    .serve_with_incoming(tls_incoming(listener, tls))
                    .await
            }
        };
        served.map_err(io::Error::other)
    }

    /// Reports every proposal applied by groups started from now on to
    /// `observer` (a simulation's trace).
    pub fn set_apply_observer(&self, observer: Arc<dyn ApplyObserver>) {
        *lock(&self.observer) = Some(observer);
    }

    /// Routes [`MessageKind::App`] messages to `handler`.
    pub fn set_app_handler(&self, handler: Arc<dyn AppHandler>) {
        self.dispatcher.set_app(handler);
    }

    /// Sets the peers beats go to, besides the members of hosted groups.
    pub fn set_peers(&self, peers: impl IntoIterator<Item = PeerAddr>) {
        let mut known = lock(&self.peers);
        known.clear();
        known.extend(
            peers
                .into_iter()
                .filter(|peer| peer.node != self.node_id)
                .map(|peer| (peer.node, peer.addr)),
        );
    }

    /// Sends an application message to `to` and returns its answer.
    ///
    /// # Errors
    /// [`CallError`] when no answer came within `timeout`.
    pub async fn call_app(
        &self,
        to: &PeerAddr,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let request = PeerRequest {
            from: self.node_id,
            kind: MessageKind::App,
            group: GroupId::default(),
            replica: ReplicaId::default(),
            payload,
            traceparent: None,
        };
        self.transport.call(to, request, timeout).await
    }

    /// Starts the beats and the hibernation supervisor, until
    /// [`Host::shutdown`].
    pub fn start_background(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let interval = self.settings.beat_interval();
        let task = tokio::spawn(background(weak, interval));
        if let Some(previous) = lock(&self.background).replace(task) {
            previous.abort();
        }
    }

    /// Returns the groups hosted now, with their replicas.
    pub fn hosted(&self) -> BTreeMap<GroupId, ReplicaId> {
        lock(&self.hosted)
            .iter()
            .map(|(group, hosted)| (*group, hosted.replica()))
            .collect()
    }

    /// Returns every group stored on this node, with its replica.
    ///
    /// # Errors
    /// Returns an error if the storage cannot be read.
    pub fn stored_groups(&self) -> io::Result<Vec<(GroupId, ReplicaId)>> {
        self.storage.groups()
    }

    /// Starts this node's replica of a group with state machine `app`: a
    /// new group (its storage empty), or the group its storage holds.
    ///
    /// # Errors
    /// Returns an error if the group runs already, its storage belongs to
    /// another replica, storage cannot be read, or Raft fails to start.
    pub async fn start_group<S: StateMachine>(
        self: &Arc<Self>,
        spec: GroupSpec,
        app: S,
    ) -> io::Result<Group<S>> {
        let GroupSpec {
            group,
            replica,
            bootstrap,
        } = spec;
        if lock(&self.hosted).contains_key(&group) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("group {group} runs already on node {}", self.node_id),
            ));
        }
        match self.storage.replica(group)? {
            Some(stored) if stored != replica => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "group {group} on node {} holds replica {stored}, not {replica}: \
                         destroy it before starting another replica",
                        self.node_id
                    ),
                ))
            }
            Some(_) => {}
            None => self.storage.set_replica(group, replica).await?,
        }
        let config = group_config(group, &self.settings)?;
        let network = GroupNetwork::new(
            group,
            self.node_id,
            self.transport.clone(),
            self.snapshot_pace.clone(),
        );
        let pacing = SnapshotPacing {
            min_bytes: self.settings.snapshot_log_bytes_min,
            step_items: self.settings.snapshot_step_items,
        };
        let observer = lock(&self.observer).clone();
        // The group's tasks run in its span: their log lines name it.
        let span = tracing::info_span!("group", id = %group);
        let (raft, state, growth) = match &self.storage {
            Storage::Disk { dir, engine } => {
                let store = SmStore::open(
                    app,
                    Storage::snapshot_path(dir, group),
                    engine.cipher().clone(),
                )?
                .with_pacing(pacing)
                .with_observer(group, observer);
                let (state, growth) = (store.handle(), store.log_growth());
                let raft = Raft::new(replica, config, network, engine.group(group), store)
                    .instrument(span.clone())
                    .await
                    .map_err(io::Error::other)?;
                (raft, state, growth)
            }
            Storage::Memory(disk) => {
                let log = disk.store(group);
                let store = SmStore::open_in_memory(app, log.clone())?
                    .with_pacing(pacing)
                    .with_observer(group, observer);
                let (state, growth) = (store.handle(), store.log_growth());
                let raft = Raft::new(replica, config, network, log, store)
                    .instrument(span.clone())
                    .await
                    .map_err(io::Error::other)?;
                (raft, state, growth)
            }
        };
        let pacing = (self.settings.snapshot_log_bytes_min != u64::MAX).then(|| {
            tokio::spawn(ask_for_snapshots(group, raft.clone(), growth).instrument(span.clone()))
        });
        let leader_changes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let leaders_watch = tokio::spawn(hosted::count_leader_changes(
            raft.clone(),
            leader_changes.clone(),
        ));
        let handle = Group {
            id: group,
            replica,
            raft: raft.clone(),
            state,
            budget: self.budget.clone(),
            hibernation: self.hibernation.clone(),
            request_timeout: Duration::from_millis(self.settings.request_timeout_ms),
            clock: self.clock.clone(),
            read_rounds: Arc::new(ReadRounds::default()),
            leader_changes,
        };
        self.hibernation.add(group);
        self.dispatcher.insert(
            group,
            Arc::new(RaftEndpoint {
                group,
                replica,
                raft: raft.clone(),
                hibernation: self.hibernation.clone(),
            }),
        );
        lock(&self.hosted).insert(
            group,
            Arc::new(HostedGroup {
                group: handle.clone(),
                pacing,
                leaders_watch,
            }),
        );
        if let Some(members) = bootstrap {
            if !raft.is_initialized().await.map_err(io::Error::other)? {
                // Every first member initializes with the same membership;
                // openraft makes this idempotent across members.
                if let Err(error) = raft.initialize(members).await {
                    tracing::info!(%error, %group, "initialize skipped");
                }
            }
        }
        span.in_scope(|| tracing::info!(%replica, "group started"));
        Ok(handle)
    }

    /// Stops this node's replica of `group` (its data stays).
    pub async fn stop_group(&self, group: GroupId) {
        self.dispatcher.remove(group);
        self.hibernation.remove(group);
        let hosted = lock(&self.hosted).remove(&group);
        if let Some(hosted) = hosted {
            hosted.shutdown().await;
            tracing::info!(%group, node = %self.node_id, "group stopped");
        }
    }

    /// Stops this node's replica of `group`, then removes its data.
    ///
    /// # Errors
    /// Returns an error if the storage cannot be written.
    pub async fn destroy_group(&self, group: GroupId) -> io::Result<()> {
        self.stop_group(group).await;
        self.storage.destroy(group).await?;
        tracing::info!(%group, node = %self.node_id, "group destroyed");
        Ok(())
    }

    /// Returns who leads each group, as far as this node knows: its own
    /// replicas that lead, and the live peers' beats (the higher term wins).
    pub fn leaders(&self) -> BTreeMap<GroupId, (NodeId, Leadership)> {
        let mut leaders: BTreeMap<GroupId, (NodeId, Leadership)> = self
            .beats
            .claims()
            .into_iter()
            .map(|(group, claim)| (group, (claim.node, claim.leadership)))
            .collect();
        for leadership in self.local_leaderships() {
            let better = leaders
                .get(&leadership.group)
                .is_none_or(|(_, known)| known.term <= leadership.term);
            if better {
                leaders.insert(leadership.group, (self.node_id, leadership));
            }
        }
        leaders
    }

    fn local_leaderships(&self) -> Vec<Leadership> {
        let hosted: Vec<(GroupId, Arc<dyn Hosted>)> = lock(&self.hosted)
            .iter()
            .map(|(group, hosted)| (*group, hosted.clone()))
            .collect();
        hosted
            .into_iter()
            .filter_map(|(group, hosted)| hosted.leadership(self.hibernation.is_parked(group)))
            .collect()
    }

    /// Parks or wakes each hosted group, then tells every peer who this
    /// node leads.
    async fn beat(&self) {
        let hosted: Vec<Arc<dyn Hosted>> = lock(&self.hosted).values().cloned().collect();
        for group in &hosted {
            group.supervise(&self.hibernation);
        }
        let beat = Beat::new(self.local_leaderships());
        let Ok(payload) = postcard::to_stdvec(&beat) else {
            return;
        };
        let mut peers = lock(&self.peers).clone();
        for group in &hosted {
            for peer in group.peers() {
                if peer.node != self.node_id {
                    peers.entry(peer.node).or_insert(peer.addr);
                }
            }
        }
        let timeout = self.settings.beat_interval();
        for (node, addr) in peers {
            let request = PeerRequest {
                from: self.node_id,
                kind: MessageKind::Beat,
                group: GroupId::default(),
                replica: ReplicaId::default(),
                payload: payload.clone(),
                traceparent: None,
            };
            let transport = self.transport.clone();
            tokio::spawn(async move {
                let to = PeerAddr { node, addr };
                if let Err(error) = transport.call(&to, request, timeout).await {
                    tracing::trace!(%node, %error, "beat not delivered");
                }
            });
        }
    }

    /// Stops the background tasks and every group.
    pub async fn shutdown(&self) {
        if let Some(task) = lock(&self.background).take() {
            task.abort();
        }
        let groups: Vec<GroupId> = lock(&self.hosted).keys().copied().collect();
        for group in groups {
            self.stop_group(group).await;
        }
    }
}

/// Beats and supervises hibernation every `interval` while the host lives.
async fn background(host: Weak<Host>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(host) = host.upgrade() else {
            return;
        };
        host.beat().await;
    }
}

/// Asks openraft for a snapshot each time the log's growth makes one due,
/// until the group shuts down.
async fn ask_for_snapshots<S: StateMachine>(group: GroupId, raft: Raft<S>, growth: Arc<LogGrowth>) {
    loop {
        growth.due().await;
        tracing::debug!(%group, "log growth: snapshot due");
        if let Err(error) = raft.trigger().snapshot().await {
            growth.request_failed();
            tracing::debug!(%group, %error, "snapshot not triggered; the group is stopping");
            return;
        }
    }
}

/// Peers that finished the mutual TLS handshake, as a stream for tonic:
/// each handshake runs in a task of its own (10 s at most), and a refused
/// one is logged and dropped.
fn tls_incoming(
    listener: tokio::net::TcpListener,
    tls: Arc<polis_tls::PeerTls>,
) -> impl futures::Stream<Item = io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>>
{
    let (ready, receiver) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
        loop {
            let (stream, addr) = polis_tls::accept(&listener, "a peer").await;
            let (acceptor, sender) = (acceptor.clone(), ready.clone());
            tokio::spawn(async move {
                match polis_tls::handshake(acceptor, stream).await {
                    Ok(stream) => {
                        let _ = sender.send(Ok(stream)).await;
                    }
                    Err(error) => tracing::warn!(%error, %addr, "a peer was refused"),
                }
            });
            if ready.is_closed() {
                return;
            }
        }
    });
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|stream| (stream, receiver))
    })
}
