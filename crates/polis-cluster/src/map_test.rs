#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use super::*;
use crate::test_support::map;

#[test]
fn a_new_map_is_valid_and_every_slot_has_one_owner() {
    let map = map(3, 3);
    map.validate().unwrap();
    let view = MapView::new(map.clone());
    for number in [0u16, 5461, 5462, 10922, 10923, 16383] {
        let slot = Slot::new(number).unwrap();
        let owner = view.owner(slot).unwrap();
        assert!(owner.slots.iter().any(|range| range.contains(slot)));
    }
    assert_eq!(view.owner(Slot::new(0).unwrap()).unwrap().id, GroupId(1));
    assert_eq!(
        view.owner(Slot::new(16383).unwrap()).unwrap().id,
        GroupId(3)
    );
    assert_eq!(view.shard_index(GroupId(2)), Some(1));
}

/// A way to break a map, and words of the error it must give.
type Breakage = (Box<dyn Fn(&mut ClusterMap)>, &'static str);

#[test]
fn broken_maps_are_refused() {
    let good = map(3, 3);
    let cases: Vec<Breakage> = vec![
        (
            Box::new(|map| map.shards.get_mut(&GroupId(1)).unwrap().slots.clear()),
            "owned by no shard",
        ),
        (
            Box::new(|map| {
                let range = map.shards[&GroupId(1)].slots[0];
                map.shards
                    .get_mut(&GroupId(2))
                    .unwrap()
                    .slots
                    .insert(0, range);
            }),
            "owned by shards",
        ),
        (
            Box::new(|map| {
                let replica = map.shards[&GroupId(1)].replicas[0].replica;
                map.shards.get_mut(&GroupId(2)).unwrap().replicas[0].replica = replica;
            }),
            "used twice",
        ),
        (
            Box::new(|map| map.next_replica_id = 5),
            "not below the next id",
        ),
        (
            Box::new(|map| {
                let node = map.shards[&GroupId(1)].replicas[0].node;
                map.shards.get_mut(&GroupId(1)).unwrap().replicas[1].node = node;
            }),
            "two replicas on node",
        ),
        (
            Box::new(|map| map.shards.get_mut(&GroupId(1)).unwrap().preferred_leader = NodeId(9)),
            "hosts none of its replicas",
        ),
        (
            Box::new(|map| map.shards.get_mut(&GroupId(1)).unwrap().replicas[0].node = NodeId(9)),
            "not in the map",
        ),
    ];
    for (breakage, message) in cases {
        let mut broken = good.clone();
        breakage(&mut broken);
        let error = broken.validate().unwrap_err().to_string();
        assert!(
            error.contains(message),
            "expected {message:?}, got {error:?}"
        );
    }
}

#[test]
fn meta_voters_are_three_started_nodes_or_five_in_a_big_cluster() {
    let mut small = map(4, 3);
    assert_eq!(small.meta_voters().len(), 1, "only the creator has started");
    for node in small.nodes.values_mut() {
        node.incarnation = 1;
    }
    assert_eq!(small.meta_voters().len(), 3);
    assert_eq!(small.meta_learners().len(), 1);
    let mut big = map(6, 10);
    for node in big.nodes.values_mut() {
        node.incarnation = 1;
    }
    assert_eq!(big.meta_voters().len(), 5);
    assert_eq!(big.meta_learners().len(), 1);
}

#[test]
fn replicas_are_found_by_node_and_by_id() {
    let map = map(5, 10);
    let shard = &map.shards[&GroupId(4)];
    let replica = shard.replicas[1];
    assert_eq!(map.node_of(GroupId(4), replica.replica), Some(replica.node));
    assert_eq!(shard.replica_on(replica.node), Some(replica));
    let meta = map.nodes[&NodeId(2)].meta_replica;
    assert_eq!(map.node_of(META_GROUP, meta), Some(NodeId(2)));
    assert_eq!(map.resp_addr(NodeId(2)), Some("127.0.0.1:7002"));
}
