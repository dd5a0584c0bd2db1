#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use super::*;
use crate::change::MapChange;
use crate::test_support::map;

fn ids(ids: &[u64]) -> BTreeSet<ReplicaId> {
    ids.iter().copied().map(ReplicaId).collect()
}

fn target(voters: &[(u64, u64)]) -> TargetMembers {
    TargetMembers {
        voters: voters
            .iter()
            .map(|(replica, node)| (ReplicaId(*replica), NodeId(*node)))
            .collect(),
        learners: BTreeMap::new(),
    }
}

#[test]
fn replacing_a_wiped_replica_adds_a_learner_then_swaps_the_voters() {
    // Replica 12 on node 2 was wiped; 20 replaces it.
    let mut current = CurrentMembers {
        voters: ids(&[11, 12, 13]),
        learners: BTreeSet::new(),
        joint: false,
        caught_up: ids(&[11, 13]),
    };
    let wanted = target(&[(11, 1), (20, 2), (13, 3)]);
    assert_eq!(
        next_membership_step(&current, &wanted),
        Some(MembershipStep::AddLearner {
            replica: ReplicaId(20),
            node: NodeId(2)
        })
    );
    current.learners = ids(&[20]);
    assert_eq!(
        next_membership_step(&current, &wanted),
        None,
        "the learner has not caught up yet"
    );
    current.caught_up.insert(ReplicaId(20));
    assert_eq!(
        next_membership_step(&current, &wanted),
        Some(MembershipStep::ChangeVoters(ids(&[11, 13, 20])))
    );
    current.joint = true;
    assert_eq!(
        next_membership_step(&current, &wanted),
        Some(MembershipStep::ChangeVoters(ids(&[11, 13, 20]))),
        "an interrupted change is finished first"
    );
    current = CurrentMembers {
        voters: ids(&[11, 13, 20]),
        learners: BTreeSet::new(),
        joint: false,
        caught_up: ids(&[11, 13, 20]),
    };
    assert_eq!(next_membership_step(&current, &wanted), None);
}

#[test]
fn the_meta_group_grows_to_three_voters_and_keeps_others_as_learners() {
    let mut map = map(4, 3);
    let current = CurrentMembers {
        voters: ids(&[1]),
        learners: BTreeSet::new(),
        joint: false,
        caught_up: ids(&[1]),
    };
    assert_eq!(next_membership_step(&current, &meta_target(&map)), None);
    for node in 2..=4 {
        map = map
            .apply(
                map.version,
                &[MapChange::Register {
                    node: NodeId(node),
                    entry_format_max: 1,
                    token: 0,
                }],
            )
            .unwrap();
    }
    let meta = meta_target(&map);
    assert_eq!(
        next_membership_step(&current, &meta),
        Some(MembershipStep::AddLearner {
            replica: ReplicaId(2),
            node: NodeId(2)
        })
    );
    let all_in = CurrentMembers {
        voters: ids(&[1]),
        learners: ids(&[2, 3, 4]),
        joint: false,
        caught_up: ids(&[1, 2, 3, 4]),
    };
    assert_eq!(
        next_membership_step(&all_in, &meta),
        Some(MembershipStep::ChangeVoters(ids(&[1, 2, 3])))
    );
    let stale_learner = CurrentMembers {
        voters: ids(&[1, 2, 3]),
        learners: ids(&[4, 77]),
        joint: false,
        caught_up: ids(&[1, 2, 3, 4]),
    };
    assert_eq!(
        next_membership_step(&stale_learner, &meta),
        Some(MembershipStep::RemoveLearners(ids(&[77])))
    );
}

