//! `polis bench encryption` and `polis bench tracing`: what encryption at
//! rest, and exporting traces, cost strong writes.

use clap::Args;
use polis_bench::at_rest::{self, AtRestBenchConfig};

use crate::bench::{data_dir_or_temporary, local_peers, print_ratio};
use crate::bench_memory::SetLoadArgs;
use crate::bench_moves::RunPlace;

/// The encrypted side's SETs/s over the plain side's, at least.
const AT_REST_RATIO_TARGET: f64 = 0.9;

/// Flags of `polis bench encryption`.
#[derive(Debug, Args)]
pub(crate) struct AtRestArgs {
    #[command(flatten)]
    sides: SidesArgs,
}

/// The flags of a two-sided strong SET comparison.
#[derive(Debug, Args)]
struct SidesArgs {
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Rounds of the two sides, alternating (each on fresh clusters).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    #[command(flatten)]
    load: SetLoadArgs,
    #[command(flatten)]
    run: RunPlace,
}

impl SidesArgs {
    /// Returns the measurement's configuration, and the temporary data
    /// directory to keep until it ends (none when one was named).
    fn config(&self) -> anyhow::Result<(AtRestBenchConfig, Option<tempfile::TempDir>)> {
        let (data_dir, temporary) = data_dir_or_temporary(self.run.data_dir.as_ref())?;
        let config = AtRestBenchConfig {
            load: self.load.load(self.keys)?,
            rounds: self.rounds.max(1),
            peers: local_peers(&self.run.server_args)?,
            data_dir,
        };
        Ok((config, temporary))
    }
}

pub(crate) async fn run_at_rest(AtRestArgs { sides: args }: AtRestArgs) -> anyhow::Result<()> {
    let (config, temporary) = args.config()?;
    println!(
        "polis bench encryption: strong SET over {} keys of {} bytes, {} connections, on 3 nodes: \
         {} rounds of plain then encrypted at rest, each on a fresh cluster",
        args.keys, args.load.value_size, args.load.connections, config.rounds
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

/// The traced side's SETs/s over the untraced side's, at least.
const TRACING_RATIO_TARGET: f64 = 0.95;

/// Flags of `polis bench tracing`.
#[derive(Debug, Args)]
pub(crate) struct TracingArgs {
    /// The share of requests the traced side traces.
    #[arg(long, default_value_t = 1.0)]
    trace_ratio: f64,
    /// Where the traced side's spans go: `in-process` (built, batched and
    /// dropped in each node: tracing's own cost) or `collector` (exported
    /// over OTLP/gRPC to a collector this command runs, on the same
    /// cores).
    #[arg(long, default_value = "in-process", value_parser = ["in-process", "collector"])]
    sink: String,
    #[command(flatten)]
    sides: SidesArgs,
}

pub(crate) async fn run_tracing(tracing: TracingArgs) -> anyhow::Result<()> {
    let args = &tracing.sides;
    let (config, temporary) = args.config()?;
    let sink = match tracing.sink.as_str() {
        "collector" => Some(crate::trace_sink::Sink::start().await?),
        _ => None,
    };
    let endpoint = sink
        .as_ref()
        .map_or("in-process".to_owned(), |sink| sink.endpoint.clone());
    println!(
        "polis bench tracing: strong SET over {} keys of {} bytes, {} connections, on 3 nodes: \
         {} rounds of untraced then traced (ratio {}, spans to {}), each on a fresh cluster",
        args.keys,
        args.load.value_size,
        args.load.connections,
        config.rounds,
        tracing.trace_ratio,
        sink.as_ref().map_or(
            "an in-process sink in each node".to_owned(),
            |sink| format!("an OTLP collector in this process at {}", sink.endpoint)
        )
    );
    let traced = [
        "--otlp-endpoint".to_owned(),
        endpoint,
        "--trace-ratio".to_owned(),
        tracing.trace_ratio.to_string(),
    ];
    let mut errors = Vec::new();
    let [untraced, traced] = at_rest::measure_sides(
        &config,
        [("untraced", &[]), ("traced", &traced)],
        &mut errors,
        &|line| println!("  {line}"),
    )
    .await;
    if let Some(sink) = &sink {
        println!("  spans the collector received: {}", sink.spans());
    }
    let report = at_rest::AtRestReport {
        keys: args.keys,
        value_size: args.load.value_size,
        plain: untraced,
        encrypted: traced,
        errors,
    };
    args.run.write_json(&report)?;
    drop(temporary);
    print_ratio(
        "SET/s traced / SET/s untraced",
        report.ratio(),
        TRACING_RATIO_TARGET,
        &report.errors,
    )
}
