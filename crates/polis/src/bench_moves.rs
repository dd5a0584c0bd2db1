//! `polis bench migration` and `polis bench scale-out`: what moving data
//! costs — slots between shards, replicas onto new nodes.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::bench::{data_dir_or_temporary, local_peers};

/// Where a benchmark's clusters keep their data and its figures go.
#[derive(Debug, Args)]
pub(crate) struct RunPlace {
    /// Where the cluster keeps its data [default: a temporary directory].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Write the figures as JSON to this file too.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Extra flags for every `polis server` started here (after `--`).
    #[arg(last = true)]
    pub(crate) server_args: Vec<String>,
}

impl RunPlace {
    /// Writes `report` as JSON to `--json`, if given.
    pub(crate) fn write_json(&self, report: &impl serde::Serialize) -> anyhow::Result<()> {
        if let Some(path) = &self.json {
            std::fs::write(path, serde_json::to_vec_pretty(report)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

/// Flags of `polis bench scale-out`.
#[derive(Debug, Args)]
pub(crate) struct ScaleOutArgs {
    /// Keys loaded (1,000,000 of 1,000 bytes: about 1 GB).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1_000)]
    value_size: usize,
    /// Seed of the writers' key choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    run: RunPlace,
}

/// Flags of `polis bench migration`.
#[derive(Debug, Args)]
pub(crate) struct MigrationArgs {
    /// Keys loaded over all slots (shard 1's third of them moves).
    #[arg(long, default_value_t = 3_000_000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Writes per second into the moving slots during the second move.
    #[arg(long, default_value_t = 10_000)]
    write_rate: u64,
    #[command(flatten)]
    run: RunPlace,
}

pub(crate) async fn run_migration(args: MigrationArgs) -> anyhow::Result<()> {
    let (data_dir, temporary) = data_dir_or_temporary(args.run.data_dir.as_ref())?;
    let config = polis_bench::migration::MigrationConfig {
        keys: args.keys,
        value_size: args.value_size,
        write_rate: args.write_rate,
        peers: local_peers(&args.run.server_args)?,
        data_dir,
    };
    println!(
        "polis bench migration: {} keys of {} bytes on 3 nodes, 3 shards",
        args.keys, args.value_size
    );
    let report = polis_bench::migration::measure(&config, &|line| println!("  {line}")).await?;
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "move {:.1} s / load of the same keys {:.1} s = {:.2} (target <= 0.5: {})",
        report.move_s,
        report.load_moved_s,
        report.move_vs_load,
        verdict(report.move_vs_load <= 0.5)
    );
    println!(
        "SET p99 on slots not moving: {:.2} ms during / {:.2} ms idle = {:.2} (target <= 2: {})",
        report.p99_during_move_ms,
        report.p99_idle_ms,
        report.p99_ratio,
        verdict(report.p99_ratio <= 2.0)
    );
    println!(
        "move under {:.0} writes/s: {:.1} s / {:.1} s = {:.2} (target <= 2: {})",
        report.writes_per_s_during,
        report.move_under_writes_s,
        report.move_s,
        report.move_under_writes_ratio,
        verdict(report.move_under_writes_ratio <= 2.0)
    );
    args.run.write_json(&report)?;
    drop(temporary);
    Ok(())
}

pub(crate) async fn run_scale_out(args: ScaleOutArgs) -> anyhow::Result<()> {
    let (data_dir, temporary) = data_dir_or_temporary(args.run.data_dir.as_ref())?;
    let config = polis_bench::scale_out::ScaleOutConfig {
        keys: args.keys,
        value_size: args.value_size,
        peers: local_peers(&args.run.server_args)?,
        data_dir,
        seed: args.seed,
    };
    println!(
        "polis bench scale-out: {} keys of {} bytes on 3 nodes, 3 shards; 2 nodes added",
        args.keys, args.value_size
    );
    let report = polis_bench::scale_out::measure(&config, &|line| println!("  {line}")).await?;
    println!(
        "balanced in {:.1} s; SETs/s during {:.0} / before {:.0} = {:.2}",
        report.balance_s,
        report.sets_per_s_during,
        report.sets_per_s_before,
        report.during_vs_before
    );
    args.run.write_json(&report)?;
    drop(temporary);
    Ok(())
}
