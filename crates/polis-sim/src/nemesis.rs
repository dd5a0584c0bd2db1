//! The nemesis: faults drawn from the seed — partitions (including a
//! leader cut off and one-way links), crashes (of any node, of the leader,
//! of every node at once), message loss and slow links — each held for a
//! while, possibly overlapping. When the fault period ends, everything
//! heals and every node runs again.

use std::sync::Arc;
use std::time::Duration;

use polis_types::NodeId;
use polis_verify::history::Phase;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

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

/// What a fault changed, so that its end can undo exactly that.
enum Effect {
    Cut(Vec<(NodeId, NodeId)>),
    Loss,
    Slow,
    Down(Vec<NodeId>),
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
                if let Some(fault) = self.start(count, &active) {
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

    fn duration(&mut self, max_ms: u64) -> tokio::time::Instant {
        let hold_ms = self.rng.random_range(100..=max_ms);
        tokio::time::Instant::now() + Duration::from_millis(hold_ms)
    }

    /// Starts a fault drawn from the seed, if one fits what is active.
    fn start(&mut self, count: u64, active: &[Fault]) -> Option<Fault> {
        let mut nodes = self.config.node_ids();
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
                let leader = self.cluster.leader()?;
                let others: Vec<NodeId> = nodes.into_iter().filter(|n| *n != leader).collect();
                let pairs = between(&[leader], &others);
                self.links.cut(&pairs);
                let name = format!("isolate leader {leader}");
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
            65..=74 => {
                let node = self.cluster.leader()?;
                self.cluster.crash(node);
                let name = format!("crash leader {node}");
                (name, Effect::Down(vec![node]), self.duration(FAULT_MS_MAX))
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
            80..=89 => {
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
