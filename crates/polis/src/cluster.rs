//! `polis cluster`: changes to the cluster's membership, carried out by
//! the meta leader while the cluster serves.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use polis_client::admin;

/// Flags of `polis cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Admin HTTP address of any node of the cluster.
    #[arg(long, global = true, default_value = "127.0.0.1:7100")]
    node: String,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Drains a node (its leaderships, then its replicas, move to the
    /// other nodes) and removes it; it stops once removed.
    RemoveNode {
        /// The id of the node to remove.
        id: u64,
        /// Returns at once instead of waiting until the node is removed.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the drain, in seconds.
        #[arg(long, default_value_t = 1800)]
        timeout_secs: u64,
    },
}

/// Runs `polis cluster`.
pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::RemoveNode {
            id,
            no_wait,
            timeout_secs,
        } => {
            let said = admin::remove_node(&args.node, id)
                .await
                .with_context(|| format!("node {id} was not removed"))?;
            println!("{said}");
            if no_wait {
                return Ok(());
            }
            wait_until_removed(&args.node, id, Duration::from_secs(timeout_secs)).await
        }
    }
}

/// Shows the drain's progress until node `id` is removed, asking the
/// other nodes once the asked one stops (it may be the removed one).
async fn wait_until_removed(first: &str, id: u64, timeout: Duration) -> anyhow::Result<()> {
    let status = admin::status(first).await?;
    let mut addrs: Vec<String> = status["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|record| record["id"] != id)
        .filter_map(|record| record["admin_addr"].as_str().map(str::to_owned))
        .collect();
    addrs.insert(0, first.to_owned());
    let deadline = tokio::time::Instant::now() + timeout;
    let mut shown = None;
    while tokio::time::Instant::now() < deadline {
        for addr in &addrs {
            let Ok(status) = admin::status(addr).await else {
                continue;
            };
            let Some((state, replicas)) = admin::node_state(&status, id) else {
                continue;
            };
            if state == "removed" {
                println!("node {id} removed");
                return Ok(());
            }
            if shown != Some(replicas) {
                println!("node {id} {state}: {replicas} replicas still to move");
                shown = Some(replicas);
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!(
        "node {id} was not removed within {timeout:?}: see `polis status` for the shards still \
         moving (a replica moves only while its shard has a leader and the node it goes to is up)"
    )
}
