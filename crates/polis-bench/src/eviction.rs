//! SET at `maxmemory`: the same write load against a 3-node polis with
//! no limit and against one whose nodes are held to a limit far below the
//! keyspace (eviction active throughout), one after the other in the
//! same run; the figure is the limited cluster's SETs/s over the
//! unlimited one's.
//!
//! ```text
//!  for each side (no limit, then maxmemory + policy), on a fresh cluster:
//!    load every key (the limited side evicts while loading)
//!    SET for the duration (uniform keys) ── INFO used_memory sampled on every node
//!    evicted_keys before and after
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::driver;
use crate::peers::polis::{PolisCluster, SHARDS};
use crate::peers::redis::{info_field, query_text};
use crate::peers::PeerConfig;
use crate::spec::{BenchResult, SetLoad, Target};

/// How often the nodes' memory figures are read during the run.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// Slack past the run's own time before it counts as stuck.
const RUN_SLACK: Duration = Duration::from_secs(60);

/// What the measurement needs.
#[derive(Debug, Clone)]
pub struct EvictionBenchConfig {
    /// The keyspace (loaded first, then written uniformly) and the load.
    pub load: SetLoad,
    /// The limited side's `maxmemory`, per node.
    pub maxmemory_bytes: u64,
    /// The limited side's `maxmemory-policy`.
    pub policy: String,
    pub peers: PeerConfig,
    pub data_dir: PathBuf,
}

/// One side of the comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvictionSide {
    /// `maxmemory` of its nodes (0: none).
    pub maxmemory_bytes: u64,
    pub policy: String,
    pub result: BenchResult,
    /// Keys evicted over every shard during the measured run.
    pub evicted_keys: u64,
    /// The largest `used_memory` any node reported during the run.
    pub used_memory_max_bytes: u64,
    /// Each node's `used_memory` at the end.
    pub used_memory_end_bytes: Vec<u64>,
}

/// Both sides, and what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvictionReport {
    pub keys: u64,
    pub value_size: usize,
    pub unlimited: Option<EvictionSide>,
    pub limited: Option<EvictionSide>,
    pub errors: Vec<String>,
}

impl EvictionReport {
    /// Returns the limited side's SETs/s over the unlimited side's.
    pub fn ratio(&self) -> Option<f64> {
        let limited = self.limited.as_ref()?.result.throughput_per_s;
        let unlimited = self.unlimited.as_ref()?.result.throughput_per_s;
        (unlimited > 0.0).then(|| limited / unlimited)
    }
}

/// Returns the sum of `field` of INFO over `addrs`.
async fn info_sum(addrs: &[String], field: &str) -> u64 {
    let mut sum = 0;
    for addr in addrs {
        if let Ok(info) = query_text(addr, &["INFO", "all"]).await {
            sum += info_field(&info, field).unwrap_or(0);
        }
    }
    sum
}

async fn used_memory(addrs: &[String]) -> Vec<u64> {
    let mut figures = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let info = query_text(addr, &["INFO", "memory"]).await.ok();
        figures.push(
            info.and_then(|info| info_field(&info, "used_memory"))
                .unwrap_or(0),
        );
    }
    figures
}

/// Runs one side on a fresh cluster.
async fn measure_side(
    config: &EvictionBenchConfig,
    limit: Option<(u64, &str)>,
    log: &dyn Fn(&str),
) -> anyhow::Result<EvictionSide> {
    let mut server_args = config.peers.polis_server_args.clone();
    if let Some((bytes, policy)) = limit {
        server_args.extend([
            "--maxmemory".to_owned(),
            bytes.to_string(),
            "--maxmemory-policy".to_owned(),
            policy.to_owned(),
        ]);
    }
    let name = if limit.is_some() {
        "limited"
    } else {
        "unlimited"
    };
    let mut cluster = PolisCluster::start(
        &config.peers.polis,
        config.data_dir.join(name),
        SHARDS,
        &server_args,
    )
    .await?;
    let result = async {
        let target = cluster.target();
        let Target::Resp { addrs, .. } = &target else {
            anyhow::bail!("polis has no RESP target");
        };
        let addrs = addrs.clone();
        let spec = config.load.spec();
        let loaded = driver::load(&target, &spec).await?;
        log(&format!(
            "eviction: {name}: loaded {loaded} keys, used_memory {:?}",
            used_memory(&addrs).await
        ));
        let evicted_before = info_sum(&addrs, "evicted_keys").await;
        let running = Arc::new(AtomicBool::new(true));
        let sampler = {
            let (addrs, running) = (addrs.clone(), running.clone());
            async move {
                let mut largest = 0;
                while running.load(Ordering::Relaxed) {
                    largest = used_memory(&addrs)
                        .await
                        .into_iter()
                        .fold(largest, u64::max);
                    tokio::time::sleep(SAMPLE_EVERY).await;
                }
                largest
            }
        };
        let run = async {
            let outcome = tokio::time::timeout(
                spec.warmup + spec.duration + RUN_SLACK,
                driver::run(&target, &spec),
            )
            .await;
            running.store(false, Ordering::Relaxed);
            outcome
        };
        let (outcome, used_memory_max_bytes) = tokio::join!(run, sampler);
        let result = outcome.map_err(|_| anyhow::anyhow!("the run timed out"))??;
        cluster.check_running()?;
        let evicted_after = info_sum(&addrs, "evicted_keys").await;
        anyhow::Ok(EvictionSide {
            maxmemory_bytes: limit.map_or(0, |(bytes, _)| bytes),
            policy: limit.map_or("noeviction", |(_, policy)| policy).to_owned(),
            result,
            evicted_keys: evicted_after.saturating_sub(evicted_before),
            used_memory_max_bytes,
            used_memory_end_bytes: used_memory(&addrs).await,
        })
    }
    .await;
    cluster.stop().await;
    result
}

/// Runs the unlimited side, then the limited one, and reports both; a
/// side that fails is left out with its error.
pub async fn measure(config: &EvictionBenchConfig, log: &dyn Fn(&str)) -> EvictionReport {
    let mut report = EvictionReport {
        keys: config.load.keys,
        value_size: config.load.value_size,
        ..EvictionReport::default()
    };
    let limited = (config.maxmemory_bytes, config.policy.as_str());
    for limit in [None, Some(limited)] {
        match measure_side(config, limit, log).await {
            Ok(side) => {
                log(&format!(
                    "eviction: maxmemory {} ({}): {:.0} SET/s, p99 {:.2} ms, {} errors, {} keys evicted, used_memory at most {}",
                    side.maxmemory_bytes,
                    side.policy,
                    side.result.throughput_per_s,
                    side.result.latency.p99_us as f64 / 1000.0,
                    side.result.errors,
                    side.evicted_keys,
                    side.used_memory_max_bytes
                ));
                if limit.is_some() {
                    report.limited = Some(side);
                } else {
                    report.unlimited = Some(side);
                }
            }
            Err(error) => {
                log(&format!("eviction: FAILED: {error:#}"));
                report.errors.push(format!("{error:#}"));
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_needs_both_sides() {
        let mut report = EvictionReport::default();
        assert_eq!(report.ratio(), None);
        let side = |throughput_per_s| EvictionSide {
            result: BenchResult {
                throughput_per_s,
                ..BenchResult::default()
            },
            ..EvictionSide::default()
        };
        report.unlimited = Some(side(1_000.0));
        report.limited = Some(side(900.0));
        assert_eq!(report.ratio(), Some(0.9));
    }
}
