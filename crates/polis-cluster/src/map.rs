//! The cluster map: which nodes there are, which shards, which slots each
//! shard owns, and which replica of which group each node hosts, under one
//! version that only grows (the Redis config epoch).
//!
//! The meta group holds the map; every node keeps a copy and routes from
//! it. The map is changed only by [`ClusterMap::apply`], a compare-and-set
//! transaction against the version its author read (see [`crate::change`]).

use std::collections::{BTreeMap, BTreeSet};

use polis_types::limits::{NODES_MAX, SHARDS_MAX};
use polis_types::{GroupId, NodeId, ReplicaId, Slot, SlotRange, SlotSet, META_GROUP, SLOT_COUNT};
use serde::{Deserialize, Serialize};

use crate::migration::{Migration, MigrationPhase};
use crate::namespace::Namespaces;

/// Where a node listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddrs {
    /// Peer RPC (Raft, beats, node messages).
    pub peer: String,
    /// RESP, where clients are redirected to.
    pub resp: String,
    /// Admin HTTP.
    pub admin: String,
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: NodeId,
    pub addrs: NodeAddrs,
    /// How many times the node registered with empty storage: 0 until it
    /// first starts. Each new incarnation gets new replica ids.
    pub incarnation: u64,
    /// The newest log entry format the node's binary understands.
    pub entry_format_max: u32,
    /// The node's replica of the meta group (a voter or a learner).
    pub meta_replica: ReplicaId,
    /// The token of the node's last registration (0: none). A node that
    /// registers again with the same token (its answer was lost before it
    /// saved it) gets the same incarnation: its replicas never ran.
    pub registration: u64,
    /// A member, leaving (being drained) or removed.
    pub state: NodeState,
}

/// Where a node stands in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum NodeState {
    /// A member: it holds replicas and may be given more.
    #[default]
    Active,
    /// `polis cluster remove-node` was asked: its replicas move to the
    /// other nodes (its leaderships first) and it is given none.
    Leaving,
    /// Drained and out of the cluster for good: its peers refuse it, and
    /// its id is never used again.
    Removed,
}

impl NodeState {
    /// Returns the state's name, as `polis status` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Leaving => "leaving",
            Self::Removed => "removed",
        }
    }
}

impl NodeRecord {
    /// Returns true once the node has started (registered) at least once.
    pub fn started(&self) -> bool {
        self.incarnation > 0
    }

    /// Returns true for a started node that is neither leaving nor
    /// removed: one that may hold replicas and lead.
    pub fn active(&self) -> bool {
        self.started() && self.state == NodeState::Active
    }

    /// Returns true once the node was removed.
    pub fn removed(&self) -> bool {
        self.state == NodeState::Removed
    }
}

/// One replica of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardReplica {
    pub replica: ReplicaId,
    pub node: NodeId,
    /// The replica was one of the shard's first members: it starts the
    /// group with the first membership instead of waiting to be added.
    pub bootstrap: bool,
}

/// One shard: a Raft group owning slot ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub id: GroupId,
    /// The slots the shard owns, as disjoint ranges in order.
    pub slots: Vec<SlotRange>,
    /// The map version at which the shard's slots last changed: the
    /// ownership version its state machine must reach.
    pub slots_version: u64,
    pub replicas: Vec<ShardReplica>,
    /// The shard's first membership, as its first replicas start the group
    /// (fixed at creation: every first replica must start it alike, even
    /// one that starts after another was replaced).
    pub first_members: Vec<(ReplicaId, NodeId)>,
    /// The node meant to lead the shard, so leaders spread evenly.
    pub preferred_leader: NodeId,
}

impl ShardRecord {
    /// Returns the replica the shard has on `node`, if any.
    pub fn replica_on(&self, node: NodeId) -> Option<ShardReplica> {
        self.replicas
            .iter()
            .find(|replica| replica.node == node)
            .copied()
    }

    /// Returns the node hosting `replica`, if it is one of the shard's.
    pub fn node_of(&self, replica: ReplicaId) -> Option<NodeId> {
        self.replicas
            .iter()
            .find(|candidate| candidate.replica == replica)
            .map(|candidate| candidate.node)
    }

