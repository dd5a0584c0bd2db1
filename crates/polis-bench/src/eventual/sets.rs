//! SET throughput on strong keys and on eventual keys of two write
//! quorums, on one cluster, one workload after the other, each run the
//! same way: `connections` clients, one SET in flight each (closed loop),
//! uniformly chosen keys, the same value, the same warm-up and duration.
//! Only where a request goes differs:
//!
//! - strong keys (`key:{n}`) go to their slot's shard leader, MOVED
//!   followed: the driver's client, as `polis bench run` uses it;
//! - eventual keys (`ev1:{n}`, `ev2:{n}`) may go to any replica: client
//!   `i` sends every request to node `i mod 3`, which coordinates it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::view;
use super::{make_namespaces, value_bytes, REPLICAS};
use crate::driver::resp::{self, lock, RespConnection, RespOptions};
use crate::histogram::Recorder;
use crate::limits::{RECORDER_SHARDS_MAX, REQUEST_TIMEOUT};
use crate::peers::usage::{Usage, UsageStart};
use crate::spec::BenchResult;
use crate::workload::Op;

/// How long past its own time a workload may take before it counts as
/// stuck.
const RUN_SLACK: Duration = Duration::from_secs(60);
/// The eventual figures each workload reports the growth of: writes
/// coordinated, and those forwarded, short of W, or leaving a hint.
const FIGURES: [&str; 4] = [
    "writes_total",
    "forwarded_total",
    "outcome_unknown_total",
    "hints_written_total",
];

/// What the SET workloads need.
#[derive(Debug, Clone)]
pub struct SetsConfig {
    pub connections: usize,
    /// Keys of each workload's keyspace, chosen uniformly.
    pub keys: u64,
    pub value_size: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub seed: u64,
}

/// Which keys a workload writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// Keys outside every namespace, through Raft.
    Strong,
    /// Keys of an eventual namespace with N = 3, this W and R = 1.
    Eventual {
        prefix: &'static str,
        write_quorum: u8,
    },
}

/// The three workloads, in the order they run.
pub const WORKLOADS: [Keys; 3] = [
    Keys::Strong,
    Keys::Eventual {
        prefix: "ev1:",
        write_quorum: 1,
    },
    Keys::Eventual {
        prefix: "ev2:",
        write_quorum: 2,
    },
];

impl Keys {
    /// Returns the workload's name in the report.
    pub fn name(self) -> String {
        match self {
            Keys::Strong => "strong".to_owned(),
            Keys::Eventual { write_quorum, .. } => {
                format!("eventual N={REPLICAS} W={write_quorum} R=1")
            }
        }
    }
}

/// One workload's run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetWorkload {
    pub name: String,
    /// The keys' prefix (`key:` for strong ones: no namespace).
    pub prefix: String,
    /// (N, W, R) of an eventual namespace.
    pub quorums: Option<(u8, u8, u8)>,
    /// Where the requests went.
    pub routing: String,
    pub result: BenchResult,
    /// CPU seconds (user + system) of the nodes over the recorded time.
    pub node_cpu_s: f64,
    /// node_cpu_s over the SETs recorded, in microseconds.
    pub node_cpu_us_per_set: f64,
    /// How much the nodes' eventual figures grew during the workload
    /// (warm-up included), summed over the nodes.
    pub figures: BTreeMap<String, u64>,
}

/// The three workloads and their ratios.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetsReport {
    pub connections: usize,
    pub keys: u64,
    pub value_size: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub workloads: Vec<SetWorkload>,
}

impl SetsReport {
    /// Returns SETs/s of eventual keys with write quorum `write_quorum`
    /// over SETs/s of strong keys.
    pub fn ratio(&self, write_quorum: u8) -> Option<f64> {
        let strong = self
            .workloads
            .iter()
            .find(|workload| workload.quorums.is_none())?;
        let eventual = self.workloads.iter().find(|workload| {
            workload
                .quorums
                .is_some_and(|(_, write, _)| write == write_quorum)
        })?;
        let base = strong.result.throughput_per_s;
        (base > 0.0).then(|| eventual.result.throughput_per_s / base)
    }
}

