//! `polis cluster`: changes to the cluster's membership and to where
//! slots live, carried out while the cluster serves.

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
    /// Moves slots to another shard while clients keep writing: the source
    /// copies them, freezes them for a moment, and the target takes over.
    Migrate {
        /// The slots, as ranges: `0-99,200`.
        #[arg(long)]
        slots: String,
        /// The shard to move them to.
        #[arg(long)]
        to_shard: u64,
        /// Returns at once instead of waiting until the slots moved.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the move, in seconds.
        #[arg(long, default_value_t = 3600)]
        timeout_secs: u64,
    },
    /// Cancels every migration that has not switched yet (one that has
    /// switched finishes).
    CancelMigrations,
    /// Splits a shard: the upper half of its slots move to a new shard on
    /// the nodes holding the fewest replicas.
    Split {
        /// The shard to split.
        #[arg(long)]
        shard: u64,
        /// Returns at once instead of waiting until the slots moved.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the split, in seconds.
        #[arg(long, default_value_t = 3600)]
        timeout_secs: u64,
    },
    /// Merges a shard into another: every slot of it moves there, then
    /// the emptied shard is retired.
    Merge {
        /// The shard that goes.
        #[arg(long)]
        shard: u64,
        /// The shard that takes its slots.
        #[arg(long)]
        into: u64,
        /// Returns at once instead of waiting until the slots moved.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the merge, in seconds.
        #[arg(long, default_value_t = 3600)]
        timeout_secs: u64,
    },
    /// Asks the meta leader for a balancing pass now: splits, merges,
    /// replica and leader moves.
    Rebalance {
        /// Shows a progress bar until the cluster is balanced.
        #[arg(long)]
        wait: bool,
        /// How long to wait, in seconds.
        #[arg(long, default_value_t = 3600)]
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
        ClusterCommand::Migrate {
            slots,
            to_shard,
            no_wait,
            timeout_secs,
        } => {
            let said = admin::begin_migration(&args.node, &slots, to_shard)
                .await
                .context("the migration did not begin")?;
            println!("{said}");
            if no_wait {
                return Ok(());
            }
            let ranges = polis_cluster::migration::parse_ranges(&slots)
                .map_err(|reason| anyhow::anyhow!(reason))?;
            let probe = ranges.first().map_or(0, |range| range.start.get());
            wait_until_moved(
                &args.node,
                to_shard,
                probe,
                admin::map_version_in(&said),
                Duration::from_secs(timeout_secs),
            )
            .await
        }
        ClusterCommand::CancelMigrations => {
            println!("{}", admin::cancel_migrations(&args.node).await?);
            Ok(())
        }
        ClusterCommand::Split {
            shard,
            no_wait,
            timeout_secs,
        } => {
            let said = admin::split_shard(&args.node, shard)
                .await
                .with_context(|| format!("shard {shard} was not split"))?;
            println!("{said}");
            if no_wait {
                return Ok(());
            }
            wait_until_balanced(&args.node, Duration::from_secs(timeout_secs), false).await
        }
        ClusterCommand::Merge {
            shard,
            into,
            no_wait,
            timeout_secs,
        } => {
            let said = admin::merge_shard(&args.node, shard, into)
                .await
                .with_context(|| format!("shard {shard} was not merged"))?;
            println!("{said}");
            if no_wait {
                return Ok(());
            }
            wait_until_balanced(&args.node, Duration::from_secs(timeout_secs), false).await
        }
        ClusterCommand::Rebalance { wait, timeout_secs } => {
            println!("{}", admin::rebalance(&args.node).await?);
            if !wait {
                return Ok(());
            }
            wait_until_balanced(&args.node, Duration::from_secs(timeout_secs), true).await
        }
    }
}

