//! The timing, compaction and hibernation settings of a node's groups,
//! and the openraft configuration they make.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use openraft::{Config, SnapshotPolicy};
use polis_types::GroupId;

use crate::hibernate::HibernationSettings;

/// Timing, compaction and hibernation settings of the node's groups.
#[derive(Debug, Clone)]
pub struct RaftSettings {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_every_entries: u64,
    /// Also build one once the proposals applied since the last snapshot
    /// add up to that snapshot's size, and at least this many bytes
    /// ([`crate::SnapshotPacing`]).
    pub snapshot_log_bytes_min: u64,
    /// Items (keys) a snapshot encodes per step under the state lock;
    /// proposals are applied between the steps.
    pub snapshot_step_items: usize,
    /// Bytes per second of snapshots the node sends, at most, over all its
    /// groups (replica moves and lagging followers); `0`: no limit
    /// ([`crate::snapshot_pace`]).
    pub snapshot_bytes_per_sec: u64,
    /// Entries kept in the log behind a snapshot, for lagging followers.
    pub entries_kept_after_snapshot: u64,
    /// How long a proposal or a linearizable read may wait (for a quorum,
    /// a leader, apply) before it fails with an unknown outcome.
    pub request_timeout_ms: u64,
    /// Idle groups park (see [`crate::hibernate`]).
    pub hibernate: bool,
    /// A leader parks its group after this long without a request.
    pub idle_before_park_ms: u64,
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
            // About a millisecond's work for small values.
            snapshot_step_items: 2048,
            snapshot_bytes_per_sec: 0,
            entries_kept_after_snapshot: 10_000,
            request_timeout_ms: 10_000,
            hibernate: true,
            idle_before_park_ms: 2_000,
        }
    }
}

impl RaftSettings {
    /// Returns how often a node beats to its peers: four beats per
    /// liveness timeout, so one lost beat does not make a node look dead.
    pub fn beat_interval(&self) -> Duration {
        Duration::from_millis((self.election_timeout_min_ms / 4).max(10))
    }

    /// Returns how long a peer counts as alive after its last beat: the
    /// shortest election timeout, the time a follower waits for a leader.
    pub fn liveness_timeout(&self) -> Duration {
        Duration::from_millis(self.election_timeout_min_ms)
    }

    /// Returns the hibernation settings these make.
    pub fn hibernation(&self) -> HibernationSettings {
        HibernationSettings {
            enabled: self.hibernate,
            idle_before_park: Duration::from_millis(self.idle_before_park_ms),
            election_timeout_max: Duration::from_millis(self.election_timeout_max_ms),
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
        // A replica that was cut off asks first whether it could win
        // (Raft thesis, section 9.6) instead of raising its term: when it
        // comes back, its term does not depose a healthy leader.
        enable_pre_vote: Some(true),
        ..Default::default()
    };
    Ok(Arc::new(config.validate().map_err(io::Error::other)?))
}
