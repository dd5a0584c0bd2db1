//! A node-wide limit on the bytes per second of snapshots sent to peers.
//!
//! A replica move (and a follower too far behind for the log) catches up
//! from a snapshot: the whole shard's keyspace, sent in one message. Many
//! at once would take the node's disk and network from its clients, so
//! every group of the node draws from one budget: a snapshot waits, before
//! it is sent, until the snapshots sent before it have used up their time
//! at the limit. The average rate of snapshot bytes leaving the node stays
//! at or under the limit; one snapshot travels at the network's speed.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The node's snapshot budget; `0` bytes per second is no limit.
pub struct SnapshotPace {
    bytes_per_sec: u64,
    /// When the bytes reserved so far have used up their time.
    free_at: Mutex<Option<Instant>>,
}

impl SnapshotPace {
    /// A budget of `bytes_per_sec` (`0`: none).
    pub fn new(bytes_per_sec: u64) -> Self {
        Self {
            bytes_per_sec,
            free_at: Mutex::new(None),
        }
    }

    /// Reserves the time `bytes` take at the limit, after what was reserved
    /// before; returns how long to wait before sending them.
    pub fn reserve(&self, bytes: usize, now: Instant) -> Duration {
        if self.bytes_per_sec == 0 {
            return Duration::ZERO;
        }
        let mut free_at = self
            .free_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let start = free_at.filter(|free| *free > now).unwrap_or(now);
        let takes = Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec as f64);
        *free_at = Some(start + takes);
        start - now
    }

    /// Waits until `bytes` may be sent.
    pub async fn wait(&self, bytes: usize) {
        let wait = self.reserve(bytes, Instant::now());
        if !wait.is_zero() {
            tracing::info!(
                bytes,
                wait_ms = wait.as_millis() as u64,
                limit = self.bytes_per_sec,
                "snapshot waits for the node's snapshot bytes/s limit"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
#[path = "snapshot_pace_test.rs"]
mod tests;
