//! What adding nodes costs, measured on one polis cluster:
//!
//! ```text
//!   3 nodes, 3 shards ─ load K keys of V bytes (pipelined SETs)
//!   writers at full speed for a window             ─ SETs/s before
//!   add 2 nodes, writers on, until balanced        ─ time to balance, SETs/s during
//! ```
//!
//! "Balanced" is what the meta leader's scheduler says once the new nodes
//! hold replicas: no migration, no replica or leader move wanted, every
//! shard's membership the map's.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use polis_client::admin;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::driver::resp::{RespConnection, RespOptions};
use crate::driver::resp_load;
use crate::peers::polis::PolisCluster;
use crate::peers::PeerConfig;
use crate::workload::Op;

/// How long throughput is measured before the nodes are added.
const BEFORE_WINDOW: Duration = Duration::from_secs(20);
/// How long balancing may take before the benchmark gives up.
const BALANCE_TIMEOUT: Duration = Duration::from_secs(1800);
/// Writer connections, each sending pipelined batches.
const WRITERS: usize = 8;
/// SETs per pipelined batch.
const BATCH: usize = 16;
/// Nodes added.
const ADDED: u64 = 2;

/// What the measurement needs.
#[derive(Debug, Clone)]
pub struct ScaleOutConfig {
    pub keys: u64,
    pub value_size: usize,
    pub peers: PeerConfig,
    pub data_dir: std::path::PathBuf,
    pub seed: u64,
}

/// The figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScaleOutReport {
    pub keys: u64,
    pub value_size: usize,
    pub load_s: f64,
    /// The bytes the shard leaders hold after the load, as they estimate.
    pub bytes: u64,
    pub sets_per_s_before: f64,
    pub balance_s: f64,
    pub sets_per_s_during: f64,
    /// during / before.
    pub during_vs_before: f64,
    /// Replicas per node once balanced.
    pub replicas_per_node: Vec<(u64, u64)>,
}

/// Runs the measurement, saying what it does through `say`.
///
/// # Errors
/// Fails when the cluster cannot start, the load fails, or the cluster
/// does not balance in time.
pub async fn measure(
    config: &ScaleOutConfig,
    say: &dyn Fn(String),
) -> anyhow::Result<ScaleOutReport> {
    let mut cluster = PolisCluster::start(
        &config.peers.polis,
        config.data_dir.join("polis"),
        3,
        &config.peers.polis_server_args,
    )
    .await?;
    let result = run(&mut cluster, config, say).await;
    cluster.stop().await;
    result
}