/// Shows what the scheduler still wants, as a progress bar of the
/// operations done, until nothing is under way (and, with `balanced`,
/// nothing is planned either).
async fn wait_until_balanced(first: &str, timeout: Duration, balanced: bool) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} operations  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut left_most = 0u64;
    let mut quiet_passes = 0;
    while tokio::time::Instant::now() < deadline {
        let Ok(report) = admin::scheduler_report(first).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let left = report.operations_left();
        left_most = left_most.max(left);
        bar.set_length(left_most);
        bar.set_position(left_most - left);
        bar.set_message(report.describe());
        let done = if balanced {
            report.balanced
        } else {
            report.migrations == 0 && !report.retiring()
        };
        // Twice in a row: a pass may report just before it plans.
        quiet_passes = if done { quiet_passes + 1 } else { 0 };
        if quiet_passes >= 2 {
            bar.finish_with_message("balanced");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    bar.abandon();
    anyhow::bail!(
        "the cluster was not balanced within {timeout:?}: see `polis status` for what moves          (a move waits for every shard to have a leader and for the nodes it goes to be up)"
    )
}

/// Returns the map version an answer names as `(map version N)`, or 0.
/// Shows the migrations to `to_shard` until none is left; succeeds when
/// `slot` is then the shard's. The asked node's map must be at `began`
/// (the version that began the migration) at least: an older one knows
/// nothing of the migration yet.
async fn wait_until_moved(
    addr: &str,
    to_shard: u64,
    slot: u16,
    began: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut shown = String::new();
    while tokio::time::Instant::now() < deadline {
        let status = admin::status(addr).await?;
        if status["map_version"].as_u64().unwrap_or(0) < began {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let moving: Vec<&serde_json::Value> = status["migrations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|migration| migration["target"] == to_shard)
            .collect();
        if moving.is_empty() {
            if admin::slot_owner(&status, slot) == Some(to_shard) {
                println!("slots moved to shard {to_shard}");
                return Ok(());
            }
            anyhow::bail!(
                "the migration ended without moving the slots (cancelled, or it did not \
                 converge under the write load): see the source shard leader's log"
            );
        }
        let mut line = String::new();
        for migration in moving {
            let progress = source_progress(&status, migration).await;
            line.push_str(&format!(
                "migration {} slots {} shard {} -> {}: {}{}  ",
                migration["id"],
                migration["slots"].as_str().unwrap_or_default(),
                migration["source"],
                migration["target"],
                migration["phase"].as_str().unwrap_or_default(),
                progress
            ));
        }
        if line != shown {
            println!("{}", line.trim_end());
            shown = line;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("the slots had not moved after {timeout:?}: see `polis status`")
}

/// Returns the progress the source shard's leader reports for
/// `migration`, as ` (N keys, M MB sent)`, or nothing.
async fn source_progress(status: &serde_json::Value, migration: &serde_json::Value) -> String {
    let Some((leader, _)) = admin::shard_leader(status, migration["source"].as_u64().unwrap_or(0))
    else {
        return String::new();
    };
    let Some(admin_addr) = admin::node_admin_addr(status, leader) else {
        return String::new();
    };
    let Ok(theirs) = admin::status(&admin_addr).await else {
        return String::new();
    };
    theirs["migrations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|candidate| candidate["id"] == migration["id"])
        .filter(|candidate| !candidate["progress"].is_null())
        .map(|candidate| format!(" ({})", migration_progress(&candidate["progress"])))
        .unwrap_or_default()
}

/// Renders a migration driver's progress from `/status`: keys and bytes
/// sent, the rate, the share copied and the time left, the step.
pub(crate) fn migration_progress(progress: &serde_json::Value) -> String {
    let number = |field: &str| progress[field].as_f64().unwrap_or(0.0);
    let left = match progress["secs_left"].as_u64() {
        Some(0) => "copied".to_owned(),
        Some(secs) => format!("{:.0}% copied, ~{secs} s left", number("copied") * 100.0),
        None => "starting".to_owned(),
    };
    format!(
        "{} keys, {:.1} MB at {:.1} MB/s, {left}, {}",
        number("keys_sent"),
        number("bytes_sent") / 1e6,
        number("bytes_per_sec") / 1e6,
        progress["step"].as_str().unwrap_or("-")
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_migration_shows_its_rate_and_time_left() {
        let copying = serde_json::json!({
            "keys_sent": 250_000, "bytes_sent": 30_000_000, "bytes_per_sec": 6_000_000,
            "copied": 0.25, "secs_left": 15, "step": "copying",
        });
        assert_eq!(
            migration_progress(&copying),
            "250000 keys, 30.0 MB at 6.0 MB/s, 25% copied, ~15 s left, copying"
        );
        let done = serde_json::json!({"copied": 1.0, "secs_left": 0, "step": "frozen"});
        assert!(migration_progress(&done).ends_with("copied, frozen"));
        let fresh = serde_json::json!({"step": "copying"});
        assert!(migration_progress(&fresh).contains("starting"));
    }
}
