#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_types::{ReplicaId, Slot, SlotRange};

use super::*;
use crate::map::{NodeAddrs, ShardReplica};
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

#[test]
fn a_restart_on_another_binary_records_its_entry_formats_only() {
    let v1 = map(3, 3);
    let with_formats = |entry_format_max| MapChange::Register {
        node: NodeId(2),
        entry_format_max,
        token: 77,
    };
    let v2 = v1.apply(1, &[with_formats(1)]).unwrap();
    let v3 = v2.apply(2, &[with_formats(4)]).unwrap();
    let (before, after) = (&v2.nodes[&NodeId(2)], &v3.nodes[&NodeId(2)]);
    assert_eq!(after.entry_format_max, 4);
    assert_eq!(
        after.incarnation, before.incarnation,
        "the same incarnation"
    );
    assert_eq!(after.meta_replica, before.meta_replica, "the same replicas");
    assert_eq!(v3.shards, v2.shards);
    let mut raised = v3.clone();
    raised.cluster_version = 4;
    let error = raised.apply(3, &[with_formats(3)]).unwrap_err();
    assert!(error.to_string().contains("entry format 3"), "{error}");
}

fn join(node: u64, token: u64) -> MapChange {
    MapChange::Join {
        node: NodeId(node),
        addrs: NodeAddrs {
            peer: format!("127.0.0.1:{}", 9200 + node),
            resp: format!("127.0.0.1:{}", 9000 + node),
            admin: format!("127.0.0.1:{}", 9100 + node),
        },
        entry_format_max: 2,
        token,
    }
}

#[test]
fn a_joining_node_gets_a_record_and_a_new_meta_replica_but_no_shard_replica() {
    let v1 = map(3, 3).apply(1, &[register(2), register(3)]).unwrap();
    let v2 = v1.apply(v1.version, &[join(4, 44)]).unwrap();
    let record = &v2.nodes[&NodeId(4)];
    assert_eq!((record.incarnation, record.registration), (1, 44));
    assert_eq!(record.meta_replica, ReplicaId(v1.next_replica_id));
    assert_eq!(v2.next_replica_id, v1.next_replica_id + 1);
    assert!(v2.replicas_on(NodeId(4)).is_empty());
    assert_eq!(v2.shards, v1.shards, "no shard changes");
    // Four nodes keep three meta voters; the fourth follows as a learner.
    assert!(v2
        .meta_learners()
        .contains_key(&v2.nodes[&NodeId(4)].meta_replica));
    // The same join again (its answer was lost) changes nothing.
    let v3 = v2.apply(v2.version, &[join(4, 44)]).unwrap();
    assert_eq!(v3.nodes, v2.nodes);
    assert_eq!(v3.next_replica_id, v2.next_replica_id);
}

#[test]
fn a_join_with_a_taken_id_or_address_or_an_old_binary_is_refused() {
    let v1 = map(3, 3);
    let taken = v1.apply(1, &[join(2, 7)]).unwrap_err();
    assert!(taken.to_string().contains("node id 2 is taken"), "{taken}");
    let MapChange::Join {
        node, mut addrs, ..
    } = join(4, 44)
    else {
        unreachable!()
    };
    addrs.resp = v1.nodes[&NodeId(3)].addrs.resp.clone();
    let clash = MapChange::Join {
        node,
        addrs,
        entry_format_max: 2,
        token: 44,
    };
    let error = v1.apply(1, &[clash]).unwrap_err();
    assert!(error.to_string().contains("node 3 already uses"), "{error}");
    let mut newer = v1.clone();
    newer.cluster_version = 3;
    let error = newer.apply(1, &[join(4, 44)]).unwrap_err();
    assert!(error.to_string().contains("entry format 2"), "{error}");
}

#[test]
fn a_join_needs_entry_format_2_and_the_rest_format_1() {
    assert_eq!(join(4, 1).format(), EntryFormat::V2);
    assert_eq!(register(2).format(), EntryFormat::V1);
}

fn eventual(prefix: &'static str, replicas: u8) -> crate::namespace::Namespace {
    crate::namespace::Namespace {
        prefix: bytes::Bytes::from_static(prefix.as_bytes()),
        consistency: crate::namespace::Consistency::Eventual,
        quorums: Some(crate::namespace::Quorums {
            replicas,
            write: 1,
            read: 1,
        }),
    }
}

