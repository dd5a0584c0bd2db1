//! The nemesis: faults drawn from the seed — partitions (including a
//! group's leader cut off and one-way links), crashes (of any node, of a
//! group's leader, of every node at once), message loss and slow links —
//! each held for a while, possibly overlapping — and changes of slot
//! ownership between shards while writes to those slots are in flight:
//! migrations, cancels, splits, merges, replica moves, and nodes joining
//! and leaving the cluster.
//! When the fault period ends, everything heals and every node runs again.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use polis_cluster::{MapChange, MetaCommand};
use polis_server::connection::Session;
use polis_types::{key_hash_slot, GroupId, NodeId, Slot, SlotRange, META_GROUP, SLOT_COUNT};
use polis_verify::history::Phase;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use rand::SeedableRng;

use crate::cluster::SimCluster;
use crate::config::SimConfig;
use crate::history::Recorder;
use crate::network::{between, Links};
use crate::trace::{Trace, TraceEvent};

/// How long a fault holds, at most.
const FAULT_MS_MAX: u64 = 6_000;
/// How long every node stays down after a power loss, at most.
const POWER_LOSS_MS_MAX: u64 = 2_000;
/// Name of the violation a node that cannot restart reports.
pub const RESTART_FAILED: &str = "node-restarts";
/// Nodes a run may have had, at most, joined ones included.
const NODES_EVER_MAX: u64 = 7;
/// Shard replicas: a node may leave only while this many others stay.
const REPLICAS: usize = 3;

/// What a fault changed, so that its end can undo exactly that.
enum Effect {
    Cut(Vec<(NodeId, NodeId)>),
    Loss,
    Slow,
    Down(Vec<NodeId>),
    /// A change made once (slot ownership); nothing to undo.
    Once,
}

struct Fault {
    name: String,
    effect: Effect,
    until: tokio::time::Instant,
}

/// The nemesis of one run.
pub struct Nemesis {
    pub cluster: SimCluster,
    pub links: Arc<Links>,
    pub trace: Trace,
    pub recorder: Recorder,
    pub rng: StdRng,
    pub config: SimConfig,
}

impl Nemesis {
    /// Injects faults until the fault period ends, then heals everything.
    pub async fn run(mut self) {
        let start = tokio::time::Instant::now();
        let faults_until = start + Duration::from_millis(self.config.faults_until_ms);
        let mut active: Vec<Fault> = Vec::new();
        let mut count = 0u64;
        loop {
            let tick = self
                .rng
                .random_range(self.config.nemesis_tick_min_ms..=self.config.nemesis_tick_max_ms);
            tokio::time::sleep(Duration::from_millis(tick)).await;
            let now = tokio::time::Instant::now();
            let (ended, kept): (Vec<Fault>, Vec<Fault>) =
                active.into_iter().partition(|fault| fault.until <= now);
            active = kept;
            for fault in ended {
                self.end(fault).await;
            }
            if now >= faults_until {
                break;
            }
            if self.rng.random_ratio(2, 3) {
                count += 1;
                if let Some(fault) = self.start(count, &active).await {
                    active.push(fault);
                }
            }
        }
        for fault in active {
            self.end(fault).await;
        }
        self.links.heal();
        for node in self.cluster.nodes(false) {
            self.restart(node).await;
        }
    }

    /// Returns a group drawn from the seed (the meta group or a shard).
    fn any_group(&mut self) -> GroupId {
        let groups: Vec<GroupId> = self.cluster.groups().into_iter().collect();
        groups[self.rng.random_range(0..groups.len())]
    }

