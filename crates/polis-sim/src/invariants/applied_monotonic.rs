//! A node's applied index never goes backwards: within one run of a node
//! every applied entry comes after the last applied one and after the
//! snapshot its state was restored from; a snapshot never replaces state
//! that is further along; and across a restart the node starts from a
//! snapshot at least as recent as the last one it saved (snapshots are
//! durable). A replica destroyed (moved away) takes its progress with it:
//! a later replica of the group on the node starts from nothing.

use std::collections::BTreeMap;

use polis_raft::mem_log_store::{DiskEvent, LogPosition};
use polis_types::NodeId;

use crate::trace::TraceEvent;

pub const NAME: &str = "applied-index-monotonic";

#[derive(Default)]
struct NodeProgress {
    incarnation: u64,
    /// The last entry applied in this run of the node.
    applied: Option<u64>,
    /// The snapshot the state machine holds now (built, installed or
    /// restored); the next entry applied must come after it.
    snapshot: Option<u64>,
    /// The last snapshot saved, across runs.
    saved: Option<u64>,
}

/// Each node's progress.
#[derive(Default)]
pub struct AppliedMonotonic {
    nodes: BTreeMap<NodeId, NodeProgress>,
}

fn index_of(last: &Option<LogPosition>) -> Option<u64> {
    last.map(|position| position.index)
}

impl AppliedMonotonic {
    /// Checks one event.
    ///
    /// # Errors
    /// Describes the step backwards.
    pub fn observe(&mut self, event: &TraceEvent) -> Result<(), String> {
        match event {
            TraceEvent::Applied {
                node,
                incarnation,
                index,
                ..
            } => {
                let progress = self.nodes.entry(*node).or_default();
                if *incarnation != progress.incarnation {
                    return Err(format!(
                        "node {node}: run {incarnation} applied index {index} while run {} is \
                         the current one",
                        progress.incarnation
                    ));
                }
                let floor = progress.applied.max(progress.snapshot);
                if floor.is_some_and(|floor| *index <= floor) {
                    return Err(format!(
                        "node {node}: applied index {index} after reaching {floor:?} \
                         (applied {:?}, snapshot {:?})",
                        progress.applied, progress.snapshot
                    ));
                }
                progress.applied = Some(*index);
                Ok(())
            }
            TraceEvent::Restart { node, incarnation } => {
                let progress = self.nodes.entry(*node).or_default();
                progress.incarnation = *incarnation;
                progress.applied = None;
                progress.snapshot = None;
                Ok(())
            }
            TraceEvent::Disk {
                node,
                event: DiskEvent::SnapshotSaved { last },
                ..
            } => {
                let progress = self.nodes.entry(*node).or_default();
                let index = index_of(last);
                if index < progress.applied {
                    return Err(format!(
                        "node {node}: snapshot up to {index:?} replaced state that had applied \
                         up to {:?}",
                        progress.applied
                    ));
                }
                progress.snapshot = index;
                progress.saved = index;
                Ok(())
            }
            TraceEvent::Disk {
                node,
                event: DiskEvent::SnapshotLoaded { last },
                ..
            } => {
                let progress = self.nodes.entry(*node).or_default();
                let index = index_of(last);
                if index < progress.saved {
                    return Err(format!(
                        "node {node}: restarted from a snapshot up to {index:?}, older than the \
                         one it saved up to {:?}",
                        progress.saved
                    ));
                }
                progress.snapshot = index;
                Ok(())
            }
            TraceEvent::Disk {
                node,
                event: DiskEvent::Destroyed,
                ..
            } => {
                let progress = self.nodes.entry(*node).or_default();
                progress.applied = None;
                progress.snapshot = None;
                progress.saved = None;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.
mod tests {
    use super::*;

    fn applied(node: u64, incarnation: u64, index: u64) -> TraceEvent {
        TraceEvent::Applied {
            node: NodeId(node),
            group: polis_types::GroupId(1),
            incarnation,
            index,
            digest: index,
        }
    }

    fn snapshot(node: u64, index: u64, loaded: bool) -> TraceEvent {
        let last = Some(LogPosition { index, term: 1 });
        let event = if loaded {
            DiskEvent::SnapshotLoaded { last }
        } else {
            DiskEvent::SnapshotSaved { last }
        };
        TraceEvent::Disk {
            node: NodeId(node),
            group: polis_types::GroupId(1),
            event,
        }
    }

    #[test]
    fn progress_with_restarts_and_snapshots_passes() {
        let mut checker = AppliedMonotonic::default();
        for event in [
            applied(1, 0, 1),
            applied(1, 0, 3),
            snapshot(1, 4, false),
            applied(1, 0, 5),
            TraceEvent::Crash { node: NodeId(1) },
            TraceEvent::Restart {
                node: NodeId(1),
                incarnation: 1,
            },
            snapshot(1, 4, true),
            // Entries after the snapshot are applied again after a restart.
            applied(1, 1, 5),
        ] {
            checker.observe(&event).unwrap();
        }
    }

    #[test]
    fn applying_backwards_fails() {
        let mut checker = AppliedMonotonic::default();
        checker.observe(&applied(1, 0, 7)).unwrap();
        let error = checker.observe(&applied(1, 0, 7)).unwrap_err();
        assert!(error.contains("after reaching"), "{error}");
    }

    #[test]
    fn applying_below_the_snapshot_fails() {
        let mut checker = AppliedMonotonic::default();
        checker.observe(&snapshot(2, 10, false)).unwrap();
        assert!(checker.observe(&applied(2, 0, 9)).is_err());
    }

    #[test]
    fn installing_an_older_snapshot_fails() {
        let mut checker = AppliedMonotonic::default();
        checker.observe(&applied(2, 0, 12)).unwrap();
        let error = checker.observe(&snapshot(2, 10, false)).unwrap_err();
        assert!(error.contains("replaced state"), "{error}");
    }

    #[test]
    fn restarting_from_an_older_snapshot_fails() {
        let mut checker = AppliedMonotonic::default();
        checker.observe(&snapshot(3, 10, false)).unwrap();
        checker
            .observe(&TraceEvent::Restart {
                node: NodeId(3),
                incarnation: 1,
            })
            .unwrap();
        let error = checker.observe(&snapshot(3, 6, true)).unwrap_err();
        assert!(error.contains("older than"), "{error}");
    }

    #[test]
    fn a_replica_destroyed_and_placed_again_starts_from_nothing() {
        let mut checker = AppliedMonotonic::default();
        checker.observe(&snapshot(3, 10, false)).unwrap();
        checker
            .observe(&TraceEvent::Disk {
                node: NodeId(3),
                group: polis_types::GroupId(1),
                event: DiskEvent::Destroyed,
            })
            .unwrap();
        checker.observe(&applied(3, 0, 1)).unwrap();
        checker
            .observe(&TraceEvent::Restart {
                node: NodeId(3),
                incarnation: 1,
            })
            .unwrap();
        checker
            .observe(&TraceEvent::Disk {
                node: NodeId(3),
                group: polis_types::GroupId(1),
                event: DiskEvent::SnapshotLoaded { last: None },
            })
            .unwrap();
    }

    #[test]
    fn a_stale_run_applying_fails() {
        let mut checker = AppliedMonotonic::default();
        checker
            .observe(&TraceEvent::Restart {
                node: NodeId(1),
                incarnation: 2,
            })
            .unwrap();
        assert!(checker.observe(&applied(1, 1, 4)).is_err());
    }
}
