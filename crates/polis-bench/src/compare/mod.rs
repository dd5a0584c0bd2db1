//! The comparison runner: for each repetition, each system in turn (the
//! order rotated every repetition, so no system always runs on a warm or
//! a tired machine) is started fresh, loaded with the same keyspace, run
//! through every case that applies to it with the same parameters, and
//! stopped. CPU time of its server processes is counted over the
//! measured part of every run, and their peak memory read at its end.
//!
//! ```text
//! repetition 1: polis -> polis-one-group -> etcd -> redis-replicated -> redis-fsync -> redis-memory
//! repetition 2: polis-one-group -> etcd -> redis-replicated -> redis-fsync -> redis-memory -> polis
//!   each: start -> load -> get, get-readonly, ycsb-b, ycsb-a, mixed, set, set-pipeline-16 -> stop
//! then: memory per key (polis, redis-memory); idle shards (polis with 3, 32, 128 shards);
//!       memory per element (polis, redis-memory); a queue on one stream (polis, redis-replicated)
//! ```

pub mod cases;
pub mod record;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use self::cases::{load_spec, Case, CaseBase};
use self::record::{Comparison, LoadRecord, RunRecord, Settings};
use crate::driver;
use crate::element_memory::{self, ElementMemoryConfig};
use crate::idle::{self, IdleConfig};
use crate::memory::{self, MemoryConfig};
use crate::peers::usage::UsageStart;
use crate::peers::{PeerConfig, RunningSystem, SystemKind};
use crate::queue::{self, QueueConfig};

/// Repetitions of the whole comparison, at most.
pub const REPETITIONS_MAX: u32 = 20;

/// Producers, consumers and the COUNT of each XREADGROUP in the queue.
pub const QUEUE_PRODUCERS: usize = 10;
pub const QUEUE_CONSUMERS: usize = 10;
pub const QUEUE_READ_COUNT: usize = 10;

/// Time a run may take beyond its warm-up and duration before it is
/// abandoned (connections, the driver's own draining).
const RUN_SLACK: Duration = Duration::from_secs(60);

/// Everything a comparison needs.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    pub systems: Vec<SystemKind>,
    pub cases: Vec<Case>,
    pub repetitions: u32,
    pub base: CaseBase,
    /// Keys for the memory measurement (0: skip it).
    pub memory_keys: u64,
    /// Shard counts for the idle measurement (empty: skip it).
    pub idle_shards: Vec<usize>,
    /// How long each idle cluster is watched.
    pub idle_window: Duration,
    /// Elements per collection for memory per element (0: skip it).
    pub elements: u64,
    /// How long the queue's producers produce (zero: skip the queue).
    pub queue_duration: Duration,
    /// Messages the queue's producers produce, at most.
    pub queue_messages_max: u64,
    pub peers: PeerConfig,
    /// Where the systems keep their data (a fresh subdirectory per start).
    pub data_dir: PathBuf,
    /// Keep every system's data directory after it stops.
    pub keep_data: bool,
    /// A label for the report (`full`, `quick`, `custom`).
    pub profile: String,
}

/// Returns the systems in the order they run in `repetition`.
pub fn rotated(systems: &[SystemKind], repetition: u32) -> Vec<SystemKind> {
    if systems.is_empty() {
        return Vec::new();
    }
    let shift = repetition as usize % systems.len();
    systems[shift..]
        .iter()
        .chain(&systems[..shift])
        .copied()
        .collect()
}

/// Returns the time the load of `keys` keys may take.
fn load_timeout(keys: u64) -> Duration {
    Duration::from_secs(120) + Duration::from_millis(keys)
}

/// Runs the comparison; `log` gets one line per step. A system that
/// fails to start, or a run that fails, is recorded with its error and
/// the comparison goes on.
///
/// # Errors
/// Returns an error only if the configuration is unusable.
pub async fn run(config: &CompareConfig, log: &dyn Fn(&str)) -> anyhow::Result<Comparison> {
    let runs_cases = !config.systems.is_empty() && !config.cases.is_empty();
    let runs_something = runs_cases
        || config.memory_keys > 0
        || !config.idle_shards.is_empty()
        || config.elements > 0
        || !config.queue_duration.is_zero();
    anyhow::ensure!(runs_something, "nothing to measure");
    anyhow::ensure!(
        (1..=REPETITIONS_MAX).contains(&config.repetitions),
        "repetitions must be 1..={REPETITIONS_MAX}"
    );
    let started = Instant::now();
    let mut comparison = Comparison {
        settings: Settings::from_config(config),
        started_unix_s: record::unix_secs(),
        ..Comparison::default()
    };
    for repetition in 0..config.repetitions {
        for system in rotated(&config.systems, repetition) {
            run_system(config, repetition, system, &mut comparison, log).await;
        }
    }
    if config.memory_keys > 0 {
        let memory_config = MemoryConfig {
            keys: config.memory_keys,
            value_size: config.base.value_size,
            seed: config.base.seed,
            peers: config.peers.clone(),
            data_dir: config.data_dir.join("memory"),
        };
        log(&format!("memory: loading {} keys", config.memory_keys));
        comparison.memory = Some(memory::measure(&memory_config, log).await);
        if !config.keep_data {
            let _ = std::fs::remove_dir_all(&memory_config.data_dir);
        }
    }
    if !config.idle_shards.is_empty() {
        let idle_config = IdleConfig {
            shard_counts: config.idle_shards.clone(),
            window: config.idle_window,
            peers: config.peers.clone(),
            data_dir: config.data_dir.join("idle"),
        };
        comparison.idle = Some(idle::measure(&idle_config, log).await);
        if !config.keep_data {
            let _ = std::fs::remove_dir_all(&idle_config.data_dir);
        }
    }
    if config.elements > 0 {
        let element_config = ElementMemoryConfig {
            elements: config.elements,
            peers: config.peers.clone(),
            data_dir: config.data_dir.join("elements"),
        };
        comparison.element_memory = Some(element_memory::measure(&element_config, log).await);
        if !config.keep_data {
            let _ = std::fs::remove_dir_all(&element_config.data_dir);
        }
    }
    if !config.queue_duration.is_zero() {
        let queue_config = QueueConfig {
            producers: QUEUE_PRODUCERS,
            consumers: QUEUE_CONSUMERS,
            read_count: QUEUE_READ_COUNT,
            messages_max: config.queue_messages_max,
            duration: config.queue_duration,
            value_size: config.base.value_size,
            peers: config.peers.clone(),
            data_dir: config.data_dir.join("queue"),
        };
        comparison.queue = Some(queue::measure(&queue_config, log).await);
        if !config.keep_data {
            let _ = std::fs::remove_dir_all(&queue_config.data_dir);
        }
    }
    comparison.elapsed_s = started.elapsed().as_secs_f64();
    Ok(comparison)
}