    /// Gives a few slots no client key hashes to from their shard to
    /// another one, through the meta leader, while probe writes to those
    /// slots are in flight: each write must be applied by the owner of
    /// its shard's ownership version, or not at all.
    fn reassign_slots(&mut self) -> Option<String> {
        let map = self.cluster.history().latest()?;
        if map.shards.len() < 2 {
            return None;
        }
        let leader = self.cluster.leader(META_GROUP)?;
        let (server, _) = self.cluster.node(leader)?;
        let meta = server.meta()?;
        let used: Vec<Slot> = (0..self.config.keys)
            .map(|key| key_hash_slot(format!("k{key}").as_bytes()))
            .collect();
        let start = self.rng.random_range(0..SLOT_COUNT - 16);
        let range = SlotRange::new(Slot::new(start)?, Slot::new(start + 15)?)?;
        if used.iter().any(|slot| range.contains(*slot)) {
            return None;
        }
        let owner = map
            .shards
            .values()
            .find(|shard| shard.slots.iter().any(|r| r.contains(range.start)))?;
        let others: Vec<GroupId> = map
            .shards
            .keys()
            .copied()
            .filter(|id| *id != owner.id)
            .collect();
        let target = others[self.rng.random_range(0..others.len())];
        let command = MetaCommand::Txn {
            expected: map.version,
            changes: vec![MapChange::AssignSlots {
                shard: target,
                slots: vec![range],
            }],
        };
        let payload = command.encode().ok()?;
        // Probe keys in the moving range, written before, during and after.
        let probes: Vec<String> = (0u64..200_000)
            .map(|n| format!("probe{n}"))
            .filter(|key| range.contains(key_hash_slot(key.as_bytes())))
            .take(6)
            .collect();
        let cluster = self.cluster.clone();
        let mut rng = StdRng::seed_from_u64(self.rng.random());
        tokio::spawn(async move {
            for (round, key) in probes.iter().enumerate() {
                if round == 2 {
                    let meta = meta.clone();
                    let payload = payload.clone();
                    tokio::spawn(async move {
                        let _ = meta.propose(payload).await;
                    });
                }
                probe(&cluster, key, &mut rng).await;
                tokio::time::sleep(Duration::from_millis(rng.random_range(1..=60))).await;
            }
        });
        Some(format!(
            "reassign slots {range} from shard {} to {target}",
            owner.id
        ))
    }

    /// Proposes `changes` to the meta leader, without waiting for them.
    fn propose_map_changes(&mut self, changes: Vec<MapChange>) -> Option<()> {
        let map = self.cluster.history().latest()?;
        let leader = self.cluster.leader(META_GROUP)?;
        let (server, _) = self.cluster.node(leader)?;
        let meta = server.meta()?;
        let command = MetaCommand::Txn {
            expected: map.version,
            changes,
        };
        let payload = command.encode().ok()?;
        tokio::spawn(async move {
            let _ = meta.propose(payload).await;
        });
        Some(())
    }

    /// Begins moving a few slots, one of them a client key's, to another
    /// shard: the clients' reads and writes of that key must stay
    /// linearizable through the copy, the freeze and the switch, whatever
    /// faults hit the leaders meanwhile.
    fn migrate_slots(&mut self) -> Option<String> {
        let map = self.cluster.history().latest()?;
        if map.shards.len() < 2 || self.config.keys == 0 {
            return None;
        }
        let key = format!("k{}", self.rng.random_range(0..self.config.keys));
        let slot = key_hash_slot(key.as_bytes()).get();
        let start = slot.saturating_sub(self.rng.random_range(0..8));
        let end = (slot + self.rng.random_range(0..8)).min(SLOT_COUNT - 1);
        let range = SlotRange::new(Slot::new(start)?, Slot::new(end)?)?;
        let owner = crate::cluster::owner_of(&map, slot)?;
        let others: Vec<GroupId> = map
            .shards
            .keys()
            .copied()
            .filter(|id| *id != owner)
            .collect();
        let target = others[self.rng.random_range(0..others.len())];
        self.propose_map_changes(vec![MapChange::BeginMigration {
            slots: vec![range],
            target,
        }])?;
        Some(format!(
            "migrate slots {range} ({key}) from shard {owner} to {target}"
        ))
    }

    /// Cancels the migrations that have not switched, as the map the
    /// observer saw last says.
    fn cancel_migrations(&mut self) -> Option<String> {
        let map = self.cluster.history().latest()?;
        let copying: Vec<u64> = map
            .migrations
            .values()
            .filter(|migration| migration.phase == polis_cluster::MigrationPhase::Copying)
            .map(|migration| migration.id)
            .collect();
        let id = *copying.first()?;
        self.propose_map_changes(vec![MapChange::EndMigration {
            id,
            cancelled: true,
        }])?;
        Some(format!("cancel migration {id}"))
    }

    /// Splits a shard drawn from the seed: a new shard, and a migration
    /// of half its slots to it, in one map version.
    fn split_shard(&mut self) -> Option<String> {
        let map = self.cluster.history().latest()?;
        let shards: Vec<GroupId> = map.shards.keys().copied().collect();
        let shard = shards[self.rng.random_range(0..shards.len())];
        let nodes = map.nodes.keys().copied().collect();
        let split = polis_cluster::reshape::split(&map, shard, &nodes)?;
        let said = split.describe();
        let polis_cluster::reshape::Reshape::Split {
            shard,
            slots,
            nodes,
        } = split
        else {
            return None;
        };
        self.propose_map_changes(vec![MapChange::SplitShard {
            shard,
            slots,
            nodes,
        }])?;
        Some(said)
    }

