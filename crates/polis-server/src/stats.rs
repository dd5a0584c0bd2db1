//! Node-local counters reported by INFO and /metrics. Replicated counters
//! (expired keys) live in the keyspace instead.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use polis_resp::ReplyError;

/// Counters of one node since start (or since CONFIG RESETSTAT).
#[derive(Default)]
pub struct Stats {
    pub connections_received: AtomicU64,
    pub connections_rejected: AtomicU64,
    pub commands_processed: AtomicU64,
    pub writes_proposed: AtomicU64,
    pub linearizable_reads: AtomicU64,
    pub local_reads: AtomicU64,
    pub redirects: AtomicU64,
    pub error_replies: AtomicU64,
    pub protocol_errors: AtomicU64,
    errors_by_code: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns the value of `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts one error reply under its code (`ERR`, `WRONGTYPE`, ...).
    pub fn record_error(&self, error: &ReplyError) {
        Stats::bump(&self.error_replies);
        let mut by_code = self
            .errors_by_code
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Bounded: codes come from our own ReplyError set, not from input.
        *by_code.entry(error.code()).or_insert(0) += 1;
    }

    /// Returns the error counts by code.
    pub fn errors_by_code(&self) -> BTreeMap<String, u64> {
        self.errors_by_code
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Resets every counter (CONFIG RESETSTAT).
    pub fn reset(&self) {
        for counter in [
            &self.connections_received,
            &self.connections_rejected,
            &self.commands_processed,
            &self.writes_proposed,
            &self.linearizable_reads,
            &self.local_reads,
            &self.redirects,
            &self.error_replies,
            &self.protocol_errors,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.errors_by_code
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }
}
