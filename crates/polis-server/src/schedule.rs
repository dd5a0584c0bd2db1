//! The scheduler, on the meta leader: every few seconds it reads each
//! shard's keys, bytes and write rate from its leader's beats and asks
//! [`polis_cluster::reshape::plan`] whether a shard should be split,
//! merged or retired; it makes that change once two passes in a row
//! planned it (so a passing spike splits nothing), or at once when
//! `polis cluster rebalance` asked. Empty shards are retired even with
//! the scheduler switched off. The replicas and leaders are evened out
//! by [`crate::balance`]; the scheduler reports what all of it still
//! wants, for `/status` and `polis cluster rebalance --wait`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use polis_cluster::reshape::{self, Reshape, ShardLoad, SplitAbove};
use polis_cluster::{plan, ClusterMap, MapChange, MetaMachine};
use polis_raft::Group;
use polis_types::{GroupId, NodeId};
use serde::Serialize;
use tokio::time::Instant;

use crate::balance;
use crate::controller::{change_map_in_background, lock};
use crate::node::Node;
use crate::rpc::NodeAnswer;

/// How often the scheduler looks at the shards.
const SCHEDULE_EVERY: Duration = Duration::from_secs(5);
/// Replica moves counted ahead, at most, for the report.
const COUNTED_MOVES_MAX: usize = 256;
/// The weight of the newest sample in a shard's write rate.
const RATE_WEIGHT: f64 = 0.5;

/// What the scheduler knows between passes.
#[derive(Default)]
pub(crate) struct Scheduler {
    /// Each shard's last log index, and when it was read.
    samples: BTreeMap<GroupId, (Instant, u64)>,
    /// Each shard's write rate, smoothed.
    rates: BTreeMap<GroupId, f64>,
    last_pass: Option<Instant>,
    /// The change the last pass planned, made if the next plans it too.
    planned: Option<Reshape>,
    /// `polis cluster rebalance` asked for a pass now.
    asked: bool,
    report: Option<SchedulerReport>,
}

/// What the scheduler still wants, as the meta leader reports it.
#[derive(Debug, Clone, Serialize)]
pub struct SchedulerReport {
    /// Splits and merges are on.
    pub enabled: bool,
    /// The split, merge or retirement planned, in words.
    pub planned: Option<String>,
    pub migrations: usize,
    /// Replica moves still wanted (counted ahead, up to 256).
    pub replica_moves: usize,
    pub leader_moves: usize,
    /// Every shard's membership is the map's.
    pub memberships_settled: bool,
    /// Nothing is planned or under way.
    pub balanced: bool,
    pub passed_ms_ago: u64,
    #[serde(skip)]
    passed_at: Option<Instant>,
}

/// Returns the scheduler's last report, on the meta leader.
pub fn report(node: &Node) -> Option<SchedulerReport> {
    let mut report = lock(&node.work.scheduler).report.clone()?;
    let passed = report.passed_at?.elapsed();
    if passed > 3 * SCHEDULE_EVERY || !node.meta().is_some_and(|meta| meta.is_leader()) {
        return None;
    }
    report.passed_ms_ago = passed.as_millis() as u64;
    Some(report)
}

/// Asks for a pass now (`polis cluster rebalance`); this node leads the
/// meta group.
pub fn ask(node: &Arc<Node>) -> NodeAnswer {
    if !node.meta().is_some_and(|meta| meta.is_leader()) {
        return NodeAnswer::NotMetaLeader {
            leader: node.meta_leader(),
        };
    }
    lock(&node.work.scheduler).asked = true;
    lock(&node.work.moves).balanced_at = None;
    NodeAnswer::Changed(node.map.version())
}

/// Runs a pass if one is due (this node leads the meta group).
pub(crate) fn tick(node: &Arc<Node>, meta: &Group<MetaMachine>, map: &ClusterMap) {
    let now = Instant::now();
    let asked = {
        let mut scheduler = lock(&node.work.scheduler);
        let due = scheduler
            .last_pass
            .is_none_or(|at| now.duration_since(at) >= SCHEDULE_EVERY);
        if !due && !scheduler.asked {
            return;
        }
        scheduler.last_pass = Some(now);
        std::mem::take(&mut scheduler.asked)
    };
    let loads = sample(node, map, now);
    let above = if node.config.scheduler {
        node.config.split_above
    } else {
        SplitAbove::default()
    };
    let alive = balance::settled_nodes(node, map);
    let settled = balance::memberships_settled(node, map);
    let planned = reshape::plan(map, &loads, &above, &alive)
        .filter(|reshape| settled || matches!(reshape, Reshape::Retire { .. }));
    let leader_moves = node.work.leader_moves_pending().unwrap_or(0);
    let replica_moves = replica_moves_ahead(node, map, &alive);
    let report = SchedulerReport {
        enabled: node.config.scheduler,
        planned: planned.as_ref().map(Reshape::describe),
        migrations: map.migrations.len(),
        replica_moves,
        leader_moves,
        memberships_settled: settled,
        balanced: planned.is_none()
            && map.migrations.is_empty()
            && replica_moves == 0
            && leader_moves == 0
            && settled,
        passed_ms_ago: 0,
        passed_at: Some(now),
    };
    let confirmed = {
        let mut scheduler = lock(&node.work.scheduler);
        scheduler.report = Some(report);
        let confirmed = planned.as_ref().is_some_and(|planned| {
            asked
                || matches!(planned, Reshape::Retire { .. })
                || scheduler.planned.as_ref() == Some(planned)
        });
        scheduler.planned = if confirmed { None } else { planned.clone() };
        confirmed
    };
    let Some(reshape) = planned.filter(|_| confirmed) else {
        return;
    };
    let Some(changes) = changes_of(map, &reshape) else {
        return;
    };
    let said = reshape.describe();
    change_map_in_background(node, meta, map, changes, move |version| {
        tracing::info!(version, "scheduler: {said}")
    });
}

