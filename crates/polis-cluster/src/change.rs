//! Changes to the cluster map. A transaction names the map version its
//! author read and the changes it computed from it; it applies only if
//! the map is still at that version (compare-and-set), all or nothing, and
//! makes the next version. The author of a transaction that lost retries
//! from the new version: a change is never applied over one its author did
//! not see.

use polis_types::{GroupId, NodeId, ReplicaId, SlotRange, SlotSet};
use serde::{Deserialize, Serialize};

use crate::map::{ClusterMap, InvalidMap};

/// One change to the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapChange {
    /// Node `node` started with empty storage. The first time, it takes
    /// the replicas the map assigned it; every later time (its data was
    /// wiped) each of its replicas gets a new id, since the old ones may
    /// have voted and acknowledged entries the node no longer has. The
    /// same `token` twice is one registration (an answer lost before the
    /// node saved it), and changes nothing the second time.
    Register {
        node: NodeId,
        entry_format_max: u32,
        token: u64,
    },
    /// The shard should be led from `node`.
    SetPreferredLeader { shard: GroupId, node: NodeId },
    /// `shard` takes ownership of `slots` from whichever shards own them.
    AssignSlots {
        shard: GroupId,
        slots: Vec<SlotRange>,
    },
    /// Raises the entry format every node must understand.
    RaiseClusterVersion { to: u32 },
}

/// Why a transaction did not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum TxnError {
    /// The map moved on since its author read it.
    #[error("the map is at version {current}, not {expected}")]
    Conflict { expected: u64, current: u64 },
    /// A change does not fit the map.
    #[error("{0}")]
    Rejected(String),
}

impl From<InvalidMap> for TxnError {
    fn from(invalid: InvalidMap) -> Self {
        Self::Rejected(format!("the change would break the map: {invalid}"))
    }
}

impl ClusterMap {
    /// Returns the map after `changes`, if the map is at version
    /// `expected`: the next version, validated.
    ///
    /// # Errors
    /// [`TxnError::Conflict`] when the map is at another version;
    /// [`TxnError::Rejected`] when a change does not fit (nothing applies).
    pub fn apply(&self, expected: u64, changes: &[MapChange]) -> Result<ClusterMap, TxnError> {
        if self.version != expected {
            return Err(TxnError::Conflict {
                expected,
                current: self.version,
            });
        }
        let mut next = self.clone();
        for change in changes {
            next.apply_one(change)?;
        }
        next.version += 1;
        next.validate()?;
        Ok(next)
    }

    fn allocate_replica(&mut self) -> ReplicaId {
        let replica = ReplicaId(self.next_replica_id);
        self.next_replica_id += 1;
        replica
    }

    fn apply_one(&mut self, change: &MapChange) -> Result<(), TxnError> {
        match change {
            MapChange::Register {
                node,
                entry_format_max,
                token,
            } => self.register(*node, *entry_format_max, *token),
            MapChange::SetPreferredLeader { shard, node } => {
                let record = self
                    .shards
                    .get_mut(shard)
                    .ok_or_else(|| TxnError::Rejected(format!("no shard {shard}")))?;
                record.preferred_leader = *node;
                Ok(())
            }
            MapChange::AssignSlots { shard, slots } => self.assign_slots(*shard, slots),
            MapChange::RaiseClusterVersion { to } => {
                if *to < self.cluster_version {
                    return Err(TxnError::Rejected(format!(
                        "the cluster version never goes down ({} to {to})",
                        self.cluster_version
                    )));
                }
                if let Some(behind) = self
                    .nodes
                    .values()
                    .find(|node| node.started() && node.entry_format_max < *to)
                {
                    return Err(TxnError::Rejected(format!(
                        "node {} understands entry format {} only",
                        behind.id, behind.entry_format_max
                    )));
                }
                self.cluster_version = *to;
                Ok(())
            }
        }
    }

    fn register(
        &mut self,
        node: NodeId,
        entry_format_max: u32,
        token: u64,
    ) -> Result<(), TxnError> {
        let cluster_version = self.cluster_version;
        let record = self.nodes.get(&node).ok_or_else(|| {
            TxnError::Rejected(format!(
                "node {node} is not in the cluster map (adding nodes comes later)"
            ))
        })?;
        if token != 0 && record.registration == token {
            return Ok(());
        }
        if entry_format_max < cluster_version {
            return Err(TxnError::Rejected(format!(
                "node {node} understands entry format {entry_format_max}, but the cluster \
                 uses {cluster_version}: run the same polis version on every node"
            )));
        }
        let rejoining = record.started();
        if rejoining {
            let meta = self.allocate_replica();
            let shards: Vec<GroupId> = self
                .shards
                .values()
                .filter(|shard| shard.replica_on(node).is_some())
                .map(|shard| shard.id)
                .collect();
            for shard in shards {
                let replica = self.allocate_replica();
                if let Some(record) = self.shards.get_mut(&shard) {
                    for slot in record.replicas.iter_mut().filter(|r| r.node == node) {
                        slot.replica = replica;
                        slot.bootstrap = false;
                    }
                }
            }
            if let Some(record) = self.nodes.get_mut(&node) {
                record.meta_replica = meta;
            }
        }
        if let Some(record) = self.nodes.get_mut(&node) {
            record.incarnation += 1;
            record.entry_format_max = entry_format_max;
            record.registration = token;
        }
        Ok(())
    }

    fn assign_slots(&mut self, shard: GroupId, slots: &[SlotRange]) -> Result<(), TxnError> {
        if !self.shards.contains_key(&shard) {
            return Err(TxnError::Rejected(format!("no shard {shard}")));
        }
        let moving = SlotSet::from_ranges(slots);
        let version = self.version + 1;
        for record in self.shards.values_mut() {
            let mut owned = record.slot_set();
            let before = owned.clone();
            if record.id == shard {
                for range in slots {
                    for slot in range.slots() {
                        owned.insert(slot);
                    }
                }
            } else {
                for range in moving.ranges() {
                    for slot in range.slots() {
                        owned.remove(slot);
                    }
                }
            }
            if owned != before {
                record.slots = owned.ranges();
                record.slots_version = version;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "change_test.rs"]
mod tests;
