#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_types::{GroupId, NodeId, Slot, SlotRange};

use super::*;
use crate::change::MapChange;
use crate::test_support::map_with;
use crate::MigrationPhase;

fn range(start: u16, end: u16) -> SlotRange {
    SlotRange::new(Slot::new(start).unwrap(), Slot::new(end).unwrap()).unwrap()
}

fn loads(map: &ClusterMap, keys: &[u64]) -> BTreeMap<GroupId, ShardLoad> {
    map.shards
        .keys()
        .zip(keys)
        .map(|(shard, keys)| {
            let load = ShardLoad {
                keys: *keys,
                ..ShardLoad::default()
            };
            (*shard, load)
        })
        .collect()
}

fn keys_above(keys: u64) -> SplitAbove {
    SplitAbove {
        keys,
        ..SplitAbove::default()
    }
}

/// Returns the first map of `nodes` nodes and `shards` shards of
/// `replication` replicas, every node started.
fn started(nodes: u64, shards: usize, replication: usize) -> ClusterMap {
    let first = map_with(nodes, shards, replication);
    let registrations: Vec<MapChange> = (2..=nodes)
        .map(|node| MapChange::Register {
            node: NodeId(node),
            entry_format_max: 2,
            token: node,
        })
        .collect();
    apply(&first, &registrations)
}

/// Plans with every node of `map` alive.
fn plan_all(
    map: &ClusterMap,
    loads: &BTreeMap<GroupId, ShardLoad>,
    above: &SplitAbove,
) -> Option<Reshape> {
    plan(map, loads, above, &map.nodes.keys().copied().collect())
}

/// Applies `changes` and returns the next map.
fn apply(map: &ClusterMap, changes: &[MapChange]) -> ClusterMap {
    map.apply(map.version, changes).unwrap()
}

/// Carries `migration` through its switch and end.
fn finish_migrations(mut map: ClusterMap) -> ClusterMap {
    let ids: Vec<u64> = map.migrations.keys().copied().collect();
    for id in ids {
        map = apply(&map, &[MapChange::SwitchMigration { id, attempt: 0 }]);
        map = apply(
            &map,
            &[MapChange::EndMigration {
                id,
                cancelled: false,
            }],
        );
    }
    map
}

#[test]
fn a_shard_past_a_threshold_splits_its_upper_half_onto_the_emptiest_nodes() {
    // Four nodes, three shards of three replicas: node 4 holds none.
    let v1 = started(4, 3, 3);
    let planned = plan_all(&v1, &loads(&v1, &[10, 500, 10]), &keys_above(100)).unwrap();
    let Reshape::Split {
        shard,
        slots,
        nodes,
    } = planned.clone()
    else {
        panic!("a split, not {planned:?}");
    };
    assert_eq!(shard, GroupId(2));
    let owned = v1.shards[&GroupId(2)].slot_set();
    let moving = SlotSet::from_ranges(&slots);
    assert_eq!(moving.len(), owned.len() - owned.len() / 2);
    assert_eq!(
        moving.ranges().last().unwrap().end,
        owned.ranges().last().unwrap().end
    );
    assert_eq!(nodes.len(), 3);
    assert!(nodes.contains(&NodeId(4)), "{nodes:?}");
    assert_eq!(nodes[0], NodeId(4), "led from the node leading nothing");
    let alive = BTreeSet::from([NodeId(1), NodeId(2), NodeId(3)]);
    let Some(Reshape::Split { nodes: chosen, .. }) =
        plan(&v1, &loads(&v1, &[10, 500, 10]), &keys_above(100), &alive)
    else {
        panic!("a split");
    };
    assert!(!chosen.contains(&NodeId(4)), "node 4 is down: {chosen:?}");

    let v2 = apply(
        &v1,
        &[MapChange::SplitShard {
            shard,
            slots: slots.clone(),
            nodes: nodes.clone(),
        }],
    );
    let created = GroupId(4);
    let record = &v2.shards[&created];
    assert!(record.slots.is_empty(), "slots move by migration only");
    assert!(record.replicas.iter().all(|replica| replica.bootstrap));
    assert_eq!(record.preferred_leader, NodeId(4));
    assert_eq!(v2.next_shard_id, 5);
    let migration = v2.migrations.values().next().unwrap();
    assert_eq!(
        (migration.source, migration.target, migration.phase),
        (shard, created, MigrationPhase::Copying)
    );
    assert_eq!(
        plan_all(&v2, &loads(&v2, &[10, 500, 10, 0]), &keys_above(100)),
        None,
        "nothing else while a migration runs (and the new shard is in it)"
    );
    let v3 = finish_migrations(v2);
    assert_eq!(v3.shards[&created].slot_set(), moving);
}