/// Runs the three workloads on the cluster whose nodes answer RESP at
/// `resp_addrs` (the leader first) and admin requests at `admins` (by
/// node id), and run as processes `pids`.
///
/// # Errors
/// Fails if the namespaces cannot be made, a connection cannot be
/// opened, a node does not show its eventual figures, or a workload gets
/// stuck; failed requests are counted.
pub async fn measure(
    resp_addrs: &[String],
    admins: &[(u64, String)],
    pids: &[u32],
    config: &SetsConfig,
    log: &dyn Fn(&str),
) -> anyhow::Result<SetsReport> {
    let eventual: Vec<(&str, u8)> = WORKLOADS
        .iter()
        .filter_map(|keys| match keys {
            Keys::Strong => None,
            Keys::Eventual {
                prefix,
                write_quorum,
            } => Some((*prefix, *write_quorum)),
        })
        .collect();
    make_namespaces(admins, &eventual).await?;
    let value = value_bytes(config.value_size, config.seed);
    let mut report = SetsReport {
        connections: config.connections,
        keys: config.keys,
        value_size: config.value_size,
        warmup_s: config.warmup.as_secs_f64(),
        duration_s: config.duration.as_secs_f64(),
        workloads: Vec::new(),
    };
    for keys in WORKLOADS {
        log(&format!(
            "sets: {} for {:.1} s (+{:.1} s warm-up), {} connections",
            keys.name(),
            config.duration.as_secs_f64(),
            config.warmup.as_secs_f64(),
            config.connections
        ));
        let senders = connect(keys, resp_addrs, config.connections).await?;
        let before = view::fetch_all(admins).await?;
        let (result, usage) = tokio::time::timeout(
            config.warmup + config.duration + RUN_SLACK,
            run(senders, pids, config, value.clone()),
        )
        .await
        .map_err(|_| anyhow!("{} did not end in time", keys.name()))??;
        let after = view::fetch_all(admins).await?;
        let figures: BTreeMap<String, u64> = FIGURES
            .iter()
            .map(|name| {
                let grown = view::growth(&before, &after, name);
                (name.to_string(), grown.iter().map(|(_, by)| by).sum())
            })
            .collect();
        let node_cpu_us_per_set = if result.ops > 0 {
            usage.cpu_s * 1e6 / result.ops as f64
        } else {
            0.0
        };
        log(&format!(
            "sets: {}: {:.0} SET/s, p50 {:.2} ms, p99 {:.2} ms, {} errors; the nodes' CPU {:.0} us per SET; eventual figures {figures:?}",
            keys.name(),
            result.throughput_per_s,
            result.latency.p50_us as f64 / 1000.0,
            result.latency.p99_us as f64 / 1000.0,
            result.errors,
            node_cpu_us_per_set
        ));
        let (prefix, quorums, routing) = match keys {
            Keys::Strong => (
                "key:".to_owned(),
                None,
                "the slot's shard leader, MOVED followed".to_owned(),
            ),
            Keys::Eventual {
                prefix,
                write_quorum,
            } => (
                prefix.to_owned(),
                Some((REPLICAS, write_quorum, 1)),
                format!("client i to node i mod {}", resp_addrs.len()),
            ),
        };
        report.workloads.push(SetWorkload {
            name: keys.name(),
            prefix,
            quorums,
            routing,
            result,
            node_cpu_s: usage.cpu_s,
            node_cpu_us_per_set,
            figures,
        });
    }
    Ok(report)
}

/// Where one client's SETs go.
#[derive(Clone)]
enum Sender {
    /// To the slot's leader, MOVED followed (keys `key:{n}`).
    Routed(RespConnection),
    /// Every request to one node, which coordinates it.
    Pinned {
        connection: MultiplexedConnection,
        prefix: &'static str,
    },
}

impl Sender {
    async fn set(&self, key: u64, value: &[u8]) -> Result<(), String> {
        match self {
            Sender::Routed(connection) => connection.execute(Op::Set, key, value).await,
            Sender::Pinned { connection, prefix } => {
                let mut connection = connection.clone();
                redis::cmd("SET")
                    .arg(format!("{prefix}{key}"))
                    .arg(value)
                    .query_async::<redis::Value>(&mut connection)
                    .await
                    .map(|_| ())
                    .map_err(|error| error.to_string())
            }
        }
    }
}

/// Opens the clients of one workload, several at a time.
async fn connect(
    keys: Keys,
    resp_addrs: &[String],
    connections: usize,
) -> anyhow::Result<Vec<Sender>> {
    anyhow::ensure!(!resp_addrs.is_empty(), "no RESP address");
    let options = RespOptions {
        addrs: resp_addrs.to_vec(),
        readonly: false,
        wait_replicas: None,
    };
    let mut opening = JoinSet::new();
    for index in 0..connections {
        let options = options.clone();
        let addr = resp_addrs[index % resp_addrs.len()].clone();
        opening.spawn(async move {
            let sender = match keys {
                Keys::Strong => Sender::Routed(RespConnection::connect(&options, index).await?),
                Keys::Eventual { prefix, .. } => Sender::Pinned {
                    connection: resp::open(&addr).await?,
                    prefix,
                },
            };
            Ok::<_, String>((index, sender))
        });
    }
    let mut opened: Vec<Option<Sender>> = vec![None; connections];
    while let Some(joined) = opening.join_next().await {
        let (index, sender) = joined?.map_err(|error| anyhow!(error))?;
        opened[index] = Some(sender);
    }
    opened
        .into_iter()
        .map(|sender| sender.ok_or_else(|| anyhow!("a connection was not opened")))
        .collect()
}

