//! Pure planning: the next membership step that brings a group to the
//! members the map wants, and the leader moves that spread leadership
//! evenly over the nodes. The node carries the steps out, one per group at
//! a time; these functions only decide.

use std::collections::{BTreeMap, BTreeSet};

use polis_types::{GroupId, NodeId, ReplicaId};

use crate::map::ClusterMap;

/// A group's members as its membership log says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentMembers {
    pub voters: BTreeSet<ReplicaId>,
    pub learners: BTreeSet<ReplicaId>,
    /// A change is under way (joint consensus).
    pub joint: bool,
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
/// its target members. Replicas enter as learners first and become voters
/// only once every target voter is a member, so a change never counts on
/// a replica that has not caught up; an interrupted change (joint
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
        return Some(MembershipStep::ChangeVoters(target_voters));
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

/// Moving one shard's leadership from one node to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderMove {
    pub shard: GroupId,
    pub from: NodeId,
    pub to: NodeId,
}

/// Returns the leader moves that spread leadership evenly over the live
/// nodes: each shard to its preferred node when that node is alive,
/// otherwise to the live node hosting it that leads the fewest shards.
/// Shards whose leader is unknown are left alone (they are electing).
pub fn leader_moves(
    map: &ClusterMap,
    leaders: &BTreeMap<GroupId, NodeId>,
    alive: &BTreeSet<NodeId>,
) -> Vec<LeaderMove> {
    let mut load: BTreeMap<NodeId, usize> = alive.iter().map(|node| (*node, 0)).collect();
    let mut targets: BTreeMap<GroupId, NodeId> = BTreeMap::new();
    // Shards with a live preferred node first: their target is fixed.
    for shard in map.shards.values() {
        if alive.contains(&shard.preferred_leader) {
            targets.insert(shard.id, shard.preferred_leader);
            *load.entry(shard.preferred_leader).or_default() += 1;
        }
    }
    for shard in map.shards.values() {
        if targets.contains_key(&shard.id) {
            continue;
        }
        let target = shard
            .replicas
            .iter()
            .map(|replica| replica.node)
            .filter(|node| alive.contains(node))
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
