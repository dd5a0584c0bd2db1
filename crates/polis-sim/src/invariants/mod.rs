//! The properties every run must keep, one per file. The Raft ones hold
//! per group (each group is a Raft cluster of its own). Each checker is a
//! pure function of what it is shown (trace events, logs, the client
//! history), so a test can feed it a fabricated bad trace and see it fail.
//!
//! | file                  | property                                        |
//! |-----------------------|-------------------------------------------------|
//! | `single_leader`       | at most one leader per term (Raft 5.2)          |
//! | `log_matching`        | same index and term: same entry and prefix (5.3)|
//! | `committed_kept`      | a committed entry is in every later leader's log|
//! | `applied_monotonic`   | a node's applied index never goes back          |
//! | `applied_agree`       | every node applies the same entry at an index   |
//! | `ownership`           | one shard owns a slot per map version, at apply |
//! | `map_monotonic`       | a node never routes from an older map           |
//! | `linearizable`        | the client history is linearizable              |
//! | `progress`            | clients succeed again once the faults stop      |

pub mod applied_agree;
pub mod applied_monotonic;
pub mod committed_kept;
pub mod linearizable;
pub mod log_matching;
pub mod map_monotonic;
pub mod ownership;
pub mod progress;
pub mod single_leader;

use std::collections::BTreeMap;

use polis_raft::mem_log_store::{LogSummary, WHOLE_DISK};
use polis_types::{GroupId, NodeId};

use crate::trace::{Stamped, TraceEvent};

/// The most violations a run keeps of each invariant; one is enough to
/// fail it, a few more help to explain it, and a broken log is seen again
/// at every later check.
const VIOLATIONS_KEPT_PER_INVARIANT: usize = 3;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    /// When it was found, in microseconds of virtual time.
    pub time_us: u64,
    pub detail: String,
}

/// The trace checkers of one Raft group: each group is a Raft cluster of
/// its own, and within it a node hosts one replica.
#[derive(Default)]
struct GroupMonitor {
    single_leader: single_leader::SingleLeader,
    committed_kept: committed_kept::CommittedKept,
    applied_monotonic: applied_monotonic::AppliedMonotonic,
    applied_agree: applied_agree::AppliedAgree,
}

impl GroupMonitor {
    fn observe(&mut self, event: &TraceEvent) -> [(&'static str, Result<(), String>); 4] {
        [
            (single_leader::NAME, self.single_leader.observe(event)),
            (committed_kept::NAME, self.committed_kept.observe(event)),
            (
                applied_monotonic::NAME,
                self.applied_monotonic.observe(event),
            ),
            (applied_agree::NAME, self.applied_agree.observe(event)),
        ]
    }
}

/// Runs the trace checkers on every event as it is recorded, per group.
#[derive(Default)]
pub struct Monitor {
    groups: BTreeMap<GroupId, GroupMonitor>,
    /// Every node's crashes and restarts so far, replayed to the monitor
    /// of a group first seen later.
    node_events: Vec<TraceEvent>,
    ownership: ownership::Ownership,
    map_monotonic: map_monotonic::MapMonotonic,
    violations: Vec<Violation>,
}

impl Monitor {
    /// Checks one event: a group's event against that group's checkers, a
    /// node's event (crash, restart, a flush) against every group's.
    pub fn observe(&mut self, stamped: &Stamped) {
        let event = &stamped.event;
        let group = match event {
            TraceEvent::Disk { group, .. } | TraceEvent::Applied { group, .. }
                if *group != WHOLE_DISK =>
            {
                Some(*group)
            }
            _ => None,
        };
        let mut results = Vec::new();
        if matches!(event, TraceEvent::Crash { .. } | TraceEvent::Restart { .. }) {
            self.node_events.push(event.clone());
        }
        match group {
            Some(group) => {
                let node_events = &self.node_events;
                let monitor = self.groups.entry(group).or_insert_with(|| {
                    let mut monitor = GroupMonitor::default();
                    for past in node_events {
                        let _ = monitor.observe(past);
                    }
                    monitor
                });
                results.extend(monitor.observe(event).into_iter().map(|r| (group, r)));
            }
            None => {
                for (group, monitor) in &mut self.groups {
                    results.extend(monitor.observe(event).into_iter().map(|r| (*group, r)));
                }
            }
        }
        for (group, (invariant, result)) in results {
            if let Err(detail) = result {
                self.push(Violation {
                    invariant,
                    time_us: stamped.time_us,
                    detail: format!("group {group}: {detail}"),
                });
            }
        }
        let cluster_wide = [
            (ownership::NAME, self.ownership.observe(event)),
            (map_monotonic::NAME, self.map_monotonic.observe(event)),
        ];
        for (invariant, result) in cluster_wide {
            if let Err(detail) = result {
                self.push(Violation {
                    invariant,
                    time_us: stamped.time_us,
                    detail,
                });
            }
        }
    }

    /// Checks the nodes' logs of `group` as they are at `time_us`.
    pub fn check_logs(&mut self, time_us: u64, group: GroupId, logs: &[(NodeId, LogSummary)]) {
        if let Err(detail) = log_matching::check(logs) {
            self.push(Violation {
                invariant: log_matching::NAME,
                time_us,
                detail: format!("group {group}: {detail}"),
            });
        }
    }

    /// Keeps `violation`, up to the cap of its invariant.
    pub fn push(&mut self, violation: Violation) {
        let kept = self
            .violations
            .iter()
            .filter(|kept| kept.invariant == violation.invariant)
            .count();
        if kept < VIOLATIONS_KEPT_PER_INVARIANT {
            self.violations.push(violation);
        }
    }

    /// Returns the violations found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }
}
