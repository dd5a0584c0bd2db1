//! The node's control loop: it carries out what the map asks of the
//! groups this node leads, one operation per group at a time.
//!
//! On every shard it leads: the ownership entry that gives the shard the
//! slots of its map version, and the membership steps toward the replicas
//! the map lists. On the meta leader only: the first map's creation (by
//! whichever first voter leads), the meta group's membership, the cluster
//! version, node registrations, and the balancing of replicas and leaders
//! over the nodes ([`crate::balance`]).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use polis_cluster::plan::{self, CurrentMembers, MembershipStep, TargetMembers};
use polis_cluster::{
    version, MapChange, MetaCommand, MetaMachine, MetaReply, NodeAddrs, NodeState, TxnError,
};
use polis_raft::{Group, GroupStatus, MemberStatus, ProposeError, StateMachine};
use polis_types::{GroupId, NodeId, ReplicaId, META_GROUP};

use crate::balance::{self, Moves};
use crate::machine::{Applied, DataMachine, Op};
use crate::node::Node;
use crate::replicas;
use crate::rpc::NodeAnswer;

/// How often the loop looks at the groups.
const CONTROL_EVERY: Duration = Duration::from_millis(500);
/// How often the meta leader balances shard leaders.
pub(crate) const BALANCE_EVERY: Duration = Duration::from_secs(2);
/// How long a node must beat before leaders move (back) to it.
pub(crate) const FAILBACK_AFTER: Duration = Duration::from_secs(10);
/// How long a shard whose leader moved is left alone.
pub(crate) const MOVE_AGAIN_AFTER: Duration = Duration::from_secs(10);
/// Entries a learner may lag behind the leader and still become a voter.
const CAUGHT_UP_LAG_MAX: u64 = 16;
/// How many times a map change retries a lost compare-and-set.
const CHANGE_ATTEMPTS_MAX: usize = 20;

/// What the loop has under way.
pub struct Work {
    /// Serializes reconciliations of the node's replicas.
    pub(crate) reconcile: tokio::sync::Mutex<()>,
    /// Serializes adopting maps (saved before they are routed from).
    pub(crate) adopting: tokio::sync::Mutex<()>,
    /// Groups with an operation in flight.
    busy: Mutex<BTreeSet<GroupId>>,
    pub(crate) moves: Mutex<Moves>,
    /// Migrations this node drives.
    pub(crate) migrating: Mutex<BTreeSet<u64>>,
    pub(crate) migration_progress: Mutex<std::collections::BTreeMap<u64, crate::migrate::Progress>>,
    pub(crate) scheduler: Mutex<crate::schedule::Scheduler>,
    /// When this node first reported each replica move, and its lag then.
    pub(crate) replica_moves_seen: Mutex<std::collections::BTreeMap<ReplicaId, (Instant, u64)>>,
}

