//! The load generator: loads a keyspace and runs a workload against a
//! target, closed or open loop, and measures what comes back.
//!
//! ```text
//! run(target, spec)
//!   connections x Connection (resp.rs: redis multiplexed + MOVED routes,
//!                             etcd.rs: one gRPC channel)
//!     slots (engine.rs) -- op (workload.rs), key (keys.rs),
//!                          pacing (closed, or schedule.rs)
//!       -> Recorder shards (histogram.rs) -> merged BenchResult
//! ```

mod engine;
pub mod etcd;
pub mod resp;
pub mod resp_load;
pub mod routes;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

use crate::histogram::Recorder;
use crate::keys::KeyChooser;
use crate::limits::{
    CONNECTIONS_MAX, IN_FLIGHT_MAX, KEYS_MAX, OPEN_LOOP_LAG_MAX, OPEN_LOOP_RATE_PER_S_MAX,
    PIPELINE_MAX, RECORDER_SHARDS_MAX, RUN_DURATION_MAX, VALUE_SIZE_MAX,
};
use crate::schedule::Schedule;
use crate::spec::{BenchResult, BenchSpec, Mode, Target};
use crate::workload::{Op, OpMix};
use engine::{Budget, Clock, Pacing, Slot};
use etcd::EtcdConnection;
use resp::{RespConnection, RespOptions};

/// Loads `spec.keys` keys (`key:{n}`, values of `spec.value_size` bytes;
/// for the mixed workload also `counter:{n}` and `hash:{n}`) into the
/// target. Returns the number of keys loaded.
///
/// # Errors
/// Fails if the spec is out of bounds, the target cannot be reached, or it
/// refuses a write.
pub async fn load(target: &Target, spec: &BenchSpec) -> anyhow::Result<u64> {
    validate(spec)?;
    let value = value_bytes(spec);
    let with_counters_and_hashes = OpMix::uses_counters_and_hashes(spec.workload);
    let loaded = match target {
        Target::Resp { .. } => {
            let plan = resp_load::LoadPlan {
                keys: spec.keys,
                value,
                with_counters_and_hashes,
                connections: spec.connections,
            };
            resp_load::load(&resp_options(target)?, &plan).await
        }
        Target::Etcd { endpoints } => {
            etcd::load(
                endpoints,
                spec.keys,
                value,
                with_counters_and_hashes,
                spec.connections,
            )
            .await
        }
    };
    loaded
        .map_err(|error| anyhow!(error))
        .context("loading the keyspace")
}

/// Runs the workload of `spec` against the target and returns what was
/// measured after the warm-up: operations, errors (with a few samples),
/// throughput, and latency overall and by operation.
///
/// # Errors
/// Fails if the spec is out of bounds or a connection cannot be opened at
/// the start; failures during the run are counted, not returned.
pub async fn run(target: &Target, spec: &BenchSpec) -> anyhow::Result<BenchResult> {
    validate(spec)?;
    let keys = Arc::new(KeyChooser::new(spec.keys, spec.distribution).map_err(|e| anyhow!(e))?);
    let connections = connect(target, spec.connections).await?;
    let mix = OpMix::new(spec.workload);
    let value = value_bytes(spec);
    let shards = spec.connections.min(RECORDER_SHARDS_MAX);
    let recorders: Vec<Arc<Mutex<Recorder>>> = (0..shards)
        .map(|_| Recorder::new().map(|r| Arc::new(Mutex::new(r))))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!(e))?;
    let budget = spec.ops_max.map(|ops_max| Arc::new(Budget::new(ops_max)));

    let start = Instant::now();
    let warmup_end = start + spec.warmup;
    let clock = Clock {
        warmup_end,
        end: warmup_end + spec.duration,
    };
    let mut slots = JoinSet::new();
    for (index, connection) in connections.into_iter().enumerate() {
        let pacing = match spec.mode {
            Mode::Closed => Pacing::Closed,
            Mode::Open { rate_per_s } => Pacing::Open(Arc::new(Mutex::new(Schedule::new(
                start,
                rate_per_s,
                index,
                spec.connections,
                OPEN_LOOP_LAG_MAX,
            )))),
        };
        // See engine.rs: a closed loop over RESP pipelines its requests.
        let (slots_per_connection, batch) = match (&connection, spec.mode) {
            (Connection::Resp(_), Mode::Closed) => (1, spec.pipeline),
            _ => (spec.pipeline, 1),
        };
        for slot in 0..slots_per_connection {
            let seed = mix_seed(spec.seed, (index * spec.pipeline + slot) as u64);
            slots.spawn(
                Slot {
                    connection: connection.clone(),
                    keys: keys.clone(),
                    mix: mix.clone(),
                    value: value.clone(),
                    rng: StdRng::seed_from_u64(seed),
                    batch,
                    pacing: pacing.clone(),
                    recorder: recorders[index % shards].clone(),
                    budget: budget.clone(),
                    clock,
                }
                .run(),
            );
        }
    }
    let mut last_recorded: Option<Instant> = None;
    let mut failed_slots = 0u64;
    while let Some(joined) = slots.join_next().await {
        match joined {
            Ok(last) => last_recorded = last_recorded.max(last),
            Err(_) => failed_slots += 1,
        }
    }
    let mut total = Recorder::new().map_err(|e| anyhow!(e))?;
    for recorder in &recorders {
        total.merge(&resp::lock(recorder));
    }
    if failed_slots > 0 {
        total.record_errors(failed_slots, "a request loop stopped unexpectedly");
    }
    let elapsed = last_recorded
        .unwrap_or_else(Instant::now)
        .saturating_duration_since(warmup_end);
    Ok(total.into_result(elapsed))
}

