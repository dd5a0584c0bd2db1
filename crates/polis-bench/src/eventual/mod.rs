//! Eventual namespaces against strong keys, in one run (`polis bench
//! eventual`), on two fresh 3-node clusters:
//!
//! ```text
//!  cluster 1: namespaces ev1: (N=3 W=1 R=1) and ev2: (N=3 W=2 R=1)
//!    SET for the same time, the same way: strong key:{n} (to the leaders),
//!    then ev1:{n}, then ev2:{n} (client i to node i mod 3)      ─ sets.rs
//!  cluster 2 (--enable-fault-injection): namespace part: (N=3 W=1 R=1)
//!    partition {3} | {1, 2}, writes on both sides, heal,
//!    until every node's GET /eventual agrees                     ─ partition.rs
//! ```
//!
//! The targets: SETs/s of eventual keys at W=1 at least 3x those of
//! strong keys, at W=2 at least 1.5x; after the partition, anti-entropy
//! moves at most 2x the diverged bytes.

pub mod partition;
pub mod sets;
pub mod view;
pub mod writes;

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use anyhow::anyhow;
use polis_client::admin;
use polis_client::admin_namespaces::{self, NamespaceSettings};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::limits::{
    CONNECTIONS_MAX, CONVERGE_TIMEOUT_MAX, KEYS_MAX, PARTITION_KEYS_MAX, PARTITION_WRITERS_MAX,
    RUN_DURATION_MAX, VALUE_SIZE_MAX,
};
use crate::peers::polis::PolisCluster;
use crate::peers::PeerConfig;
use partition::{PartitionConfig, PartitionReport};
use sets::{SetsConfig, SetsReport};

/// SETs/s of eventual keys at W=1 over strong keys', at least.
pub const W1_RATIO_TARGET: f64 = 3.0;
/// SETs/s of eventual keys at W=2 over strong keys', at least.
pub const W2_RATIO_TARGET: f64 = 1.5;
/// Anti-entropy bytes over diverged bytes after the partition, at most.
pub const ANTI_ENTROPY_RATIO_TARGET: f64 = 2.0;

/// How long a fresh cluster may take until every shard serves.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a namespace may take to reach every node.
const NAMESPACE_TIMEOUT: Duration = Duration::from_secs(30);
/// Replicas of the eventual namespaces: every node.
pub const REPLICAS: u8 = 3;

/// What the measurement needs.
#[derive(Debug, Clone)]
pub struct EventualConfig {
    /// Shards of each cluster.
    pub shards: usize,
    pub sets: SetsConfig,
    pub partition: PartitionConfig,
    pub peers: PeerConfig,
    pub data_dir: PathBuf,
}

/// Both parts, and what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventualReport {
    pub nodes: u64,
    pub shards: usize,
    pub sets: Option<SetsReport>,
    pub partition: Option<PartitionReport>,
    pub errors: Vec<String>,
}

/// Checks the configuration against the limits, one bound per line.
///
/// # Errors
/// Names the first value out of bounds.
pub fn validate(config: &EventualConfig) -> anyhow::Result<()> {
    let sets = &config.sets;
    let partition = &config.partition;
    anyhow::ensure!(config.shards >= 1, "shards must be at least 1");
    anyhow::ensure!(
        (1..=CONNECTIONS_MAX).contains(&sets.connections),
        "connections must be 1 to {CONNECTIONS_MAX}"
    );
    anyhow::ensure!(
        (1..=KEYS_MAX).contains(&sets.keys),
        "keys must be 1 to {KEYS_MAX}"
    );
    for size in [sets.value_size, partition.value_size] {
        anyhow::ensure!(
            (1..=VALUE_SIZE_MAX).contains(&size),
            "value sizes must be 1 to {VALUE_SIZE_MAX} bytes"
        );
    }
    anyhow::ensure!(
        sets.warmup + sets.duration <= RUN_DURATION_MAX && partition.duration <= RUN_DURATION_MAX,
        "runs must be at most {RUN_DURATION_MAX:?}"
    );
    anyhow::ensure!(
        (1..=PARTITION_KEYS_MAX).contains(&partition.keys),
        "partition keys must be 1 to {PARTITION_KEYS_MAX}"
    );
    anyhow::ensure!(
        partition.shared_percent <= 100,
        "the shared keys are a percentage: 0 to 100"
    );
    anyhow::ensure!(
        (1..=PARTITION_WRITERS_MAX).contains(&partition.writers),
        "partition writers must be 1 to {PARTITION_WRITERS_MAX} per side"
    );
    anyhow::ensure!(
        partition.converge_timeout <= CONVERGE_TIMEOUT_MAX,
        "the convergence timeout must be at most {CONVERGE_TIMEOUT_MAX:?}"
    );
    Ok(())
}

