#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_types::{ReplicaId, Slot, SlotRange};

use super::*;
use crate::map::ShardReplica;
use crate::test_support::map;

fn register(node: u64) -> MapChange {
    MapChange::Register {
        node: NodeId(node),
        entry_format_max: 1,
        token: 0,
    }
}

#[test]
fn versions_only_grow_and_a_stale_transaction_conflicts() {
    let v1 = map(3, 3);
    let v2 = v1.apply(1, &[register(2)]).unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(
        v2.apply(1, &[register(3)]),
        Err(TxnError::Conflict {
            expected: 1,
            current: 2
        })
    );
    let v3 = v2.apply(2, &[register(3)]).unwrap();
    assert_eq!(v3.version, 3);
    assert!(v3.nodes.values().all(|node| node.started()));
}

#[test]
fn a_first_registration_keeps_the_replicas_and_a_later_one_replaces_them() {
    let v1 = map(3, 3);
    let v2 = v1.apply(1, &[register(2)]).unwrap();
    assert_eq!(v2.nodes[&NodeId(2)].incarnation, 1);
    assert_eq!(v2.replicas_on(NodeId(2)), v1.replicas_on(NodeId(2)));
    assert_eq!(v2.next_replica_id, v1.next_replica_id);

    // Node 2 comes back with empty storage: every replica it had gets a
    // new id, none reused, and joins instead of bootstrapping.
    let v3 = v2.apply(2, &[register(2)]).unwrap();
    assert_eq!(v3.nodes[&NodeId(2)].incarnation, 2);
    let old: Vec<ReplicaId> = v2
        .replicas_on(NodeId(2))
        .iter()
        .map(|(_, replica)| replica.replica)
        .chain([v2.nodes[&NodeId(2)].meta_replica])
        .collect();
    let new: Vec<ReplicaId> = v3
        .replicas_on(NodeId(2))
        .iter()
        .map(|(_, replica)| replica.replica)
        .chain([v3.nodes[&NodeId(2)].meta_replica])
        .collect();
    assert_eq!(old.len(), new.len());
    for replica in &new {
        assert!(!old.contains(replica), "replica {replica} reused");
        assert!(replica.get() >= v2.next_replica_id);
    }
    assert!(v3
        .replicas_on(NodeId(2))
        .iter()
        .all(|(_, replica)| !replica.bootstrap));
    // Other nodes keep theirs.
    let replicas_of_3 = |map: &ClusterMap| -> Vec<ShardReplica> {
        map.replicas_on(NodeId(3))
            .into_iter()
            .map(|(_, replica)| replica)
            .collect()
    };
    assert_eq!(replicas_of_3(&v3), replicas_of_3(&v2));
}

#[test]
fn changes_that_do_not_fit_are_rejected_and_nothing_applies() {
    let v1 = map(3, 3);
    let unknown = v1.apply(1, &[register(9)]).unwrap_err();
    assert!(matches!(unknown, TxnError::Rejected(_)));
    let old_binary = MapChange::Register {
        node: NodeId(2),
        entry_format_max: 0,
        token: 0,
    };
    assert!(matches!(
        v1.apply(1, &[old_binary]),
        Err(TxnError::Rejected(message)) if message.contains("same polis version")
    ));
    let elsewhere = MapChange::SetPreferredLeader {
        shard: GroupId(1),
        node: NodeId(9),
    };
    assert!(v1.apply(1, &[register(2), elsewhere]).is_err());
    let down = MapChange::RaiseClusterVersion { to: 0 };
    assert!(
        v1.apply(1, &[down]).is_err(),
        "the cluster version never goes down"
    );
}

#[test]
fn assigning_slots_moves_ownership_and_bumps_the_owners_versions() {
    let v1 = map(3, 3);
    let range = SlotRange::new(Slot::new(0).unwrap(), Slot::new(99).unwrap()).unwrap();
    let v2 = v1
        .apply(
            1,
            &[MapChange::AssignSlots {
                shard: GroupId(2),
                slots: vec![range],
            }],
        )
        .unwrap();
    let view = crate::map::MapView::new(v2.clone());
    assert_eq!(view.owner(Slot::new(50).unwrap()).unwrap().id, GroupId(2));
    assert_eq!(view.owner(Slot::new(100).unwrap()).unwrap().id, GroupId(1));
    assert_eq!(v2.shards[&GroupId(1)].slots_version, 2);
    assert_eq!(v2.shards[&GroupId(2)].slots_version, 2);
    assert_eq!(v2.shards[&GroupId(3)].slots_version, 1, "untouched");
}

#[test]
fn registering_again_with_the_same_token_changes_nothing() {
    let v1 = map(3, 3);
    let with_token = |token| MapChange::Register {
        node: NodeId(2),
        entry_format_max: 1,
        token,
    };
    let v2 = v1.apply(1, &[with_token(77)]).unwrap();
    let v3 = v2.apply(2, &[with_token(77)]).unwrap();
    assert_eq!(
        v3.nodes[&NodeId(2)],
        v2.nodes[&NodeId(2)],
        "one registration"
    );
    assert_eq!(v3.shards, v2.shards);
    let v4 = v3.apply(3, &[with_token(78)]).unwrap();
    assert_eq!(
        v4.nodes[&NodeId(2)].incarnation,
        2,
        "another token: a new incarnation"
    );
    assert_ne!(
        v4.nodes[&NodeId(2)].meta_replica,
        v3.nodes[&NodeId(2)].meta_replica
    );
}