/// One benchmark connection to either kind of target.
#[derive(Clone)]
pub enum Connection {
    Resp(RespConnection),
    Etcd(EtcdConnection),
}

impl Connection {
    /// Executes one operation on key number `key`.
    ///
    /// # Errors
    /// Returns the target's error or the I/O failure, as text.
    pub async fn execute(&self, op: Op, key: u64, value: &[u8]) -> Result<(), String> {
        match self {
            Connection::Resp(connection) => connection.execute(op, key, value).await,
            Connection::Etcd(connection) => connection.execute(op, key, value).await,
        }
    }

    /// Executes several operations and returns each one's outcome, in
    /// order: as pipelines over RESP, one after the other over etcd (which
    /// gets concurrency from several slots instead).
    pub async fn execute_batch(
        &self,
        requests: &[(Op, u64)],
        value: &[u8],
    ) -> Vec<Result<(), String>> {
        match self {
            Connection::Resp(connection) if requests.len() > 1 => {
                connection.execute_batch(requests, value).await
            }
            _ => {
                let mut outcomes = Vec::with_capacity(requests.len());
                for (op, key) in requests {
                    outcomes.push(self.execute(*op, *key, value).await);
                }
                outcomes
            }
        }
    }
}

/// Opens every benchmark connection, several at a time.
async fn connect(target: &Target, connections: usize) -> anyhow::Result<Vec<Connection>> {
    let mut opening = JoinSet::new();
    let options = match target {
        Target::Resp { .. } => Some(resp_options(target)?),
        Target::Etcd { endpoints } if endpoints.is_empty() => bail!("no etcd endpoint given"),
        Target::Etcd { .. } => None,
    };
    for index in 0..connections {
        let target = target.clone();
        let options = options.clone();
        opening.spawn(async move {
            let connection = match (&target, options) {
                (_, Some(options)) => RespConnection::connect(&options, index)
                    .await
                    .map(Connection::Resp)?,
                (Target::Etcd { endpoints }, None) => {
                    let connection = EtcdConnection::connect(endpoints, index).await?;
                    if index < endpoints.len() {
                        connection.check().await?;
                    }
                    Connection::Etcd(connection)
                }
                (Target::Resp { .. }, None) => return Err("no RESP options".to_string()),
            };
            Ok::<_, String>((index, connection))
        });
    }
    let mut opened: Vec<Option<Connection>> = vec![None; connections];
    while let Some(joined) = opening.join_next().await {
        let (index, connection) = joined
            .context("opening a connection")?
            .map_err(|error| anyhow!(error))
            .context("the target cannot be reached")?;
        opened[index] = Some(connection);
    }
    opened
        .into_iter()
        .map(|connection| connection.ok_or_else(|| anyhow!("a connection was not opened")))
        .collect()
}

fn resp_options(target: &Target) -> anyhow::Result<RespOptions> {
    match target {
        Target::Resp {
            addrs,
            readonly,
            wait_replicas,
        } => {
            if addrs.is_empty() {
                bail!("no RESP address given");
            }
            Ok(RespOptions {
                addrs: addrs.clone(),
                readonly: *readonly,
                wait_replicas: *wait_replicas,
            })
        }
        Target::Etcd { .. } => bail!("not a RESP target"),
    }
}

