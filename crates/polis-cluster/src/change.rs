//! Changes to the cluster map. A transaction names the map version its
//! author read and the changes it computed from it; it applies only if
//! the map is still at that version (compare-and-set), all or nothing, and
//! makes the next version. The author of a transaction that lost retries
//! from the new version: a change is never applied over one its author did
//! not see.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use polis_types::{GroupId, NodeId, ReplicaId, SlotRange, SlotSet};
use serde::{Deserialize, Serialize};

use crate::map::{ClusterMap, InvalidMap, NodeAddrs, NodeRecord, NodeState};
use crate::namespace::{CacheLimits, Namespace};
use crate::version::EntryFormat;

/// One change to the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapChange {
    /// Node `node` started with empty storage. The first time, it takes
    /// the replicas the map assigned it; every later time (its data was
    /// wiped) each of its replicas gets a new id, since the old ones may
    /// have voted and acknowledged entries the node no longer has. The
    /// same `token` twice is one registration (an answer lost before the
    /// node saved it, or a restart), and the second time changes at most
    /// the entry formats recorded for it (a restart on another binary).
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
    /// Node `node`, not in the map, joins the running cluster (entry
    /// format 2): it gets its record, incarnation 1 and a new meta replica,
    /// and no shard replica until replicas move to it. The same `token`
    /// twice is one join.
    Join {
        node: NodeId,
        addrs: NodeAddrs,
        entry_format_max: u32,
        token: u64,
    },
    /// Shard `shard`'s replica on node `from` moves to node `to` (entry
    /// format 2): a new replica id on `to` takes its place in the map. The
    /// shard's leader adds it as a learner, lets it catch up, then makes
    /// it a voter and drops the old one in one joint change; the old
    /// node deletes its copy only once the group no longer counts it.
    MoveReplica {
        shard: GroupId,
        from: NodeId,
        to: NodeId,
    },
    /// Node `node` leaves the cluster (entry format 2): it is marked
    /// leaving, the shards it was meant to lead are led from other nodes,
    /// and its replicas move to the others. Refused when the other active
    /// nodes could not hold every shard's replicas.
    RemoveNode { node: NodeId },
    /// Leaving node `node` holds no replica any more: it is removed for
    /// good (entry format 2).
    NodeDrained { node: NodeId },
    /// Begins moving `slots` to shard `target` (entry format 2): one
    /// migration per shard owning some of them, each copying.
    BeginMigration {
        slots: Vec<SlotRange>,
        target: GroupId,
    },
    /// Migration `id`'s target owns its slots from this version on
    /// (entry format 2). Proposed once the source froze the slots and the
    /// target staged every change to them; refused unless the migration
    /// is still at `attempt`.
    SwitchMigration { id: u64, attempt: u32 },
    /// The source of migration `id` lets writes in again after a freeze
    /// that could not switch in time: no switch of `attempt` may apply
    /// any more (entry format 2).
    RetryMigration { id: u64, attempt: u32 },
    /// Migration `id` ends (entry format 2): done once switched, or
    /// cancelled before the switch.
    EndMigration { id: u64, cancelled: bool },
    /// Creates a shard (the next shard id) with one replica on each of
    /// `nodes`, led from the first, and begins migrating `slots` of
    /// `shard` to it (entry format 2).
    SplitShard {
        shard: GroupId,
        slots: Vec<SlotRange>,
        nodes: Vec<NodeId>,
    },
    /// Takes shard `shard`, which owns no slot and takes part in no
    /// migration, out of the map; its replicas are destroyed (entry
    /// format 2).
    RetireShard { shard: GroupId },
    /// Adds a namespace, or replaces the one with its prefix (entry
    /// format 6). Whether keys would change consistency is checked by the
    /// author against the data before it proposes this.
    SetNamespace(Namespace),
    /// Removes the namespace of `prefix` (entry format 6).
    RemoveNamespace { prefix: Bytes },
    /// Sets (`Some`) or lifts (`None`) the cache limits of the strong
    /// namespace of `prefix` (entry format 7). `SetNamespace` lifts them
    /// too: a transaction setting a namespace with limits carries both.
    SetNamespaceCache {
        prefix: Bytes,
        limits: Option<CacheLimits>,
    },
    /// Applies ACL SETUSER `rules` to user `name`, creating it when new
    /// (entry format 8). All or none; a rule refused rejects the change.
    SetUser { name: String, rules: Vec<String> },
    /// Deletes ACL users `names`, those that exist (entry format 8);
    /// the default user cannot be deleted.
    DeleteUsers { names: Vec<String> },
    /// Sets (`Some`) or removes (`None`) the RESP address node `node`
    /// serves TLS clients at (entry format 9); a node publishes its own
    /// when it starts.
    SetTlsAddr { node: NodeId, addr: Option<String> },
}