#[test]
fn leaders_go_to_their_preferred_nodes_or_spread_over_the_live_ones() {
    let map = map(3, 3);
    let all: BTreeSet<NodeId> = (1..=3).map(NodeId).collect();
    let balanced: BTreeMap<GroupId, NodeId> = (1..=3)
        .map(|shard| (GroupId(shard), NodeId(shard)))
        .collect();
    assert!(leader_moves(&map, &balanced, &all).is_empty());

    // Node 1 died: its shard 1 went to node 2. Nothing to move while node 1
    // is down; once it is back, shard 1 goes home.
    let mut after_failover = balanced.clone();
    after_failover.insert(GroupId(1), NodeId(2));
    let without_1: BTreeSet<NodeId> = [NodeId(2), NodeId(3)].into();
    assert!(leader_moves(&map, &after_failover, &without_1).is_empty());
    assert_eq!(
        leader_moves(&map, &after_failover, &all),
        vec![LeaderMove {
            shard: GroupId(1),
            from: NodeId(2),
            to: NodeId(1)
        }]
    );

    // Both of node 1's shards piled on node 2 in a 6-shard cluster: one
    // moves to node 3 so the two live nodes lead three each.
    let map = crate::test_support::map(3, 6);
    let piled: BTreeMap<GroupId, NodeId> = [(1, 2), (2, 2), (3, 3), (4, 2), (5, 2), (6, 3)]
        .into_iter()
        .map(|(shard, node)| (GroupId(shard), NodeId(node)))
        .collect();
    let moves = leader_moves(&map, &piled, &without_1);
    let mut load: BTreeMap<NodeId, usize> = BTreeMap::new();
    for (shard, node) in &piled {
        let moved = moves.iter().find(|m| m.shard == *shard).map(|m| m.to);
        *load.entry(moved.unwrap_or(*node)).or_default() += 1;
    }
    assert_eq!(load[&NodeId(2)], 3, "{moves:?}");
    assert_eq!(load[&NodeId(3)], 3, "{moves:?}");
}

/// Applies `moves` to `leaders`.
fn after(moves: &[LeaderMove], leaders: &BTreeMap<GroupId, NodeId>) -> BTreeMap<GroupId, NodeId> {
    let mut leaders = leaders.clone();
    for planned in moves {
        assert_eq!(
            leaders.insert(planned.shard, planned.to),
            Some(planned.from)
        );
    }
    leaders
}

#[test]
fn an_even_spread_is_left_as_it_is_and_a_plan_is_done_in_one_go() {
    // 32 shards on 3 nodes, node 3 down: its shards went to nodes 1 and 2
    // in some order. Any 16/16 spread is even: nothing moves.
    let map = crate::test_support::map(3, 32);
    let without_3: BTreeSet<NodeId> = [NodeId(1), NodeId(2)].into();
    for seed in 0..20u64 {
        let leaders: BTreeMap<GroupId, NodeId> = map
            .shards
            .values()
            .enumerate()
            .map(|(at, shard)| {
                let leader = if shard.preferred_leader == NodeId(3) {
                    // Node 3's shards split between 1 and 2, in an order
                    // that differs per seed.
                    NodeId(1 + (at as u64 * 7 + seed) % 2)
                } else {
                    shard.preferred_leader
                };
                (shard.id, leader)
            })
            .collect();
        let moves = leader_moves(&map, &leaders, &without_3);
        let balanced = after(&moves, &leaders);
        let on_1 = balanced.values().filter(|node| **node == NodeId(1)).count();
        assert!(
            (15..=17).contains(&on_1),
            "seed {seed}: node 1 leads {on_1}"
        );
        assert!(
            leader_moves(&map, &balanced, &without_3).is_empty(),
            "seed {seed}: a second plan moved more"
        );
        // Shards that were already where the plan wants them stay put:
        // no move swaps two shards between the same pair of nodes.
        for planned in &moves {
            assert!(
                !moves
                    .iter()
                    .any(|other| other.from == planned.to && other.to == planned.from),
                "seed {seed}: {moves:?} trades shards"
            );
        }
    }
}

fn joined(map: &ClusterMap, node: u64) -> ClusterMap {
    let change = MapChange::Join {
        node: NodeId(node),
        addrs: crate::map::NodeAddrs {
            peer: format!("p{node}"),
            resp: format!("r{node}"),
            admin: format!("a{node}"),
        },
        entry_format_max: 2,
        token: node,
    };
    map.apply(map.version, &[change]).unwrap()
}

fn started(map: &ClusterMap) -> ClusterMap {
    let mut map = map.clone();
    for node in map.nodes.values_mut() {
        node.incarnation = node.incarnation.max(1);
    }
    map
}

fn alive(nodes: &[u64]) -> BTreeSet<NodeId> {
    nodes.iter().copied().map(NodeId).collect()
}

