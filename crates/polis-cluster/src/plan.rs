//! Pure planning: the next membership step that brings a group to the
//! members the map wants, and the leader moves that spread leadership
//! evenly over the nodes. The node carries the steps out, one per group at
//! a time; these functions only decide.

use std::collections::{BTreeMap, BTreeSet};

use polis_types::{GroupId, NodeId, ReplicaId};

use crate::map::{ClusterMap, NodeState};

/// A group's members as its membership log says, as its leader sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentMembers {
    pub voters: BTreeSet<ReplicaId>,
    pub learners: BTreeSet<ReplicaId>,
    /// A change is under way (joint consensus).
    pub joint: bool,
    /// Members holding (nearly) the leader's whole log.
    pub caught_up: BTreeSet<ReplicaId>,
}

/// The members the map wants a group to have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetMembers {
    pub voters: BTreeMap<ReplicaId, NodeId>,
    pub learners: BTreeMap<ReplicaId, NodeId>,
}

/// One membership step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipStep {
    /// Add the replica on the node as a learner and let it catch up.
    AddLearner { replica: ReplicaId, node: NodeId },
    /// Make these the voters; voters not among them leave the group.
    ChangeVoters(BTreeSet<ReplicaId>),
    /// Remove these learners.
    RemoveLearners(BTreeSet<ReplicaId>),
}

/// Returns the next step toward `target`, or `None` when the group has
/// its target members (or must wait). Replicas enter as learners first and
/// become voters only once every new voter has caught up with the leader,
/// so a change never makes the group wait for a replica that is not there
/// (a voter that never comes would stall it); an interrupted change (joint
/// consensus) is finished first.
pub fn next_membership_step(
    current: &CurrentMembers,
    target: &TargetMembers,
) -> Option<MembershipStep> {
    let target_voters: BTreeSet<ReplicaId> = target.voters.keys().copied().collect();
    if target_voters.is_empty() {
        return None;
    }
    if current.joint {
        return Some(MembershipStep::ChangeVoters(target_voters));
    }
    let members: BTreeSet<ReplicaId> = current.voters.union(&current.learners).copied().collect();
    if let Some((replica, node)) = target
        .voters
        .iter()
        .chain(target.learners.iter())
        .find(|(replica, _)| !members.contains(replica))
    {
        return Some(MembershipStep::AddLearner {
            replica: *replica,
            node: *node,
        });
    }
    if current.voters != target_voters {
        let ready = target_voters
            .iter()
            .all(|replica| current.voters.contains(replica) || current.caught_up.contains(replica));
        return ready.then_some(MembershipStep::ChangeVoters(target_voters));
    }
    let extra: BTreeSet<ReplicaId> = current
        .learners
        .iter()
        .filter(|replica| !target.learners.contains_key(replica))
        .copied()
        .collect();
    if !extra.is_empty() {
        return Some(MembershipStep::RemoveLearners(extra));
    }
    None
}

/// Returns the members the map wants the meta group to have.
pub fn meta_target(map: &ClusterMap) -> TargetMembers {
    TargetMembers {
        voters: map.meta_voters(),
        learners: map.meta_learners(),
    }
}

/// Returns the members the map wants shard `shard` to have: its replicas
/// on started nodes, every one a voter (a replica of a node that has not
/// started yet cannot catch up; the bootstrap replicas are members from
/// the start anyway).
pub fn shard_target(map: &ClusterMap, shard: GroupId) -> TargetMembers {
    let Some(record) = map.shards.get(&shard) else {
        return TargetMembers::default();
    };
    let voters = record
        .replicas
        .iter()
        .filter(|replica| {
            replica.bootstrap || map.node(replica.node).is_some_and(|node| node.started())
        })
        .map(|replica| (replica.replica, replica.node))
        .collect();
    TargetMembers {
        voters,
        learners: BTreeMap::new(),
    }
}

/// Moving one shard replica from one node to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaMove {
    pub shard: GroupId,
    pub from: NodeId,
    pub to: NodeId,
}

/// Bytes two nodes' replicas may differ by, at least, before replicas
/// move to even them out (besides a tenth of the mean per node): smaller
/// differences are not worth the copy.
pub const BYTES_SPREAD_MIN: u64 = 64 << 20;

