//! Where shard replicas and leaders go: the meta leader evens out the
//! replicas per node (one membership operation in the whole cluster at a
//! time) and rebuilds those of a node gone longer than `--down-after`,
//! and it spreads shard leaders over the nodes within rate limits; a shard
//! leader whose replica the map moved away hands its leadership over.
//! The plans are pure (`polis_cluster::plan`); this carries them out.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use polis_cluster::plan::{self, TargetMembers};
use polis_cluster::{version, EntryFormat, MapChange, MetaMachine};
use polis_raft::{Group, Leadership};
use polis_types::{GroupId, NodeId, ReplicaId, META_GROUP};
use tokio::time::Instant;

use crate::controller::{
    caught_up, change_map_in_background, lock, spawn_exclusive, BALANCE_EVERY, FAILBACK_AFTER,
    MOVE_AGAIN_AFTER,
};
use crate::node::{Node, ShardGroup};
use crate::rpc::{self, NodeAnswer, NodeRequest};

/// The leader moves made lately, for the rate limits.
#[derive(Default)]
pub(crate) struct Moves {
    pub(crate) recent: VecDeque<Instant>,
    pub(crate) by_shard: BTreeMap<GroupId, Instant>,
    pub(crate) balanced_at: Option<Instant>,
    /// How many moves the last plan wanted, when this node made one.
    pub(crate) pending: Option<usize>,
}

/// Hands the leadership of `group`, whose replica here the map moved
/// away, to a caught-up voter that stays.
pub(crate) fn hand_over(node: &Arc<Node>, group: ShardGroup, target: TargetMembers) {
    let status = group.status();
    let Some(to) = status
        .members
        .iter()
        .filter(|member| member.voter && target.voters.contains_key(&member.replica_id))
        .find(|member| caught_up(member, &status))
        .map(|member| member.replica_id)
    else {
        return;
    };
    let id = group.id();
    spawn_exclusive(node, id, async move {
        tracing::info!(shard = %id, %to, "handing leadership over: this replica moves away");
        if let Err(error) = group.transfer_leader(to).await {
            tracing::info!(shard = %id, %error, "leadership not handed over; will retry");
        }
    });
}

/// Returns true when the group counts `replica` as a member, as its
/// leader says (a group whose leader is not known counts every replica).
pub fn counts(leader: Option<&Leadership>, replica: ReplicaId) -> bool {
    leader.is_none_or(|leader| leader.members().any(|member| member == replica))
}

/// Starts one replica move when the replicas are uneven over the nodes
/// and every shard's membership is what the map says (so one membership
/// operation runs at a time in the whole cluster).
pub(crate) fn replicas(
    node: &Arc<Node>,
    meta: &Group<MetaMachine>,
    map: &polis_cluster::ClusterMap,
) {
    if node.started_at.elapsed() < FAILBACK_AFTER
        || version::check_enabled(EntryFormat::V2, map.cluster_version).is_err()
    {
        return;
    }
    // Data moves one way at a time: no replica moves while slots do.
    if !map.migrations.is_empty() || !memberships_settled(node, map) {
        return;
    }
    let gone = gone_nodes(node, map);
    let sizes = shard_bytes(node);
    let Some(planned) = plan::replica_move(map, &settled_nodes(node, map), &gone, &sizes) else {
        return;
    };
    let rebuild = gone.contains(&planned.from);
    change_map_in_background(
        node,
        meta,
        map,
        vec![MapChange::MoveReplica {
            shard: planned.shard,
            from: planned.from,
            to: planned.to,
        }],
        move |version| {
            tracing::info!(
                shard = %planned.shard,
                from = %planned.from,
                to = %planned.to,
                version,
                rebuild,
                "replica move started"
            )
        },
    );
}

/// Returns each shard's bytes, as its leader last reported them.
pub(crate) fn shard_bytes(node: &Node) -> BTreeMap<GroupId, u64> {
    node.host
        .leaders()
        .into_iter()
        .map(|(shard, (_, lead))| (shard, lead.bytes))
        .collect()
}

/// Returns true when every shard's leader is known and counts exactly
/// the replicas the map lists: no membership operation is under way.
pub(crate) fn memberships_settled(node: &Node, map: &polis_cluster::ClusterMap) -> bool {
    let leaders = node.host.leaders();
    map.shards.values().all(|shard| {
        let Some((_, leader)) = leaders.get(&shard.id) else {
            return false;
        };
        let members: BTreeSet<ReplicaId> = leader.members().collect();
        let wanted: BTreeSet<ReplicaId> = shard
            .replicas
            .iter()
            .map(|replica| replica.replica)
            .collect();
        members == wanted
    })
}