impl MapChange {
    /// Returns the entry format a transaction carrying this change needs.
    pub fn format(&self) -> EntryFormat {
        match self {
            Self::Join { .. }
            | Self::MoveReplica { .. }
            | Self::RemoveNode { .. }
            | Self::NodeDrained { .. }
            | Self::BeginMigration { .. }
            | Self::SwitchMigration { .. }
            | Self::RetryMigration { .. }
            | Self::EndMigration { .. }
            | Self::SplitShard { .. }
            | Self::RetireShard { .. } => EntryFormat::V2,
            Self::SetNamespace(_) | Self::RemoveNamespace { .. } => EntryFormat::V6,
            Self::SetNamespaceCache { .. } => EntryFormat::V7,
            Self::SetUser { .. } | Self::DeleteUsers { .. } => EntryFormat::V8,
            Self::SetTlsAddr { .. } => EntryFormat::V9,
            _ => EntryFormat::V1,
        }
    }
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

    pub(crate) fn allocate_replica(&mut self) -> ReplicaId {
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
            MapChange::Join {
                node,
                addrs,
                entry_format_max,
                token,
            } => self.join(*node, addrs, *entry_format_max, *token),
            MapChange::MoveReplica { shard, from, to } => self.move_replica(*shard, *from, *to),
            MapChange::RemoveNode { node } => self.remove_node(*node),
            MapChange::NodeDrained { node } => self.node_drained(*node),
            MapChange::BeginMigration { slots, target } => self.begin_migration(slots, *target),
            MapChange::SwitchMigration { id, attempt } => self.switch_migration(*id, *attempt),
            MapChange::RetryMigration { id, attempt } => self.retry_migration(*id, *attempt),
            MapChange::EndMigration { id, cancelled } => self.end_migration(*id, *cancelled),
            MapChange::SplitShard {
                shard,
                slots,
                nodes,
            } => self.split_shard(*shard, slots, nodes),
            MapChange::RetireShard { shard } => self.retire_shard(*shard),
            MapChange::SetNamespace(namespace) => self.set_namespace(namespace),
            MapChange::RemoveNamespace { prefix } => {
                self.namespaces.remove(prefix).map(drop).ok_or_else(|| {
                    TxnError::Rejected(format!(
                        "no namespace has the prefix {:?}",
                        String::from_utf8_lossy(prefix)
                    ))
                })
            }
            MapChange::SetNamespaceCache { prefix, limits } => self
                .namespaces
                .set_cache(prefix, *limits)
                .map_err(|error| TxnError::Rejected(error.to_string())),
            MapChange::SetUser { name, rules } => self.set_user(name, rules),
            MapChange::DeleteUsers { names } => self.delete_users(names),
            MapChange::SetTlsAddr { node, addr } => self.set_tls_addr(*node, addr.as_deref()),
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

    fn set_namespace(&mut self, namespace: &Namespace) -> Result<(), TxnError> {
        if let Some(quorums) = namespace.quorums {
            let fewest = self
                .shards
                .values()
                .map(|shard| shard.replicas.len())
                .min()
                .unwrap_or(0);
            if usize::from(quorums.replicas) > fewest {
                return Err(TxnError::Rejected(format!(
                    "--replicas {} is more than the {fewest} replicas a shard keeps: eventual \
                     keys live on their shard's replicas",
                    quorums.replicas
                )));
            }
        }
        self.namespaces
            .set(namespace.clone())
            .map_err(|error| TxnError::Rejected(error.to_string()))
    }

    fn register(
        &mut self,
        node: NodeId,
        entry_format_max: u32,
        token: u64,
    ) -> Result<(), TxnError> {
        let record = self.nodes.get(&node).ok_or_else(|| {
            TxnError::Rejected(format!(
                "node {node} is not in the cluster map: start it with --join to add it"
            ))
        })?;
        if token != 0 && record.registration == token {
            // The same data directory again: an answer was lost, or the
            // node restarted on another binary, whose entry formats count
            // from now on.
            if record.entry_format_max != entry_format_max {
                self.check_entry_format(node, entry_format_max)?;
                if let Some(record) = self.nodes.get_mut(&node) {
                    record.entry_format_max = entry_format_max;
                }
            }
            return Ok(());
        }
        if record.removed() {
            return Err(removed(node));
        }
        self.check_entry_format(node, entry_format_max)?;
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

    /// Refuses a node whose binary cannot read the cluster's entries.
    fn check_entry_format(&self, node: NodeId, entry_format_max: u32) -> Result<(), TxnError> {
        if entry_format_max < self.cluster_version {
            return Err(TxnError::Rejected(format!(
                "node {node} understands entry format {entry_format_max}, but the cluster \
                 uses {}: run the same polis version on every node",
                self.cluster_version
            )));
        }
        Ok(())
    }

    fn join(
        &mut self,
        node: NodeId,
        addrs: &NodeAddrs,
        entry_format_max: u32,
        token: u64,
    ) -> Result<(), TxnError> {
        if let Some(record) = self.nodes.get(&node) {
            if token != 0 && record.registration == token {
                return Ok(());
            }
            return Err(TxnError::Rejected(format!(
                "node id {node} is taken: start the new node with another --node-id"
            )));
        }
        let clash = self.nodes.values().find_map(|other| {
            [&addrs.peer, &addrs.resp, &addrs.admin]
                .into_iter()
                .find(|addr| {
                    [&other.addrs.peer, &other.addrs.resp, &other.addrs.admin].contains(addr)
                })
                .map(|addr| (other.id, addr.clone()))
        });
        if let Some((other, addr)) = clash {
            return Err(TxnError::Rejected(format!(
                "node {other} already uses the address {addr}"
            )));
        }
        self.check_entry_format(node, entry_format_max)?;
        let meta_replica = self.allocate_replica();
        self.nodes.insert(
            node,
            NodeRecord {
                id: node,
                addrs: addrs.clone(),
                incarnation: 1,
                entry_format_max,
                meta_replica,
                registration: token,
                state: NodeState::Active,
            },
        );
        Ok(())
    }

    fn move_replica(&mut self, shard: GroupId, from: NodeId, to: NodeId) -> Result<(), TxnError> {
        if !self.nodes.get(&to).is_some_and(NodeRecord::active) {
            return Err(TxnError::Rejected(format!(
                "node {to} is not an active member: no replica can move to it"
            )));
        }
        let replica = self.allocate_replica();
        // How many other shards would be led from each node.
        let mut preferred: BTreeMap<NodeId, usize> = BTreeMap::new();
        for other in self.shards.values().filter(|other| other.id != shard) {
            *preferred.entry(other.preferred_leader).or_default() += 1;
        }
        let record = self
            .shards
            .get_mut(&shard)
            .ok_or_else(|| TxnError::Rejected(format!("no shard {shard}")))?;
        if record.replica_on(to).is_some() {
            return Err(TxnError::Rejected(format!(
                "node {to} holds a replica of shard {shard} already"
            )));
        }
        let moving = record
            .replicas
            .iter_mut()
            .find(|candidate| candidate.node == from)
            .ok_or_else(|| {
                TxnError::Rejected(format!("node {from} holds no replica of shard {shard}"))
            })?;
        moving.node = to;
        moving.replica = replica;
        moving.bootstrap = false;
        if record.preferred_leader == from {
            // Led from the replica's node that would lead the fewest
            // shards, so leaders stay spread.
            record.preferred_leader = record
                .replicas
                .iter()
                .map(|replica| replica.node)
                .min_by_key(|node| (preferred.get(node).copied().unwrap_or(0), *node))
                .unwrap_or(to);
        }
        Ok(())
    }

    fn remove_node(&mut self, node: NodeId) -> Result<(), TxnError> {
        let record = self
            .nodes
            .get(&node)
            .ok_or_else(|| TxnError::Rejected(format!("no node {node} in the cluster")))?;
        match record.state {
            NodeState::Removed => return Err(removed(node)),
            NodeState::Leaving => return Ok(()),
            NodeState::Active => {}
        }
        let remaining: BTreeSet<NodeId> = self
            .active_nodes()
            .into_iter()
            .filter(|other| *other != node)
            .collect();
        if remaining.is_empty() {
            return Err(TxnError::Rejected(format!(
                "node {node} is the last active node: a cluster keeps at least one"
            )));
        }
        if let Some(shard) = self
            .shards
            .values()
            .filter(|shard| shard.replica_on(node).is_some())
            .find(|shard| shard.replicas.len() > remaining.len())
        {
            return Err(TxnError::Rejected(format!(
                "cannot remove node {node}: shard {} keeps {} replicas, and only {} other \
                 active nodes would remain to hold them; add a node first",
                shard.id,
                shard.replicas.len(),
                remaining.len()
            )));
        }
        // How many shards each remaining node is meant to lead.
        let mut preferred: BTreeMap<NodeId, usize> =
            remaining.iter().map(|other| (*other, 0)).collect();
        for shard in self.shards.values() {
            if let Some(count) = preferred.get_mut(&shard.preferred_leader) {
                *count += 1;
            }
        }
        for shard in self.shards.values_mut() {
            if shard.preferred_leader != node {
                continue;
            }
            // Its leadership goes first, to the replica's node meant to
            // lead the fewest shards.
            let successor = shard
                .replicas
                .iter()
                .map(|replica| replica.node)
                .filter(|candidate| remaining.contains(candidate))
                .min_by_key(|candidate| (preferred.get(candidate).copied(), *candidate));
            if let Some(successor) = successor {
                shard.preferred_leader = successor;
                if let Some(count) = preferred.get_mut(&successor) {
                    *count += 1;
                }
            }
        }
        if let Some(record) = self.nodes.get_mut(&node) {
            record.state = NodeState::Leaving;
        }
        Ok(())
    }

    fn node_drained(&mut self, node: NodeId) -> Result<(), TxnError> {
        let record = self
            .nodes
            .get(&node)
            .ok_or_else(|| TxnError::Rejected(format!("no node {node} in the cluster")))?;
        if record.state != NodeState::Leaving {
            return Err(TxnError::Rejected(format!(
                "node {node} is {}, not leaving",
                record.state.name()
            )));
        }
        if let Some(shard) = self
            .shards
            .values()
            .find(|shard| shard.replica_on(node).is_some())
        {
            return Err(TxnError::Rejected(format!(
                "node {node} still holds a replica of shard {}",
                shard.id
            )));
        }
        if let Some(record) = self.nodes.get_mut(&node) {
            record.state = NodeState::Removed;
        }
        self.tls_addrs.remove(&node);
        Ok(())
    }

    pub(crate) fn assign_slots(
        &mut self,
        shard: GroupId,
        slots: &[SlotRange],
    ) -> Result<(), TxnError> {
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

/// The refusal of a removed node.
fn removed(node: NodeId) -> TxnError {
    TxnError::Rejected(format!(
        "node {node} was removed from the cluster: start a new node with an unused --node-id \
         and an empty data directory, with --join"
    ))
}

#[cfg(test)]
#[path = "change_test.rs"]
mod tests;