/// Starts `system`, loads it, runs every case that applies, stops it.
async fn run_system(
    config: &CompareConfig,
    repetition: u32,
    system: SystemKind,
    comparison: &mut Comparison,
    log: &dyn Fn(&str),
) {
    let cases: Vec<Case> = config
        .cases
        .iter()
        .copied()
        .filter(|case| case.applies_to(system))
        .collect();
    let label = format!(
        "repetition {}/{} {}",
        repetition + 1,
        config.repetitions,
        system.name()
    );
    let dir = config
        .data_dir
        .join(format!("{}-{}", repetition + 1, system.name()));
    log(&format!("{label}: starting"));
    let mut running = match RunningSystem::start(system, &config.peers, dir.clone()).await {
        Ok(running) => running,
        Err(error) => {
            let error = format!("start: {error:#}");
            log(&format!("{label}: {error}"));
            for case in cases {
                comparison
                    .runs
                    .push(RunRecord::failed(repetition, system, case, error.clone()));
            }
            return;
        }
    };
    let load = load_system(config, repetition, system, &cases, &mut running).await;
    log(&format!("{label}: {}", load.summary()));
    let loaded = load.error.is_none();
    comparison.loads.push(load);
    for case in cases {
        let record = if loaded {
            run_case(config, repetition, case, &mut running).await
        } else {
            RunRecord::failed(repetition, system, case, "the load failed".to_owned())
        };
        log(&format!("{label} {}: {}", case.name(), record.summary()));
        comparison.runs.push(record);
    }
    running.stop().await;
    if !config.keep_data {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

async fn load_system(
    config: &CompareConfig,
    repetition: u32,
    system: SystemKind,
    cases: &[Case],
    running: &mut RunningSystem,
) -> LoadRecord {
    let spec = load_spec(system, cases, &config.base);
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        load_timeout(spec.keys),
        driver::load(&running.load_target(), &spec),
    )
    .await;
    let (keys_loaded, mut error) = match outcome {
        Ok(Ok(keys)) => (keys, None),
        Ok(Err(error)) => (0, Some(format!("{error:#}"))),
        Err(_) => (0, Some("timed out".to_owned())),
    };
    if error.is_none() {
        if let Err(settle_error) = running.settle(load_timeout(spec.keys)).await {
            error = Some(format!("after the load: {settle_error:#}"));
        }
    }
    LoadRecord {
        repetition,
        system,
        keys_loaded,
        elapsed_s: started.elapsed().as_secs_f64(),
        error,
    }
}

async fn run_case(
    config: &CompareConfig,
    repetition: u32,
    case: Case,
    running: &mut RunningSystem,
) -> RunRecord {
    let system = running.kind();
    if let Err(error) = running.check_running() {
        return RunRecord::failed(repetition, system, case, format!("{error:#}"));
    }
    let Some(target) = case.target(running) else {
        return RunRecord::failed(repetition, system, case, "no target".to_owned());
    };
    let spec = case.spec(&config.base);
    let pids = running.pids();
    let timeout = spec.warmup + spec.duration + RUN_SLACK;
    // CPU is counted from the end of the warm-up, like the operations.
    let measured_from = async {
        tokio::time::sleep(spec.warmup).await;
        UsageStart::take(&pids)
    };
    let (outcome, usage_start) = tokio::join!(
        tokio::time::timeout(timeout, driver::run(&target, &spec)),
        measured_from
    );
    let usage = usage_start.finish();
    let mut record = match outcome {
        Ok(Ok(result)) => RunRecord {
            repetition,
            system,
            case,
            result: Some(result),
            usage: Some(usage),
            error: None,
        },
        Ok(Err(error)) => RunRecord::failed(repetition, system, case, format!("{error:#}")),
        Err(_) => RunRecord::failed(
            repetition,
            system,
            case,
            format!("timed out after {timeout:?}"),
        ),
    };
    if let Err(error) = running.check_running() {
        record.error = Some(format!("{error:#}"));
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_takes_every_position() {
        let systems = SystemKind::ALL.to_vec();
        let count = systems.len() as u32;
        for (position, _) in systems.iter().enumerate() {
            let firsts: Vec<SystemKind> = (0..count)
                .map(|rep| rotated(&systems, rep)[position])
                .collect();
            let mut sorted = firsts.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), systems.len(), "{firsts:?}");
        }
        assert_eq!(rotated(&systems, 1)[0], SystemKind::PolisOneGroup);
        assert_eq!(rotated(&systems, count), systems);
        assert!(rotated(&[], 3).is_empty());
    }
}
