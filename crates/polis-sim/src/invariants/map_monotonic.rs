//! A node never routes from an older cluster map than one it routed from,
//! across its restarts too (it saves a map before routing from it).

use std::collections::BTreeMap;

use polis_types::NodeId;

use crate::trace::TraceEvent;

pub const NAME: &str = "map-never-goes-back";

/// The newest map version each node routed from.
#[derive(Default)]
pub struct MapMonotonic {
    newest: BTreeMap<NodeId, u64>,
}

impl MapMonotonic {
    /// Checks one event.
    ///
    /// # Errors
    /// Describes a node routing from an older version.
    pub fn observe(&mut self, event: &TraceEvent) -> Result<(), String> {
        let TraceEvent::MapRouted { node, version } = event else {
            return Ok(());
        };
        let newest = self.newest.entry(*node).or_insert(*version);
        if *version < *newest {
            return Err(format!(
                "node {node} routes from map version {version} after version {newest}"
            ));
        }
        *newest = *version;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.
mod tests {
    use super::*;

    fn routed(node: u64, version: u64) -> TraceEvent {
        TraceEvent::MapRouted {
            node: NodeId(node),
            version,
        }
    }

    #[test]
    fn versions_may_stay_or_grow_but_never_go_back() {
        let mut checker = MapMonotonic::default();
        checker.observe(&routed(1, 2)).unwrap();
        checker.observe(&routed(1, 2)).unwrap();
        checker.observe(&routed(2, 1)).unwrap();
        checker.observe(&routed(1, 5)).unwrap();
        assert!(checker.observe(&routed(1, 4)).is_err());
    }
}