/// Returns the next replica move, if one is due. First, a replica on a
/// leaving node, or on a node taken for `gone`, is moved (rebuilt) to the
/// live active node holding the fewest replicas (of those not holding its
/// shard); a leaving node's first, since its removal waits on them. Then
/// the replicas are evened out: from the live node holding the most to
/// the live, active node holding the fewest (of a shard it does not hold
/// yet), when the two differ by two or more; a difference of one is as
/// even as it gets. Of the shards that could go, the one that best evens
/// the two nodes' bytes goes (`sizes`: each shard's bytes). Last, the
/// bytes are evened out (see [`bytes_move`]). Nodes that are not `alive`
/// neither give nor receive in the evening out.
pub fn replica_move(
    map: &ClusterMap,
    alive: &BTreeSet<NodeId>,
    gone: &BTreeSet<NodeId>,
    sizes: &BTreeMap<GroupId, u64>,
) -> Option<ReplicaMove> {
    let mut held: BTreeMap<NodeId, usize> = map
        .nodes
        .values()
        .filter(|node| node.active() && alive.contains(&node.id))
        .map(|node| (node.id, 0))
        .collect();
    for shard in map.shards.values() {
        for replica in &shard.replicas {
            if let Some(count) = held.get_mut(&replica.node) {
                *count += 1;
            }
        }
    }
    let leaving = |node: &NodeId| {
        map.node(*node)
            .is_some_and(|record| record.state == NodeState::Leaving)
    };
    let draining = map
        .nodes
        .keys()
        .filter(|node| leaving(node))
        .chain(gone.iter().filter(|node| !leaving(node)));
    for from in draining {
        for shard in map.shards.values() {
            if shard.replica_on(*from).is_none() {
                continue;
            }
            let to = held
                .iter()
                .filter(|(node, _)| shard.replica_on(**node).is_none())
                .min_by_key(|(node, count)| (**count, **node));
            if let Some((to, _)) = to {
                return Some(ReplicaMove {
                    shard: shard.id,
                    from: *from,
                    to: *to,
                });
            }
        }
    }
    let bytes = node_bytes(map, &held, sizes);
    let size = |shard: GroupId| sizes.get(&shard).copied().unwrap_or(0);
    let mut givers: Vec<(NodeId, usize)> = held.iter().map(|(node, n)| (*node, *n)).collect();
    givers.sort_by_key(|(node, count)| (std::cmp::Reverse(*count), *node));
    let (to, fewest) = held
        .iter()
        .map(|(node, count)| (*node, *count))
        .min_by_key(|(node, count)| (*count, *node))?;
    let by_count = givers
        .into_iter()
        .take_while(|(_, count)| *count >= fewest + 2)
        .find_map(|(from, _)| {
            // The shard after which the two nodes' bytes differ least.
            let spread = |shard: GroupId| bytes[&from].abs_diff(bytes[&to] + 2 * size(shard));
            map.shards
                .values()
                .filter(|shard| shard.replica_on(from).is_some() && shard.replica_on(to).is_none())
                .min_by_key(|shard| (spread(shard.id), shard.id))
                .map(|shard| ReplicaMove {
                    shard: shard.id,
                    from,
                    to,
                })
        });
    by_count.or_else(|| bytes_move(map, &held, &bytes, sizes))
}

/// The bytes of the replicas each of `held`'s nodes holds.
fn node_bytes(
    map: &ClusterMap,
    held: &BTreeMap<NodeId, usize>,
    sizes: &BTreeMap<GroupId, u64>,
) -> BTreeMap<NodeId, u64> {
    let mut bytes: BTreeMap<NodeId, u64> = held.keys().map(|node| (*node, 0)).collect();
    for shard in map.shards.values() {
        let size = sizes.get(&shard.id).copied().unwrap_or(0);
        for replica in &shard.replicas {
            if let Some(total) = bytes.get_mut(&replica.node) {
                *total += size;
            }
        }
    }
    bytes
}