impl Default for Work {
    fn default() -> Self {
        Self {
            reconcile: tokio::sync::Mutex::new(()),
            adopting: tokio::sync::Mutex::new(()),
            busy: Mutex::new(BTreeSet::new()),
            moves: Mutex::new(Moves::default()),
            migrating: Mutex::new(BTreeSet::new()),
            migration_progress: Mutex::new(std::collections::BTreeMap::new()),
            scheduler: Mutex::new(crate::schedule::Scheduler::default()),
            replica_moves_seen: Mutex::new(std::collections::BTreeMap::new()),
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
            balance::hand_over(node, group.clone(), plan::shard_target(map, group.id()));
            continue;
        }
        crate::migrate::tick(node, &group, map);
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
    finish_removals(node, &meta, map);
    crate::schedule::tick(node, &meta, map);
    balance::replicas(node, &meta, map);
    balance::leaders(node, map).await;
}

/// Runs `operation` for `group` unless another one runs for it.
pub(crate) fn spawn_exclusive(
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

/// Returns true when `member` holds the log of the leader whose `status`
/// this is, but for the last few entries: enough to become a voter, or
/// to take the leadership (the target of a transfer waits for the
/// leader's last entry before it stands for election).
pub(crate) fn caught_up(member: &MemberStatus, status: &GroupStatus) -> bool {
    let last = status.last_log_index.unwrap_or(0);
    member
        .matched
        .is_some_and(|matched| matched + CAUGHT_UP_LAG_MAX >= last)
}

/// Takes the next membership step toward `target`, if one is due.
fn step_membership<S: StateMachine>(node: &Arc<Node>, group: Group<S>, target: TargetMembers) {
    let status = group.status();
    let caught_up = status
        .members
        .iter()
        .filter(|member| member.replica_id == status.replica_id || caught_up(member, &status))
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
    change_map_in_background(
        node,
        meta,
        map,
        vec![MapChange::RaiseClusterVersion { to: supported }],
        move |version| tracing::info!(to = supported, version, "cluster version raised"),
    );
}

/// Proposes `changes` against `map`'s version on the meta group, which
/// this node leads, in the background and one meta operation at a time;
/// `applied` runs with the new version once they commit (a lost
/// compare-and-set is simply proposed again from a later tick).
pub(crate) fn change_map_in_background(
    node: &Arc<Node>,
    meta: &Group<MetaMachine>,
    map: &polis_cluster::ClusterMap,
    changes: Vec<MapChange>,
    applied: impl FnOnce(u64) + Send + 'static,
) {
    let command = MetaCommand::Txn {
        expected: map.version,
        changes,
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
            Ok(MetaReply::Applied { version }) => applied(version),
            Ok(MetaReply::Failed(error)) => tracing::debug!(%error, "map change not made"),
            Err(error) => tracing::debug!(%error, "map change not proposed"),
        }
    });
}

