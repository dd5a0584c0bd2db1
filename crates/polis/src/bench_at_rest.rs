//! `polis bench encryption`: what encryption at rest costs strong writes.

use clap::Args;
use polis_bench::at_rest::{self, AtRestBenchConfig};
use polis_bench::spec::SetLoad;

use crate::bench::{data_dir_or_temporary, local_peers, print_ratio, seconds};
use crate::bench_moves::RunPlace;

/// The encrypted side's SETs/s over the plain side's, at least.
const AT_REST_RATIO_TARGET: f64 = 0.9;

/// Flags of `polis bench encryption`.
#[derive(Debug, Args)]
pub(crate) struct AtRestArgs {
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    #[arg(long, default_value_t = 50)]
    connections: usize,
    #[arg(long, default_value_t = 2.0)]
    warmup_secs: f64,
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Rounds of the two sides, alternating (each on fresh clusters).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    run: RunPlace,
}

pub(crate) async fn run_at_rest(args: AtRestArgs) -> anyhow::Result<()> {
    let (data_dir, temporary) = data_dir_or_temporary(args.run.data_dir.as_ref())?;
    let config = AtRestBenchConfig {
        load: SetLoad {
            keys: args.keys,
            value_size: args.value_size,
            connections: args.connections,
            warmup: seconds(args.warmup_secs, "warmup-secs")?,
            duration: seconds(args.duration_secs, "duration-secs")?,
            seed: args.seed,
        },
        rounds: args.rounds.max(1),
        peers: local_peers(&args.run.server_args)?,
        data_dir,
    };
    println!(
        "polis bench encryption: strong SET over {} keys of {} bytes, {} connections, on 3 nodes: \
         {} rounds of plain then encrypted at rest, each on a fresh cluster",
        args.keys, args.value_size, args.connections, config.rounds
    );
    let report = at_rest::measure(&config, &|line| println!("  {line}")).await;
    args.run.write_json(&report)?;
    drop(temporary);
    print_ratio(
        "SET/s encrypted / SET/s plain",
        report.ratio(),
        AT_REST_RATIO_TARGET,
        &report.errors,
    )
}
