//! One owner per slot per map version: a shard applies a write to a slot
//! only while the map version its ownership came from gives it that slot.
//! Since a map gives each slot to one shard, two shards never apply writes
//! to one slot under one version, however the map changes while writes are
//! in flight (ownership is checked where entries apply, not where they
//! arrive).

use std::collections::BTreeMap;

use polis_types::{GroupId, Slot, SlotRange};

use crate::trace::TraceEvent;

pub const NAME: &str = "one-owner-per-slot";

/// The owners of every map version seen.
#[derive(Default)]
pub struct Ownership {
    maps: BTreeMap<u64, Vec<(GroupId, Vec<SlotRange>)>>,
}

impl Ownership {
    fn owner(&self, version: u64, slot: Slot) -> Option<GroupId> {
        self.maps.get(&version)?.iter().find_map(|(group, ranges)| {
            ranges
                .iter()
                .any(|range| range.contains(slot))
                .then_some(*group)
        })
    }

    /// Checks one event.
    ///
    /// # Errors
    /// Describes a write applied by a shard the map did not give its slot.
    pub fn observe(&mut self, event: &TraceEvent) -> Result<(), String> {
        match event {
            TraceEvent::MapVersion {
                version, owners, ..
            } => {
                self.maps.insert(*version, owners.clone());
                Ok(())
            }
            TraceEvent::SlotWrite {
                node,
                group,
                slot,
                version,
            } => {
                if !self.maps.contains_key(version) {
                    return Err(format!(
                        "node {node}: shard {group} applied a write to slot {slot} under map \
                         version {version}, which the meta group never made"
                    ));
                }
                match self.owner(*version, *slot) {
                    Some(owner) if owner == *group => Ok(()),
                    owner => Err(format!(
                        "node {node}: shard {group} applied a write to slot {slot} under map \
                         version {version}, which gives the slot to {owner:?}"
                    )),
                }
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.
mod tests {
    use polis_types::NodeId;

    use super::*;

    fn range(start: u16, end: u16) -> SlotRange {
        SlotRange::new(Slot::new(start).unwrap(), Slot::new(end).unwrap()).unwrap()
    }

    fn write(group: u64, slot: u16, version: u64) -> TraceEvent {
        TraceEvent::SlotWrite {
            node: NodeId(1),
            group: GroupId(group),
            slot: Slot::new(slot).unwrap(),
            version,
        }
    }

    #[test]
    fn writes_by_the_owner_of_their_version_pass_and_others_fail() {
        let mut checker = Ownership::default();
        checker
            .observe(&TraceEvent::MapVersion {
                version: 1,
                owners: vec![
                    (GroupId(1), vec![range(0, 99)]),
                    (GroupId(2), vec![range(100, 16383)]),
                ],
                incarnations: Vec::new(),
                migrations: Vec::new(),
                migrations_begun: 0,
            })
            .unwrap();
        checker
            .observe(&TraceEvent::MapVersion {
                version: 2,
                owners: vec![
                    (GroupId(1), vec![range(0, 49)]),
                    (GroupId(2), vec![range(50, 16383)]),
                ],
                incarnations: Vec::new(),
                migrations: Vec::new(),
                migrations_begun: 0,
            })
            .unwrap();
        checker.observe(&write(1, 60, 1)).unwrap();
        checker.observe(&write(2, 60, 2)).unwrap();
        let stale = checker.observe(&write(1, 60, 2)).unwrap_err();
        assert!(
            stale.contains("gives the slot to Some(GroupId(2))"),
            "{stale}"
        );
        assert!(checker
            .observe(&write(1, 5, 9))
            .unwrap_err()
            .contains("never made"));
    }
}