/// Registers `registering` (this node leads the meta group).
pub async fn register(node: &Arc<Node>, registration: Registration) -> NodeAnswer {
    let Registration {
        node: registering,
        addrs,
        entry_format_max,
        token,
    } = registration;
    let changed = change_map(node, |map| {
        if token != 0
            && map.node(registering).is_some_and(|record| {
                record.registration == token && record.entry_format_max == entry_format_max
            })
        {
            // Registered already; the answer was lost.
            return Err(Box::new(NodeAnswer::Registered(map.clone())));
        }
        let change = match &addrs {
            Some(addrs) if map.node(registering).is_none() => MapChange::Join {
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
        Ok(vec![change])
    })
    .await;
    match changed {
        Ok(map) => NodeAnswer::Registered(map),
        Err(answer) => answer,
    }
}

/// Starts draining node `leaving` out of the cluster (this node leads the
/// meta group); the meta leader removes it once it holds no replica.
pub async fn remove_node(node: &Arc<Node>, leaving: NodeId) -> NodeAnswer {
    let changed = change_map(node, |map| {
        if map
            .node(leaving)
            .is_some_and(|record| record.state == NodeState::Leaving)
        {
            return Err(Box::new(NodeAnswer::Changed(map.version)));
        }
        Ok(vec![MapChange::RemoveNode { node: leaving }])
    })
    .await;
    match changed {
        Ok(map) => NodeAnswer::Changed(map.version),
        Err(answer) => answer,
    }
}

/// Commits the changes `changes` computes from the current map, on this
/// node (the meta leader): a compare-and-set transaction, computed again
/// from each newer version it loses to. Returns the map after it, or the
/// answer to give instead (`changes` may return one: nothing to do).
async fn change_map(
    node: &Arc<Node>,
    mut changes: impl FnMut(&polis_cluster::ClusterMap) -> Result<Vec<MapChange>, Box<NodeAnswer>>,
) -> Result<polis_cluster::ClusterMap, NodeAnswer> {
    let Some(meta) = node.meta().filter(|meta| meta.is_leader()) else {
        return Err(NodeAnswer::NotMetaLeader {
            leader: node.meta_leader(),
        });
    };
    for _ in 0..CHANGE_ATTEMPTS_MAX {
        let Some(view) = node.view() else {
            return Err(NodeAnswer::Retry("this node has no map yet".into()));
        };
        let changes = changes(view.map()).map_err(|answer| *answer)?;
        for change in &changes {
            if let Err(error) = version::check_enabled(change.format(), view.map().cluster_version)
            {
                return Err(NodeAnswer::Refused(error.to_string()));
            }
        }
        let command = MetaCommand::Txn {
            expected: view.version(),
            changes,
        };
        let Ok(payload) = command.encode() else {
            return Err(NodeAnswer::Refused("cannot encode the map change".into()));
        };
        match meta
            .propose(payload)
            .await
            .map(|answer| MetaReply::decode(&answer))
        {
            Ok(MetaReply::Applied { version }) => {
                node.map.wait_for(version, Duration::from_secs(5)).await;
                return match node.view() {
                    Some(view) if view.version() >= version => Ok(view.map().clone()),
                    _ => Err(NodeAnswer::Retry(
                        "the change was made, but the map did not arrive".into(),
                    )),
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
                return Err(NodeAnswer::Refused(reason))
            }
            Err(ProposeError::NotLeader { leader }) => {
                return Err(NodeAnswer::NotMetaLeader {
                    leader: leader.map(|(_, peer)| peer.node_id),
                })
            }
            Err(ProposeError::Unavailable(reason)) => {
                return Err(NodeAnswer::Retry(format!(
                    "the meta group is unavailable: {reason}"
                )))
            }
        }
    }
    Err(NodeAnswer::Retry("the map kept changing".into()))
}

/// Commits `changes` as they are (this node leads the meta group).
pub async fn apply_changes(node: &Arc<Node>, changes: Vec<MapChange>) -> NodeAnswer {
    change_map_answer(node, |_| Ok(changes.clone())).await
}

/// Commits the changes `changes` computes from the current map (this node
/// leads the meta group), and answers with the new version.
pub(crate) async fn change_map_answer(
    node: &Arc<Node>,
    changes: impl FnMut(&polis_cluster::ClusterMap) -> Result<Vec<MapChange>, Box<NodeAnswer>>,
) -> NodeAnswer {
    match change_map(node, changes).await {
        Ok(map) => NodeAnswer::Changed(map.version),
        Err(answer) => answer,
    }
}

/// Cancels, in one map version, every migration of the map that has not
/// switched (this node leads the meta group).
pub(crate) async fn cancel_copying(node: &Arc<Node>) -> NodeAnswer {
    let mut ids = Vec::new();
    let changed = change_map(node, |map| {
        ids = map
            .migrations
            .values()
            .filter(|migration| migration.phase == polis_cluster::MigrationPhase::Copying)
            .map(|migration| migration.id)
            .collect();
        if ids.is_empty() {
            return Err(Box::new(NodeAnswer::Cancelled(Vec::new())));
        }
        Ok(ids
            .iter()
            .map(|id| MapChange::EndMigration {
                id: *id,
                cancelled: true,
            })
            .collect())
    })
    .await;
    match changed {
        Ok(_) => NodeAnswer::Cancelled(ids),
        Err(answer) => answer,
    }
}

/// Removes the leaving nodes that hold no replica, once no shard counts
/// one of their replicas any more.
fn finish_removals(node: &Arc<Node>, meta: &Group<MetaMachine>, map: &polis_cluster::ClusterMap) {
    let Some(drained) = map
        .nodes
        .values()
        .filter(|record| record.state == NodeState::Leaving)
        .find(|record| map.replicas_on(record.id).is_empty())
        .map(|record| record.id)
    else {
        return;
    };
    if !balance::memberships_settled(node, map) {
        return;
    }
    change_map_in_background(
        node,
        meta,
        map,
        vec![MapChange::NodeDrained { node: drained }],
        move |version| tracing::info!(node = %drained, version, "node drained and removed"),
    );
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