/// Returns the map changes that carry `reshape` out.
pub(crate) fn changes_of(map: &ClusterMap, reshape: &Reshape) -> Option<Vec<MapChange>> {
    let change = match reshape {
        Reshape::Split {
            shard,
            slots,
            nodes,
        } => MapChange::SplitShard {
            shard: *shard,
            slots: slots.clone(),
            nodes: nodes.clone(),
        },
        Reshape::Merge { from, into } => MapChange::BeginMigration {
            slots: map.shards.get(from)?.slots.clone(),
            target: *into,
        },
        Reshape::Retire { shard } => MapChange::RetireShard { shard: *shard },
    };
    Some(vec![change])
}

/// Reads every shard's load from its leader's beats, and updates the
/// write rates.
fn sample(node: &Node, map: &ClusterMap, now: Instant) -> BTreeMap<GroupId, ShardLoad> {
    let leaders = node.host.leaders();
    let mut scheduler = lock(&node.work.scheduler);
    scheduler
        .samples
        .retain(|shard, _| map.shards.contains_key(shard));
    scheduler
        .rates
        .retain(|shard, _| map.shards.contains_key(shard));
    let mut loads = BTreeMap::new();
    for shard in map.shards.keys() {
        let Some((_, lead)) = leaders.get(shard) else {
            continue;
        };
        let previous = scheduler.samples.insert(*shard, (now, lead.last_log_index));
        if let Some((at, index)) = previous {
            let seconds = now.duration_since(at).as_secs_f64();
            if seconds > 0.0 && lead.last_log_index >= index {
                let fresh = (lead.last_log_index - index) as f64 / seconds;
                let rate = scheduler.rates.entry(*shard).or_insert(fresh);
                *rate = RATE_WEIGHT * fresh + (1.0 - RATE_WEIGHT) * *rate;
            }
        }
        // A leader that has not applied the shard's current slots (a
        // migration just switched) still counts the keys it gave away or
        // lacks the ones it took: no load until it has.
        let current = map
            .shards
            .get(shard)
            .is_some_and(|record| lead.version >= record.slots_version);
        if !current {
            continue;
        }
        loads.insert(
            *shard,
            ShardLoad {
                keys: lead.items,
                bytes: lead.bytes,
                writes_per_sec: scheduler.rates.get(shard).copied().unwrap_or(0.0),
            },
        );
    }
    loads
}

/// Returns how many replica moves the balancer would make from `map`,
/// one after the other (up to [`COUNTED_MOVES_MAX`]).
fn replica_moves_ahead(node: &Node, map: &ClusterMap, alive: &BTreeSet<NodeId>) -> usize {
    let gone = balance::gone_nodes(node, map);
    let sizes = balance::shard_bytes(node);
    let mut map = map.clone();
    for counted in 0..COUNTED_MOVES_MAX {
        let Some(planned) = plan::replica_move(&map, alive, &gone, &sizes) else {
            return counted;
        };
        let change = MapChange::MoveReplica {
            shard: planned.shard,
            from: planned.from,
            to: planned.to,
        };
        match map.apply(map.version, &[change]) {
            Ok(next) => map = next,
            Err(_) => return counted + 1,
        }
    }
    COUNTED_MOVES_MAX
}

/// Splits `shard` now (`polis cluster split`); this node leads the meta
/// group.
pub async fn split(node: &Arc<Node>, shard: GroupId) -> NodeAnswer {
    let alive = node
        .view()
        .map(|view| balance::settled_nodes(node, view.map()))
        .unwrap_or_default();
    crate::controller::change_map_answer(node, move |map| {
        if !map.shards.contains_key(&shard) {
            return Err(Box::new(NodeAnswer::Refused(format!("no shard {shard}"))));
        }
        let reshape = reshape::split(map, shard, &alive).ok_or_else(|| {
            Box::new(NodeAnswer::Refused(format!(
                "shard {shard} cannot be split: it owns a single slot, or the cluster has \
                 the most shards it may have"
            )))
        })?;
        changes_of(map, &reshape).ok_or_else(|| Box::new(NodeAnswer::Refused("no split".into())))
    })
    .await
}

/// Merges shard `from` into shard `into` now (`polis cluster merge`);
/// this node leads the meta group.
pub async fn merge(node: &Arc<Node>, from: GroupId, into: GroupId) -> NodeAnswer {
    crate::controller::change_map_answer(node, move |map| {
        if from == into {
            return Err(Box::new(NodeAnswer::Refused(format!(
                "shard {from} cannot merge into itself"
            ))));
        }
        if !map.shards.contains_key(&into) {
            return Err(Box::new(NodeAnswer::Refused(format!("no shard {into}"))));
        }
        let reshape = Reshape::Merge { from, into };
        changes_of(map, &reshape)
            .ok_or_else(|| Box::new(NodeAnswer::Refused(format!("no shard {from}"))))
    })
    .await
}
