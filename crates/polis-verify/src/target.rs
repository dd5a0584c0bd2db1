//! What a run tests: a polis cluster (started here, or given by its
//! endpoints) or the Redis positive control, and how each takes a fault.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{bail, Context};
use polis_client::admin;
use polis_client::faults::Faults;
use polis_client::local::LocalCluster;

use crate::nemesis::{FaultKind, PlannedFault, CLOCK_AHEAD_MS_MAX};
use crate::redis_control::RedisGroup;

/// How long the followers stay paused before the leader is killed in a
/// pause-kill fault: long enough for the leader to acknowledge (or, if
/// it is correct, to refuse) writes on its own.
const PAUSE_BEFORE_KILL: Duration = Duration::from_secs(1);

/// A polis cluster.
pub struct PolisTarget {
    /// Present when this run started the processes (process faults work).
    pub cluster: Option<LocalCluster>,
    pub faults: Faults,
    pub resp: Vec<String>,
    /// The node the add-remove-node fault added last, while it is a
    /// member: the next such fault removes it.
    pub added: Option<u64>,
    /// The ports of the nodes added, held while they run.
    pub leases: Vec<std::sync::Arc<polis_client::ports::PortLease>>,
}

/// The system under test.
pub enum Target {
    Polis(PolisTarget),
    Redis(RedisGroup),
}

/// How to undo a fault.
#[derive(Debug)]
pub enum Undo {
    Heal,
    Restart(u64),
    Resume(u64),
    RedisRestart(usize),
    RedisResume(usize),
}

impl Target {
    /// Returns the addresses clients start from.
    pub fn client_addrs(&self) -> Vec<String> {
        match self {
            Target::Polis(polis) => polis.resp.clone(),
            Target::Redis(redis) => redis.addrs(),
        }
    }

    /// Returns the admin addresses of the nodes (polis only).
    pub fn admin_addrs(&self) -> Option<Vec<String>> {
        match self {
            Target::Polis(polis) => Some(polis.faults.members().values().cloned().collect()),
            Target::Redis(_) => None,
        }
    }

    /// Returns the node ids (polis) or process indexes (Redis).
    pub fn nodes(&self) -> Vec<u64> {
        match self {
            Target::Polis(polis) => polis.faults.members().keys().copied().collect(),
            Target::Redis(redis) => (0..redis.addrs().len() as u64).collect(),
        }
    }

    /// Returns why `kind` cannot be injected here, if it cannot.
    pub fn unsupported(&self, kind: FaultKind) -> Option<String> {
        match self {
            Target::Polis(PolisTarget { cluster: None, .. })
                if kind.is_process() || kind == FaultKind::AddRemoveNode =>
            {
                Some(format!(
                    "{kind} needs the processes: let polis verify start the cluster"
                ))
            }
            Target::Redis(_) if kind == FaultKind::ClockSkew => Some(
                "clock-skew moves the hybrid clock of polis's eventual keys, which Redis has not"
                    .to_owned(),
            ),
            Target::Redis(_) if kind == FaultKind::HintWindow => Some(
                "hint-window needs polis's hinted handoff and fault injection in the transport"
                    .to_owned(),
            ),
            Target::Redis(_) if kind.is_network() && kind != FaultKind::IsolateLeader => Some(
                format!("{kind} needs fault injection in the transport, which Redis has not"),
            ),
            Target::Redis(_) if kind == FaultKind::MoveSlots => {
                Some("move-slots needs polis's slot migrations".to_owned())
            }
            Target::Redis(_) if kind == FaultKind::AddRemoveNode => {
                Some("add-remove-node needs polis's membership changes".to_owned())
            }
            _ => None,
        }
    }

    /// Returns the leader of one of the cluster's groups, picked by
    /// `pick` among the meta group and every shard, with its name.
    async fn leader(&self, pick: u64) -> Option<(u64, String)> {
        let Target::Polis(polis) = self else {
            return None;
        };
        let admins: Vec<String> = polis.faults.members().values().cloned().collect();
        let status = admin::wait_until_ready(&admins, Duration::from_secs(3))
            .await
            .ok()?;
        let mut leaders: Vec<(u64, String)> = Vec::new();
        if let Some(meta) = status["meta_leader"].as_u64() {
            leaders.push((meta, "meta group".to_owned()));
        }
        for shard in status["shards"].as_array().into_iter().flatten() {
            if let (Some(id), Some(leader)) = (shard["id"].as_u64(), shard["leader_node"].as_u64())
            {
                leaders.push((leader, format!("shard {id}")));
            }
        }
        if leaders.is_empty() {
            return None;
        }
        let index = (pick % leaders.len() as u64) as usize;
        Some(leaders.swap_remove(index))
    }

