//! Splitting and merging shards, as slot migrations.
//!
//! A split creates a shard (a new Raft group, its replicas on the nodes
//! holding the fewest) and, in the same map version, begins migrating
//! half of the split shard's slots to it. A merge is a migration of every
//! slot of a small shard to a neighbour. A shard left without slots and
//! in no migration (merged away, or a split that was cancelled) is
//! retired: it leaves the map, and each node destroys its replica.
//!
//! [`plan`] decides, from the shards' sizes and write rates, which of
//! these is due; the meta leader's scheduler carries it out. It is pure.

use std::collections::{BTreeMap, BTreeSet};

use polis_types::limits::SHARDS_MAX;
use polis_types::{GroupId, NodeId, SlotRange, SlotSet};

use crate::change::TxnError;
use crate::map::{ClusterMap, ShardRecord, ShardReplica};
use crate::migration::render;

/// A merged shard fills at most this part of the split thresholds, so it
/// is not split again soon after (the hysteresis between the two).
pub const MERGE_FILL_MAX: f64 = 0.25;

impl ClusterMap {
    /// Creates shard `next_shard_id` with one replica on each of `nodes`
    /// (led from the first) and begins migrating `slots`, owned by
    /// `shard`, to it.
    pub(crate) fn split_shard(
        &mut self,
        shard: GroupId,
        slots: &[SlotRange],
        nodes: &[NodeId],
    ) -> Result<(), TxnError> {
        let record = self
            .shards
            .get(&shard)
            .ok_or_else(|| TxnError::Rejected(format!("no shard {shard}")))?;
        let owned = record.slot_set();
        let moving = SlotSet::from_ranges(slots);
        if moving.is_empty() || moving.len() >= owned.len() {
            return Err(TxnError::Rejected(format!(
                "a split of shard {shard} moves some of its slots but not all ({} of {})",
                moving.len(),
                owned.len()
            )));
        }
        if let Some(stray) = moving
            .ranges()
            .iter()
            .flat_map(SlotRange::slots)
            .find(|slot| !owned.contains(*slot))
        {
            return Err(TxnError::Rejected(format!(
                "shard {shard} does not own slot {stray}"
            )));
        }
        if self.shards.len() >= SHARDS_MAX {
            return Err(TxnError::Rejected(format!(
                "the cluster has {SHARDS_MAX} shards, the most it may have"
            )));
        }
        let distinct: BTreeSet<NodeId> = nodes.iter().copied().collect();
        if nodes.is_empty() || distinct.len() != nodes.len() {
            return Err(TxnError::Rejected(
                "a new shard needs one or more distinct nodes".into(),
            ));
        }
        if let Some(idle) = nodes
            .iter()
            .find(|node| !self.node(**node).is_some_and(|record| record.active()))
        {
            return Err(TxnError::Rejected(format!(
                "node {idle} is not an active member: it cannot hold a new shard"
            )));
        }
        let id = GroupId(self.next_shard_id);
        self.next_shard_id += 1;
        let replicas: Vec<ShardReplica> = nodes
            .iter()
            .map(|node| ShardReplica {
                replica: self.allocate_replica(),
                node: *node,
                bootstrap: true,
            })
            .collect();
        let first_members = replicas
            .iter()
            .map(|replica| (replica.replica, replica.node))
            .collect();
        self.shards.insert(
            id,
            ShardRecord {
                id,
                slots: Vec::new(),
                slots_version: self.version + 1,
                replicas,
                first_members,
                preferred_leader: nodes[0],
            },
        );
        self.begin_migration(&moving.ranges(), id)
    }

    /// Takes shard `shard`, which owns no slot and takes part in no
    /// migration, out of the map.
    pub(crate) fn retire_shard(&mut self, shard: GroupId) -> Result<(), TxnError> {
        let record = self
            .shards
            .get(&shard)
            .ok_or_else(|| TxnError::Rejected(format!("no shard {shard}")))?;
        if !record.slots.is_empty() {
            return Err(TxnError::Rejected(format!(
                "shard {shard} owns slots {}: move them away first",
                render(&record.slots)
            )));
        }
        if let Some(busy) = self.migration_of(shard) {
            return Err(TxnError::Rejected(format!(
                "shard {shard} takes part in migration {}",
                busy.id
            )));
        }
        self.shards.remove(&shard);
        Ok(())
    }
}

/// What the scheduler knows of one shard, from its leader.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ShardLoad {
    pub keys: u64,
    pub bytes: u64,
    /// Log entries appended per second, lately.
    pub writes_per_sec: f64,
}

/// Past any of these a shard is split; 0 turns one off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SplitAbove {
    pub keys: u64,
    pub bytes: u64,
    pub writes_per_sec: u64,
}

impl SplitAbove {
    /// Returns how full `load` is, as the largest of its parts of the
    /// thresholds that are on (1.0 or more: split); `None` when all are
    /// off.
    pub fn fill(&self, load: &ShardLoad) -> Option<f64> {
        let parts = [
            (load.keys as f64, self.keys),
            (load.bytes as f64, self.bytes),
            (load.writes_per_sec, self.writes_per_sec),
        ];
        parts
            .iter()
            .filter(|(_, limit)| *limit > 0)
            .map(|(value, limit)| value / *limit as f64)
            .reduce(f64::max)
    }
}