/// Returns the started nodes silent for `--down-after` (counted from this
/// node's start for a node it never heard): their replicas are rebuilt on
/// the others.
pub(crate) fn gone_nodes(node: &Node, map: &polis_cluster::ClusterMap) -> BTreeSet<NodeId> {
    let seen = node.host.beats().last_seen();
    let me = node.config.node_id;
    map.nodes
        .values()
        .filter(|record| record.started() && !record.removed() && record.id != me)
        .filter(|record| {
            let silent_since = seen.get(&record.id).copied().unwrap_or(node.started_at);
            silent_since.elapsed() >= node.config.down_after
        })
        .map(|record| record.id)
        .collect()
}

/// Returns the nodes that have beaten for a while (this node included):
/// the ones leaders and replicas may move to.
pub(crate) fn settled_nodes(node: &Node, map: &polis_cluster::ClusterMap) -> BTreeSet<NodeId> {
    let now = Instant::now();
    let beats = node.host.beats();
    let me = node.config.node_id;
    map.nodes
        .keys()
        .copied()
        .filter(|id| {
            *id == me
                || beats
                    .alive_since(*id)
                    .is_some_and(|since| now.duration_since(since) >= FAILBACK_AFTER)
        })
        .collect()
}

/// Hands `shard`'s leadership to its replica on `to`, if this node leads
/// the shard and that replica holds the whole log.
pub async fn move_leader(node: &Arc<Node>, shard: GroupId, to: NodeId) -> NodeAnswer {
    let Some(group) = node.shard(shard) else {
        return NodeAnswer::Refused(format!("no replica of shard {shard} here"));
    };
    if !group.is_leader() {
        return NodeAnswer::Refused(format!("this node does not lead shard {shard}"));
    }
    let Some(target) = node
        .view()
        .and_then(|view| view.map().shards.get(&shard)?.replica_on(to))
    else {
        return NodeAnswer::Refused(format!("shard {shard} has no replica on node {to}"));
    };
    // Nearly caught up is enough under load: the target waits until its
    // log holds the leader's last entry before it stands for election.
    let status = group.status();
    let ready = status.members.iter().any(|member| {
        member.replica_id == target.replica && member.voter && caught_up(member, &status)
    });
    if !ready {
        return NodeAnswer::Refused(format!("node {to}'s replica is not caught up"));
    }
    match group.transfer_leader(target.replica).await {
        Ok(()) => {
            tracing::info!(%shard, %to, "leadership moving");
            NodeAnswer::Moving
        }
        Err(error) => NodeAnswer::Refused(error.to_string()),
    }
}

/// Moves shard leaders toward an even spread, within the rate limits.
/// A node that just started waits before it balances, so that every live
/// peer's beats (who leads what) have reached it, and a peer that just
/// came back is given leaderships only once it has beaten for a while.
pub(crate) async fn leaders(node: &Arc<Node>, map: &polis_cluster::ClusterMap) {
    if node.started_at.elapsed() < FAILBACK_AFTER {
        return;
    }
    let now = Instant::now();
    {
        let mut moves = lock(&node.work.moves);
        if moves
            .balanced_at
            .is_some_and(|at| now.duration_since(at) < BALANCE_EVERY)
        {
            return;
        }
        moves.balanced_at = Some(now);
    }
    let me = node.config.node_id;
    let settled = settled_nodes(node, map);
    let mut leaders = node.leaders();
    leaders.remove(&META_GROUP);
    let planned = plan::leader_moves(map, &leaders, &settled);
    lock(&node.work.moves).pending = Some(planned.len());
    let per_minute = node.config.leader_moves_per_minute as usize;
    for planned in planned {
        {
            let mut moves = lock(&node.work.moves);
            while moves
                .recent
                .front()
                .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(60))
            {
                moves.recent.pop_front();
            }
            if moves.recent.len() >= per_minute {
                return;
            }
            if moves
                .by_shard
                .get(&planned.shard)
                .is_some_and(|at| now.duration_since(*at) < MOVE_AGAIN_AFTER)
            {
                continue;
            }
            moves.recent.push_back(now);
            moves.by_shard.insert(planned.shard, now);
        }
        let request = NodeRequest::MoveLeader {
            shard: planned.shard,
            to: planned.to,
        };
        let answer = if planned.from == me {
            move_leader(node, planned.shard, planned.to).await
        } else {
            match node.peer_addr(planned.from) {
                Some(addr) => rpc::call(node, &addr, &request)
                    .await
                    .unwrap_or_else(NodeAnswer::Refused),
                None => NodeAnswer::Refused("no address".into()),
            }
        };
        tracing::info!(shard = %planned.shard, from = %planned.from, to = %planned.to, ?answer, "leader move");
    }
}