    /// Starts `fault`; returns what was done and how to undo it.
    ///
    /// # Errors
    /// Returns an error if the fault cannot be applied.
    pub async fn start_fault(&mut self, fault: &PlannedFault) -> anyhow::Result<(String, Undo)> {
        if let Some(reason) = self.unsupported(fault.kind) {
            bail!(reason);
        }
        let leader = self.leader(fault.group_pick).await;
        match self {
            Target::Polis(polis) => polis.start_fault(fault, leader).await,
            Target::Redis(redis) => start_redis_fault(redis, fault).await,
        }
    }

    /// Undoes a fault.
    ///
    /// # Errors
    /// Returns an error if it cannot be undone.
    pub async fn stop_fault(&mut self, undo: Undo) -> anyhow::Result<()> {
        match (self, undo) {
            (Target::Polis(polis), Undo::Heal) => {
                // A node that is down has no faults to remove.
                let _unreachable = polis.faults.heal().await;
                Ok(())
            }
            (Target::Polis(polis), Undo::Restart(id)) => polis.cluster()?.start_node(id),
            (Target::Polis(polis), Undo::Resume(id)) => polis.cluster()?.resume(id),
            (Target::Redis(redis), Undo::RedisRestart(index)) => {
                redis.heal_links();
                redis.restart(index)
            }
            (Target::Redis(redis), Undo::RedisResume(index)) => redis.resume(index),
            (_, undo) => bail!("{undo:?} does not apply to this target"),
        }
    }

