//! What idle shards cost: a fresh 3-node polis with N shards is started
//! and timed until every shard serves (each has a leader that applied its
//! slots), left alone until every shard is parked, and then watched for a
//! window without a single request: the CPU time its three processes use
//! in that window, and their resident memory at its end. The memory one
//! replica costs is the growth of the three processes' memory from the
//! smallest shard count measured to each larger one, per replica added.
//!
//! ```text
//!   for N in 3, 32, 128:  start ─ ready (ready_s) ─ all parked ─ window: CPU, RSS ─ stop
//!   per replica = (RSS(N) - RSS(3)) / (3 x (N - 3))
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::peers::polis::{PolisCluster, NODES};
use crate::peers::usage::{clock_ticks_per_s, sample};
use crate::peers::PeerConfig;

/// Shard counts measured unless told otherwise.
pub const SHARD_COUNTS: [usize; 3] = [3, 32, 128];
/// Shards in one measurement, at most.
pub const SHARDS_MAX: usize = 1024;
/// How long the shards may take to park after the cluster is ready; the
/// window starts then regardless (with `--hibernate false` none parks).
const PARK_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the statuses are read while waiting for the shards to park.
const PARK_POLL: Duration = Duration::from_millis(500);

/// What the idle measurement needs.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// Shard counts, each measured on a fresh cluster.
    pub shard_counts: Vec<usize>,
    /// How long CPU time is counted while idle.
    pub window: Duration,
    pub peers: PeerConfig,
    pub data_dir: PathBuf,
}

/// One shard count, measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdleRun {
    pub shards: usize,
    /// Raft replicas on the three nodes together (shards x replicas,
    /// plus the meta group's).
    pub replicas: usize,
    /// From starting the processes until every shard served.
    pub ready_s: f64,
    /// From ready until every shard was parked (none if they were not
    /// all parked within the park timeout).
    pub parked_s: Option<f64>,
    pub window_s: f64,
    /// CPU of the three processes together over the window, in cores.
    pub cpu_cores: f64,
    /// Resident memory of the three processes together at the window's end.
    pub rss_bytes_sum: u64,
    /// Memory growth per replica over the smallest shard count measured
    /// (none for that one).
    pub rss_per_replica_bytes: Option<f64>,
}

/// Every shard count measured, and what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdleReport {
    pub window_s: f64,
    pub runs: Vec<IdleRun>,
    pub errors: Vec<String>,
}

impl IdleReport {
    /// Returns the run with the most shards.
    pub fn largest(&self) -> Option<&IdleRun> {
        self.runs.iter().max_by_key(|run| run.shards)
    }
}

/// Returns true when `status` (a node's /status) shows every shard parked.
fn all_parked(status: &serde_json::Value) -> bool {
    status["shards"].as_array().is_some_and(|shards| {
        !shards.is_empty()
            && shards
                .iter()
                .all(|shard| shard["parked"].as_bool() == Some(true))
    })
}

/// Returns how many replicas `status` lists over all shards, plus the meta
/// group's voters and learners.
fn replica_count(status: &serde_json::Value) -> usize {
    let shards: usize = status["shards"].as_array().map_or(0, |shards| {
        shards
            .iter()
            .map(|shard| shard["replicas"].as_array().map_or(0, Vec::len))
            .sum()
    });
    let meta = status["nodes"].as_array().map_or(0, Vec::len);
    shards + meta
}