/// Checks the spec against the limits, one bound per line.
fn validate(spec: &BenchSpec) -> anyhow::Result<()> {
    let in_flight = spec.connections.saturating_mul(spec.pipeline);
    if spec.keys == 0 || spec.keys > KEYS_MAX {
        bail!("keys must be 1 to {KEYS_MAX}, not {}", spec.keys);
    }
    if spec.value_size == 0 || spec.value_size > VALUE_SIZE_MAX {
        bail!(
            "value size must be 1 to {VALUE_SIZE_MAX} bytes, not {}",
            spec.value_size
        );
    }
    if spec.connections == 0 || spec.connections > CONNECTIONS_MAX {
        bail!(
            "connections must be 1 to {CONNECTIONS_MAX}, not {}",
            spec.connections
        );
    }
    if spec.pipeline == 0 || spec.pipeline > PIPELINE_MAX {
        bail!(
            "pipeline must be 1 to {PIPELINE_MAX}, not {}",
            spec.pipeline
        );
    }
    if in_flight > IN_FLIGHT_MAX {
        bail!("connections x pipeline must be at most {IN_FLIGHT_MAX}, not {in_flight}");
    }
    if spec.warmup.saturating_add(spec.duration) > RUN_DURATION_MAX {
        bail!("warm-up plus duration must be at most {RUN_DURATION_MAX:?}");
    }
    if let Mode::Open { rate_per_s } = spec.mode {
        if rate_per_s == 0 || rate_per_s > OPEN_LOOP_RATE_PER_S_MAX {
            bail!("the open-loop rate must be 1 to {OPEN_LOOP_RATE_PER_S_MAX}/s, not {rate_per_s}");
        }
    }
    Ok(())
}

/// Returns the value written by SET and HSET: printable bytes drawn from
/// the seed, the same in every run with that seed.
fn value_bytes(spec: &BenchSpec) -> Arc<[u8]> {
    let mut rng = StdRng::seed_from_u64(mix_seed(spec.seed, u64::MAX));
    (0..spec.value_size)
        .map(|_| rng.random_range(b'a'..=b'z'))
        .collect()
}

/// Returns a seed for stream `stream` of a run seeded with `seed`
/// (splitmix64 of their combination), so slots draw independent streams.
fn mix_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use super::*;
    use crate::spec::{Distribution, Workload};

    fn spec() -> BenchSpec {
        BenchSpec {
            workload: Workload::A,
            keys: 100,
            value_size: 16,
            distribution: Distribution::Uniform,
            connections: 2,
            pipeline: 2,
            mode: Mode::Closed,
            warmup: Duration::ZERO,
            duration: Duration::from_millis(100),
            ops_max: None,
            seed: 1,
        }
    }

    #[test]
    fn out_of_bounds_specs_are_refused() {
        assert!(validate(&spec()).is_ok());
        let broken = [
            BenchSpec { keys: 0, ..spec() },
            BenchSpec {
                value_size: 0,
                ..spec()
            },
            BenchSpec {
                connections: 0,
                ..spec()
            },
            BenchSpec {
                pipeline: PIPELINE_MAX + 1,
                ..spec()
            },
            BenchSpec {
                connections: CONNECTIONS_MAX,
                pipeline: PIPELINE_MAX,
                ..spec()
            },
            BenchSpec {
                mode: Mode::Open { rate_per_s: 0 },
                ..spec()
            },
        ];
        for spec in broken {
            assert!(validate(&spec).is_err(), "{spec:?}");
        }
    }

    #[test]
    fn values_are_seeded_and_sized() {
        let value = value_bytes(&spec());
        assert_eq!(value.len(), 16);
        assert_eq!(value, value_bytes(&spec()));
        assert_ne!(value, value_bytes(&BenchSpec { seed: 2, ..spec() }));
        assert!(value.iter().all(u8::is_ascii_lowercase));
    }

    #[test]
    fn slot_seeds_differ() {
        let seeds: std::collections::HashSet<u64> = (0..1000).map(|s| mix_seed(7, s)).collect();
        assert_eq!(seeds.len(), 1000);
    }

    #[tokio::test]
    async fn an_unreachable_target_fails_with_a_clear_error() {
        // Port 1 on loopback: nothing listens there.
        let target = Target::Resp {
            addrs: vec!["127.0.0.1:1".to_string()],
            readonly: false,
            wait_replicas: None,
        };
        let error = format!("{:#}", run(&target, &spec()).await.unwrap_err());
        assert!(error.contains("cannot connect to 127.0.0.1:1"), "{error}");
        let error = format!("{:#}", load(&target, &spec()).await.unwrap_err());
        assert!(error.contains("127.0.0.1:1"), "{error}");
        let etcd = Target::Etcd {
            endpoints: vec!["127.0.0.1:1".to_string()],
        };
        let error = format!("{:#}", run(&etcd, &spec()).await.unwrap_err());
        assert!(
            error.contains("cannot connect to etcd at 127.0.0.1:1"),
            "{error}"
        );
    }
}