    /// Returns the shard's slots as a set.
    pub fn slot_set(&self) -> SlotSet {
        SlotSet::from_ranges(&self.slots)
    }
}

/// The cluster map at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMap {
    /// Random at creation: two clusters never mix.
    pub cluster_id: u64,
    /// The node that created the map (its meta replica started the meta
    /// group alone).
    pub creator: NodeId,
    /// Grows by one with every change (the Redis config epoch).
    pub version: u64,
    /// The newest log entry format every node understands; entries of a
    /// newer format are not proposed until it is raised.
    pub cluster_version: u32,
    /// The next replica id to hand out; ids are never reused.
    pub next_replica_id: u64,
    pub nodes: BTreeMap<NodeId, NodeRecord>,
    pub shards: BTreeMap<GroupId, ShardRecord>,
    /// The next migration id to hand out; ids are never reused.
    pub next_migration_id: u64,
    /// The slot migrations under way.
    pub migrations: BTreeMap<u64, Migration>,
    /// The next shard id to hand out; ids are never reused (a retired
    /// shard's group may linger on a node that was down).
    pub next_shard_id: u64,
    /// The shard count the cluster was created with: the scheduler merges
    /// small shards no further than this.
    pub shards_min: u32,
    /// The key prefixes with settings (entry format 6): a map stored
    /// before namespaces existed ends before it, and
    /// [`ClusterMap::decode`] reads it as a map without namespaces.
    pub namespaces: Namespaces,
    /// The ACL users by name, each as the rules that make it (entry
    /// format 8; the last field, see [`crate::map_wire`]). The default
    /// user is absent until changed: `on nopass ~* &* +@all`.
    pub users: BTreeMap<String, Vec<String>>,
    /// Each node's RESP address for TLS clients (its `tls-port`), for the
    /// nodes that have one (entry format 9; the last field): redirects
    /// and CLUSTER SHARDS name it to clients that came over TLS.
    pub tls_addrs: BTreeMap<NodeId, String>,
}

/// A map that breaks one of its rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMap {
    #[error("slot {0} is owned by no shard")]
    Unowned(Slot),
    #[error("slot {slot} is owned by shards {first} and {second}")]
    Overlap {
        slot: Slot,
        first: GroupId,
        second: GroupId,
    },
    #[error("replica id {0} is used twice")]
    DuplicateReplica(ReplicaId),
    #[error("replica id {replica} is not below the next id {next}")]
    ReplicaAhead { replica: ReplicaId, next: u64 },
    #[error("shard {shard} has two replicas on node {node}")]
    TwoReplicasOnNode { shard: GroupId, node: NodeId },
    #[error("shard {shard} names node {node}, which is not in the map")]
    UnknownNode { shard: GroupId, node: NodeId },
    #[error("shard {shard} has a replica on node {node}, which was removed")]
    ReplicaOnRemoved { shard: GroupId, node: NodeId },
    #[error("shard {0} has no replica")]
    NoReplica(GroupId),
    #[error("shard {shard}'s preferred leader, node {node}, hosts none of its replicas")]
    PreferredLeaderElsewhere { shard: GroupId, node: NodeId },
    #[error("shard id {0} is the meta group's")]
    MetaShard(GroupId),
    #[error("the map has {0} nodes; at most {NODES_MAX}")]
    TooManyNodes(usize),
    #[error("the map has {0} shards; at most {SHARDS_MAX}")]
    TooManyShards(usize),
    #[error("node id 0 is not valid")]
    NodeZero,
    #[error("shard {0}'s slot ranges are not disjoint and in order")]
    RangesOutOfOrder(GroupId),
    #[error("migration {0} names a shard not in the map, or slots its phase's owner lacks")]
    BrokenMigration(u64),
    #[error("shard id {shard} is not below the next id {next}")]
    ShardAhead { shard: GroupId, next: u64 },
}