    /// Merges a shard drawn from the seed into another: every slot of it
    /// migrates, and the emptied shard is retired.
    fn merge_shard(&mut self) -> Option<String> {
        let map = self.cluster.history().latest()?;
        let shards: Vec<GroupId> = map
            .shards
            .values()
            .filter(|shard| !shard.slots.is_empty())
            .map(|shard| shard.id)
            .collect();
        if shards.len() < 2 {
            return None;
        }
        let from = shards[self.rng.random_range(0..shards.len())];
        let others: Vec<GroupId> = shards.into_iter().filter(|id| *id != from).collect();
        let into = others[self.rng.random_range(0..others.len())];
        self.propose_map_changes(vec![MapChange::BeginMigration {
            slots: map.shards.get(&from)?.slots.clone(),
            target: into,
        }])?;
        Some(format!("merge shard {from} into shard {into}"))
    }

    /// Moves a replica drawn from the seed to a node that holds none of
    /// its shard (five nodes; with three, every node holds every shard).
    fn move_replica(&mut self) -> Option<String> {
        let map = self.cluster.history().latest()?;
        let shards: Vec<GroupId> = map.shards.keys().copied().collect();
        let shard = map
            .shards
            .get(&shards[self.rng.random_range(0..shards.len())])?;
        let free: Vec<NodeId> = map
            .nodes
            .keys()
            .copied()
            .filter(|node| shard.replica_on(*node).is_none())
            .collect();
        if free.is_empty() {
            return None;
        }
        let from = shard.replicas[self.rng.random_range(0..shard.replicas.len())].node;
        let to = free[self.rng.random_range(0..free.len())];
        self.propose_map_changes(vec![MapChange::MoveReplica {
            shard: shard.id,
            from,
            to,
        }])?;
        Some(format!(
            "move shard {}'s replica from node {from} to {to}",
            shard.id
        ))
    }

    /// Starts a new node that joins the cluster through its first members.
    async fn join_node(&mut self) -> Option<String> {
        let next = self.cluster.ever().into_iter().map(|node| node.0).max()? + 1;
        if next > NODES_EVER_MAX {
            return None;
        }
        let node = NodeId(next);
        if let Err(error) = self.cluster.join(node).await {
            self.trace
                .violation(RESTART_FAILED, format!("node {node} cannot join: {error}"));
            return None;
        }
        Some(format!("join node {node}"))
    }