#[test]
fn a_cancelled_split_leaves_an_empty_shard_that_is_retired() {
    let v1 = started(3, 2, 3);
    let v2 = apply(
        &v1,
        &[MapChange::SplitShard {
            shard: GroupId(1),
            slots: vec![range(0, 9)],
            nodes: vec![NodeId(2), NodeId(3)],
        }],
    );
    let id = *v2.migrations.keys().next().unwrap();
    let v3 = apply(
        &v2,
        &[MapChange::EndMigration {
            id,
            cancelled: true,
        }],
    );
    let planned = plan_all(&v3, &BTreeMap::new(), &SplitAbove::default());
    assert_eq!(planned, Some(Reshape::Retire { shard: GroupId(3) }));
    let v4 = apply(&v3, &[MapChange::RetireShard { shard: GroupId(3) }]);
    assert!(!v4.shards.contains_key(&GroupId(3)));
    // Its id is never handed out again.
    let v5 = apply(
        &v4,
        &[MapChange::SplitShard {
            shard: GroupId(1),
            slots: vec![range(0, 9)],
            nodes: vec![NodeId(1)],
        }],
    );
    assert!(v5.shards.contains_key(&GroupId(4)));
    assert!(!v5.shards.contains_key(&GroupId(3)));
}

#[test]
fn small_shards_merge_into_a_neighbour_down_to_the_count_the_cluster_began_with() {
    // Two shards at creation, split to three.
    let v1 = started(3, 2, 3);
    let v2 = finish_migrations(apply(
        &v1,
        &[MapChange::SplitShard {
            shard: GroupId(2),
            slots: vec![range(12_000, 16_383)],
            nodes: vec![NodeId(1), NodeId(2), NodeId(3)],
        }],
    ));
    assert_eq!(v2.shards.len(), 3);
    let above = keys_above(1_000);
    // Together past a quarter of the threshold: no merge (hysteresis).
    assert_eq!(plan_all(&v2, &loads(&v2, &[300, 100, 200]), &above), None);
    // Small enough: the emptiest (shard 2) merges into its neighbour, the
    // smaller of shards 1 and 3.
    let planned = plan_all(&v2, &loads(&v2, &[100, 10, 50]), &above);
    assert_eq!(
        planned,
        Some(Reshape::Merge {
            from: GroupId(2),
            into: GroupId(3)
        })
    );
    let v3 = apply(
        &v2,
        &[MapChange::BeginMigration {
            slots: v2.shards[&GroupId(2)].slots.clone(),
            target: GroupId(3),
        }],
    );
    let v4 = finish_migrations(v3);
    assert_eq!(
        plan_all(&v4, &loads(&v4, &[100, 0, 60]), &above),
        Some(Reshape::Retire { shard: GroupId(2) })
    );
    let v5 = apply(&v4, &[MapChange::RetireShard { shard: GroupId(2) }]);
    assert_eq!(v5.shards.len(), 2);
    assert_eq!(
        plan_all(&v5, &loads(&v5, &[0, 0]), &above),
        None,
        "never below the count at creation"
    );
}

#[test]
fn nothing_is_planned_without_thresholds_or_without_every_load() {
    let v1 = started(3, 3, 3);
    assert_eq!(
        plan_all(&v1, &loads(&v1, &[10, 10, 10]), &SplitAbove::default()),
        None
    );
    assert_eq!(
        plan_all(&v1, &loads(&v1, &[500, 10]), &keys_above(100)),
        None
    );
}

#[test]
fn bytes_and_write_rates_split_too() {
    let v1 = started(3, 2, 3);
    let mut load = loads(&v1, &[1, 1]);
    load.get_mut(&GroupId(1)).unwrap().bytes = 2_000;
    load.get_mut(&GroupId(2)).unwrap().writes_per_sec = 900.0;
    let above = SplitAbove {
        keys: 1_000,
        bytes: 1_000,
        writes_per_sec: 100,
    };
    let Some(Reshape::Split { shard, .. }) = plan_all(&v1, &load, &above) else {
        panic!("a split");
    };
    assert_eq!(shard, GroupId(2), "the fullest: 9x its write threshold");
}

#[test]
fn bad_splits_and_retirements_are_refused() {
    let v1 = started(3, 2, 2);
    let refused = |change: MapChange| match v1.apply(v1.version, &[change]) {
        Err(TxnError::Rejected(reason)) => reason,
        other => panic!("refused, not {other:?}"),
    };
    let split = |slots: Vec<SlotRange>, nodes: Vec<u64>| MapChange::SplitShard {
        shard: GroupId(1),
        slots,
        nodes: nodes.into_iter().map(NodeId).collect(),
    };
    assert!(refused(split(vec![range(0, 8191)], vec![1])).contains("but not all"));
    assert!(refused(split(vec![range(9000, 9001)], vec![1])).contains("does not own"));
    assert!(refused(split(vec![range(0, 1)], vec![])).contains("distinct"));
    assert!(refused(split(vec![range(0, 1)], vec![1, 1])).contains("distinct"));
    assert!(refused(split(vec![range(0, 1)], vec![9])).contains("not an active"));
    assert!(refused(MapChange::RetireShard { shard: GroupId(1) }).contains("owns slots"));
    assert!(refused(MapChange::RetireShard { shard: GroupId(7) }).contains("no shard"));
}
