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
    /// Proposals and ReadIndex rounds that failed (not redirects).
    pub raft_failed: AtomicU64,
    pub error_replies: AtomicU64,
    pub protocol_errors: AtomicU64,
    /// TLS clients refused at their handshake (plaintext on the TLS
    /// port, an unknown CA, an expired certificate, too slow).
    pub tls_handshake_failures: AtomicU64,
    /// Pub/sub messages forwarded to peers (one per peer reached).
    pub pubsub_forwarded: AtomicU64,
    /// Pub/sub messages a peer missed: its queue was full, or the forward
    /// failed.
    pub pubsub_forwards_dropped: AtomicU64,
    errors_by_code: Mutex<BTreeMap<String, u64>>,
    /// Per command of the table (bounded by it), INFO commandstats.
    commands: Mutex<BTreeMap<&'static str, CommandStat>>,
}

/// Upper bounds of the command latency buckets, in microseconds; a last
/// bucket takes the rest.
pub const LATENCY_BOUNDS_USEC: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
    5_000_000,
];

/// What INFO commandstats reports of one command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommandStat {
    /// Calls that ran, by latency bucket ([`LATENCY_BOUNDS_USEC`]).
    pub latency: [u64; LATENCY_BOUNDS_USEC.len() + 1],
    /// Calls that ran (successful or failed).
    pub calls: u64,
    /// Time they took, in microseconds.
    pub usec: u64,
    /// The longest of them, in microseconds: the upper bound of the last
    /// latency bucket (LATENCY HISTOGRAM).
    pub usec_max: u64,
    /// Calls refused before they ran (arity, routing, queue-time errors).
    pub rejected_calls: u64,
    /// Calls that ran and answered an error.
    pub failed_calls: u64,
}

/// How a call ended, for its command's stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Done,
    Failed,
    Rejected,
}

impl CallOutcome {
    /// Classifies `reply` as Redis does: errors raised before a command
    /// runs (wrong arity, unknown subcommand, a redirect, a cluster or
    /// transaction refusal) reject it; others fail it.
    pub fn of(reply: &polis_resp::Reply) -> CallOutcome {
        let polis_resp::Reply::Error(error) = reply else {
            return CallOutcome::Done;
        };
        let rejected = match error {
            ReplyError::WrongArity(_)
            | ReplyError::Moved { .. }
            | ReplyError::CrossSlot
            | ReplyError::ClusterDown(_)
            | ReplyError::TryAgain(_) => true,
            other => {
                let line = other.render();
                line.starts_with("ERR unknown subcommand")
                    || line.starts_with("ERR Replica can't interact with the keyspace")
                    || line.starts_with("EXECABORT")
                    || line.starts_with("ASK ")
                    || line.starts_with("NOAUTH")
                    || line.starts_with("NOPERM")
                    || line.starts_with("OOM")
            }
        };
        if rejected {
            CallOutcome::Rejected
        } else {
            CallOutcome::Failed
        }
    }
}

/// Returns the latency under which `share` (0 to 1) of the calls counted
/// in `buckets` ([`LATENCY_BOUNDS_USEC`]) ran: the upper bound of the
/// bucket that holds that call (the last bound for the calls past it), so
/// never less than the truth; 0 with no call.
pub fn percentile_usec(buckets: &[u64], share: f64) -> f64 {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = ((total as f64 * share).ceil() as u64).max(1);
    let mut seen = 0;
    for (at, count) in buckets.iter().enumerate() {
        seen += count;
        if seen >= rank {
            let bound = LATENCY_BOUNDS_USEC.get(at).or(LATENCY_BOUNDS_USEC.last());
            return bound.copied().unwrap_or(0) as f64;
        }
    }
    LATENCY_BOUNDS_USEC.last().copied().unwrap_or(0) as f64
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

    /// Counts one call of command `name` (a name of the command table).
    pub fn record_command(&self, name: &'static str, usec: u64, outcome: CallOutcome) {
        let mut commands = self
            .commands
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let stat = commands.entry(name).or_default();
        match outcome {
            CallOutcome::Rejected => stat.rejected_calls += 1,
            CallOutcome::Done | CallOutcome::Failed => {
                stat.calls += 1;
                stat.usec += usec;
                stat.usec_max = stat.usec_max.max(usec);
                let bucket = LATENCY_BOUNDS_USEC.partition_point(|bound| *bound < usec);
                stat.latency[bucket] += 1;
                stat.failed_calls += u64::from(outcome == CallOutcome::Failed);
            }
        }
    }

    /// Returns the stats of every command called since the last reset.
    pub fn commands(&self) -> BTreeMap<&'static str, CommandStat> {
        self.commands
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
            &self.raft_failed,
            &self.error_replies,
            &self.protocol_errors,
            &self.pubsub_forwarded,
            &self.pubsub_forwards_dropped,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.errors_by_code
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
        self.commands
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use polis_resp::Reply;

    use super::*;

    #[test]
    fn calls_are_counted_as_done_failed_or_rejected() {
        let stats = Stats::default();
        let wrong_type = Reply::Error(ReplyError::WrongType);
        let arity = Reply::Error(ReplyError::WrongArity("lpush".into()));
        stats.record_command("lpush", 4, CallOutcome::of(&Reply::Integer(1)));
        stats.record_command("lpush", 6, CallOutcome::of(&wrong_type));
        stats.record_command("lpush", 9, CallOutcome::of(&arity));
        stats.record_command("lpush", 70_000, CallOutcome::Done);
        stats.record_command("lpush", 9_000_000, CallOutcome::Done);
        // Calls that ran, by bucket: 4 and 6 µs under 50, 70 ms under
        // 100 ms, 9 s past the last bound; the refused one in none.
        let mut latency = [0; LATENCY_BOUNDS_USEC.len() + 1];
        latency[0] = 2;
        latency[10] = 1;
        latency[LATENCY_BOUNDS_USEC.len()] = 1;
        let expected = CommandStat {
            latency,
            calls: 4,
            usec: 9_070_010,
            usec_max: 9_000_000,
            rejected_calls: 1,
            failed_calls: 1,
        };
        assert_eq!(stats.commands().get("lpush"), Some(&expected));
        stats.reset();
        assert!(stats.commands().is_empty());
    }

    #[test]
    fn percentiles_are_the_bound_of_the_bucket_holding_that_call() {
        let mut buckets = [0; LATENCY_BOUNDS_USEC.len() + 1];
        assert_eq!(percentile_usec(&buckets, 0.5), 0.0);
        buckets[0] = 98; // under 50 µs
        buckets[4] = 1; // under 1 ms
        buckets[LATENCY_BOUNDS_USEC.len()] = 1; // past 5 s
        assert_eq!(percentile_usec(&buckets, 0.5), 50.0);
        assert_eq!(percentile_usec(&buckets, 0.99), 1_000.0);
        assert_eq!(percentile_usec(&buckets, 0.999), 5_000_000.0);
    }
}
