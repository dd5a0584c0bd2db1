//! A work queue on one stream: producers XADD messages, consumers of one
//! group take them with `XREADGROUP ... COUNT n BLOCK 100` and XACK them.
//! Measured on a fresh 3-node polis (strong: every XADD, read and XACK
//! committed on a majority before its reply) and on Redis with a primary
//! and 2 replicas, `appendfsync always` on all three, and `WAIT 2` after
//! every XADD and every XACK.
//!
//! ```text
//! producers x P: XADD queue * t <µs since start> v <value> [WAIT 2 1000]
//! consumers x C: XREADGROUP GROUP workers consumer-i COUNT n BLOCK 100 STREAMS queue >
//!                XACK queue workers <ids> [WAIT 2 1000]
//! ```
//!
//! Producers stop after `duration` or `messages_max` messages; consumers
//! stop once the producers have and a read finds nothing new (or after
//! [`QUEUE_DRAIN_MAX`]). Messages per second end to end: messages
//! acknowledged over the time from the start to the last acknowledgement;
//! the latency of a message runs from its XADD to its XACK's reply.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::Value;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::driver::resp::{lock, open, owner_of};
use crate::histogram::Recorder;
use crate::limits::{
    QUEUE_CLIENTS_MAX, QUEUE_DRAIN_MAX, QUEUE_MESSAGES_MAX, QUEUE_READ_COUNT_MAX, REQUEST_TIMEOUT,
    VALUE_SIZE_MAX,
};
use crate::peers::polis::PolisCluster;
use crate::peers::redis::{RedisServers, RedisSetup, WAIT_REPLICAS};
use crate::peers::PeerConfig;
use crate::spec::{Latency, Target};
use crate::workload::Op;

/// The stream.
pub const STREAM_KEY: &str = "queue";
/// The consumer group.
pub const GROUP: &str = "workers";
/// How long one XREADGROUP waits for new entries.
const BLOCK_MS: u64 = 100;
/// Pause after a failed request before trying again.
const RETRY_AFTER: Duration = Duration::from_millis(50);

/// What the queue measurement needs.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub producers: usize,
    pub consumers: usize,
    /// COUNT of each XREADGROUP.
    pub read_count: usize,
    /// Messages produced, at most.
    pub messages_max: u64,
    /// How long the producers produce, at most.
    pub duration: Duration,
    pub value_size: usize,
    pub peers: PeerConfig,
    pub data_dir: PathBuf,
}

/// One system's run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueSide {
    /// Messages whose XADD (and WAIT) succeeded.
    pub produced: u64,
    /// Messages whose XACK (and WAIT) succeeded.
    pub acknowledged: u64,
    /// Failed requests.
    pub errors: u64,
    pub error_samples: Vec<String>,
    /// From the start to the last acknowledgement.
    pub elapsed_s: f64,
    /// Acknowledged messages per second.
    pub messages_per_s: f64,
    /// From XADD to the XACK's reply.
    pub latency: Latency,
}

/// Both systems, and what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueReport {
    pub producers: usize,
    pub consumers: usize,
    pub read_count: usize,
    pub messages_max: u64,
    pub duration_s: f64,
    pub polis: Option<QueueSide>,
    pub redis: Option<QueueSide>,
    pub errors: Vec<String>,
}

impl QueueReport {
    /// Returns polis's messages per second over Redis's.
    pub fn ratio(&self) -> Option<f64> {
        let polis = self.polis.as_ref()?.messages_per_s;
        let redis = self.redis.as_ref()?.messages_per_s;
        (redis > 0.0).then(|| polis / redis)
    }
}

/// What producers and consumers share.
struct Shared {
    addrs: Vec<String>,
    wait: Option<(u32, u64)>,
    read_count: usize,
    value: Vec<u8>,
    start: Instant,
    produce_until: Instant,
    drain_until: Instant,
    /// Messages producers may still send.
    remaining: AtomicU64,
    producers_left: AtomicUsize,
    produced: AtomicU64,
    acknowledged: AtomicU64,
    last_ack: Mutex<Option<Instant>>,
    recorder: Mutex<Recorder>,
}

impl Shared {
    /// Takes one message from the budget; false once it is spent.
    fn take_one(&self) -> bool {
        self.remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }

    fn error(&self, message: &str) {
        lock(&self.recorder).record_errors(1, message);
    }