async fn run(
    cluster: &mut PolisCluster,
    config: &ScaleOutConfig,
    say: &dyn Fn(String),
) -> anyhow::Result<ScaleOutReport> {
    let admins = cluster.admin_addrs();
    admin::wait_until_ready(&admins, Duration::from_secs(60)).await?;
    let crate::spec::Target::Resp { addrs, .. } = cluster.target() else {
        bail!("polis is reached over RESP");
    };
    let options = RespOptions {
        addrs,
        readonly: false,
        wait_replicas: None,
    };
    let value: Arc<[u8]> = vec![b'v'; config.value_size].into();
    say(format!(
        "loading {} keys of {} bytes",
        config.keys, config.value_size
    ));
    let load_s = resp_load::load_timed(&options, config.keys, value.clone())
        .await
        .map_err(|error| anyhow::anyhow!(error))?;
    let status = admin::wait_until_ready(&admins, Duration::from_secs(60)).await?;
    let bytes = leader_bytes(&status);
    say(format!(
        "loaded in {load_s:.1} s; the shard leaders hold {:.0} MB",
        bytes as f64 / 1e6
    ));

    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let options = options.clone();
        let value = value.clone();
        let acked = acked.clone();
        let stop = stop.clone();
        let keys = config.keys;
        let seed = config.seed.wrapping_add(writer as u64);
        writers.push(tokio::spawn(async move {
            write_flat_out(&options, writer, keys, &value, seed, &stop, &acked).await
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_from = acked.load(Ordering::Relaxed);
    tokio::time::sleep(BEFORE_WINDOW).await;
    let sets_per_s_before =
        (acked.load(Ordering::Relaxed) - before_from) as f64 / BEFORE_WINDOW.as_secs_f64();
    say(format!("{sets_per_s_before:.0} SETs/s before"));

    let during_from = acked.load(Ordering::Relaxed);
    let started = Instant::now();
    for _ in 0..ADDED {
        let id = cluster.add_node()?;
        say(format!("node {id} added"));
    }
    let outcome = wait_until_balanced(cluster, &admins, say).await;
    let balance_s = started.elapsed().as_secs_f64();
    let sets_per_s_during = (acked.load(Ordering::Relaxed) - during_from) as f64 / balance_s;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await??;
    }
    let replicas_per_node = outcome?;
    say(format!(
        "balanced in {balance_s:.1} s at {sets_per_s_during:.0} SETs/s; replicas per node {replicas_per_node:?}"
    ));
    Ok(ScaleOutReport {
        keys: config.keys,
        value_size: config.value_size,
        load_s,
        bytes,
        sets_per_s_before,
        balance_s,
        sets_per_s_during,
        during_vs_before: sets_per_s_during / sets_per_s_before.max(1.0),
        replicas_per_node,
    })
}

/// Returns the bytes the shard leaders hold, as one /status says.
fn leader_bytes(status: &serde_json::Value) -> u64 {
    status["shards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|shard| shard["bytes"].as_u64())
        .sum()
}

/// Waits until every added node holds a replica and the meta leader's
/// scheduler reports the cluster balanced twice in a row; returns the
/// replicas per node.
async fn wait_until_balanced(
    cluster: &mut PolisCluster,
    admins: &[String],
    say: &dyn Fn(String),
) -> anyhow::Result<Vec<(u64, u64)>> {
    let started = Instant::now();
    let mut quiet = 0;
    let mut shown = String::new();
    while started.elapsed() < BALANCE_TIMEOUT {
        cluster.check_running()?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(addr) = admins.first() else {
            bail!("no admin address");
        };
        let (Ok(status), Ok(report)) = (
            admin::status(addr).await,
            admin::scheduler_report(addr).await,
        ) else {
            continue;
        };
        let replicas: Vec<(u64, u64)> = status["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|node| Some((node["id"].as_u64()?, node["replicas"].as_u64()?)))
            .collect();
        let line = report.describe();
        if line != shown {
            say(format!("{:.0} s: {line}", started.elapsed().as_secs_f64()));
            shown = line;
        }
        let everyone =
            replicas.len() as u64 >= 3 + ADDED && replicas.iter().all(|(_, held)| *held > 0);
        quiet = if everyone && report.balanced {
            quiet + 1
        } else {
            0
        };
        if quiet >= 2 {
            return Ok(replicas);
        }
    }
    bail!("the cluster was not balanced within {BALANCE_TIMEOUT:?}")
}

/// SETs random keys of `0..keys` in pipelined batches until `stop` (writer
/// `index` of several);
/// counts what was acknowledged (a refusal while a replica moves is not
/// an error of the benchmark).
pub async fn write_flat_out(
    options: &RespOptions,
    index: usize,
    keys: u64,
    value: &[u8],
    seed: u64,
    stop: &AtomicBool,
    acked: &AtomicU64,
) -> anyhow::Result<()> {
    let connection = RespConnection::connect(options, index)
        .await
        .map_err(|error| anyhow::anyhow!(error))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    while !stop.load(Ordering::Relaxed) {
        let batch: Vec<(Op, u64)> = (0..BATCH)
            .map(|_| (Op::Set, rng.random_range(0..keys.max(1))))
            .collect();
        let results = connection.execute_batch(&batch, value).await;
        acked.fetch_add(
            results.iter().filter(|result| result.is_ok()).count() as u64,
            Ordering::Relaxed,
        );
    }
    Ok(())
}