impl ClusterMap {
    /// Checks every rule of a map.
    ///
    /// # Errors
    /// Returns the first rule broken.
    pub fn validate(&self) -> Result<(), InvalidMap> {
        if self.nodes.len() > NODES_MAX {
            return Err(InvalidMap::TooManyNodes(self.nodes.len()));
        }
        if self.shards.len() > SHARDS_MAX {
            return Err(InvalidMap::TooManyShards(self.shards.len()));
        }
        if self.nodes.contains_key(&NodeId(0)) {
            return Err(InvalidMap::NodeZero);
        }
        let mut replicas = BTreeSet::new();
        let mut note = |replica: ReplicaId| {
            if replica.get() >= self.next_replica_id || replica.get() == 0 {
                return Err(InvalidMap::ReplicaAhead {
                    replica,
                    next: self.next_replica_id,
                });
            }
            if !replicas.insert(replica) {
                return Err(InvalidMap::DuplicateReplica(replica));
            }
            Ok(())
        };
        for node in self.nodes.values() {
            note(node.meta_replica)?;
        }
        let mut owner: Vec<Option<GroupId>> = vec![None; usize::from(SLOT_COUNT)];
        for shard in self.shards.values() {
            if shard.id == META_GROUP {
                return Err(InvalidMap::MetaShard(shard.id));
            }
            if shard.id.get() >= self.next_shard_id {
                return Err(InvalidMap::ShardAhead {
                    shard: shard.id,
                    next: self.next_shard_id,
                });
            }
            if shard.replicas.is_empty() {
                return Err(InvalidMap::NoReplica(shard.id));
            }
            let mut nodes = BTreeSet::new();
            for replica in &shard.replicas {
                note(replica.replica)?;
                match self.nodes.get(&replica.node) {
                    None => {
                        return Err(InvalidMap::UnknownNode {
                            shard: shard.id,
                            node: replica.node,
                        })
                    }
                    Some(record) if record.removed() => {
                        return Err(InvalidMap::ReplicaOnRemoved {
                            shard: shard.id,
                            node: replica.node,
                        })
                    }
                    Some(_) => {}
                }
                if !nodes.insert(replica.node) {
                    return Err(InvalidMap::TwoReplicasOnNode {
                        shard: shard.id,
                        node: replica.node,
                    });
                }
            }
            if !nodes.contains(&shard.preferred_leader) {
                return Err(InvalidMap::PreferredLeaderElsewhere {
                    shard: shard.id,
                    node: shard.preferred_leader,
                });
            }
            if shard
                .slots
                .windows(2)
                .any(|pair| pair[0].end >= pair[1].start)
            {
                return Err(InvalidMap::RangesOutOfOrder(shard.id));
            }
            for range in &shard.slots {
                for slot in range.slots() {
                    let cell = &mut owner[usize::from(slot.get())];
                    if let Some(first) = cell {
                        return Err(InvalidMap::Overlap {
                            slot,
                            first: *first,
                            second: shard.id,
                        });
                    }
                    *cell = Some(shard.id);
                }
            }
        }
        if let Some(slot) = owner.iter().position(Option::is_none) {
            return Err(InvalidMap::Unowned(
                Slot::new(slot as u16).unwrap_or_default(),
            ));
        }
        for migration in self.migrations.values() {
            let holder = match migration.phase {
                MigrationPhase::Copying => migration.source,
                MigrationPhase::Switched => migration.target,
            };
            let sound = migration.id < self.next_migration_id
                && migration.source != migration.target
                && self.shards.contains_key(&migration.source)
                && self.shards.contains_key(&migration.target)
                && migration
                    .slots
                    .iter()
                    .flat_map(SlotRange::slots)
                    .all(|slot| owner[usize::from(slot.get())] == Some(holder));
            if !sound {
                return Err(InvalidMap::BrokenMigration(migration.id));
            }
        }
        Ok(())
    }

    /// Returns the node `id`, if it is in the map.
    pub fn node(&self, id: NodeId) -> Option<&NodeRecord> {
        self.nodes.get(&id)
    }

    /// Returns the shards with a replica on `node`, with that replica.
    pub fn replicas_on(&self, node: NodeId) -> Vec<(&ShardRecord, ShardReplica)> {
        self.shards
            .values()
            .filter_map(|shard| Some((shard, shard.replica_on(node)?)))
            .collect()
    }

