//! State machine safety: if a node has applied a log entry at a given
//! index, no other node ever applies a different entry at that index
//! (Raft, section 5.4.3 and figure 3). Compared by a digest of the
//! proposal (its time and payload) each node applied.

use std::collections::BTreeMap;

use polis_types::NodeId;

use crate::trace::TraceEvent;

pub const NAME: &str = "applied-entries-agree";

/// The first entry applied at each index, and by which node.
#[derive(Default)]
pub struct AppliedAgree {
    applied: BTreeMap<u64, (u64, NodeId)>,
}

impl AppliedAgree {
    /// Checks one event.
    ///
    /// # Errors
    /// Describes two different entries applied at one index.
    pub fn observe(&mut self, event: &TraceEvent) -> Result<(), String> {
        let TraceEvent::Applied {
            node,
            index,
            digest,
            ..
        } = event
        else {
            return Ok(());
        };
        let (first, first_node) = *self.applied.entry(*index).or_insert((*digest, *node));
        if first != *digest {
            return Err(format!(
                "index {index}: node {first_node} applied an entry with digest {first}, node \
                 {node} one with digest {digest}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.
mod tests {
    use super::*;

    fn applied(node: u64, index: u64, digest: u64) -> TraceEvent {
        TraceEvent::Applied {
            node: NodeId(node),
            group: polis_types::GroupId(1),
            incarnation: 0,
            index,
            digest,
        }
    }

    #[test]
    fn the_same_entry_everywhere_passes_and_another_one_fails() {
        let mut checker = AppliedAgree::default();
        checker.observe(&applied(1, 1, 11)).unwrap();
        checker.observe(&applied(2, 1, 11)).unwrap();
        checker.observe(&applied(2, 2, 22)).unwrap();
        let error = checker.observe(&applied(3, 2, 23)).unwrap_err();
        assert!(error.contains("index 2"), "{error}");
    }
}