#[test]
fn replicas_move_to_a_new_node_until_no_two_nodes_differ_by_two() {
    // 3 nodes, 6 shards of 3 replicas: 6 replicas each. Two nodes join.
    let mut map = joined(&joined(&started(&map(3, 6)), 4), 5);
    let everyone = alive(&[1, 2, 3, 4, 5]);
    let mut moves = 0;
    while let Some(planned) = replica_move(&map, &everyone, &BTreeSet::new(), &BTreeMap::new()) {
        let shard = &map.shards[&planned.shard];
        assert!(shard.replica_on(planned.from).is_some());
        assert!(shard.replica_on(planned.to).is_none(), "{planned:?}");
        let change = MapChange::MoveReplica {
            shard: planned.shard,
            from: planned.from,
            to: planned.to,
        };
        map = map.apply(map.version, &[change]).unwrap();
        moves += 1;
        assert!(moves <= 18, "the plan does not converge");
    }
    let mut held: BTreeMap<NodeId, usize> = BTreeMap::new();
    for shard in map.shards.values() {
        for replica in &shard.replicas {
            *held.entry(replica.node).or_default() += 1;
        }
    }
    let (least, most) = (held.values().min().unwrap(), held.values().max().unwrap());
    assert!(most - least <= 1, "{held:?}");
    assert_eq!(held.values().sum::<usize>(), 18, "no replica lost or added");
    // 18 replicas over 5 nodes (4, 4, 4, 3, 3): each old node gives two.
    assert_eq!(moves, 6, "{held:?}");
    // The preferred leaders followed the moves and spread over the new
    // nodes too: 6 shards over 5 nodes, 1 or 2 each.
    let mut led: BTreeMap<NodeId, usize> = map.nodes.keys().map(|node| (*node, 0)).collect();
    for shard in map.shards.values() {
        assert!(shard.replica_on(shard.preferred_leader).is_some());
        *led.entry(shard.preferred_leader).or_default() += 1;
    }
    assert!(led.values().all(|count| (1..=2).contains(count)), "{led:?}");
}

