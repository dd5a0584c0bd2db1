//! The workloads of a comparison ("cases"): what each runs, and which
//! systems it applies to.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::peers::{RunningSystem, SystemKind};
use crate::spec::{BenchSpec, Distribution, Mode, Target, Workload};

/// YCSB's Zipfian exponent.
pub const ZIPFIAN_YCSB: f64 = 0.99;

/// Requests in flight per connection in the pipelined case.
pub const PIPELINE_DEPTH: usize = 16;

/// One workload of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Case {
    /// Linearizable GET, one request in flight per connection (YCSB C).
    Get,
    /// GET from followers (polis: READONLY; Redis: its replicas).
    GetFollower,
    /// YCSB B: 95 % reads, 5 % updates, Zipfian keys.
    YcsbB,
    /// YCSB A: 50 % reads, 50 % updates, Zipfian keys.
    YcsbA,
    /// Reads, updates, INCR, HSET and HGET.
    Mixed,
    /// Strong SET, one request in flight per connection.
    Set,
    /// SET, 16 requests in flight per connection.
    SetPipeline,
    /// LPUSH onto lists, one request in flight per connection (polis only).
    Lpush,
    /// SADD of new members to sets (polis only).
    Sadd,
    /// ZADD of new members to sorted sets (polis only).
    Zadd,
    /// XADD to streams (polis only).
    Xadd,
    /// HSET of one field per hash (polis only).
    Hset,
}

/// What every case shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseBase {
    pub keys: u64,
    pub value_size: usize,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub ops_max: Option<u64>,
    pub seed: u64,
}

impl Case {
    /// Every case, in the order they run on each system (reads first,
    /// while the keyspace is as loaded; writes last).
    pub const ALL: [Self; 12] = [
        Self::Get,
        Self::GetFollower,
        Self::YcsbB,
        Self::YcsbA,
        Self::Mixed,
        Self::Set,
        Self::SetPipeline,
        Self::Lpush,
        Self::Sadd,
        Self::Zadd,
        Self::Xadd,
        Self::Hset,
    ];

    /// The writes of one data type each, measured against SET.
    pub const DATA_TYPES: [Self; 5] = [Self::Lpush, Self::Sadd, Self::Zadd, Self::Xadd, Self::Hset];

