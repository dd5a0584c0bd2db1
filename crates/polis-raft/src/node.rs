//! The Raft side of a node: the log engine, the peer transport and the
//! groups this node is a member of.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use openraft::{Config, SnapshotPolicy};
use polis_types::{GroupId, NodeId};

use crate::faults::FaultInjector;
use crate::group::Group;
use crate::log_store::LogEngine;
use crate::network::{Channels, NetworkFactory, PeerService};
use crate::state_machine::{LogGrowth, SmStore, SnapshotPacing, StateMachine};
use crate::types::{PeerNode, Raft};

/// Timing and compaction settings of the node's groups.
#[derive(Debug, Clone)]
pub struct RaftSettings {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_every_entries: u64,
    /// Also build one once the proposals applied since the last snapshot
    /// add up to that snapshot's size, and at least this many bytes
    /// ([`SnapshotPacing`]).
    pub snapshot_log_bytes_min: u64,
    /// Entries kept in the log behind a snapshot, for lagging followers.
    pub entries_kept_after_snapshot: u64,
    /// How long a proposal or a linearizable read may wait (for a quorum,
    /// a leader, apply) before it fails with an unknown outcome.
    pub request_timeout_ms: u64,
}

impl Default for RaftSettings {
    fn default() -> Self {
        Self {
            heartbeat_ms: 100,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            // A backstop: the log's growth in bytes paces snapshots.
            snapshot_every_entries: 1_000_000,
            snapshot_log_bytes_min: 64 * 1024 * 1024,
            entries_kept_after_snapshot: 10_000,
            request_timeout_ms: 10_000,
        }
    }
}

/// Returns the openraft configuration of `group` under `settings`.
pub(crate) fn group_config(group: GroupId, settings: &RaftSettings) -> io::Result<Arc<Config>> {
    let config = Config {
        cluster_name: format!("polis-group-{group}"),
        heartbeat_interval: settings.heartbeat_ms,
        election_timeout_min: settings.election_timeout_min_ms,
        election_timeout_max: settings.election_timeout_max_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_every_entries),
        max_in_snapshot_log_to_keep: settings.entries_kept_after_snapshot,
        install_snapshot_timeout: 10_000,
        // A restarted leader must win an election again; resuming its old
        // term is unsafe here. The commit index is not durable (see
        // `LogStore::save_committed`), so it would answer ReadIndex reads
        // from a stale commit point. And a crash loses the entries it had
        // not flushed, so it could append a different entry at an index and
        // term a follower already holds: the replicas would diverge.
        enable_leader_restore: Some(false),
        // Replicate an entry as soon as it is handed to the log store,
        // not after the leader's own fsync: the leader's and the
        // followers' fsyncs overlap instead of running one after the
        // other. Safe: the leader counts itself toward the majority only
        // once its own fsync is done.
        broadcast_submitted_on_append: Some(true),
        ..Default::default()
    };
    Ok(Arc::new(config.validate().map_err(io::Error::other)?))
}

/// The Raft side of one node.
pub struct RaftNode<S: StateMachine> {
    node_id: NodeId,
    data_dir: PathBuf,
    settings: RaftSettings,
    engine: LogEngine,
    channels: Channels,
    faults: Arc<FaultInjector>,
    rafts: Arc<RwLock<HashMap<GroupId, Raft<S>>>>,
}

impl<S: StateMachine> RaftNode<S> {
    /// Opens the node's Raft storage under `data_dir`.
    ///
    /// # Errors
    /// Returns an error if the directory or the log engine cannot be opened.
    pub fn open(
        node_id: NodeId,
        data_dir: PathBuf,
        settings: RaftSettings,
        faults: Arc<FaultInjector>,
    ) -> io::Result<Self> {
        std::fs::create_dir_all(data_dir.join("snapshots"))?;
        let engine = LogEngine::open(&data_dir.join("log"))?;
        Ok(Self {
            node_id,
            data_dir,
            settings,
            engine,
            channels: Channels::default(),
            faults,
            rafts: Arc::new(RwLock::new(HashMap::new())),
        })
    }

    /// Serves peer RPCs on `listener` until the future is dropped.
    ///
    /// # Errors
    /// Returns an error if the server fails.
    pub async fn serve_peers(&self, listener: tokio::net::TcpListener) -> io::Result<()> {
        let service = PeerService::new(self.rafts.clone(), self.faults.clone()).into_server();
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
            .map_err(io::Error::other)
    }

    /// Starts (or restarts) this node's replica of `group` with state
    /// machine `app`. On first start, `members` becomes the initial
    /// membership; on restart the stored membership wins.
    ///
    /// # Errors
    /// Returns an error if storage cannot be read or Raft fails to start.
    pub async fn start_group(
        &self,
        group: GroupId,
        app: S,
        members: BTreeMap<NodeId, PeerNode>,
    ) -> io::Result<Group<S>> {
        let config = group_config(group, &self.settings)?;
        let snapshot_path = self
            .data_dir
            .join("snapshots")
            .join(format!("group-{group}.snapshot"));
        let store = SmStore::open(app, snapshot_path)?.with_pacing(SnapshotPacing {
            min_bytes: self.settings.snapshot_log_bytes_min,
        });
        let state = store.handle();
        let growth = store.log_growth();
        let network = NetworkFactory::new(
            group,
            self.node_id,
            self.channels.clone(),
            self.faults.clone(),
        );
        let raft = Raft::new(
            self.node_id,
            config,
            network,
            self.engine.group(group),
            store,
        )
        .await
        .map_err(io::Error::other)?;
        tokio::spawn(ask_for_snapshots(group, raft.clone(), growth));
        self.rafts
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(group, raft.clone());
        if !raft.is_initialized().await.map_err(io::Error::other)? {
            // Every initial member initializes with the same membership;
            // openraft makes this idempotent across members.
            if let Err(error) = raft.initialize(members).await {
                tracing::info!(%error, group, "initialize skipped");
            }
        }
        let timeout = std::time::Duration::from_millis(self.settings.request_timeout_ms);
        Ok(Group::new(group, raft, state, timeout))
    }
}

/// Asks openraft for a snapshot each time the log's growth makes one due,
/// until the group shuts down.
async fn ask_for_snapshots<S: StateMachine>(group: GroupId, raft: Raft<S>, growth: Arc<LogGrowth>) {
    loop {
        growth.due().await;
        tracing::debug!(group, "log growth: snapshot due");
        if let Err(error) = raft.trigger().snapshot().await {
            growth.request_failed();
            tracing::debug!(group, %error, "snapshot not triggered; the group is stopping");
            return;
        }
    }
}