/// Runs the closed loops of `senders` and returns what the recorded part
/// measured, with what processes `pids` used meanwhile.
async fn run(
    senders: Vec<Sender>,
    pids: &[u32],
    config: &SetsConfig,
    value: Arc<[u8]>,
) -> anyhow::Result<(BenchResult, Usage)> {
    let shards = senders.len().clamp(1, RECORDER_SHARDS_MAX);
    let recorders: Vec<Arc<Mutex<Recorder>>> = (0..shards)
        .map(|_| Recorder::new().map(|recorder| Arc::new(Mutex::new(recorder))))
        .collect::<Result<_, _>>()
        .map_err(|error| anyhow!(error))?;
    let warmup_end = Instant::now() + config.warmup;
    let end = warmup_end + config.duration;
    let mut loops = JoinSet::new();
    for (index, sender) in senders.into_iter().enumerate() {
        let recorder = recorders[index % shards].clone();
        let value = value.clone();
        let mut rng = StdRng::seed_from_u64(config.seed.wrapping_add(index as u64));
        let keys = config.keys.max(1);
        loops.spawn(async move {
            let mut last_recorded = None;
            while Instant::now() < end {
                let key = rng.random_range(0..keys);
                let start = Instant::now();
                let outcome = tokio::time::timeout(REQUEST_TIMEOUT, sender.set(key, &value)).await;
                let done = Instant::now();
                if start < warmup_end {
                    continue;
                }
                last_recorded = Some(done);
                let mut recorder = lock(&recorder);
                match outcome {
                    Ok(Ok(())) => recorder.record(Op::Set, done - start),
                    Ok(Err(error)) => recorder.record_errors(1, &format!("set: {error}")),
                    Err(_) => {
                        recorder.record_errors(1, &format!("no reply within {REQUEST_TIMEOUT:?}"))
                    }
                }
            }
            last_recorded
        });
    }
    let usage = {
        let pids = pids.to_vec();
        tokio::spawn(async move {
            tokio::time::sleep_until(warmup_end.into()).await;
            let start = UsageStart::take(&pids);
            tokio::time::sleep_until(end.into()).await;
            start.finish()
        })
    };
    let mut last_recorded: Option<Instant> = None;
    let mut failed_loops = 0;
    while let Some(joined) = loops.join_next().await {
        match joined {
            Ok(last) => last_recorded = last_recorded.max(last),
            Err(_) => failed_loops += 1,
        }
    }
    let mut total = Recorder::new().map_err(|error| anyhow!(error))?;
    for recorder in &recorders {
        total.merge(&lock(recorder));
    }
    total.record_errors(failed_loops, "a request loop stopped unexpectedly");
    let elapsed = last_recorded
        .unwrap_or_else(Instant::now)
        .saturating_duration_since(warmup_end);
    Ok((total.into_result(elapsed), usage.await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(quorums: Option<(u8, u8, u8)>, throughput_per_s: f64) -> SetWorkload {
        SetWorkload {
            quorums,
            result: BenchResult {
                throughput_per_s,
                ..BenchResult::default()
            },
            ..SetWorkload::default()
        }
    }

    #[test]
    fn ratios_compare_each_write_quorum_with_strong_keys() {
        let mut report = SetsReport::default();
        assert_eq!(report.ratio(1), None);
        report.workloads = vec![
            workload(None, 1_000.0),
            workload(Some((3, 1, 1)), 3_500.0),
            workload(Some((3, 2, 1)), 1_500.0),
        ];
        assert_eq!(report.ratio(1), Some(3.5));
        assert_eq!(report.ratio(2), Some(1.5));
        assert_eq!(report.ratio(3), None);
        report.workloads[0].result.throughput_per_s = 0.0;
        assert_eq!(report.ratio(1), None);
    }

    #[test]
    fn the_workloads_use_distinct_prefixes_of_one_length() {
        let prefixes: Vec<&str> = WORKLOADS
            .iter()
            .filter_map(|keys| match keys {
                Keys::Eventual { prefix, .. } => Some(*prefix),
                Keys::Strong => None,
            })
            .collect();
        assert_eq!(prefixes, ["ev1:", "ev2:"]);
        // The strong keys are `key:{n}`: the same length, outside both.
        assert!(prefixes
            .iter()
            .all(|prefix| prefix.len() == "key:".len() && !"key:1".starts_with(prefix)));
    }
}
