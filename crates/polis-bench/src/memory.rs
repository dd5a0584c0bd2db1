//! Memory per key: the same keys (of `value_size`-byte values) loaded
//! into a fresh 3-node polis cluster and into one Redis without
//! persistence. For Redis, `used_memory` of `INFO memory` (what its
//! allocator holds for data) grows by so much per key; for polis, the
//! leader's resident set (`VmRSS`) does, which also counts the Raft log
//! still in memory and every buffer. polis's own `used_memory` (its
//! estimate of the keyspace's size) is reported beside it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::driver;
use crate::peers::polis::PolisCluster;
use crate::peers::redis::{info_field, query_text, RedisServers, RedisSetup};
use crate::peers::usage::sample;
use crate::peers::PeerConfig;
use crate::spec::{BenchSpec, Distribution, Mode, Workload};

/// What the memory measurement needs.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    pub keys: u64,
    pub value_size: usize,
    pub seed: u64,
    pub peers: PeerConfig,
    pub data_dir: PathBuf,
}

/// polis's side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolisMemory {
    pub keys_loaded: u64,
    pub load_s: f64,
    pub leader_rss_before_bytes: u64,
    pub leader_rss_after_bytes: u64,
    /// Leader RSS growth per key loaded.
    pub leader_rss_per_key_bytes: f64,
    /// Mean RSS growth per key of the followers.
    pub follower_rss_per_key_bytes: f64,
    /// Growth per key of `used_memory` in the leader's INFO, if it reports one.
    pub used_memory_per_key_bytes: Option<f64>,
}

/// Redis's side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RedisMemory {
    pub keys_loaded: u64,
    pub load_s: f64,
    pub used_memory_before_bytes: u64,
    pub used_memory_after_bytes: u64,
    /// `used_memory` growth per key loaded.
    pub used_memory_per_key_bytes: f64,
    /// RSS growth per key loaded.
    pub rss_per_key_bytes: f64,
}

/// Both sides, and what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryReport {
    pub keys: u64,
    pub value_size: usize,
    pub polis: Option<PolisMemory>,
    pub redis: Option<RedisMemory>,
    pub errors: Vec<String>,
}

impl MemoryReport {
    /// Returns polis's leader RSS per key over Redis's `used_memory` per key.
    pub fn ratio(&self) -> Option<f64> {
        let polis = self.polis.as_ref()?.leader_rss_per_key_bytes;
        let redis = self.redis.as_ref()?.used_memory_per_key_bytes;
        (redis > 0.0).then(|| polis / redis)
    }
}

/// Returns the spec that loads the keys.
fn load_spec(config: &MemoryConfig) -> BenchSpec {
    BenchSpec {
        workload: Workload::WriteOnly,
        keys: config.keys,
        value_size: config.value_size,
        distribution: Distribution::Uniform,
        connections: 50,
        pipeline: 16,
        mode: Mode::Closed,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(1),
        ops_max: Some(config.keys),
        seed: config.seed,
    }
}

fn load_timeout(keys: u64) -> Duration {
    Duration::from_secs(120) + Duration::from_millis(keys)
}

fn per_key(before: u64, after: u64, keys: u64) -> f64 {
    if keys == 0 {
        return 0.0;
    }
    after.saturating_sub(before) as f64 / keys as f64
}

fn rss(pid: Option<u32>) -> u64 {
    pid.and_then(sample).map_or(0, |s| s.rss_bytes)
}

async fn used_memory(addr: &str) -> Option<u64> {
    let info = query_text(addr, &["INFO", "memory"]).await.ok()?;
    info_field(&info, "used_memory")
}

async fn load(target: &crate::spec::Target, spec: &BenchSpec) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let keys = tokio::time::timeout(load_timeout(spec.keys), driver::load(target, spec))
        .await
        .map_err(|_| anyhow::anyhow!("the load timed out"))??;
    Ok((keys, started.elapsed().as_secs_f64()))
}

