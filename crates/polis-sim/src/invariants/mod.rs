//! The properties every run must keep, one per file. Each checker is a
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
//! | `linearizable`        | the client history is linearizable              |
//! | `progress`            | clients succeed again once the faults stop      |

pub mod applied_agree;
pub mod applied_monotonic;
pub mod committed_kept;
pub mod linearizable;
pub mod log_matching;
pub mod progress;
pub mod single_leader;

use polis_raft::mem_log_store::LogSummary;
use polis_types::NodeId;

use crate::trace::Stamped;

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

/// Runs the trace checkers on every event as it is recorded.
#[derive(Default)]
pub struct Monitor {
    single_leader: single_leader::SingleLeader,
    committed_kept: committed_kept::CommittedKept,
    applied_monotonic: applied_monotonic::AppliedMonotonic,
    applied_agree: applied_agree::AppliedAgree,
    violations: Vec<Violation>,
}

impl Monitor {
    /// Checks one event.
    pub fn observe(&mut self, stamped: &Stamped) {
        let event = &stamped.event;
        let results = [
            (single_leader::NAME, self.single_leader.observe(event)),
            (committed_kept::NAME, self.committed_kept.observe(event)),
            (
                applied_monotonic::NAME,
                self.applied_monotonic.observe(event),
            ),
            (applied_agree::NAME, self.applied_agree.observe(event)),
        ];
        for (invariant, result) in results {
            if let Err(detail) = result {
                self.push(Violation {
                    invariant,
                    time_us: stamped.time_us,
                    detail,
                });
            }
        }
    }

    /// Checks the nodes' logs as they are at `time_us`.
    pub fn check_logs(&mut self, time_us: u64, logs: &[(NodeId, LogSummary)]) {
        if let Err(detail) = log_matching::check(logs) {
            self.push(Violation {
                invariant: log_matching::NAME,
                time_us,
                detail,
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
