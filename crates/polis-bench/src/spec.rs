//! What a benchmark run is: the system, the workload, the load, and what
//! comes back.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The operation mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// YCSB A: 50 % reads, 50 % updates.
    A,
    /// YCSB B: 95 % reads, 5 % updates.
    B,
    /// YCSB C: reads only.
    C,
    /// Updates only.
    WriteOnly,
    /// Reads, updates, INCR on counters and HSET/HGET on hashes.
    Mixed,
    /// LPUSH only, onto a few thousand lists.
    Lpush,
    /// SADD only, of new members to a few thousand sets.
    Sadd,
    /// ZADD only, of new members to a few thousand sorted sets.
    Zadd,
    /// XADD only, to a few thousand streams.
    Xadd,
    /// HSET only, of the field of one hash per key.
    Hset,
}

/// How keys are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    Uniform,
    /// Zipfian with this exponent (YCSB uses 0.99).
    Zipfian(f64),
}

/// Closed loop (each connection sends as soon as its previous batch is
/// answered) or open loop (requests issued at a fixed rate whatever the
/// replies do, latency measured from the intended send time, so a stall
/// shows in the latencies instead of hiding in fewer requests).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Closed,
    Open { rate_per_s: u64 },
}

/// The system under load and how to talk to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// A RESP server or cluster; MOVED is followed.
    Resp {
        addrs: Vec<String>,
        /// Reads with READONLY on connections to these addresses (stale
        /// follower reads), instead of following MOVED to the leader.
        readonly: bool,
        /// After each write, `WAIT numreplicas timeout_ms` (Redis with
        /// replicas: the closest it gets to a replicated acknowledgement).
        wait_replicas: Option<(u32, u64)>,
    },
    /// etcd v3 over gRPC: reads are Range (linearizable), writes Put.
    Etcd { endpoints: Vec<String> },
}

/// One run's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchSpec {
    pub workload: Workload,
    /// Keys in the keyspace (loaded before the run).
    pub keys: u64,
    pub value_size: usize,
    pub distribution: Distribution,
    pub connections: usize,
    /// Requests in flight per connection (1: no pipelining).
    pub pipeline: usize,
    pub mode: Mode,
    /// Measured from the start, not recorded.
    pub warmup: Duration,
    /// Recorded time after the warm-up.
    pub duration: Duration,
    /// Stop after this many recorded operations, if sooner.
    pub ops_max: Option<u64>,
    pub seed: u64,
}

/// The load of a SET-only comparison: uniform keys, one request in
/// flight per connection, for a time.
#[derive(Debug, Clone, Copy)]
pub struct SetLoad {
    pub keys: u64,
    pub value_size: usize,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub seed: u64,
}

impl SetLoad {
    /// Returns the run's parameters.
    pub fn spec(&self) -> BenchSpec {
        BenchSpec {
            workload: Workload::WriteOnly,
            keys: self.keys,
            value_size: self.value_size,
            distribution: Distribution::Uniform,
            connections: self.connections,
            pipeline: 1,
            mode: Mode::Closed,
            warmup: self.warmup,
            duration: self.duration,
            ops_max: None,
            seed: self.seed,
        }
    }
}

/// Latencies of one kind of operation, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// What one run measured (after the warm-up).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// Operations answered without error.
    pub ops: u64,
    /// Operations answered with an error or not at all.
    pub errors: u64,
    /// The first few distinct errors, for the report.
    pub error_samples: Vec<String>,
    pub elapsed_s: f64,
    pub throughput_per_s: f64,
    /// All operations together.
    pub latency: Latency,
    /// By operation name (`get`, `set`, `incr`, `hset`, `hget`).
    pub by_op: BTreeMap<String, Latency>,
}
