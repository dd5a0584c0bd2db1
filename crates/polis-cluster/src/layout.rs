//! The first map of a new cluster: slots cut evenly over the shards, each
//! shard's replicas on consecutive nodes, and one preferred leader per
//! shard in turn, so every node leads about as many shards as any other.
//!
//! ```text
//!   3 nodes, 3 shards, 3 replicas:   shard 1: nodes 1 2 3, led from 1
//!                                    shard 2: nodes 2 3 1, led from 2
//!                                    shard 3: nodes 3 1 2, led from 3
//! ```

use std::collections::BTreeMap;

use polis_types::limits::{NODES_MAX, SHARDS_MAX};
use polis_types::{split_evenly, GroupId, NodeId, ReplicaId};

use crate::map::{ClusterMap, InvalidMap, NodeAddrs, NodeRecord, ShardRecord, ShardReplica};
use crate::namespace::Namespaces;

/// What a new cluster is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub cluster_id: u64,
    /// The first nodes, with their addresses.
    pub nodes: BTreeMap<NodeId, NodeAddrs>,
    pub shards: usize,
    /// Replicas per shard (capped at the number of nodes).
    pub replication: usize,
    /// The node that creates the map.
    pub creator: NodeId,
    /// The nodes registered from the start (incarnation 1): the creator
    /// and the members that answered it with empty storage. They are the
    /// meta group's first voters, so the group never depends on one disk.
    pub registered: BTreeMap<NodeId, Registration>,
}

/// A node registered at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// The token of the node's data directory.
    pub token: u64,
    /// The newest log entry format the node's binary understands.
    pub entry_format_max: u32,
}

/// Returns the registrations of a cluster whose creator starts alone,
/// with no token and entry format 1 (maps made in tests and tools).
pub fn creator_only(creator: NodeId) -> BTreeMap<NodeId, Registration> {
    BTreeMap::from([(
        creator,
        Registration {
            token: 0,
            entry_format_max: 1,
        },
    )])
}

/// Why a layout cannot make a map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("a cluster needs at least one node and at most {NODES_MAX}")]
    Nodes,
    #[error("a cluster needs at least one shard and at most {SHARDS_MAX}")]
    Shards,
    #[error("a shard needs at least one replica")]
    Replication,
    #[error("the creating node {0} is not among the nodes, or not registered")]
    Creator(NodeId),
    #[error("registered node {0} is not among the nodes")]
    Registered(NodeId),
    #[error(transparent)]
    Invalid(#[from] InvalidMap),
}

