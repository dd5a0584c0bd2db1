//! The targets polis is held to, each a ratio against a peer measured in
//! the same run (or, for latency, a bound), and whether it was met.

use serde::{Deserialize, Serialize};

use super::summary::Summary;
use crate::compare::cases::Case;
use crate::element_memory::ElementMemoryReport;
use crate::idle::IdleReport;
use crate::memory::MemoryReport;
use crate::peers::SystemKind;
use crate::queue::QueueReport;

/// Which way a measurement must fall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    AtLeast,
    Below,
    AtMost,
}

impl Bound {
    /// Returns the sign for reports.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::AtLeast => "≥",
            Self::Below => "<",
            Self::AtMost => "≤",
        }
    }

    fn holds(self, measured: f64, required: f64) -> bool {
        match self {
            Self::AtLeast => measured >= required,
            Self::Below => measured < required,
            Self::AtMost => measured <= required,
        }
    }
}

/// One target and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetCheck {
    pub name: String,
    /// What is measured, e.g. "polis SET ops/s ÷ etcd put ops/s".
    pub measure: String,
    pub bound: Bound,
    pub required: f64,
    /// Unit of `measured` and `required` ("x" for a ratio, "ms").
    pub unit: String,
    /// `None` when a side has no result.
    pub measured: Option<f64>,
    pub met: Option<bool>,
}

impl TargetCheck {
    fn new(
        name: &str,
        measure: &str,
        bound: Bound,
        required: f64,
        unit: &str,
        measured: Option<f64>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            measure: measure.to_owned(),
            bound,
            required,
            unit: unit.to_owned(),
            measured,
            met: measured.map(|value| bound.holds(value, required)),
        }
    }
}

fn find(summaries: &[Summary], case: Case, system: SystemKind) -> Option<&Summary> {
    summaries
        .iter()
        .find(|s| s.case == Some(case) && s.system == Some(system) && s.has_result())
}

/// Returns polis's throughput in `case` over `peer`'s in `peer_case`.
fn throughput_ratio(
    summaries: &[Summary],
    case: Case,
    peer: SystemKind,
    peer_case: Case,
) -> Option<f64> {
    let polis = find(summaries, case, SystemKind::Polis)?;
    let other = find(summaries, peer_case, peer)?;
    (other.throughput_per_s > 0.0).then(|| polis.throughput_per_s / other.throughput_per_s)
}

/// Evaluates every target.
pub fn check(
    summaries: &[Summary],
    memory: Option<&MemoryReport>,
    idle: Option<&IdleReport>,
) -> Vec<TargetCheck> {
    let largest = idle.and_then(IdleReport::largest);
    let idle_name = |what: &str| match largest {
        Some(run) => format!("idle, 3 nodes with {} shards: {what}", run.shards),
        None => format!("idle, 3 nodes with many shards: {what}"),
    };
    vec![
        TargetCheck::new(
            "strong SET, 50 connections: throughput",
            "polis SET ops/s ÷ etcd put ops/s",
            Bound::AtLeast,
            3.0,
            "x",
            throughput_ratio(summaries, Case::Set, SystemKind::Etcd, Case::Set),
        ),
        TargetCheck::new(
            "strong SET, 50 connections: sharded against one group",
            "polis (3 shards) SET ops/s ÷ polis (one group) SET ops/s",
            Bound::AtLeast,
            1.0,
            "x",
            throughput_ratio(summaries, Case::Set, SystemKind::PolisOneGroup, Case::Set),
        ),
        TargetCheck::new(
            "strong SET, 50 connections: p99 latency",
            "polis SET p99",
            Bound::Below,
            10.0,
            "ms",
            find(summaries, Case::Set, SystemKind::Polis).map(|s| s.p99_us / 1000.0),
        ),
        TargetCheck::new(
            "SET pipelined 16 deep",
            "polis ops/s ÷ Redis primary + 2 replicas (appendfsync always, WAIT 2) ops/s",
            Bound::AtLeast,
            1.0,
            "x",
            throughput_ratio(
                summaries,
                Case::SetPipeline,
                SystemKind::RedisReplicated,
                Case::SetPipeline,
            ),
        ),
        TargetCheck::new(
            "linearizable GET, 50 connections",
            "polis GET ops/s ÷ single Redis without persistence GET ops/s",
            Bound::AtLeast,
            0.5,
            "x",
            throughput_ratio(summaries, Case::Get, SystemKind::RedisMemory, Case::Get),
        ),
        TargetCheck::new(
            "READONLY follower reads, 50 connections",
            "polis follower GET ops/s ÷ single Redis without persistence GET ops/s",
            Bound::AtLeast,
            0.7,
            "x",
            throughput_ratio(
                summaries,
                Case::GetFollower,
                SystemKind::RedisMemory,
                Case::Get,
            ),
        ),
        TargetCheck::new(
            "memory per key",
            "polis leader RSS growth per key ÷ Redis used_memory growth per key",
            Bound::AtMost,
            2.0,
            "x",
            memory.and_then(MemoryReport::ratio),
        ),
        TargetCheck::new(
            &idle_name("every shard serving after start"),
            "seconds from starting the processes until every shard has a leader serving its slots",
            Bound::AtMost,
            10.0,
            "s",
            largest.map(|run| run.ready_s),
        ),
        TargetCheck::new(
            &idle_name("CPU"),
            "cores used by the three processes together while idle",
            Bound::AtMost,
            0.1,
            " cores",
            largest.map(|run| run.cpu_cores),
        ),
        TargetCheck::new(
            &idle_name("memory per replica"),
            "resident memory growth per replica over the smallest shard count",
            Bound::AtMost,
            256.0,
            " KiB",
            largest
                .and_then(|run| run.rss_per_replica_bytes)
                .map(|bytes| bytes / 1024.0),
        ),
    ]
}

