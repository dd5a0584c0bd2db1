//! Maps for tests.

use std::collections::BTreeMap;

use polis_types::NodeId;

use crate::layout::Layout;
use crate::map::{ClusterMap, NodeAddrs};

/// Returns the first map of `nodes` nodes and `shards` shards of three
/// replicas, created by node 1.
pub fn map(nodes: u64, shards: usize) -> ClusterMap {
    map_with(nodes, shards, 3)
}

/// Returns the first map of `nodes` nodes and `shards` shards of
/// `replication` replicas, created by node 1.
pub fn map_with(nodes: u64, shards: usize, replication: usize) -> ClusterMap {
    let nodes: BTreeMap<NodeId, NodeAddrs> = (1..=nodes)
        .map(|id| {
            let addrs = NodeAddrs {
                peer: format!("127.0.0.1:{}", 7200 + id),
                resp: format!("127.0.0.1:{}", 7000 + id),
                admin: format!("127.0.0.1:{}", 7100 + id),
            };
            (NodeId(id), addrs)
        })
        .collect();
    Layout {
        cluster_id: 99,
        nodes,
        shards,
        replication,
        creator: NodeId(1),
        registered: crate::layout::creator_only(NodeId(1)),
    }
    .map()
    .expect("a valid layout")
}