/// One change of the shards' shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reshape {
    /// Create a shard on `nodes` and move `slots` of `shard` to it.
    Split {
        shard: GroupId,
        slots: Vec<SlotRange>,
        nodes: Vec<NodeId>,
    },
    /// Move every slot of `from` to `into`.
    Merge { from: GroupId, into: GroupId },
    /// Take the empty shard out of the map.
    Retire { shard: GroupId },
}

impl Reshape {
    /// Returns what the change does, in words.
    pub fn describe(&self) -> String {
        match self {
            Self::Split { shard, slots, .. } => {
                format!(
                    "split shard {shard}: slots {} to a new shard",
                    render(slots)
                )
            }
            Self::Merge { from, into } => format!("merge shard {from} into shard {into}"),
            Self::Retire { shard } => format!("retire shard {shard}, which owns no slot"),
        }
    }
}

/// Returns the next change of the shards' shape, if one is due: an empty
/// shard in no migration is retired; otherwise, while no migration runs
/// and every shard's load is known, the fullest shard past a threshold is
/// split (the upper half of its slots go to a new shard on the `alive`
/// active nodes holding the fewest replicas), or else the emptiest shard is
/// merged into its smallest neighbour when both together fill less than
/// [`MERGE_FILL_MAX`] and the cluster has more shards than it was created
/// with.
pub fn plan(
    map: &ClusterMap,
    loads: &BTreeMap<GroupId, ShardLoad>,
    above: &SplitAbove,
    alive: &BTreeSet<NodeId>,
) -> Option<Reshape> {
    if let Some(empty) = map
        .shards
        .values()
        .find(|shard| shard.slots.is_empty() && map.migration_of(shard.id).is_none())
    {
        return Some(Reshape::Retire { shard: empty.id });
    }
    if !map.migrations.is_empty() {
        return None;
    }
    let mut fills: Vec<(GroupId, f64)> = Vec::new();
    for shard in map.shards.keys() {
        fills.push((*shard, above.fill(loads.get(shard)?)?));
    }
    let fullest = fills
        .iter()
        .filter(|(_, fill)| *fill >= 1.0)
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    if let Some((shard, _)) = fullest {
        return split(map, *shard, alive);
    }
    if map.shards.len() <= map.shards_min.max(1) as usize {
        return None;
    }
    let (emptiest, fill) = fills
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))?;
    let slots = map.shards.get(&emptiest)?.slot_set();
    let into = fills
        .iter()
        .filter(|(other, other_fill)| *other != emptiest && fill + other_fill < MERGE_FILL_MAX)
        .min_by(|a, b| {
            let adjacent = |shard: GroupId| {
                map.shards
                    .get(&shard)
                    .is_some_and(|record| neighbours(&slots, &record.slot_set()))
            };
            (!adjacent(a.0), a.1, a.0)
                .partial_cmp(&(!adjacent(b.0), b.1, b.0))
                .unwrap_or(std::cmp::Ordering::Equal)
        })?;
    Some(Reshape::Merge {
        from: emptiest,
        into: into.0,
    })
}

/// Returns a split of `shard`: the upper half of its slots to a new shard
/// with as many replicas, on the live active nodes holding the fewest;
/// `None` when it has a single slot or the cluster has the most shards.
pub fn split(map: &ClusterMap, shard: GroupId, alive: &BTreeSet<NodeId>) -> Option<Reshape> {
    let record = map.shards.get(&shard)?;
    let owned = record.slot_set();
    if owned.len() < 2 || map.shards.len() >= SHARDS_MAX {
        return None;
    }
    let keep = owned.len() / 2;
    let mut moving = SlotSet::default();
    for slot in owned.ranges().iter().flat_map(SlotRange::slots).skip(keep) {
        moving.insert(slot);
    }
    let mut held: BTreeMap<NodeId, (usize, usize)> = map
        .nodes
        .values()
        .filter(|node| node.active() && alive.contains(&node.id))
        .map(|node| (node.id, (0, 0)))
        .collect();
    for other in map.shards.values() {
        for replica in &other.replicas {
            if let Some((replicas, _)) = held.get_mut(&replica.node) {
                *replicas += 1;
            }
        }
        if let Some((_, leads)) = held.get_mut(&other.preferred_leader) {
            *leads += 1;
        }
    }
    let mut nodes: Vec<(NodeId, (usize, usize))> = held.into_iter().collect();
    nodes.sort_by_key(|(node, (replicas, _))| (*replicas, *node));
    nodes.truncate(record.replicas.len());
    if nodes.is_empty() {
        return None;
    }
    // Led from the chosen node that leads the fewest.
    nodes.sort_by_key(|(node, (_, leads))| (*leads, *node));
    Some(Reshape::Split {
        shard,
        slots: moving.ranges(),
        nodes: nodes.into_iter().map(|(node, _)| node).collect(),
    })
}

/// Returns true when a slot of one set is next to a slot of the other.
fn neighbours(a: &SlotSet, b: &SlotSet) -> bool {
    a.ranges().iter().any(|range| {
        let before = range.start.get().checked_sub(1);
        let after = range.end.get().checked_add(1);
        [before, after]
            .into_iter()
            .flatten()
            .filter_map(polis_types::Slot::new)
            .any(|slot| b.contains(slot))
    })
}

#[cfg(test)]
#[path = "reshape_test.rs"]
mod tests;