/// Evaluates the data-type targets of what was measured: each type's
/// writes against SET, memory per element, the queue. A scenario that did
/// not run adds no line.
pub fn check_data_types(
    summaries: &[Summary],
    element_memory: Option<&ElementMemoryReport>,
    queue: Option<&QueueReport>,
) -> Vec<TargetCheck> {
    let mut checks = Vec::new();
    for case in Case::DATA_TYPES {
        if find(summaries, case, SystemKind::Polis).is_none() {
            continue;
        }
        let command = case.name().to_uppercase();
        checks.push(TargetCheck::new(
            &format!("strong {command}, 50 connections, against SET"),
            &format!("polis {command} ops/s ÷ polis SET ops/s (same run)"),
            Bound::AtLeast,
            0.8,
            "x",
            throughput_ratio(summaries, case, SystemKind::Polis, Case::Set),
        ));
    }
    for row in element_memory.map_or(&[][..], |memory| &memory.collections) {
        checks.push(TargetCheck::new(
            &format!("memory per element: {}", row.collection.name()),
            "polis serving node's RSS growth per element ÷ Redis used_memory growth per element",
            Bound::AtMost,
            2.0,
            "x",
            row.ratio(),
        ));
    }
    if let Some(queue) = queue {
        checks.push(TargetCheck::new(
            "queue on one stream: messages/s",
            "polis messages/s ÷ Redis primary + 2 replicas (appendfsync always, WAIT 2 after XADD and XACK) messages/s",
            Bound::AtLeast,
            1.0,
            "x",
            queue.ratio(),
        ));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(case: Case, system: SystemKind, throughput: f64, p99_us: f64) -> Summary {
        Summary {
            case: Some(case),
            system: Some(system),
            runs_ok: 1,
            throughput_per_s: throughput,
            p99_us,
            ..Summary::default()
        }
    }

    #[test]
    fn ratios_and_bounds() {
        let summaries = vec![
            summary(Case::Set, SystemKind::Polis, 30_000.0, 12_000.0),
            summary(Case::Set, SystemKind::Etcd, 9_000.0, 20_000.0),
            summary(Case::Get, SystemKind::Polis, 40_000.0, 2_000.0),
            summary(Case::Get, SystemKind::RedisMemory, 90_000.0, 1_000.0),
        ];
        let checks = check(&summaries, None, None);
        let by_name = |name: &str| checks.iter().find(|c| c.name.starts_with(name)).cloned();
        let set = by_name("strong SET, 50 connections: throughput")
            .unwrap_or_else(|| panic!("{checks:?}"));
        assert_eq!(set.met, Some(true));
        assert!((set.measured.unwrap_or(0.0) - 30_000.0 / 9_000.0).abs() < 1e-9);
        let p99 =
            by_name("strong SET, 50 connections: p99").unwrap_or_else(|| panic!("{checks:?}"));
        assert_eq!(p99.met, Some(false), "12 ms is not below 10 ms");
        let get = by_name("linearizable GET").unwrap_or_else(|| panic!("{checks:?}"));
        assert_eq!(get.met, Some(false), "0.44x is short of 0.5x");
        let follower = by_name("READONLY").unwrap_or_else(|| panic!("{checks:?}"));
        assert_eq!((follower.measured, follower.met), (None, None));
        let memory = by_name("memory").unwrap_or_else(|| panic!("{checks:?}"));
        assert_eq!(memory.met, None);
    }
}
