//! The node's control loop: it carries out what the map asks of the
//! groups this node leads, one operation per group at a time.
//!
//! On every shard it leads: the ownership entry that gives the shard the
//! slots of its map version, and the membership steps toward the replicas
//! the map lists. On the meta leader only: the first map's creation (by
//! whichever first voter leads), the meta group's membership, the cluster version,
//! node registrations and the balancing of shard leaders over the nodes
//! (one move per shard at a time, a cap per minute, and a node must beat
//! for a while before leaders move back to it).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polis_cluster::plan::{self, CurrentMembers, MembershipStep, TargetMembers};
use polis_cluster::{
    version, EntryFormat, MapChange, MetaCommand, MetaMachine, MetaReply, NodeAddrs, TxnError,
};
use polis_raft::{Group, Leadership, ProposeError, StateMachine};
use polis_types::{GroupId, NodeId, ReplicaId, META_GROUP};
use tokio::time::Instant;

use crate::machine::{Applied, DataMachine, Op};
use crate::node::{Node, ShardGroup};
use crate::replicas;
use crate::rpc::{self, NodeAnswer, NodeRequest};

/// How often the loop looks at the groups.
const CONTROL_EVERY: Duration = Duration::from_millis(500);
/// How often the meta leader balances shard leaders.
const BALANCE_EVERY: Duration = Duration::from_secs(2);
/// How long a node must beat before leaders move (back) to it.
const FAILBACK_AFTER: Duration = Duration::from_secs(10);
/// How long a shard whose leader moved is left alone.
const MOVE_AGAIN_AFTER: Duration = Duration::from_secs(10);
/// Entries a learner may lag behind the leader and still become a voter.
const CAUGHT_UP_LAG_MAX: u64 = 16;
/// How many times a registration retries a lost compare-and-set.
const REGISTER_ATTEMPTS_MAX: usize = 20;

/// What the loop has under way.
pub struct Work {
    /// Serializes reconciliations of the node's replicas.
    pub(crate) reconcile: tokio::sync::Mutex<()>,
    /// Serializes adopting maps (saved before they are routed from).
    pub(crate) adopting: tokio::sync::Mutex<()>,
    /// Groups with an operation in flight.
    busy: Mutex<BTreeSet<GroupId>>,
    moves: Mutex<Moves>,
}

impl Default for Work {
    fn default() -> Self {
        Self {
            reconcile: tokio::sync::Mutex::new(()),
            adopting: tokio::sync::Mutex::new(()),
            busy: Mutex::new(BTreeSet::new()),
            moves: Mutex::new(Moves::default()),
        }
    }
}

