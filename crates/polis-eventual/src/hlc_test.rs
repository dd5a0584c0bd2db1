#![allow(clippy::unwrap_used)] // Tests fail loudly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use polis_types::NodeId;

use super::*;

/// A wall clock the test sets.
#[derive(Default)]
struct ManualClock(AtomicU64);

impl ManualClock {
    fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn hlc(node: u64, start_ms: u64) -> (Hlc, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    clock.set(start_ms);
    (
        Hlc::new(NodeId(node), clock.clone(), MAX_AHEAD_MS_DEFAULT),
        clock,
    )
}

#[test]
fn versions_follow_the_wall_clock_and_never_go_back() {
    let (hlc, clock) = hlc(1, 1_000);
    let first = hlc.now();
    assert_eq!(
        first.time,
        Timestamp {
            physical_ms: 1_000,
            logical: 0
        }
    );
    assert_eq!(first.node, NodeId(1));
    let same_ms = hlc.now();
    assert_eq!(
        same_ms.time,
        Timestamp {
            physical_ms: 1_000,
            logical: 1
        }
    );
    // The wall clock steps back (NTP): versions still grow.
    clock.set(900);
    let after_step_back = hlc.now();
    assert!(after_step_back > same_ms);
    clock.set(2_000);
    assert_eq!(
        hlc.now().time,
        Timestamp {
            physical_ms: 2_000,
            logical: 0
        }
    );
}

#[test]
fn a_version_made_after_observing_a_remote_timestamp_is_newer() {
    let (hlc, _clock) = hlc(1, 1_000);
    let remote = Timestamp {
        physical_ms: 1_300,
        logical: 7,
    };
    hlc.observe(remote).unwrap();
    let version = hlc.now();
    assert!(version.time > remote, "{version:?}");
    assert_eq!(hlc.refused(), 0);
}

#[test]
fn a_timestamp_past_the_bound_is_refused_counted_and_not_adopted() {
    let (hlc, _clock) = hlc(1, 1_000);
    let skewed = Timestamp {
        physical_ms: 1_000 + MAX_AHEAD_MS_DEFAULT + 1,
        logical: 0,
    };
    let refused = hlc.observe(skewed).unwrap_err();
    assert_eq!(refused.ahead_ms, MAX_AHEAD_MS_DEFAULT + 1);
    assert_eq!(hlc.refused(), 1);
    assert!(
        refused.to_string().contains("check the clocks"),
        "{refused}"
    );
    assert!(hlc.now().time < skewed, "the clock did not jump ahead");
    // At the bound exactly: accepted.
    let at_bound = Timestamp {
        physical_ms: 1_000 + MAX_AHEAD_MS_DEFAULT,
        logical: 0,
    };
    hlc.observe(at_bound).unwrap();
    assert!(hlc.now().time > at_bound);
}

#[test]
fn equal_timestamps_of_two_nodes_are_ordered_by_node() {
    let (one, _) = hlc(1, 5_000);
    let (two, _) = hlc(2, 5_000);
    let (a, b) = (one.now(), two.now());
    assert_eq!(a.time, b.time);
    assert!(a < b);
}

#[test]
fn the_logical_counter_borrows_the_next_millisecond_when_full() {
    let full = Timestamp {
        physical_ms: 10,
        logical: u32::MAX,
    };
    assert_eq!(
        full.next(),
        Timestamp {
            physical_ms: 11,
            logical: 0
        }
    );
}