async fn measure_one(config: &IdleConfig, shards: usize) -> anyhow::Result<IdleRun> {
    let dir = config.data_dir.join(format!("idle-{shards}"));
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    let mut cluster = PolisCluster::start(
        &config.peers.polis,
        dir,
        shards,
        &config.peers.polis_server_args,
    )
    .await?;
    let ready_s = started.elapsed().as_secs_f64();
    let result = async {
        let admins = cluster.admin_addrs();
        let ready = Instant::now();
        let mut status = serde_json::Value::Null;
        let parked_s = loop {
            let mut parked = true;
            for admin in &admins {
                match polis_client::admin::status(admin).await {
                    Ok(answer) => {
                        parked &= all_parked(&answer);
                        status = answer;
                    }
                    Err(_) => parked = false,
                }
            }
            if parked {
                break Some(ready.elapsed().as_secs_f64());
            }
            if ready.elapsed() >= PARK_TIMEOUT {
                break None;
            }
            cluster.check_running()?;
            tokio::time::sleep(PARK_POLL).await;
        };
        let pids = cluster.pids();
        anyhow::ensure!(pids.len() == NODES as usize, "a polis process is gone");
        let ticks = |pids: &[u32]| -> anyhow::Result<u64> {
            pids.iter()
                .map(|pid| sample(*pid).map(|s| s.cpu_ticks))
                .sum::<Option<u64>>()
                .ok_or_else(|| anyhow::anyhow!("a polis process is gone"))
        };
        let before = ticks(&pids)?;
        let window_started = Instant::now();
        // The measurement itself: nothing but the clock runs meanwhile.
        tokio::time::sleep(config.window).await;
        let window_s = window_started.elapsed().as_secs_f64();
        let after = ticks(&pids)?;
        cluster.check_running()?;
        let rss_bytes_sum = pids
            .iter()
            .filter_map(|pid| sample(*pid).map(|s| s.rss_bytes))
            .sum();
        anyhow::Ok(IdleRun {
            shards,
            replicas: replica_count(&status),
            ready_s,
            parked_s,
            window_s,
            cpu_cores: after.saturating_sub(before) as f64 / clock_ticks_per_s() as f64 / window_s,
            rss_bytes_sum,
            rss_per_replica_bytes: None,
        })
    }
    .await;
    cluster.stop().await;
    result
}

/// Measures every shard count of `config` in turn; a count that fails is
/// left out with its error.
pub async fn measure(config: &IdleConfig, log: &dyn Fn(&str)) -> IdleReport {
    let mut report = IdleReport {
        window_s: config.window.as_secs_f64(),
        ..IdleReport::default()
    };
    let mut counts = config.shard_counts.clone();
    counts.sort_unstable();
    counts.dedup();
    for shards in counts {
        if !(1..=SHARDS_MAX).contains(&shards) {
            report
                .errors
                .push(format!("{shards} shards: must be 1..={SHARDS_MAX}"));
            continue;
        }
        log(&format!("idle: {shards} shards: starting"));
        match measure_one(config, shards).await {
            Ok(run) => {
                let parked = run.parked_s.map_or_else(
                    || format!("not all parked after {PARK_TIMEOUT:?}"),
                    |parked_s| format!("parked {parked_s:.1} s later"),
                );
                log(&format!(
                    "idle: {shards} shards: ready in {:.1} s, {parked}, {:.3} cores, {} MiB",
                    run.ready_s,
                    run.cpu_cores,
                    run.rss_bytes_sum / (1024 * 1024)
                ));
                report.runs.push(run);
            }
            Err(error) => {
                log(&format!("idle: {shards} shards: {error:#}"));
                report.errors.push(format!("{shards} shards: {error:#}"));
            }
        }
    }
    per_replica(&mut report.runs);
    report
}

/// Fills in each run's memory per replica, against the smallest run.
fn per_replica(runs: &mut [IdleRun]) {
    let Some(base) = runs.iter().min_by_key(|run| run.shards).cloned() else {
        return;
    };
    for run in runs.iter_mut() {
        let added = run.replicas.saturating_sub(base.replicas);
        run.rss_per_replica_bytes = (added > 0)
            .then(|| (run.rss_bytes_sum as f64 - base.rss_bytes_sum as f64) / added as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_per_replica_is_the_growth_over_the_smallest_run() {
        let run = |shards: usize, replicas: usize, rss: u64| IdleRun {
            shards,
            replicas,
            rss_bytes_sum: rss,
            ..IdleRun::default()
        };
        let mut runs = vec![
            run(32, 99, 100 << 20),
            run(3, 12, 70 << 20),
            run(128, 387, 200 << 20),
        ];
        per_replica(&mut runs);
        assert_eq!(runs[1].rss_per_replica_bytes, None);
        let per_32 = runs[0].rss_per_replica_bytes.unwrap();
        assert!((per_32 - (30u64 << 20) as f64 / 87.0).abs() < 1e-6);
        let per_128 = runs[2].rss_per_replica_bytes.unwrap();
        assert!((per_128 - (130u64 << 20) as f64 / 375.0).abs() < 1e-6);
    }

    #[test]
    fn parked_means_every_shard_parked() {
        let status = |parked: &[Option<bool>]| {
            serde_json::json!({
                "shards": parked.iter().map(|p| serde_json::json!({"parked": p})).collect::<Vec<_>>()
            })
        };
        assert!(all_parked(&status(&[Some(true), Some(true)])));
        assert!(!all_parked(&status(&[Some(true), Some(false)])));
        assert!(!all_parked(&status(&[Some(true), None])));
        assert!(!all_parked(&status(&[])));
    }
}