/// Runs the SET workloads on one fresh cluster, then the partition on
/// another; a part that fails is left out with its error.
///
/// # Errors
/// Fails only on a configuration out of bounds.
pub async fn measure(
    config: &EventualConfig,
    log: &dyn Fn(&str),
) -> anyhow::Result<EventualReport> {
    validate(config)?;
    let mut report = EventualReport {
        nodes: crate::peers::polis::NODES,
        shards: config.shards,
        ..EventualReport::default()
    };
    log(&format!(
        "starting a 3-node polis ({} shards) for the SET workloads",
        config.shards
    ));
    match sets_part(config, log).await {
        Ok(sets) => report.sets = Some(sets),
        Err(error) => {
            log(&format!("sets: FAILED: {error:#}"));
            report.errors.push(format!("sets: {error:#}"));
        }
    }
    log(&format!(
        "starting a 3-node polis ({} shards, fault injection on) for the partition",
        config.shards
    ));
    match partition_part(config, log).await {
        Ok(partition) => report.partition = Some(partition),
        Err(error) => {
            log(&format!("partition: FAILED: {error:#}"));
            report.errors.push(format!("partition: {error:#}"));
        }
    }
    Ok(report)
}

/// Makes the eventual namespaces (prefix, W) through the first node of
/// `admins` and waits until every node lists them.
///
/// # Errors
/// Fails if a namespace is refused or does not reach every node in time.
pub async fn make_namespaces(
    admins: &[(u64, String)],
    quorums: &[(&str, u8)],
) -> anyhow::Result<()> {
    let (_, first) = admins.first().ok_or_else(|| anyhow!("no admin address"))?;
    for (prefix, write_quorum) in quorums {
        admin_namespaces::set_namespace(
            first,
            NamespaceSettings {
                prefix,
                consistency: "eventual",
                quorums: Some((REPLICAS, *write_quorum, 1)),
                maxmemory_bytes: None,
                maxmemory_policy: None,
            },
        )
        .await?;
    }
    let everywhere =
        polis_client::poll::until(NAMESPACE_TIMEOUT, Duration::from_millis(100), || async {
            for (_, admin) in admins {
                let listed = admin_namespaces::namespaces(admin).await.ok()?;
                let has = |prefix: &str| listed.iter().any(|entry| entry["prefix"] == prefix);
                if !quorums.iter().all(|(prefix, _)| has(prefix)) {
                    return None;
                }
            }
            Some(())
        })
        .await;
    everywhere
        .ok_or_else(|| anyhow!("the namespaces did not reach every node in {NAMESPACE_TIMEOUT:?}"))
}

/// Returns printable bytes drawn from `seed`: the value every workload
/// writes.
pub fn value_bytes(size: usize, seed: u64) -> Arc<[u8]> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..size).map(|_| rng.random_range(b'a'..=b'z')).collect()
}

