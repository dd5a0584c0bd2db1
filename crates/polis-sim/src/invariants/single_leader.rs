//! Election safety: at most one leader can be elected in a given term
//! (Raft, section 5.2 and figure 3).
//!
//! Every node saves a committed vote when it learns who leads a term: the
//! leader when a quorum granted it, a follower when it accepts the
//! leader's entries. Two committed votes of one term naming different
//! nodes mean two leaders.

use std::collections::BTreeMap;

use polis_raft::mem_log_store::DiskEvent;
use polis_types::{NodeId, ReplicaId};

use crate::trace::TraceEvent;

pub const NAME: &str = "single-leader-per-term";

/// The leader of each term, as the first committed vote named it.
#[derive(Default)]
pub struct SingleLeader {
    leaders: BTreeMap<u64, (ReplicaId, NodeId)>,
}

impl SingleLeader {
    /// Checks one event.
    ///
    /// # Errors
    /// Describes the violation when a term gets a second leader.
    pub fn observe(&mut self, event: &TraceEvent) -> Result<(), String> {
        let TraceEvent::Disk {
            node,
            event:
                DiskEvent::VoteSaved {
                    term,
                    voted_for,
                    committed: true,
                },
            ..
        } = event
        else {
            return Ok(());
        };
        let (leader, named_by) = *self.leaders.entry(*term).or_insert((*voted_for, *node));
        if leader != *voted_for {
            return Err(format!(
                "term {term} has two leaders: node {named_by} saved a committed vote for replica \
                 {leader}, node {node} one for replica {voted_for}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.
mod tests {
    use super::*;

    fn vote(node: u64, term: u64, voted_for: u64, committed: bool) -> TraceEvent {
        TraceEvent::Disk {
            node: NodeId(node),
            group: polis_types::GroupId(1),
            event: DiskEvent::VoteSaved {
                term,
                voted_for: ReplicaId(voted_for),
                committed,
            },
        }
    }

    #[test]
    fn one_leader_per_term_passes_and_a_second_one_fails() {
        let mut checker = SingleLeader::default();
        assert!(checker.observe(&vote(1, 2, 1, true)).is_ok());
        assert!(checker.observe(&vote(2, 2, 1, true)).is_ok());
        // Uncommitted votes for others are candidates, not leaders.
        assert!(checker.observe(&vote(3, 2, 3, false)).is_ok());
        assert!(checker.observe(&vote(3, 3, 3, true)).is_ok());
        let error = checker.observe(&vote(3, 2, 3, true)).unwrap_err();
        assert!(error.contains("term 2 has two leaders"), "{error}");
    }
}