async fn measure_polis(config: &MemoryConfig) -> anyhow::Result<PolisMemory> {
    let dir = config.data_dir.join("polis");
    let mut cluster = PolisCluster::start(
        &config.peers.polis,
        dir,
        crate::peers::polis::SHARDS,
        &config.peers.polis_server_args,
    )
    .await?;
    let result = async {
        let leader = cluster.leader_pid();
        let followers: Vec<u32> = cluster.pids().into_iter().skip(1).collect();
        let leader_before = rss(leader);
        let followers_before: Vec<u64> = followers.iter().map(|pid| rss(Some(*pid))).collect();
        let used_before = used_memory(cluster.leader_resp()).await;
        let (keys_loaded, load_s) = load(&cluster.target(), &load_spec(config)).await?;
        cluster.check_running()?;
        let leader_after = rss(leader);
        let used_after = used_memory(cluster.leader_resp()).await;
        let follower_growth: Vec<f64> = followers
            .iter()
            .zip(&followers_before)
            .map(|(pid, before)| per_key(*before, rss(Some(*pid)), keys_loaded))
            .collect();
        anyhow::Ok(PolisMemory {
            keys_loaded,
            load_s,
            leader_rss_before_bytes: leader_before,
            leader_rss_after_bytes: leader_after,
            leader_rss_per_key_bytes: per_key(leader_before, leader_after, keys_loaded),
            follower_rss_per_key_bytes: follower_growth.iter().sum::<f64>()
                / follower_growth.len().max(1) as f64,
            used_memory_per_key_bytes: used_before
                .zip(used_after)
                .map(|(before, after)| per_key(before, after, keys_loaded)),
        })
    }
    .await;
    cluster.stop().await;
    result
}

async fn measure_redis(config: &MemoryConfig) -> anyhow::Result<RedisMemory> {
    let dir = config.data_dir.join("redis");
    let mut servers =
        RedisServers::start(&config.peers.redis_server, dir, RedisSetup::Memory).await?;
    let result = async {
        let addr = servers.primary_addr().to_owned();
        let pid = servers.pids().first().copied();
        let rss_before = rss(pid);
        let before = used_memory(&addr)
            .await
            .ok_or_else(|| anyhow::anyhow!("redis reported no used_memory"))?;
        let (keys_loaded, load_s) = load(&servers.target(), &load_spec(config)).await?;
        servers.check_running()?;
        let after = used_memory(&addr)
            .await
            .ok_or_else(|| anyhow::anyhow!("redis reported no used_memory"))?;
        anyhow::Ok(RedisMemory {
            keys_loaded,
            load_s,
            used_memory_before_bytes: before,
            used_memory_after_bytes: after,
            used_memory_per_key_bytes: per_key(before, after, keys_loaded),
            rss_per_key_bytes: per_key(rss_before, rss(pid), keys_loaded),
        })
    }
    .await;
    servers.stop().await;
    result
}

/// Loads the keys into polis, then into Redis, and reports both; a side
/// that fails is left out with its error.
pub async fn measure(config: &MemoryConfig, log: &dyn Fn(&str)) -> MemoryReport {
    let mut report = MemoryReport {
        keys: config.keys,
        value_size: config.value_size,
        ..MemoryReport::default()
    };
    match measure_polis(config).await {
        Ok(polis) => {
            log(&format!(
                "memory: polis leader RSS +{:.0} B/key ({} keys in {:.1} s)",
                polis.leader_rss_per_key_bytes, polis.keys_loaded, polis.load_s
            ));
            report.polis = Some(polis);
        }
        Err(error) => {
            log(&format!("memory: polis FAILED: {error:#}"));
            report.errors.push(format!("polis: {error:#}"));
        }
    }
    match measure_redis(config).await {
        Ok(redis) => {
            log(&format!(
                "memory: redis used_memory +{:.0} B/key ({} keys in {:.1} s)",
                redis.used_memory_per_key_bytes, redis.keys_loaded, redis.load_s
            ));
            report.redis = Some(redis);
        }
        Err(error) => {
            log(&format!("memory: redis FAILED: {error:#}"));
            report.errors.push(format!("redis: {error:#}"));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_per_key() {
        assert!((per_key(1000, 3000, 10) - 200.0).abs() < f64::EPSILON);
        assert!(per_key(3000, 1000, 10).abs() < f64::EPSILON);
        assert!(per_key(0, 1000, 0).abs() < f64::EPSILON);
    }

    #[test]
    fn the_ratio_needs_both_sides() {
        let mut report = MemoryReport::default();
        assert_eq!(report.ratio(), None);
        report.polis = Some(PolisMemory {
            leader_rss_per_key_bytes: 300.0,
            ..PolisMemory::default()
        });
        report.redis = Some(RedisMemory {
            used_memory_per_key_bytes: 150.0,
            ..RedisMemory::default()
        });
        assert_eq!(report.ratio(), Some(2.0));
    }
}