impl Layout {
    /// Returns the first map (version 1) of the cluster.
    ///
    /// # Errors
    /// [`LayoutError`] when the layout is out of bounds.
    pub fn map(&self) -> Result<ClusterMap, LayoutError> {
        if self.nodes.is_empty() || self.nodes.len() > NODES_MAX {
            return Err(LayoutError::Nodes);
        }
        if self.shards == 0 || self.shards > SHARDS_MAX {
            return Err(LayoutError::Shards);
        }
        if self.replication == 0 {
            return Err(LayoutError::Replication);
        }
        if !self.nodes.contains_key(&self.creator) || !self.registered.contains_key(&self.creator) {
            return Err(LayoutError::Creator(self.creator));
        }
        if let Some(stranger) = self
            .registered
            .keys()
            .find(|id| !self.nodes.contains_key(id))
        {
            return Err(LayoutError::Registered(*stranger));
        }
        let order: Vec<NodeId> = self.nodes.keys().copied().collect();
        let mut next_replica_id = 1u64;
        let mut allocate = || {
            let replica = ReplicaId(next_replica_id);
            next_replica_id += 1;
            replica
        };
        let nodes: BTreeMap<NodeId, NodeRecord> = self
            .nodes
            .iter()
            .map(|(id, addrs)| {
                let registered = self.registered.get(id);
                let record = NodeRecord {
                    id: *id,
                    addrs: addrs.clone(),
                    incarnation: u64::from(registered.is_some()),
                    entry_format_max: registered.map_or(0, |first| first.entry_format_max),
                    meta_replica: allocate(),
                    registration: registered.map_or(0, |first| first.token),
                    state: crate::map::NodeState::Active,
                };
                (*id, record)
            })
            .collect();
        let replication = self.replication.min(order.len());
        let ranges = split_evenly(self.shards as u16);
        let mut shards = BTreeMap::new();
        for (index, range) in ranges.into_iter().enumerate() {
            let id = GroupId(index as u64 + 1);
            let replicas: Vec<ShardReplica> = (0..replication)
                .map(|offset| ShardReplica {
                    replica: allocate(),
                    node: order[(index + offset) % order.len()],
                    bootstrap: true,
                })
                .collect();
            let first_members = replicas
                .iter()
                .map(|replica| (replica.replica, replica.node))
                .collect();
            shards.insert(
                id,
                ShardRecord {
                    id,
                    slots: vec![range],
                    slots_version: 1,
                    replicas,
                    first_members,
                    preferred_leader: order[index % order.len()],
                },
            );
        }
        let map = ClusterMap {
            cluster_id: self.cluster_id,
            creator: self.creator,
            version: 1,
            cluster_version: self
                .registered
                .values()
                .map(|first| first.entry_format_max)
                .min()
                .unwrap_or(0),
            next_replica_id,
            next_migration_id: 1,
            migrations: BTreeMap::new(),
            next_shard_id: self.shards as u64 + 1,
            shards_min: self.shards as u32,
            namespaces: Namespaces::default(),
            users: BTreeMap::new(),
            tls_addrs: BTreeMap::new(),
            nodes,
            shards,
        };
        map.validate()?;
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(nodes: u64, shards: usize) -> Layout {
        Layout {
            cluster_id: 42,
            nodes: (1..=nodes)
                .map(|id| {
                    let addrs = NodeAddrs {
                        peer: format!("127.0.0.1:{}", 7200 + id),
                        resp: format!("127.0.0.1:{}", 7000 + id),
                        admin: format!("127.0.0.1:{}", 7100 + id),
                    };
                    (NodeId(id), addrs)
                })
                .collect(),
            shards,
            replication: 3,
            creator: NodeId(1),
            registered: [(NodeId(1), first(1))].into(),
        }
    }

    fn first(token: u64) -> Registration {
        Registration {
            token,
            entry_format_max: 1,
        }
    }

    fn leaders_per_node(map: &ClusterMap) -> BTreeMap<NodeId, usize> {
        let mut count = BTreeMap::new();
        for shard in map.shards.values() {
            *count.entry(shard.preferred_leader).or_default() += 1;
        }
        count
    }

    #[test]
    fn three_nodes_three_shards_one_leader_each() {
        let map = layout(3, 3).map().unwrap();
        assert_eq!(map.version, 1);
        assert_eq!(map.shards.len(), 3);
        assert!(leaders_per_node(&map).values().all(|count| *count == 1));
        for shard in map.shards.values() {
            assert_eq!(shard.replicas.len(), 3);
            assert!(shard.replicas.iter().all(|replica| replica.bootstrap));
        }
        assert_eq!(map.shards[&GroupId(1)].slots[0].to_string(), "0-5461");
        assert!(map.nodes[&NodeId(1)].started());
        assert!(!map.nodes[&NodeId(2)].started());
        // Meta replicas 1-3, then nine shard replicas.
        assert_eq!(map.next_replica_id, 13);
    }

    #[test]
    fn five_nodes_ten_shards_spread_replicas_and_leaders_evenly() {
        let map = layout(5, 10).map().unwrap();
        assert!(leaders_per_node(&map).values().all(|count| *count == 2));
        for node in map.nodes.keys() {
            assert_eq!(map.replicas_on(*node).len(), 6, "node {node}");
        }
    }

    #[test]
    fn fewer_nodes_than_replicas_and_one_shard_work() {
        let mut one = layout(1, 1);
        one.replication = 3;
        let map = one.map().unwrap();
        assert_eq!(map.shards[&GroupId(1)].replicas.len(), 1);
        assert_eq!(map.shards[&GroupId(1)].slots[0].to_string(), "0-16383");
    }

    #[test]
    fn out_of_bounds_layouts_are_refused() {
        assert_eq!(layout(3, 0).map(), Err(LayoutError::Shards));
        assert_eq!(layout(0, 3).map(), Err(LayoutError::Nodes));
        let mut stranger = layout(3, 3);
        stranger.creator = NodeId(9);
        assert_eq!(stranger.map(), Err(LayoutError::Creator(NodeId(9))));
        let mut unregistered = layout(3, 3);
        unregistered.registered.clear();
        assert_eq!(unregistered.map(), Err(LayoutError::Creator(NodeId(1))));
        let mut stray = layout(3, 3);
        stray.registered.insert(NodeId(7), first(7));
        assert_eq!(stray.map(), Err(LayoutError::Registered(NodeId(7))));
    }

    #[test]
    fn the_members_that_answered_start_registered_and_are_the_first_meta_voters() {
        let mut both = layout(3, 3);
        both.registered.insert(
            NodeId(3),
            Registration {
                token: 33,
                entry_format_max: 0,
            },
        );
        let map = both.map().unwrap();
        assert!(!map.nodes[&NodeId(2)].started());
        let third = &map.nodes[&NodeId(3)];
        assert_eq!((third.incarnation, third.registration), (1, 33));
        let voters: Vec<NodeId> = map.meta_voters().into_values().collect();
        assert_eq!(voters, [NodeId(1), NodeId(3)]);
        assert_eq!(map.cluster_version, 0, "the oldest binary's format");
    }
}