#[test]
fn down_nodes_neither_give_nor_receive_and_an_even_cluster_moves_nothing() {
    let map = joined(&started(&map(3, 3)), 4);
    assert_eq!(
        replica_move(
            &started(&map),
            &alive(&[1, 2, 3]),
            &BTreeSet::new(),
            &BTreeMap::new()
        ),
        None
    );
    let planned = replica_move(
        &map,
        &alive(&[1, 2, 3, 4]),
        &BTreeSet::new(),
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(planned.to, NodeId(4));
    // Node 4 is down: nothing moves to it; node 1 down: nothing moves off.
    assert_eq!(
        replica_move(&map, &alive(&[1, 2, 3]), &BTreeSet::new(), &BTreeMap::new()),
        None
    );
    let from_down =
        replica_move(&map, &alive(&[2, 3, 4]), &BTreeSet::new(), &BTreeMap::new()).unwrap();
    assert_ne!(from_down.from, NodeId(1));
}

#[test]
fn the_replicas_of_a_gone_node_are_rebuilt_on_the_emptiest_live_nodes() {
    // 4 nodes, 3 shards: shard 1 on 1 2 3, shard 2 on 2 3 4, shard 3 on 3 4 1.
    let mut map = started(&map(4, 3));
    let live = alive(&[1, 2, 3]);
    let gone = alive(&[4]);
    let mut moves = Vec::new();
    while let Some(planned) = replica_move(&map, &live, &gone, &BTreeMap::new()) {
        assert_eq!(planned.from, NodeId(4), "{planned:?}");
        moves.push((planned.shard, planned.to));
        let change = MapChange::MoveReplica {
            shard: planned.shard,
            from: planned.from,
            to: planned.to,
        };
        map = map.apply(map.version, &[change]).unwrap();
        assert!(moves.len() <= 2, "{moves:?}");
    }
    assert_eq!(
        moves,
        [(GroupId(2), NodeId(1)), (GroupId(3), NodeId(2))],
        "each to the live node holding fewest, not holding the shard"
    );
    assert!(map.replicas_on(NodeId(4)).is_empty());
}

#[test]
fn a_leaving_node_is_drained_first_receives_nothing_and_is_then_removed() {
    // 4 nodes, 3 shards: shard 1 on 1 2 3, shard 2 on 2 3 4, shard 3 on 3 4 1.
    let map = started(&map(4, 3));
    let everyone = alive(&[1, 2, 3, 4]);
    let refused = map.apply(map.version, &[MapChange::NodeDrained { node: NodeId(4) }]);
    assert!(refused.is_err(), "only a leaving node is drained");
    let mut map = map
        .apply(map.version, &[MapChange::RemoveNode { node: NodeId(4) }])
        .unwrap();
    assert!(
        map.shards
            .values()
            .all(|shard| shard.preferred_leader != NodeId(4)),
        "its leaderships go first"
    );
    assert!(!map.meta_voters().values().any(|node| *node == NodeId(4)));
    let mut moves = 0;
    while let Some(planned) = replica_move(&map, &everyone, &BTreeSet::new(), &BTreeMap::new()) {
        assert_eq!(planned.from, NodeId(4), "{planned:?}");
        assert_ne!(planned.to, NodeId(4));
        let still = map.apply(map.version, &[MapChange::NodeDrained { node: NodeId(4) }]);
        assert!(still.is_err(), "removed while it holds replicas");
        let change = MapChange::MoveReplica {
            shard: planned.shard,
            from: planned.from,
            to: planned.to,
        };
        map = map.apply(map.version, &[change]).unwrap();
        moves += 1;
        assert!(moves <= 2, "the drain does not converge");
    }
    assert_eq!(moves, 2);
    let map = map
        .apply(map.version, &[MapChange::NodeDrained { node: NodeId(4) }])
        .unwrap();
    assert!(map.nodes[&NodeId(4)].removed());
    assert!(!map.meta_learners().values().any(|node| *node == NodeId(4)));
    // Nothing moves to a removed node, and it cannot come back.
    assert_eq!(
        replica_move(&map, &everyone, &BTreeSet::new(), &BTreeMap::new()),
        None
    );
    let back = MapChange::Register {
        node: NodeId(4),
        entry_format_max: 2,
        token: 99,
    };
    let error = map.apply(map.version, &[back]).unwrap_err();
    assert!(error.to_string().contains("was removed"), "{error}");
}

#[test]
fn a_removal_that_would_leave_too_few_nodes_for_the_replicas_is_refused() {
    let map = started(&map(3, 3));
    let error = map
        .apply(map.version, &[MapChange::RemoveNode { node: NodeId(2) }])
        .unwrap_err();
    assert!(error.to_string().contains("add a node first"), "{error}");
    let error = map
        .apply(map.version, &[MapChange::RemoveNode { node: NodeId(9) }])
        .unwrap_err();
    assert!(error.to_string().contains("no node 9"), "{error}");
    // With one replica per shard, removing down to one node is allowed,
    // the last one is not.
    let single = started(&crate::test_support::map_with(2, 2, 1));
    let one = single
        .apply(single.version, &[MapChange::RemoveNode { node: NodeId(1) }])
        .unwrap();
    let error = one
        .apply(one.version, &[MapChange::RemoveNode { node: NodeId(2) }])
        .unwrap_err();
    assert!(error.to_string().contains("last active node"), "{error}");
}

/// Applies replica moves until none is due; returns the map and the
/// number of moves.
fn settle(mut map: ClusterMap, sizes: &BTreeMap<GroupId, u64>) -> (ClusterMap, usize) {
    let everyone: BTreeSet<NodeId> = map.nodes.keys().copied().collect();
    let mut moves = 0;
    while let Some(planned) = replica_move(&map, &everyone, &BTreeSet::new(), sizes) {
        let change = MapChange::MoveReplica {
            shard: planned.shard,
            from: planned.from,
            to: planned.to,
        };
        map = map.apply(map.version, &[change]).unwrap();
        moves += 1;
        assert!(moves <= 40, "the plan does not converge");
    }
    (map, moves)
}

/// Returns (replicas, bytes) per node.
fn loads(map: &ClusterMap, sizes: &BTreeMap<GroupId, u64>) -> BTreeMap<NodeId, (usize, u64)> {
    let mut loads: BTreeMap<NodeId, (usize, u64)> = BTreeMap::new();
    for shard in map.shards.values() {
        for replica in &shard.replicas {
            let load = loads.entry(replica.node).or_default();
            load.0 += 1;
            load.1 += sizes[&shard.id];
        }
    }
    loads
}

fn spreads(map: &ClusterMap, sizes: &BTreeMap<GroupId, u64>) -> (usize, u64) {
    let loads = loads(map, sizes);
    let counts = loads.values().map(|load| load.0);
    let bytes = loads.values().map(|load| load.1);
    (
        counts.clone().max().unwrap() - counts.min().unwrap(),
        bytes.clone().max().unwrap() - bytes.min().unwrap(),
    )
}

#[test]
fn replicas_even_out_bytes_too_and_the_moves_end() {
    const GIB: u64 = 1 << 30;
    let map = joined(&joined(&started(&map(3, 6)), 4), 5);
    // Two large shards and four small ones.
    let sizes: BTreeMap<GroupId, u64> = map
        .shards
        .keys()
        .enumerate()
        .map(|(index, shard)| (*shard, if index < 2 { 8 * GIB } else { GIB }))
        .collect();
    let zero: BTreeMap<GroupId, u64> = sizes.keys().map(|shard| (*shard, 0)).collect();
    let (by_count, _) = settle(map.clone(), &zero);
    let (by_bytes, moves) = settle(map, &sizes);
    let (count_spread, count_only_bytes) = spreads(&by_count, &sizes);
    let (count_spread_too, bytes_spread) = spreads(&by_bytes, &sizes);
    eprintln!(
        "counts alone: {count_only_bytes} bytes apart; with sizes: {bytes_spread} apart, {moves} moves; {:?}",
        loads(&by_bytes, &sizes)
    );
    assert!(
        count_spread <= 1 && count_spread_too <= 1,
        "counts stay even"
    );
    assert!(bytes_spread < count_only_bytes, "bytes are evened out");
    // Settled: nothing more is due, even asked again.
    let everyone: BTreeSet<NodeId> = by_bytes.nodes.keys().copied().collect();
    assert_eq!(
        replica_move(&by_bytes, &everyone, &BTreeSet::new(), &sizes),
        None
    );
}

#[test]
fn small_byte_differences_move_nothing() {
    let map = joined(&joined(&started(&map(3, 6)), 4), 5);
    let (even, _) = settle(map, &BTreeMap::new());
    // One shard 60 MiB larger than the rest: below the spread that moves.
    let sizes: BTreeMap<GroupId, u64> = even
        .shards
        .keys()
        .enumerate()
        .map(|(index, shard)| (*shard, if index == 0 { 61 << 20 } else { 1 << 20 }))
        .collect();
    let everyone: BTreeSet<NodeId> = even.nodes.keys().copied().collect();
    assert_eq!(
        replica_move(&even, &everyone, &BTreeSet::new(), &sizes),
        None
    );
}

#[test]
fn once_counts_are_even_a_replica_moves_for_bytes_alone() {
    const GIB: u64 = 1 << 30;
    let map = joined(&joined(&started(&map(3, 6)), 4), 5);
    let (even, _) = settle(map, &BTreeMap::new());
    // Shards of 1 to 6 GiB, placed as the counts alone placed them.
    let sizes: BTreeMap<GroupId, u64> = even
        .shards
        .keys()
        .enumerate()
        .map(|(index, shard)| (*shard, (index as u64 + 1) * GIB))
        .collect();
    let squares = |map: &ClusterMap| -> u128 {
        loads(map, &sizes)
            .values()
            .map(|load| u128::from(load.1 / GIB).pow(2))
            .sum()
    };
    let (balanced, moves) = settle(even.clone(), &sizes);
    eprintln!(
        "{moves} moves: {:?} -> {:?}",
        loads(&even, &sizes),
        loads(&balanced, &sizes)
    );
    assert!(moves >= 1, "uneven bytes moved nothing");
    assert!(spreads(&balanced, &sizes).0 <= 1, "counts stay even");
    assert!(spreads(&balanced, &sizes).1 < spreads(&even, &sizes).1);
    assert!(squares(&balanced) < squares(&even));
}