    /// Returns the name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::GetFollower => "get-readonly",
            Self::YcsbB => "ycsb-b",
            Self::YcsbA => "ycsb-a",
            Self::Mixed => "mixed",
            Self::Set => "set",
            Self::SetPipeline => "set-pipeline-16",
            Self::Lpush => "lpush",
            Self::Sadd => "sadd",
            Self::Zadd => "zadd",
            Self::Xadd => "xadd",
            Self::Hset => "hset",
        }
    }

    /// Returns a one-line description for reports.
    pub fn title(self) -> &'static str {
        match self {
            Self::Get => "GET, linearizable, no pipelining (YCSB C, uniform keys)",
            Self::GetFollower => {
                "GET from followers (polis: READONLY; Redis: its replicas), no pipelining"
            }
            Self::YcsbB => "YCSB B: 95 % GET, 5 % SET, Zipfian 0.99",
            Self::YcsbA => "YCSB A: 50 % GET, 50 % SET, Zipfian 0.99",
            Self::Mixed => "mixed: GET, SET, INCR, HSET, HGET, Zipfian 0.99",
            Self::Set => "SET, strong/durable, no pipelining (write-only, uniform keys)",
            Self::SetPipeline => "SET, pipelined 16 deep per connection (write-only)",
            Self::Lpush => "LPUSH of a 100-byte value onto 4,096 lists, no pipelining",
            Self::Sadd => "SADD of a new member to 4,096 sets, no pipelining",
            Self::Zadd => "ZADD of a new member to 4,096 sorted sets, no pipelining",
            Self::Xadd => "XADD of a 100-byte field to 4,096 streams, no pipelining",
            Self::Hset => "HSET of one 100-byte field per hash, no pipelining (uniform keys)",
        }
    }

    /// Parses a name from [`Self::name`].
    ///
    /// # Errors
    /// Returns an error listing the names if `name` is none of them.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|case| case.name() == name.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|case| case.name()).collect();
                anyhow::anyhow!("unknown workload {name:?}; one of {}", names.join(", "))
            })
    }

    /// Returns the run's parameters.
    pub fn spec(self, base: &CaseBase) -> BenchSpec {
        let (workload, distribution, pipeline) = match self {
            Self::Get | Self::GetFollower => (Workload::C, Distribution::Uniform, 1),
            Self::YcsbB => (Workload::B, Distribution::Zipfian(ZIPFIAN_YCSB), 1),
            Self::YcsbA => (Workload::A, Distribution::Zipfian(ZIPFIAN_YCSB), 1),
            Self::Mixed => (Workload::Mixed, Distribution::Zipfian(ZIPFIAN_YCSB), 1),
            Self::Set => (Workload::WriteOnly, Distribution::Uniform, 1),
            Self::SetPipeline => (Workload::WriteOnly, Distribution::Uniform, PIPELINE_DEPTH),
            Self::Lpush => (Workload::Lpush, Distribution::Uniform, 1),
            Self::Sadd => (Workload::Sadd, Distribution::Uniform, 1),
            Self::Zadd => (Workload::Zadd, Distribution::Uniform, 1),
            Self::Xadd => (Workload::Xadd, Distribution::Uniform, 1),
            Self::Hset => (Workload::Hset, Distribution::Uniform, 1),
        };
        BenchSpec {
            workload,
            keys: base.keys,
            value_size: base.value_size,
            distribution,
            connections: base.connections,
            pipeline,
            mode: Mode::Closed,
            warmup: base.warmup,
            duration: base.duration,
            ops_max: base.ops_max,
            seed: base.seed,
        }
    }

    /// Returns true if the case means something on `system`: etcd has
    /// only Put and Range (no INCR or hashes) and no follower reads in
    /// the target; a single Redis node has no replicas to read from; the
    /// data-type writes are measured against polis's own SET.
    pub fn applies_to(self, system: SystemKind) -> bool {
        match self {
            Self::Lpush | Self::Sadd | Self::Zadd | Self::Xadd | Self::Hset => {
                system == SystemKind::Polis
            }
            Self::Mixed => system != SystemKind::Etcd,
            Self::GetFollower => system.is_polis() || system == SystemKind::RedisReplicated,
            _ => true,
        }
    }

    /// Returns where the case sends its requests on `running`.
    pub fn target(self, running: &RunningSystem) -> Option<Target> {
        match self {
            Self::GetFollower => running.follower_target(),
            _ => Some(running.target()),
        }
    }
}

/// Returns the spec that loads the keyspace before the cases run on
/// `system`: the mixed workload's counters and hashes too where it runs.
pub fn load_spec(system: SystemKind, cases: &[Case], base: &CaseBase) -> BenchSpec {
    let mixed = cases.contains(&Case::Mixed) && Case::Mixed.applies_to(system);
    let case = if mixed { Case::Mixed } else { Case::Set };
    let mut spec = case.spec(base);
    spec.pipeline = PIPELINE_DEPTH;
    spec
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_round_trip() {
        for case in Case::ALL {
            assert_eq!(Case::parse(case.name()).unwrap(), case);
        }
        assert!(Case::parse("set-50000").is_err());
    }

    #[test]
    fn etcd_runs_only_what_maps_to_put_and_range() {
        let on_etcd: Vec<Case> = Case::ALL
            .into_iter()
            .filter(|case| case.applies_to(SystemKind::Etcd))
            .collect();
        assert_eq!(
            on_etcd,
            [
                Case::Get,
                Case::YcsbB,
                Case::YcsbA,
                Case::Set,
                Case::SetPipeline
            ]
        );
    }

    #[test]
    fn the_pipelined_case_is_the_only_pipelined_one() {
        let base = CaseBase {
            keys: 10,
            value_size: 100,
            connections: 50,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(2),
            ops_max: None,
            seed: 7,
        };
        for case in Case::ALL {
            let spec = case.spec(&base);
            let expected = if case == Case::SetPipeline {
                PIPELINE_DEPTH
            } else {
                1
            };
            assert_eq!(spec.pipeline, expected, "{}", case.name());
            assert_eq!(spec.connections, 50);
        }
    }
}