/// Evens out bytes once the counts are even: a replica moves from the
/// node holding the most bytes to the one holding the fewest when they
/// differ by more than [`BYTES_SPREAD_MIN`] and a tenth of the mean, the
/// heavier holds more replicas than the lighter (so the counts stay
/// even), and the move narrows the difference by as much again: the
/// hysteresis that keeps it from flapping. Each such move lowers the sum
/// of the squared bytes per node by a bounded amount, and no count move
/// follows it, so the moves end.
fn bytes_move(
    map: &ClusterMap,
    held: &BTreeMap<NodeId, usize>,
    bytes: &BTreeMap<NodeId, u64>,
    sizes: &BTreeMap<GroupId, u64>,
) -> Option<ReplicaMove> {
    let (heavy, most) = bytes
        .iter()
        .max_by_key(|(node, total)| (**total, std::cmp::Reverse(**node)))?;
    let (light, least) = bytes.iter().min_by_key(|(node, total)| (**total, **node))?;
    let spread = most - least;
    let mean = bytes.values().sum::<u64>() / bytes.len() as u64;
    let margin = (mean / 10).max(BYTES_SPREAD_MIN);
    if spread <= margin || held[heavy] <= held[light] {
        return None;
    }
    map.shards
        .values()
        .filter(|shard| shard.replica_on(*heavy).is_some() && shard.replica_on(*light).is_none())
        .map(|shard| {
            let size = sizes.get(&shard.id).copied().unwrap_or(0);
            (spread.abs_diff(2 * size), shard.id)
        })
        .filter(|(left, _)| left + margin <= spread)
        .min()
        .map(|(_, shard)| ReplicaMove {
            shard,
            from: *heavy,
            to: *light,
        })
}

/// Moving one shard's leadership from one node to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderMove {
    pub shard: GroupId,
    pub from: NodeId,
    pub to: NodeId,
}

/// Returns the leader moves that spread leadership evenly over the live
/// active nodes (a leaving node's leaderships move to them): each shard to its preferred node when that node is alive;
/// the others stay where they are while their leader's node leads no more
/// than its share, and otherwise go to the live node hosting them that
/// leads the fewest. Keeping what is already even makes the plan stable:
/// it moves nothing twice and never trades one shard for another.
/// Shards whose leader is unknown are left alone (they are electing).
pub fn leader_moves(
    map: &ClusterMap,
    leaders: &BTreeMap<GroupId, NodeId>,
    alive: &BTreeSet<NodeId>,
) -> Vec<LeaderMove> {
    // Leaving nodes give leaderships away and take none.
    let takers: BTreeSet<NodeId> = alive
        .iter()
        .copied()
        .filter(|node| {
            map.node(*node)
                .is_some_and(|record| record.state == NodeState::Active)
        })
        .collect();
    if takers.is_empty() {
        return Vec::new();
    }
    let share = map.shards.len() / takers.len();
    let mut load: BTreeMap<NodeId, usize> = takers.iter().map(|node| (*node, 0)).collect();
    let mut targets: BTreeMap<GroupId, NodeId> = BTreeMap::new();
    let hosts = |shard: &crate::map::ShardRecord, node: NodeId| {
        takers.contains(&node) && shard.replica_on(node).is_some()
    };
    // Shards with a live preferred node first: their target is fixed.
    for shard in map.shards.values() {
        if hosts(shard, shard.preferred_leader) {
            targets.insert(shard.id, shard.preferred_leader);
            *load.entry(shard.preferred_leader).or_default() += 1;
        }
    }
    // Then shards that may stay where they are.
    for shard in map.shards.values() {
        if targets.contains_key(&shard.id) {
            continue;
        }
        let Some(leader) = leaders.get(&shard.id).copied() else {
            continue;
        };
        if hosts(shard, leader) && load.get(&leader).copied().unwrap_or(0) < share {
            targets.insert(shard.id, leader);
            *load.entry(leader).or_default() += 1;
        }
    }
    // The rest go to the least loaded live node that hosts them.
    for shard in map.shards.values() {
        if targets.contains_key(&shard.id) {
            continue;
        }
        let target = shard
            .replicas
            .iter()
            .map(|replica| replica.node)
            .filter(|node| takers.contains(node))
            .min_by_key(|node| {
                (
                    load.get(node).copied().unwrap_or(0),
                    leaders.get(&shard.id) != Some(node),
                    *node,
                )
            });
        if let Some(target) = target {
            targets.insert(shard.id, target);
            *load.entry(target).or_default() += 1;
        }
    }
    targets
        .into_iter()
        .filter_map(|(shard, to)| {
            let from = *leaders.get(&shard)?;
            (from != to && alive.contains(&from)).then_some(LeaderMove { shard, from, to })
        })
        .collect()
}

#[cfg(test)]
#[path = "plan_test.rs"]
mod tests;