/// The leader moves made lately, for the rate limits.
#[derive(Default)]
struct Moves {
    recent: VecDeque<Instant>,
    by_shard: BTreeMap<GroupId, Instant>,
    balanced_at: Option<Instant>,
    /// How many moves the last plan wanted, when this node made one.
    pending: Option<usize>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Work {
    /// Marks `group` busy; false if it was already.
    fn claim(&self, group: GroupId) -> bool {
        lock(&self.busy).insert(group)
    }

    fn release(&self, group: GroupId) {
        lock(&self.busy).remove(&group);
    }

    /// Returns how many leader moves the balancer still wants: `None`
    /// unless this node leads the meta group and balanced lately.
    pub fn leader_moves_pending(&self) -> Option<usize> {
        let moves = lock(&self.moves);
        moves
            .balanced_at
            .filter(|at| at.elapsed() < 2 * BALANCE_EVERY)
            .and(moves.pending)
    }
}

/// Runs the control loop until the node stops.
pub async fn run(node: Arc<Node>) {
    let mut ticker = tokio::time::interval(CONTROL_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        tick(&node).await;
    }
}

async fn tick(node: &Arc<Node>) {
    let Some(view) = node.view() else {
        return;
    };
    let map = view.map();
    let me = node.config.node_id;
    replicas::reconcile(node).await;
    // A shard takes slots only from a map the meta group committed (the
    // first map is routed from as soon as it is made, before that).
    let committed = node
        .meta()
        .and_then(|meta| meta.state().read().app.map().map(|map| map.version))
        .unwrap_or(0);
    for group in node.led_shards() {
        let Some(shard) = map.shards.get(&group.id()) else {
            continue;
        };
        if shard.replica_on(me).map(|replica| replica.replica) != Some(group.replica()) {
            // The map moved this replica away: hand the leadership to a
            // replica that stays, which carries the move out.
            hand_over(node, group.clone(), plan::shard_target(map, group.id()));
            continue;
        }
        let owned = group.state().read().app.ownership.version;
        if owned < shard.slots_version {
            if committed < shard.slots_version {
                continue;
            }
            let op = Op::Own {
                version: shard.slots_version,
                slots: shard.slot_set(),
            };
            spawn_exclusive(node, group.id(), {
                let group = group.clone();
                async move {
                    match op.encode() {
                        Ok(payload) => match group.propose(payload).await {
                            Ok(answer) => {
                                if let Applied::Reply(reply) = Applied::decode(&answer) {
                                    tracing::info!(shard = %group.id(), ?reply, "slot ownership applied");
                                }
                            }
                            Err(error) => tracing::debug!(%error, "ownership not proposed"),
                        },
                        Err(error) => tracing::error!(%error, "cannot encode ownership"),
                    }
                }
            });
            continue;
        }
        let target = plan::shard_target(map, group.id());
        step_membership(node, (*group).clone(), target);
    }
    let Some(meta) = node.meta() else {
        return;
    };
    if !meta.is_leader() {
        return;
    }
    steward(node, &meta, map);
    step_membership(node, meta.clone(), plan::meta_target(map));
    raise_cluster_version(node, &meta, map);
    balance_replicas(node, &meta, map);
    balance(node, map).await;
}

/// Hands the leadership of `group`, whose replica here the map moved
/// away, to a caught-up voter that stays.
fn hand_over(node: &Arc<Node>, group: ShardGroup, target: TargetMembers) {
    let status = group.status();
    let last = status.last_log_index.unwrap_or(0);
    let Some(to) = status
        .members
        .iter()
        .filter(|member| member.voter && target.voters.contains_key(&member.replica_id))
        .find(|member| {
            member
                .matched
                .is_some_and(|matched| matched + CAUGHT_UP_LAG_MAX >= last)
        })
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
    leader.is_none_or(|leader| {
        leader.replica == replica || leader.matched.iter().any(|(member, _)| *member == replica)
    })
}

/// Starts one replica move when the replicas are uneven over the nodes
/// and every shard's membership is what the map says (so one membership
/// operation runs at a time in the whole cluster).
fn balance_replicas(node: &Arc<Node>, meta: &Group<MetaMachine>, map: &polis_cluster::ClusterMap) {
    if node.started_at.elapsed() < FAILBACK_AFTER
        || version::check_enabled(EntryFormat::V2, map.cluster_version).is_err()
    {
        return;
    }
    let leaders = node.host.leaders();
    let settled_memberships = map.shards.values().all(|shard| {
        let Some((_, leader)) = leaders.get(&shard.id) else {
            return false;
        };
        let mut members: BTreeSet<ReplicaId> =
            leader.matched.iter().map(|(member, _)| *member).collect();
        members.insert(leader.replica);
        let wanted: BTreeSet<ReplicaId> = shard
            .replicas
            .iter()
            .map(|replica| replica.replica)
            .collect();
        members == wanted
    });
    if !settled_memberships {
        return;
    }
    let gone = gone_nodes(node, map);
    let Some(planned) = plan::replica_move(map, &settled_nodes(node, map), &gone) else {
        return;
    };
    let command = MetaCommand::Txn {
        expected: map.version,
        changes: vec![MapChange::MoveReplica {
            shard: planned.shard,
            from: planned.from,
            to: planned.to,
        }],
    };
    let meta = meta.clone();
    spawn_exclusive(node, META_GROUP, async move {
        let Ok(payload) = command.encode() else {
            return;
        };
        match meta
            .propose(payload)
            .await
            .map(|answer| MetaReply::decode(&answer))
        {
            Ok(MetaReply::Applied { version }) => tracing::info!(
                shard = %planned.shard,
                from = %planned.from,
                to = %planned.to,
                version,
                rebuild = gone.contains(&planned.from),
                "replica move started"
            ),
            Ok(MetaReply::Failed(error)) => tracing::debug!(%error, "replica move not started"),
            Err(error) => tracing::debug!(%error, "replica move not proposed"),
        }
    });
}

/// Returns the started nodes silent for `--down-after` (counted from this
/// node's start for a node it never heard): their replicas are rebuilt on
/// the others.
fn gone_nodes(node: &Node, map: &polis_cluster::ClusterMap) -> BTreeSet<NodeId> {
    let seen = node.host.beats().last_seen();
    let me = node.config.node_id;
    map.nodes
        .values()
        .filter(|record| record.started() && record.id != me)
        .filter(|record| {
            let silent_since = seen.get(&record.id).copied().unwrap_or(node.started_at);
            silent_since.elapsed() >= node.config.down_after
        })
        .map(|record| record.id)
        .collect()
}

/// Returns the nodes that have beaten for a while (this node included):
/// the ones leaders and replicas may move to.
fn settled_nodes(node: &Node, map: &polis_cluster::ClusterMap) -> BTreeSet<NodeId> {
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

/// Runs `operation` for `group` unless another one runs for it.
fn spawn_exclusive(
    node: &Arc<Node>,
    group: GroupId,
    operation: impl std::future::Future<Output = ()> + Send + 'static,
) {
    if !node.work.claim(group) {
        return;
    }
    let node = node.clone();
    tokio::spawn(async move {
        operation.await;
        node.work.release(group);
    });
}

/// Takes the next membership step toward `target`, if one is due.
fn step_membership<S: StateMachine>(node: &Arc<Node>, group: Group<S>, target: TargetMembers) {
    let status = group.status();
    let last = status.last_log_index.unwrap_or(0);
    let caught_up = status
        .members
        .iter()
        .filter(|member| {
            member.replica_id == status.replica_id
                || member
                    .matched
                    .is_some_and(|matched| matched + CAUGHT_UP_LAG_MAX >= last)
        })
        .map(|member| member.replica_id)
        .collect();
    let members = group.members();
    let current = CurrentMembers {
        voters: members.voters,
        learners: members.learners,
        joint: members.joint,
        caught_up,
    };
    let Some(step) = plan::next_membership_step(&current, &target) else {
        return;
    };
    let Some(view) = node.view() else {
        return;
    };
    let id = group.id();
    spawn_exclusive(node, id, async move {
        tracing::info!(group = %id, ?step, "membership step");
        let result = match &step {
            MembershipStep::AddLearner { replica, node } => {
                group
                    .add_learner(*replica, replicas::peer_node(view.map(), *node))
                    .await
            }
            MembershipStep::ChangeVoters(voters) => {
                group.change_voters(voters.clone(), false).await
            }
            MembershipStep::RemoveLearners(learners) => {
                group.remove_learners(learners.clone()).await
            }
        };
        if let Err(error) = result {
            tracing::info!(group = %id, ?step, %error, "membership step not taken; will retry");
        }
    });
}

/// Proposes the first map while the meta group has none: the creator's
/// proposal may not have committed (it restarted, or another first voter
/// leads now). A creation applies only to an empty meta group.
fn steward(node: &Arc<Node>, meta: &Group<MetaMachine>, map: &polis_cluster::ClusterMap) {
    if meta.state().read().app.map().is_some() || map.version != 1 {
        return;
    }
    let command = MetaCommand::Create(map.clone());
    let meta = meta.clone();
    spawn_exclusive(node, META_GROUP, async move {
        let Ok(payload) = command.encode() else {
            return;
        };
        match meta.propose(payload).await {
            Ok(answer) => {
                tracing::info!(answer = ?MetaReply::decode(&answer), "map creation proposed")
            }
            Err(error) => tracing::debug!(%error, "map creation not proposed"),
        }
    });
}

fn raise_cluster_version(
    node: &Arc<Node>,
    meta: &Group<MetaMachine>,
    map: &polis_cluster::ClusterMap,
) {
    let supported = map
        .nodes
        .values()
        .filter(|record| record.started())
        .map(|record| record.entry_format_max)
        .min()
        .unwrap_or(0);
    if supported <= map.cluster_version {
        return;
    }
    let command = MetaCommand::Txn {
        expected: map.version,
        changes: vec![MapChange::RaiseClusterVersion { to: supported }],
    };
    let meta = meta.clone();
    spawn_exclusive(node, META_GROUP, async move {
        if let Ok(payload) = command.encode() {
            if let Err(error) = meta.propose(payload).await {
                tracing::debug!(%error, "cluster version not raised");
            }
        }
    });
}

/// Registers `registering` (this node leads the meta group): a
/// compare-and-set transaction retried from each newer version it loses to.
pub async fn register(node: &Arc<Node>, registration: Registration) -> NodeAnswer {
    let Registration {
        node: registering,
        addrs,
        entry_format_max,
        token,
    } = registration;
    let Some(meta) = node.meta().filter(|meta| meta.is_leader()) else {
        return NodeAnswer::NotMetaLeader {
            leader: node.meta_leader(),
        };
    };
    for _ in 0..REGISTER_ATTEMPTS_MAX {
        let Some(view) = node.view() else {
            return NodeAnswer::Retry("this node has no map yet".into());
        };
        if token != 0
            && view
                .map()
                .node(registering)
                .is_some_and(|record| record.registration == token)
        {
            // Registered already; the answer was lost.
            return NodeAnswer::Registered(view.map().clone());
        }
        let change = match &addrs {
            Some(addrs) if view.map().node(registering).is_none() => MapChange::Join {
                node: registering,
                addrs: addrs.clone(),
                entry_format_max,
                token,
            },
            _ => MapChange::Register {
                node: registering,
                entry_format_max,
                token,
            },
        };
        if let Err(error) = version::check_enabled(change.format(), view.map().cluster_version) {
            return NodeAnswer::Refused(error.to_string());
        }
        let command = MetaCommand::Txn {
            expected: view.version(),
            changes: vec![change],
        };
        let Ok(payload) = command.encode() else {
            return NodeAnswer::Refused("cannot encode the registration".into());
        };
        match meta
            .propose(payload)
            .await
            .map(|answer| MetaReply::decode(&answer))
        {
            Ok(MetaReply::Applied { version }) => {
                node.map.wait_for(version, Duration::from_secs(5)).await;
                return match node.view() {
                    Some(view) if view.version() >= version => {
                        NodeAnswer::Registered(view.map().clone())
                    }
                    _ => NodeAnswer::Retry("registered, but the map did not arrive".into()),
                };
            }
            Ok(MetaReply::Failed(TxnError::Conflict { current, expected })) => {
                if current < expected {
                    // The meta group has not committed the map this node
                    // routes from yet (its creation is under way).
                    tokio::time::sleep(CONTROL_EVERY).await;
                } else {
                    node.map.wait_for(current, Duration::from_secs(2)).await;
                }
            }
            Ok(MetaReply::Failed(TxnError::Rejected(reason))) => {
                return NodeAnswer::Refused(reason)
            }
            Err(ProposeError::NotLeader { leader }) => {
                return NodeAnswer::NotMetaLeader {
                    leader: leader.map(|(_, peer)| peer.node_id),
                }
            }
            Err(ProposeError::Unavailable(reason)) => {
                return NodeAnswer::Retry(format!("the meta group is unavailable: {reason}"))
            }
        }
    }
    NodeAnswer::Retry("the map kept changing".into())
}

/// A node asking to be registered: a member of the map (`addrs` is
/// `None`), or a new node joining with its addresses.
#[derive(Debug, Clone)]
pub struct Registration {
    pub node: NodeId,
    pub addrs: Option<NodeAddrs>,
    pub entry_format_max: u32,
    pub token: u64,
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
    let last = status.last_log_index.unwrap_or(0);
    let caught_up = status.members.iter().any(|member| {
        member.replica_id == target.replica
            && member.voter
            && member
                .matched
                .is_some_and(|matched| matched + CAUGHT_UP_LAG_MAX >= last)
    });
    if !caught_up {
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
async fn balance(node: &Arc<Node>, map: &polis_cluster::ClusterMap) {
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

/// Returns whether a shard group answers reads and writes for its slots
/// of the current map: it leads and applied the map's ownership.
pub fn serves(node: &Node, group: &Group<DataMachine>) -> bool {
    let Some(view) = node.view() else {
        return false;
    };
    let Some(shard) = view.map().shards.get(&group.id()) else {
        return false;
    };
    group.state().read().app.ownership.version >= shard.slots_version
}