    /// Returns the node hosting `replica` of `group` (the meta group or a
    /// shard).
    pub fn node_of(&self, group: GroupId, replica: ReplicaId) -> Option<NodeId> {
        if group == META_GROUP {
            return self
                .nodes
                .values()
                .find(|node| node.meta_replica == replica)
                .map(|node| node.id);
        }
        self.shards.get(&group)?.node_of(replica)
    }

    /// Returns the RESP address of `node`.
    pub fn resp_addr(&self, node: NodeId) -> Option<&str> {
        self.nodes
            .get(&node)
            .map(|record| record.addrs.resp.as_str())
    }

    /// Returns the voters the meta group should have: the first three
    /// active nodes by id, or five once the map has five active nodes or
    /// more (a node the map has but that has not started counts: the first
    /// map names them all). A leaving node is no voter.
    pub fn meta_voters(&self) -> BTreeMap<ReplicaId, NodeId> {
        let members = self
            .nodes
            .values()
            .filter(|node| node.state == NodeState::Active)
            .count();
        let wanted = if members >= 5 { 5 } else { 3 };
        self.nodes
            .values()
            .filter(|node| node.active())
            .take(wanted)
            .map(|node| (node.meta_replica, node.id))
            .collect()
    }

    /// Returns the meta replicas of the started nodes that are not voters
    /// (a leaving node's among them: it follows the map until it is
    /// removed).
    pub fn meta_learners(&self) -> BTreeMap<ReplicaId, NodeId> {
        let voters = self.meta_voters();
        self.nodes
            .values()
            .filter(|node| {
                node.started() && !node.removed() && !voters.contains_key(&node.meta_replica)
            })
            .map(|node| (node.meta_replica, node.id))
            .collect()
    }

    /// Returns the started nodes that are neither leaving nor removed.
    pub fn active_nodes(&self) -> BTreeSet<NodeId> {
        self.nodes
            .values()
            .filter(|node| node.active())
            .map(|node| node.id)
            .collect()
    }
}

/// The map with its slot table, built once per version for routing.
#[derive(Debug, Clone)]
pub struct MapView {
    map: ClusterMap,
    /// The map's users, read once.
    users: crate::users::UserTable,
    /// The owning shard of every slot, by index into `shard_ids`.
    owners: Box<[u16]>,
    shard_ids: Vec<GroupId>,
}

impl MapView {
    /// Returns the view of `map`, which must be valid (see
    /// [`ClusterMap::validate`]); a slot no shard owns maps to no shard.
    pub fn new(map: ClusterMap) -> Self {
        let shard_ids: Vec<GroupId> = map.shards.keys().copied().collect();
        let mut owners = vec![u16::MAX; usize::from(SLOT_COUNT)].into_boxed_slice();
        for (index, shard) in map.shards.values().enumerate() {
            for range in &shard.slots {
                for slot in range.slots() {
                    owners[usize::from(slot.get())] = index as u16;
                }
            }
        }
        Self {
            users: crate::users::read_users(&map),
            map,
            owners,
            shard_ids,
        }
    }

    /// Returns the map.
    pub fn map(&self) -> &ClusterMap {
        &self.map
    }

    /// Returns user `name`, if the map has it.
    pub fn user(&self, name: &str) -> Option<&std::sync::Arc<polis_commands::acl::User>> {
        self.users.get(name)
    }

    /// Returns every user, by name.
    pub fn users(&self) -> &crate::users::UserTable {
        &self.users
    }

    /// Returns the map's version.
    pub fn version(&self) -> u64 {
        self.map.version
    }

    /// Returns the shard that owns `slot`.
    pub fn owner(&self, slot: Slot) -> Option<&ShardRecord> {
        let index = *self.owners.get(usize::from(slot.get()))?;
        let id = self.shard_ids.get(usize::from(index))?;
        self.map.shards.get(id)
    }

    /// Returns the position of `shard` among the shards in id order.
    pub fn shard_index(&self, shard: GroupId) -> Option<usize> {
        self.shard_ids.binary_search(&shard).ok()
    }

    /// Returns the shard ids in order.
    pub fn shard_ids(&self) -> &[GroupId] {
        &self.shard_ids
    }
}

#[cfg(test)]
#[path = "map_test.rs"]
mod tests;