    /// Returns a connection to the stream's owner (asked again: after an
    /// error a leader may have moved), after a short pause.
    async fn reconnect(&self) -> Option<MultiplexedConnection> {
        tokio::time::sleep(RETRY_AFTER).await;
        let addr = owner_of(&self.addrs, STREAM_KEY).await.ok()?;
        open(&addr).await.ok()
    }

    /// Sends `pipe` with a WAIT appended if asked to; returns its replies
    /// without the WAIT's, or the error as text.
    async fn send(
        &self,
        connection: &mut MultiplexedConnection,
        mut pipe: redis::Pipeline,
    ) -> Result<Vec<Value>, String> {
        if let Some((replicas, timeout_ms)) = self.wait {
            pipe.cmd("WAIT").arg(replicas).arg(timeout_ms);
        }
        let mut values: Vec<Value> =
            tokio::time::timeout(REQUEST_TIMEOUT, pipe.query_async(connection))
                .await
                .map_err(|_| format!("no reply within {REQUEST_TIMEOUT:?}"))?
                .map_err(|error: redis::RedisError| error.to_string())?;
        if let Some((replicas, timeout_ms)) = self.wait {
            match values.pop() {
                Some(Value::Int(acknowledged)) if acknowledged >= i64::from(replicas) => {}
                other => {
                    return Err(format!(
                        "WAIT {replicas} {timeout_ms}: {other:?} replicas acknowledged"
                    ))
                }
            }
        }
        Ok(values)
    }
}

async fn produce(shared: Arc<Shared>, mut connection: MultiplexedConnection) {
    while Instant::now() < shared.produce_until && shared.take_one() {
        let sent_us = shared.start.elapsed().as_micros() as u64;
        let mut pipe = redis::pipe();
        pipe.cmd("XADD")
            .arg(STREAM_KEY)
            .arg("*")
            .arg("t")
            .arg(sent_us)
            .arg("v")
            .arg(&shared.value);
        match shared.send(&mut connection, pipe).await {
            Ok(_) => {
                shared.produced.fetch_add(1, Ordering::AcqRel);
            }
            Err(error) => {
                shared.error(&format!("XADD: {error}"));
                if let Some(fresh) = shared.reconnect().await {
                    connection = fresh;
                }
            }
        }
    }
    shared.producers_left.fetch_sub(1, Ordering::AcqRel);
}

/// Returns the id and the `t` field of every entry of an XREADGROUP reply.
fn entries(reply: &Value) -> Vec<(Vec<u8>, Option<u64>)> {
    let as_array = |value: &Value| match value {
        Value::Array(items) => Some(items.clone()),
        _ => None,
    };
    let mut found = Vec::new();
    for stream in as_array(reply).unwrap_or_default() {
        let Some(entries) = as_array(&stream).and_then(|s| s.get(1).and_then(as_array)) else {
            continue;
        };
        for entry in entries {
            let Some(fields) = as_array(&entry) else {
                continue;
            };
            let Some(Value::BulkString(id)) = fields.first() else {
                continue;
            };
            let sent_us =
                fields
                    .get(1)
                    .and_then(as_array)
                    .and_then(|pairs| match pairs.as_slice() {
                        [Value::BulkString(name), Value::BulkString(t), ..] if name == b"t" => {
                            std::str::from_utf8(t).ok()?.parse().ok()
                        }
                        _ => None,
                    });
            found.push((id.clone(), sent_us));
        }
    }
    found
}

