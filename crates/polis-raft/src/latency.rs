//! Process-wide latency histograms of the Raft layer, for metrics: how long
//! log fsyncs, proposals (commit and apply) and applies take, and how many
//! leader changes each group's replica has seen.
//!
//! Counting is a few relaxed atomic adds per sample, so it stays on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds; a last bucket takes the
/// rest. From 50 µs (an apply) to 2.5 s (an fsync on a struggling disk).
pub const BOUNDS_USEC: [u64; 15] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];

/// Samples counted by latency bucket ([`BOUNDS_USEC`]).
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS_USEC.len() + 1],
    usec: AtomicU64,
}

impl Histogram {
    /// An empty histogram, for a `static`.
    pub const fn new() -> Self {
        Self {
            buckets: [const { AtomicU64::new(0) }; BOUNDS_USEC.len() + 1],
            usec: AtomicU64::new(0),
        }
    }

    /// Counts one sample that took `took`.
    pub fn record(&self, took: Duration) {
        let usec = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.usec.fetch_add(usec, Ordering::Relaxed);
        let bucket = BOUNDS_USEC.partition_point(|bound| *bound < usec);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Returns the samples by bucket and the time they took in all, in
    /// microseconds.
    pub fn read(&self) -> (Vec<u64>, u64) {
        let buckets = self
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        (buckets, self.usec.load(Ordering::Relaxed))
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Log fsyncs (group commits).
pub static FSYNCS: Histogram = Histogram::new();
/// Proposals on their leader, from the proposal to its applied reply: the
/// commit (a quorum has it on disk) and the apply.
pub static PROPOSALS: Histogram = Histogram::new();
/// Entries applied to a state machine, one sample each.
pub static APPLIES: Histogram = Histogram::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_bucket_of_their_bound() {
        let histogram = Histogram::new();
        histogram.record(Duration::from_micros(50));
        histogram.record(Duration::from_micros(51));
        histogram.record(Duration::from_secs(10));
        let (buckets, usec) = histogram.read();
        assert_eq!(buckets[0], 1, "50 µs is within the first bound");
        assert_eq!(buckets[1], 1);
        assert_eq!(buckets[BOUNDS_USEC.len()], 1, "past the last bound");
        assert_eq!(buckets.iter().sum::<u64>(), 3);
        assert_eq!(usec, 10_000_101);
    }
}