#[test]
fn namespaces_are_set_replaced_and_removed_at_entry_format_6() {
    let map = map(3, 3);
    let set = MapChange::SetNamespace(eventual("stock:", 3));
    assert_eq!(set.format(), EntryFormat::V6);
    let next = map.apply(map.version, &[set]).unwrap();
    assert_eq!(
        next.namespaces.consistency(b"stock:1"),
        crate::namespace::Consistency::Eventual
    );
    let replaced = next
        .apply(
            next.version,
            &[MapChange::SetNamespace(eventual("stock:", 2))],
        )
        .unwrap();
    assert_eq!(replaced.namespaces.iter().count(), 1);
    assert_eq!(
        replaced
            .namespaces
            .lookup(b"stock:1")
            .unwrap()
            .quorums
            .unwrap()
            .replicas,
        2
    );
    let remove = MapChange::RemoveNamespace {
        prefix: bytes::Bytes::from_static(b"stock:"),
    };
    assert_eq!(remove.format(), EntryFormat::V6);
    let removed = replaced
        .apply(replaced.version, std::slice::from_ref(&remove))
        .unwrap();
    assert_eq!(removed.namespaces.iter().count(), 0);
    let error = removed.apply(removed.version, &[remove]).unwrap_err();
    assert!(
        error.to_string().contains("no namespace has the prefix"),
        "{error}"
    );
}

#[test]
fn a_namespace_may_not_ask_more_replicas_than_a_shard_keeps() {
    let map = map(3, 3);
    let error = map
        .apply(
            map.version,
            &[MapChange::SetNamespace(eventual("stock:", 4))],
        )
        .unwrap_err();
    assert!(
        error.to_string().contains("more than the 3 replicas"),
        "{error}"
    );
    let error = map
        .apply(
            map.version,
            &[MapChange::SetNamespace(crate::namespace::Namespace {
                quorums: None,
                ..eventual("stock:", 3)
            })],
        )
        .unwrap_err();
    assert!(error.to_string().contains("needs --replicas"), "{error}");
}

#[test]
fn cache_limits_go_with_a_strong_namespace_at_entry_format_7() {
    use crate::namespace::{CacheLimits, Consistency, Namespace};
    let map = map(3, 3);
    let prefix = bytes::Bytes::from_static(b"cache:");
    let strong = Namespace {
        prefix: prefix.clone(),
        consistency: Consistency::Strong,
        quorums: None,
    };
    let limits = CacheLimits {
        maxmemory_bytes: 64 << 20,
        policy: polis_types::EvictionPolicy::AllKeysLfu,
    };
    let cache = MapChange::SetNamespaceCache {
        prefix: prefix.clone(),
        limits: Some(limits),
    };
    assert_eq!(cache.format(), EntryFormat::V7);
    let error = map
        .apply(map.version, std::slice::from_ref(&cache))
        .unwrap_err();
    assert!(
        error.to_string().contains("set the namespace first"),
        "{error}"
    );
    let cached = map
        .apply(
            map.version,
            &[MapChange::SetNamespace(strong.clone()), cache.clone()],
        )
        .unwrap();
    assert_eq!(cached.namespaces.cache(b"cache:"), Some(limits));
    assert_eq!(cached.namespaces.caches().count(), 1);
    // Setting the namespace again, without limits, lifts them.
    let plain = cached
        .apply(cached.version, &[MapChange::SetNamespace(strong)])
        .unwrap();
    assert_eq!(plain.namespaces.cache(b"cache:"), None);
    // An eventual namespace takes none; removing a namespace drops them.
    let error = map
        .apply(
            map.version,
            &[
                MapChange::SetNamespace(eventual("cache:", 3)),
                cache.clone(),
            ],
        )
        .unwrap_err();
    assert!(
        error.to_string().contains("for strong namespaces"),
        "{error}"
    );
    let removed = cached
        .apply(
            cached.version,
            &[MapChange::RemoveNamespace {
                prefix: prefix.clone(),
            }],
        )
        .unwrap();
    assert_eq!(removed.namespaces.cache(b"cache:"), None);
    let zero = MapChange::SetNamespaceCache {
        prefix,
        limits: Some(CacheLimits {
            maxmemory_bytes: 0,
            ..limits
        }),
    };
    let error = cached.apply(cached.version, &[zero]).unwrap_err();
    assert!(error.to_string().contains("above 0"), "{error}");
}