    /// Ends every fault, brings every node back, and waits until the
    /// system serves; returns the address of the leader or primary.
    ///
    /// # Errors
    /// Returns an error if the system does not recover within `timeout`.
    pub async fn recover(&mut self, timeout: Duration) -> anyhow::Result<String> {
        match self {
            Target::Polis(polis) => {
                if let Some(cluster) = polis.cluster.as_mut() {
                    for id in cluster.ids() {
                        if cluster.is_running(id) {
                            cluster.resume(id)?;
                        } else {
                            cluster.start_node(id)?;
                        }
                    }
                }
                // Nodes just (re)started take a moment to listen.
                let deadline = tokio::time::Instant::now() + timeout;
                loop {
                    let unreachable = polis.faults.heal().await;
                    match unreachable.first() {
                        None => break,
                        Some((id, error)) if tokio::time::Instant::now() > deadline => {
                            bail!("node {id} cannot be healed: {error:#}")
                        }
                        Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                let admins: Vec<String> = polis.faults.members().values().cloned().collect();
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let (_, resp) = admin::wait_for_leader(&admins, left).await?;
                Ok(resp)
            }
            Target::Redis(redis) => {
                redis.recover().await?;
                Ok(redis.primary_addr())
            }
        }
    }

    /// Stops whatever this run started.
    pub async fn shutdown(&mut self) {
        match self {
            Target::Polis(polis) => {
                if let Some(cluster) = polis.cluster.as_mut() {
                    cluster.stop_all(Duration::from_secs(10)).await;
                }
            }
            Target::Redis(redis) => redis.stop().await,
        }
    }
}

/// Slots one move-slots fault moves.
const MOVED_SLOTS: u16 = 2048;

impl PolisTarget {
    /// Begins moving up to 2,048 slots, all owned by the shard owning the
    /// slot the plan drew and starting at or before it, to the next shard;
    /// the migration runs on by itself.
    async fn move_slots(&mut self, fault: &PlannedFault) -> anyhow::Result<(String, Undo)> {
        let admins: Vec<String> = self.faults.members().values().cloned().collect();
        let status = admin::wait_until_ready(&admins, Duration::from_secs(3)).await?;
        let shards = admin::shard_ids(&status);
        if shards.len() < 2 {
            bail!(
                "move-slots needs two shards or more (start the cluster with --shards 2 or more)"
            );
        }
        let slot = u16::try_from(fault.amount % 16_384)?;
        let (owner, owned) = admin::slot_range(&status, slot).context("a slot without an owner")?;
        // Earlier moves split the layout into runs; a move must stay inside
        // one, since the target cannot receive slots it owns already.
        let start = slot
            .min(owned.end().saturating_sub(MOVED_SLOTS - 1))
            .max(*owned.start());
        let end = (start + (MOVED_SLOTS - 1)).min(*owned.end());
        let at = shards.iter().position(|id| *id == owner).unwrap_or(0);
        let target = shards[(at + 1) % shards.len()];
        let addr = admins.first().context("no nodes")?;
        let said = admin::begin_migration(addr, &format!("{start}-{end}"), target).await?;
        Ok((
            format!("move slots {start}-{end} to shard {target}: {said}"),
            Undo::Heal,
        ))
    }

    /// Adds a node to the cluster, or removes the one added last once it
    /// holds replicas: either way the replica balancer moves replicas (to
    /// the new node; off the leaving one, which stops once drained). Both
    /// run on by themselves.
    async fn add_or_remove_node(&mut self) -> anyhow::Result<(String, Undo)> {
        let admins: Vec<String> = self.faults.members().values().cloned().collect();
        if let Some(id) = self.added {
            // Removed once replicas moved to it, so that they move off.
            let status = admin::wait_until_ready(&admins, Duration::from_secs(3)).await?;
            let held = admin::node_state(&status, id).map_or(0, |(_, replicas)| replicas);
            if held == 0 {
                bail!("node {id} holds no replica yet: it is removed once some moved to it");
            }
            // Through any node that answers (one may be down).
            let mut refused = None;
            for addr in &admins {
                match admin::remove_node(addr, id).await {
                    Ok(said) => {
                        // It stops once drained: partitions leave it out
                        // from now on.
                        self.added = None;
                        self.faults.remove_member(id);
                        return Ok((
                            format!("remove node {id} holding {held} replicas: {said}"),
                            Undo::Heal,
                        ));
                    }
                    Err(error) => refused = Some(error),
                }
            }
            return Err(refused.unwrap_or_else(|| anyhow::anyhow!("no nodes")));
        }
        let status = admin::wait_until_ready(&admins, Duration::from_secs(3)).await?;
        let id = admin::highest_node_id(&status) + 1;
        let seed = status["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|node| node["state"] == "active")
            .and_then(|node| node["peer_addr"].as_str())
            .context("no active node to join through")?
            .to_owned();
        let (mut addrs, lease) = polis_client::local::free_addrs(1)?;
        let mut node = addrs.pop().context("no address")?;
        node.id = id;
        let admin_addr = node.admin.clone();
        self.cluster()?.add_node(node, &seed)?;
        self.leases.push(lease);
        self.faults.add_member(id, admin_addr);
        self.added = Some(id);
        Ok((format!("add node {id} (replicas move to it)"), Undo::Heal))
    }

    fn cluster(&mut self) -> anyhow::Result<&mut LocalCluster> {
        self.cluster
            .as_mut()
            .context("process faults need a cluster started by polis verify")
    }

    async fn start_fault(
        &mut self,
        fault: &PlannedFault,
        leader: Option<(u64, String)>,
    ) -> anyhow::Result<(String, Undo)> {
        let nodes = &fault.shuffle;
        let (leader, led) = match leader {
            Some((node, group)) => (Some(node), format!(" (leader of the {group})")),
            None => (None, String::new()),
        };
        let victim = match (fault.at_leader, leader) {
            (true, Some(leader)) => leader,
            _ => *nodes.first().context("no nodes")?,
        };
        let aimed = if fault.at_leader { led.as_str() } else { "" };
        let leader_or_first = leader.unwrap_or(victim);
        match fault.kind {
            FaultKind::Partition => {
                let side: BTreeSet<u64> = nodes[..nodes.len() / 2].iter().copied().collect();
                self.faults.partition(std::slice::from_ref(&side)).await?;
                Ok((format!("partition {side:?} from the rest"), Undo::Heal))
            }
            FaultKind::IsolateLeader => {
                self.faults
                    .partition(&[BTreeSet::from([leader_or_first])])
                    .await?;
                Ok((format!("isolate node {leader_or_first}{led}"), Undo::Heal))
            }
            FaultKind::Bridge => {
                let half = (nodes.len() - 1) / 2;
                let (left, rest) = nodes.split_at(half);
                let (bridge, right) = rest.split_at(1);
                for a in left {
                    for b in right {
                        self.faults.drop_one_way(*a, *b).await?;
                        self.faults.drop_one_way(*b, *a).await?;
                    }
                }
                Ok((
                    format!("bridge {left:?} <-> {bridge:?} <-> {right:?}"),
                    Undo::Heal,
                ))
            }
            FaultKind::Delay => {
                self.faults
                    .delay(None, fault.amount, fault.amount / 2)
                    .await?;
                Ok((format!("delay {} ms", fault.amount), Undo::Heal))
            }
            FaultKind::Loss => {
                self.faults.loss(None, u8::try_from(fault.amount)?).await?;
                Ok((format!("lose {}% of messages", fault.amount), Undo::Heal))
            }
            FaultKind::Kill => {
                self.cluster()?.kill9(victim).await?;
                Ok((
                    format!("kill -9 node {victim}{aimed}"),
                    Undo::Restart(victim),
                ))
            }
            FaultKind::ClockSkew => {
                let victim = *nodes.first().context("no nodes")?;
                self.faults.clock_skew(victim, fault.offset_ms).await?;
                let bound = if fault.offset_ms.unsigned_abs() < CLOCK_AHEAD_MS_MAX {
                    "within"
                } else {
                    "beyond"
                };
                Ok((
                    format!(
                        "clock skew node {victim} {:+} ms ({bound} the {CLOCK_AHEAD_MS_MAX} ms \
                         bound)",
                        fault.offset_ms
                    ),
                    Undo::Heal,
                ))
            }
            FaultKind::HintWindow => {
                // A node restarted since the workload set the window came
                // back with the default: set it again, everywhere.
                let window_ms = crate::workload::eventual::HINT_WINDOW_MS;
                crate::workload::eventual::set_hint_window(&self.resp, window_ms).await?;
                let victim = *nodes.first().context("no nodes")?;
                self.faults.partition(&[BTreeSet::from([victim])]).await?;
                Ok((
                    format!("isolate node {victim} past the {window_ms} ms hint window"),
                    Undo::Heal,
                ))
            }
            FaultKind::MoveSlots => self.move_slots(fault).await,
            FaultKind::AddRemoveNode => self.add_or_remove_node().await,
            FaultKind::Pause => {
                self.cluster()?.pause(victim)?;
                Ok((format!("pause node {victim}{aimed}"), Undo::Resume(victim)))
            }
            FaultKind::PauseKill => {
                let followers: Vec<u64> = nodes
                    .iter()
                    .copied()
                    .filter(|id| *id != leader_or_first)
                    .collect();
                let cluster = self.cluster()?;
                for id in &followers {
                    cluster.pause(*id)?;
                }
                tokio::time::sleep(PAUSE_BEFORE_KILL).await;
                cluster.kill9(leader_or_first).await?;
                for id in &followers {
                    cluster.resume(*id)?;
                }
                Ok((
                    format!("pause {followers:?}, kill -9 node {leader_or_first}{led}, resume"),
                    Undo::Restart(leader_or_first),
                ))
            }
        }
    }
}

async fn start_redis_fault(
    redis: &mut RedisGroup,
    fault: &PlannedFault,
) -> anyhow::Result<(String, Undo)> {
    match fault.kind {
        FaultKind::Kill => {
            let old = redis.kill_primary().await?;
            redis.promote().await?;
            Ok((
                format!("kill -9 primary {old}, promote {}", redis.primary()),
                Undo::RedisRestart(old),
            ))
        }
        FaultKind::Pause => {
            let victim = if fault.at_leader {
                redis.primary()
            } else {
                redis.replicas()[0]
            };
            redis.pause(victim)?;
            Ok((format!("pause redis {victim}"), Undo::RedisResume(victim)))
        }
        FaultKind::PauseKill => {
            let replicas = redis.replicas();
            for replica in &replicas {
                redis.pause(*replica)?;
            }
            tokio::time::sleep(PAUSE_BEFORE_KILL).await;
            let old = redis.kill_primary().await?;
            for replica in &replicas {
                redis.resume(*replica)?;
            }
            redis.promote().await?;
            Ok((
                format!(
                    "pause replicas {replicas:?}, kill -9 primary {old}, resume, promote {}",
                    redis.primary()
                ),
                Undo::RedisRestart(old),
            ))
        }
        FaultKind::IsolateLeader => {
            // What a sentinel on the majority side does: the primary is
            // cut off from its replicas (clients still reach it), a
            // replica is promoted, and the old primary, killed, comes
            // back as a replica of the new one.
            let old = redis.primary();
            redis.isolate_primary();
            tokio::time::sleep(PAUSE_BEFORE_KILL).await;
            redis.kill_primary().await?;
            redis.promote().await?;
            Ok((
                format!(
                    "isolate primary {old} from its replicas, kill -9 it, promote {}",
                    redis.primary()
                ),
                Undo::RedisRestart(old),
            ))
        }
        kind => bail!("{kind} is not a fault Redis can take here"),
    }
}