async fn sets_part(config: &EventualConfig, log: &dyn Fn(&str)) -> anyhow::Result<SetsReport> {
    let mut cluster = PolisCluster::start(
        &config.peers.polis,
        config.data_dir.join("sets"),
        config.shards,
        &config.peers.polis_server_args,
    )
    .await?;
    let result = async {
        // Strong keys need every shard's leader.
        admin::wait_until_ready(&cluster.admin_addrs(), READY_TIMEOUT).await?;
        let crate::spec::Target::Resp { addrs, .. } = cluster.target() else {
            anyhow::bail!("polis has no RESP target");
        };
        let admins: Vec<(u64, String)> = cluster
            .nodes()
            .iter()
            .map(|node| (node.id, node.admin.clone()))
            .collect();
        let pids = cluster.pids();
        let measured = sets::measure(&addrs, &admins, &pids, &config.sets, log).await?;
        cluster.check_running()?;
        Ok(measured)
    }
    .await;
    cluster.stop().await;
    result
}

async fn partition_part(
    config: &EventualConfig,
    log: &dyn Fn(&str),
) -> anyhow::Result<PartitionReport> {
    let mut server_args = config.peers.polis_server_args.clone();
    server_args.push("--enable-fault-injection".to_owned());
    let mut cluster = PolisCluster::start(
        &config.peers.polis,
        config.data_dir.join("partition"),
        config.shards,
        &server_args,
    )
    .await?;
    let nodes = cluster.nodes().to_vec();
    let result = match admin::wait_until_ready(&cluster.admin_addrs(), READY_TIMEOUT).await {
        Ok(_) => partition::measure(&nodes, &config.partition, log).await,
        Err(error) => Err(error),
    };
    let result = result.and_then(|measured| {
        cluster.check_running()?;
        Ok(measured)
    });
    cluster.stop().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EventualConfig {
        EventualConfig {
            shards: 3,
            sets: SetsConfig {
                connections: 50,
                keys: 100_000,
                value_size: 100,
                warmup: Duration::from_secs(2),
                duration: Duration::from_secs(10),
                seed: 42,
            },
            partition: PartitionConfig {
                keys: 100_000,
                shared_percent: 10,
                value_size: 100,
                duration: Duration::from_secs(30),
                writers: 8,
                anti_entropy_ms: None,
                converge_timeout: Duration::from_secs(300),
                seed: 42,
            },
            peers: PeerConfig {
                polis: PathBuf::from("polis"),
                etcd: PathBuf::from("etcd"),
                redis_server: PathBuf::from("redis-server"),
                polis_server_args: Vec::new(),
            },
            data_dir: PathBuf::from("/nonexistent"),
        }
    }

    #[test]
    fn out_of_bounds_configurations_are_refused() {
        assert!(validate(&config()).is_ok());
        let mut broken = Vec::new();
        let mut one = config();
        one.shards = 0;
        broken.push(one);
        let mut one = config();
        one.sets.connections = 0;
        broken.push(one);
        let mut one = config();
        one.sets.keys = 0;
        broken.push(one);
        let mut one = config();
        one.partition.value_size = 0;
        broken.push(one);
        let mut one = config();
        one.partition.keys = PARTITION_KEYS_MAX + 1;
        broken.push(one);
        let mut one = config();
        one.partition.shared_percent = 101;
        broken.push(one);
        let mut one = config();
        one.partition.writers = PARTITION_WRITERS_MAX + 1;
        broken.push(one);
        let mut one = config();
        one.partition.converge_timeout = CONVERGE_TIMEOUT_MAX + Duration::from_secs(1);
        broken.push(one);
        for config in broken {
            assert!(validate(&config).is_err(), "{config:?}");
        }
    }

    #[test]
    fn values_are_seeded_and_sized() {
        assert_eq!(value_bytes(16, 1).len(), 16);
        assert_eq!(value_bytes(16, 1), value_bytes(16, 1));
        assert_ne!(value_bytes(16, 1), value_bytes(16, 2));
    }
}