    /// Asks the cluster to remove an active node drawn from the seed (its
    /// replicas move off first), while enough others stay for every
    /// shard's replicas; the node stops once the map says it is removed,
    /// as a removed node does.
    fn remove_node(&mut self) -> Option<String> {
        let map = self.cluster.history().latest()?;
        let active: Vec<NodeId> = map
            .nodes
            .values()
            .filter(|record| record.active())
            .map(|record| record.id)
            .collect();
        if active.len() <= REPLICAS {
            return None;
        }
        let node = active[self.rng.random_range(0..active.len())];
        self.propose_map_changes(vec![MapChange::RemoveNode { node }])?;
        let cluster = self.cluster.clone();
        tokio::spawn(async move {
            // Bounded: the run ends well before.
            for _ in 0..10_000 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let removed = cluster
                    .history()
                    .latest()
                    .and_then(|map| map.node(node).map(|record| record.removed()));
                if removed == Some(true) {
                    cluster.remove(node);
                    return;
                }
            }
        });
        Some(format!("remove node {node}"))
    }

    fn duration(&mut self, max_ms: u64) -> tokio::time::Instant {
        let hold_ms = self.rng.random_range(100..=max_ms);
        tokio::time::Instant::now() + Duration::from_millis(hold_ms)
    }

    /// Starts a fault drawn from the seed, if one fits what is active.
    async fn start(&mut self, count: u64, active: &[Fault]) -> Option<Fault> {
        let mut nodes = self.cluster.members_now();
        let running = self.cluster.nodes(true);
        let (name, effect, until) = match self.rng.random_range(0..100) {
            0..=24 => {
                nodes.shuffle(&mut self.rng);
                let split = self.rng.random_range(1..nodes.len());
                let (side_a, side_b) = nodes.split_at(split);
                let name = format!("partition {side_a:?} | {side_b:?}");
                let pairs = between(side_a, side_b);
                self.links.cut(&pairs);
                (name, Effect::Cut(pairs), self.duration(FAULT_MS_MAX))
            }
            25..=34 => {
                let group = self.any_group();
                let leader = self.cluster.leader(group)?;
                let others: Vec<NodeId> = nodes.into_iter().filter(|n| *n != leader).collect();
                let pairs = between(&[leader], &others);
                self.links.cut(&pairs);
                let name = format!("isolate leader {leader} of group {group}");
                (name, Effect::Cut(pairs), self.duration(FAULT_MS_MAX))
            }
            35..=44 => {
                nodes.shuffle(&mut self.rng);
                let pairs = vec![(nodes[0], nodes[1])];
                self.links.cut(&pairs);
                let name = format!("drop {} -> {}", nodes[0], nodes[1]);
                (name, Effect::Cut(pairs), self.duration(FAULT_MS_MAX))
            }
            45..=64 => {
                let node = *running.get(self.rng.random_range(0..running.len().max(1)))?;
                self.cluster.crash(node);
                let name = format!("crash {node}");
                (name, Effect::Down(vec![node]), self.duration(FAULT_MS_MAX))
            }
            65..=71 => {
                let group = self.any_group();
                let node = self.cluster.leader(group)?;
                self.cluster.crash(node);
                let name = format!("crash leader {node} of group {group}");
                (name, Effect::Down(vec![node]), self.duration(FAULT_MS_MAX))
            }
            72..=74 => {
                let name = match self.rng.random_range(0..8) {
                    0 => self.reassign_slots()?,
                    1 | 2 => self.cancel_migrations()?,
                    3 => self.split_shard()?,
                    4 => self.merge_shard()?,
                    5 => self.join_node().await?,
                    6 => self.remove_node()?,
                    _ => self.move_replica()?,
                };
                (name, Effect::Once, tokio::time::Instant::now())
            }
            75..=79 => {
                for node in &running {
                    self.cluster.crash(*node);
                }
                let name = format!("power loss {running:?}");
                (
                    name,
                    Effect::Down(running),
                    self.duration(POWER_LOSS_MS_MAX),
                )
            }
            80..=87 => {
                let name = self.migrate_slots()?;
                (name, Effect::Once, tokio::time::Instant::now())
            }
            88..=93 => {
                if active
                    .iter()
                    .any(|fault| matches!(fault.effect, Effect::Loss))
                {
                    return None;
                }
                let percent = self.rng.random_range(10..=60);
                self.links.set_extra_loss(percent);
                (
                    format!("loss {percent}%"),
                    Effect::Loss,
                    self.duration(FAULT_MS_MAX),
                )
            }
            _ => {
                if active
                    .iter()
                    .any(|fault| matches!(fault.effect, Effect::Slow))
                {
                    return None;
                }
                let extra_ms = self.rng.random_range(10..=150);
                self.links
                    .set_extra_latency(Duration::from_millis(extra_ms));
                (
                    format!("slow +{extra_ms}ms"),
                    Effect::Slow,
                    self.duration(FAULT_MS_MAX),
                )
            }
        };
        // A number makes each fault's name unique, so its stop pairs with
        // its start in the history.
        let name = format!("#{count} {name}");
        self.trace.record(TraceEvent::Fault {
            description: name.clone(),
            start: true,
        });
        self.recorder.nemesis(&name, Phase::Start);
        Some(Fault {
            name,
            effect,
            until,
        })
    }

    async fn end(&mut self, fault: Fault) {
        match &fault.effect {
            Effect::Cut(pairs) => self.links.restore(pairs),
            Effect::Loss => self.links.set_extra_loss(0),
            Effect::Once => {}
            Effect::Slow => self.links.set_extra_latency(Duration::ZERO),
            Effect::Down(nodes) => {
                for node in nodes {
                    self.restart(*node).await;
                }
            }
        }
        self.trace.record(TraceEvent::Fault {
            description: fault.name.clone(),
            start: false,
        });
        self.recorder.nemesis(&fault.name, Phase::Stop);
    }

    async fn restart(&self, node: NodeId) {
        if let Err(error) = self.cluster.start(node).await {
            let detail = format!("node {node} cannot restart from its disk: {error}");
            self.trace.violation(RESTART_FAILED, detail);
        }
    }
}

/// Writes `key` once through any node, following one `MOVED`; the outcome
/// does not matter, only which shard applies it (see the ownership
/// invariant).
async fn probe(cluster: &SimCluster, key: &str, rng: &mut StdRng) {
    let running = cluster.nodes(true);
    if running.is_empty() {
        return;
    }
    let mut target = running[rng.random_range(0..running.len())];
    for _ in 0..2 {
        let Some((server, _)) = cluster.node(target) else {
            return;
        };
        let request = vec![
            Bytes::from_static(b"SET"),
            Bytes::from(key.to_owned()),
            Bytes::from_static(b"probe"),
        ];
        let mut session = Session::new(0);
        let reply = polis_server::pipeline::execute(&server, &mut session, vec![request]).await;
        match reply.first() {
            Some(polis_resp::Reply::Error(polis_resp::ReplyError::Moved { addr, .. })) => {
                match crate::cluster::node_of_address(addr) {
                    Some(next) => target = next,
                    None => return,
                }
            }
            _ => return,
        }
    }
}