async fn consume(shared: Arc<Shared>, mut connection: MultiplexedConnection, index: usize) {
    let name = format!("consumer-{index}");
    while Instant::now() < shared.drain_until {
        let producers_done = shared.producers_left.load(Ordering::Acquire) == 0;
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP")
            .arg(GROUP)
            .arg(&name)
            .arg("COUNT")
            .arg(shared.read_count)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS")
            .arg(STREAM_KEY)
            .arg(">");
        let reply =
            tokio::time::timeout(REQUEST_TIMEOUT, read.query_async::<Value>(&mut connection))
                .await
                .map_err(|_| format!("no reply within {REQUEST_TIMEOUT:?}"))
                .and_then(|reply| reply.map_err(|error| error.to_string()));
        let taken = match reply {
            Ok(reply) => entries(&reply),
            Err(error) => {
                shared.error(&format!("XREADGROUP: {error}"));
                if let Some(fresh) = shared.reconnect().await {
                    connection = fresh;
                }
                continue;
            }
        };
        if taken.is_empty() {
            if producers_done {
                break;
            }
            continue;
        }
        let mut pipe = redis::pipe();
        let ack = pipe.cmd("XACK").arg(STREAM_KEY).arg(GROUP);
        for (id, _) in &taken {
            ack.arg(id.as_slice());
        }
        match shared.send(&mut connection, pipe).await {
            Ok(_) => {
                let now = Instant::now();
                shared
                    .acknowledged
                    .fetch_add(taken.len() as u64, Ordering::AcqRel);
                let mut last = lock(&shared.last_ack);
                *last = (*last).max(Some(now));
                drop(last);
                let since_start_us = now.duration_since(shared.start).as_micros() as u64;
                let mut recorder = lock(&shared.recorder);
                for sent_us in taken.iter().filter_map(|(_, t)| *t) {
                    let latency = Duration::from_micros(since_start_us.saturating_sub(sent_us));
                    recorder.record(Op::Xadd, latency);
                }
            }
            Err(error) => {
                shared.error(&format!("XACK: {error}"));
                if let Some(fresh) = shared.reconnect().await {
                    connection = fresh;
                }
            }
        }
    }
}

/// Runs the queue against `addrs` (WAIT after each write if `wait`).
async fn run_queue(
    config: &QueueConfig,
    addrs: Vec<String>,
    wait: Option<(u32, u64)>,
) -> anyhow::Result<QueueSide> {
    let owner = owner_of(&addrs, STREAM_KEY)
        .await
        .map_err(|error| anyhow::anyhow!(error))?;
    let mut setup = open(&owner).await.map_err(|error| anyhow::anyhow!(error))?;
    let _: Value = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(STREAM_KEY)
        .arg(GROUP)
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut setup)
        .await?;
    let mut connections = Vec::new();
    for _ in 0..config.producers + config.consumers {
        connections.push(open(&owner).await.map_err(|error| anyhow::anyhow!(error))?);
    }
    let start = Instant::now();
    let shared = Arc::new(Shared {
        addrs,
        wait,
        read_count: config.read_count,
        value: vec![b'v'; config.value_size],
        start,
        produce_until: start + config.duration,
        drain_until: start + config.duration + QUEUE_DRAIN_MAX,
        remaining: AtomicU64::new(config.messages_max),
        producers_left: AtomicUsize::new(config.producers),
        produced: AtomicU64::new(0),
        acknowledged: AtomicU64::new(0),
        last_ack: Mutex::new(None),
        recorder: Mutex::new(Recorder::new().map_err(|error| anyhow::anyhow!(error))?),
    });
    let mut tasks = JoinSet::new();
    for (index, connection) in connections.into_iter().enumerate() {
        if index < config.producers {
            tasks.spawn(produce(shared.clone(), connection));
        } else {
            tasks.spawn(consume(
                shared.clone(),
                connection,
                index - config.producers,
            ));
        }
    }
    let mut failed = 0;
    while let Some(joined) = tasks.join_next().await {
        if joined.is_err() {
            failed += 1;
        }
    }
    let mut recorder = lock(&shared.recorder).clone();
    recorder.record_errors(failed, "a producer or consumer stopped unexpectedly");
    let elapsed = lock(&shared.last_ack)
        .unwrap_or_else(Instant::now)
        .saturating_duration_since(start);
    let acknowledged = shared.acknowledged.load(Ordering::Acquire);
    let result = recorder.into_result(elapsed);
    Ok(QueueSide {
        produced: shared.produced.load(Ordering::Acquire),
        acknowledged,
        errors: result.errors,
        error_samples: result.error_samples,
        elapsed_s: elapsed.as_secs_f64(),
        messages_per_s: acknowledged as f64 / elapsed.as_secs_f64().max(1e-9),
        latency: result.latency,
    })
}

async fn measure_polis(config: &QueueConfig) -> anyhow::Result<QueueSide> {
    let mut cluster = PolisCluster::start(
        &config.peers.polis,
        config.data_dir.join("polis"),
        crate::peers::polis::SHARDS,
        &config.peers.polis_server_args,
    )
    .await?;
    let result = async {
        let Target::Resp { addrs, .. } = cluster.target() else {
            anyhow::bail!("polis has no RESP target");
        };
        let side = run_queue(config, addrs, None).await?;
        cluster.check_running()?;
        Ok(side)
    }
    .await;
    cluster.stop().await;
    result
}

