//! Strong SET with encryption at rest against the same load without it:
//! fresh 3-node clusters, alternating (plain, encrypted, plain,
//! encrypted, ...) so a drift of the machine during the run falls on both
//! sides; the figure is the encrypted rounds' SETs/s over the plain ones'.
//!
//! ```text
//!  for each round, for each side (plain, then --encryption-key-file KEY):
//!    fresh cluster ── load the keys ── SET for the duration ── stop
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::driver;
use crate::peers::polis::{PolisCluster, SHARDS};
use crate::peers::PeerConfig;
use crate::spec::{BenchResult, SetLoad};

/// Slack past the run's own time before it counts as stuck.
const RUN_SLACK: Duration = Duration::from_secs(60);

/// What the measurement needs.
#[derive(Debug, Clone)]
pub struct AtRestBenchConfig {
    pub load: SetLoad,
    /// Rounds of the two sides.
    pub rounds: usize,
    pub peers: PeerConfig,
    pub data_dir: PathBuf,
}

/// Every round of both sides, and what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AtRestReport {
    pub keys: u64,
    pub value_size: usize,
    pub plain: Vec<BenchResult>,
    pub encrypted: Vec<BenchResult>,
    pub errors: Vec<String>,
}

fn mean_throughput(results: &[BenchResult]) -> Option<f64> {
    (!results.is_empty())
        .then(|| results.iter().map(|r| r.throughput_per_s).sum::<f64>() / results.len() as f64)
}

impl AtRestReport {
    /// Returns the encrypted side's mean SETs/s over the plain side's.
    pub fn ratio(&self) -> Option<f64> {
        let plain = mean_throughput(&self.plain)?;
        let encrypted = mean_throughput(&self.encrypted)?;
        (plain > 0.0).then(|| encrypted / plain)
    }
}

/// Writes a master key with the polis binary under test.
fn new_key(polis: &Path, file: &Path) -> anyhow::Result<()> {
    let output = std::process::Command::new(polis)
        .args(["encryption", "new-key"])
        .arg(file)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "polis encryption new-key: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Runs the load on a fresh cluster whose nodes get `extra_args` too.
async fn measure_side(
    config: &AtRestBenchConfig,
    dir: PathBuf,
    extra_args: &[String],
) -> anyhow::Result<(BenchResult, u64)> {
    let mut server_args = config.peers.polis_server_args.clone();
    server_args.extend(extra_args.iter().cloned());
    let mut cluster = PolisCluster::start(&config.peers.polis, dir, SHARDS, &server_args).await?;
    let result = async {
        let target = cluster.target();
        let spec = config.load.spec();
        driver::load(&target, &spec).await?;
        let result = tokio::time::timeout(
            spec.warmup + spec.duration + RUN_SLACK,
            driver::run(&target, &spec),
        )
        .await
        .map_err(|_| anyhow::anyhow!("the run timed out"))??;
        cluster.check_running()?;
        anyhow::Ok((result, spans_exported(&cluster).await))
    }
    .await;
    cluster.stop().await;
    result
}

/// Returns the spans the cluster's nodes handed to their trace exporters
/// (`polis_trace_spans_exported_total`, summed; 0 for a node that does
/// not answer).
async fn spans_exported(cluster: &PolisCluster) -> u64 {
    let mut spans = 0.0;
    for addr in cluster.admin_addrs() {
        let Ok((200, body)) =
            polis_client::admin::get(&addr, "/metrics", std::time::Duration::from_secs(5)).await
        else {
            continue;
        };
        spans += polis_client::dashboard::metric_sum(
            &String::from_utf8_lossy(&body),
            "polis_trace_spans_exported_total",
        );
    }
    spans as u64
}

/// Runs the rounds of two sides, the nodes of each started with its
/// extra flags, alternating; returns each side's results (a side that
/// fails is left out, its error in `errors`).
pub async fn measure_sides(
    config: &AtRestBenchConfig,
    sides: [(&str, &[String]); 2],
    errors: &mut Vec<String>,
    log: &dyn Fn(&str),
) -> [Vec<BenchResult>; 2] {
    let mut results = [Vec::new(), Vec::new()];
    for round in 0..config.rounds {
        for (at, (name, extra_args)) in sides.iter().enumerate() {
            let dir = config.data_dir.join(format!("{name}-{round}"));
            match measure_side(config, dir, extra_args).await {
                Ok((result, spans)) => {
                    log(&format!(
                        "round {}: {name}: {:.0} SET/s, p99 {:.2} ms, {} errors, {spans} spans exported",
                        round + 1,
                        result.throughput_per_s,
                        result.latency.p99_us as f64 / 1000.0,
                        result.errors
                    ));
                    results[at].push(result);
                }
                Err(error) => {
                    log(&format!("round {}: {name}: FAILED: {error:#}", round + 1));
                    errors.push(format!("{error:#}"));
                }
            }
        }
    }
    results
}

/// Runs the rounds and reports every side's result; a side that fails is
/// left out with its error.
pub async fn measure(config: &AtRestBenchConfig, log: &dyn Fn(&str)) -> AtRestReport {
    let mut report = AtRestReport {
        keys: config.load.keys,
        value_size: config.load.value_size,
        ..AtRestReport::default()
    };
    let key = config.data_dir.join("master.key");
    let made = std::fs::create_dir_all(&config.data_dir)
        .map_err(anyhow::Error::from)
        .and_then(|()| new_key(&config.peers.polis, &key));
    if let Err(error) = made {
        report.errors.push(format!("{error:#}"));
        return report;
    }
    let encrypted = [
        "--encryption-key-file".to_owned(),
        key.display().to_string(),
    ];
    let [plain, encrypted] = measure_sides(
        config,
        [("plain", &[]), ("encrypted", &encrypted)],
        &mut report.errors,
        log,
    )
    .await;
    report.plain = plain;
    report.encrypted = encrypted;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_is_of_the_means_and_needs_both_sides() {
        let result = |throughput_per_s| BenchResult {
            throughput_per_s,
            ..BenchResult::default()
        };
        let mut report = AtRestReport::default();
        assert_eq!(report.ratio(), None);
        report.plain = vec![result(1_000.0), result(1_200.0)];
        assert_eq!(report.ratio(), None);
        report.encrypted = vec![result(990.0), result(990.0)];
        assert_eq!(report.ratio(), Some(0.9));
    }
}