async fn measure_redis(config: &QueueConfig) -> anyhow::Result<QueueSide> {
    let dir = config.data_dir.join("redis");
    let mut servers =
        RedisServers::start(&config.peers.redis_server, dir, RedisSetup::Replicated).await?;
    let result = async {
        let addrs = vec![servers.primary_addr().to_owned()];
        let side = run_queue(config, addrs, Some(WAIT_REPLICAS)).await?;
        servers.check_running()?;
        Ok(side)
    }
    .await;
    servers.stop().await;
    result
}

fn validate(config: &QueueConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=QUEUE_CLIENTS_MAX).contains(&config.producers),
        "producers must be 1 to {QUEUE_CLIENTS_MAX}"
    );
    anyhow::ensure!(
        (1..=QUEUE_CLIENTS_MAX).contains(&config.consumers),
        "consumers must be 1 to {QUEUE_CLIENTS_MAX}"
    );
    anyhow::ensure!(
        (1..=QUEUE_READ_COUNT_MAX).contains(&config.read_count),
        "the read count must be 1 to {QUEUE_READ_COUNT_MAX}"
    );
    anyhow::ensure!(
        (1..=QUEUE_MESSAGES_MAX).contains(&config.messages_max),
        "messages must be 1 to {QUEUE_MESSAGES_MAX}"
    );
    anyhow::ensure!(
        (1..=VALUE_SIZE_MAX).contains(&config.value_size),
        "the value size must be 1 to {VALUE_SIZE_MAX}"
    );
    anyhow::ensure!(
        config.duration > Duration::ZERO && config.duration <= Duration::from_secs(3600),
        "the queue duration must be over 0 and at most an hour"
    );
    Ok(())
}

/// Runs the queue on polis, then on Redis, and reports both; a side that
/// fails is left out with its error.
pub async fn measure(config: &QueueConfig, log: &dyn Fn(&str)) -> QueueReport {
    let mut report = QueueReport {
        producers: config.producers,
        consumers: config.consumers,
        read_count: config.read_count,
        messages_max: config.messages_max,
        duration_s: config.duration.as_secs_f64(),
        ..QueueReport::default()
    };
    if let Err(error) = validate(config) {
        report.errors.push(format!("{error:#}"));
        return report;
    }
    for name in ["polis", "redis"] {
        log(&format!(
            "queue: {name}, {} producers, {} consumers, up to {:.0} s",
            config.producers,
            config.consumers,
            config.duration.as_secs_f64()
        ));
        let measured = if name == "polis" {
            measure_polis(config).await
        } else {
            measure_redis(config).await
        };
        match measured {
            Ok(side) => {
                log(&format!(
                    "queue: {name} {:.0} messages/s ({} produced, {} acknowledged, {} errors, p99 {:.1} ms)",
                    side.messages_per_s,
                    side.produced,
                    side.acknowledged,
                    side.errors,
                    side.latency.p99_us as f64 / 1000.0
                ));
                if name == "polis" {
                    report.polis = Some(side);
                } else {
                    report.redis = Some(side);
                }
            }
            Err(error) => {
                log(&format!("queue: {name} FAILED: {error:#}"));
                report.errors.push(format!("{name}: {error:#}"));
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn entries_are_read_from_an_xreadgroup_reply() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk(STREAM_KEY),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("t"), bulk("42"), bulk("v"), bulk("x")]),
                ]),
                Value::Array(vec![bulk("1-1"), Value::Array(vec![bulk("v"), bulk("x")])]),
            ]),
        ])]);
        assert_eq!(
            entries(&reply),
            [(b"1-0".to_vec(), Some(42)), (b"1-1".to_vec(), None)]
        );
        assert!(entries(&Value::Nil).is_empty());
    }

    #[test]
    fn the_ratio_needs_both_sides() {
        let mut report = QueueReport {
            polis: Some(QueueSide {
                messages_per_s: 300.0,
                ..QueueSide::default()
            }),
            ..QueueReport::default()
        };
        assert_eq!(report.ratio(), None);
        report.redis = Some(QueueSide {
            messages_per_s: 150.0,
            ..QueueSide::default()
        });
        assert_eq!(report.ratio(), Some(2.0));
    }
}
