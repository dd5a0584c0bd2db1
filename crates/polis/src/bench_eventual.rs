//! `polis bench eventual`: SETs on eventual keys (W=1, W=2) against
//! strong keys, and convergence after a partition by anti-entropy alone
//! (see `polis_bench::eventual`).

use clap::Args;
use polis_bench::eventual::partition::{PartitionConfig, PartitionReport};
use polis_bench::eventual::sets::{SetsConfig, SetsReport};
use polis_bench::eventual::{
    self, EventualConfig, ANTI_ENTROPY_RATIO_TARGET, W1_RATIO_TARGET, W2_RATIO_TARGET,
};
use polis_bench::report::format::{ms, thousands};

use crate::bench::{data_dir_or_temporary, local_peers, seconds};
use crate::bench_moves::RunPlace;

/// Flags of `polis bench eventual`.
#[derive(Debug, Args)]
pub(crate) struct EventualArgs {
    /// A short bounded run (well under a minute in a release build): 10
    /// connections, 1 s per SET workload over 10,000 keys, 2,000 keys
    /// over a 2 s partition, 120 s at most to converge. Flags given
    /// explicitly still win.
    #[arg(long)]
    quick: bool,
    /// Shards of each 3-node cluster.
    #[arg(long, default_value_t = polis_bench::peers::polis::SHARDS)]
    shards: usize,
    /// Clients of each SET workload, one SET in flight each [default: 50; quick: 10].
    #[arg(long)]
    connections: Option<usize>,
    /// Keys of each SET workload, chosen uniformly [default: 100000; quick: 10000].
    #[arg(long)]
    keys: Option<u64>,
    /// Bytes per value of the SET workloads.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Warm-up of each SET workload, not recorded [default: 2; quick: 0.2].
    #[arg(long)]
    warmup_secs: Option<f64>,
    /// Recorded time of each SET workload [default: 10; quick: 1].
    #[arg(long)]
    duration_secs: Option<f64>,
    /// How long node 3 is cut off; the writes spread over it [default: 30; quick: 2].
    #[arg(long)]
    partition_secs: Option<f64>,
    /// Distinct keys written during the partition, both sides together
    /// [default: 100000; quick: 2000].
    #[arg(long)]
    partition_keys: Option<u64>,
    /// The share of the partition's keys both sides write, in percent.
    #[arg(long, default_value_t = 10)]
    shared_percent: u8,
    /// Bytes per value written during the partition [default: --value-size].
    #[arg(long)]
    partition_value_size: Option<usize>,
    /// Writer connections on each side of the partition.
    #[arg(long, default_value_t = 8)]
    partition_writers: usize,
    /// Set eventual-anti-entropy-ms on the partition's cluster [default:
    /// the nodes' own].
    #[arg(long)]
    anti_entropy_ms: Option<u64>,
    /// How long the replicas may take to converge after the heal
    /// [default: 300; quick: 120].
    #[arg(long)]
    converge_timeout_secs: Option<f64>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    run: RunPlace,
}

pub(crate) async fn run_eventual(args: EventualArgs) -> anyhow::Result<()> {
    let quick = args.quick;
    let pick = |explicit: Option<f64>, full: f64, short: f64| {
        explicit.unwrap_or(if quick { short } else { full })
    };
    let (data_dir, temporary) = data_dir_or_temporary(args.run.data_dir.as_ref())?;
    let config = EventualConfig {
        shards: args.shards,
        sets: SetsConfig {
            connections: args.connections.unwrap_or(if quick { 10 } else { 50 }),
            keys: args.keys.unwrap_or(if quick { 10_000 } else { 100_000 }),
            value_size: args.value_size,
            warmup: seconds(pick(args.warmup_secs, 2.0, 0.2), "warmup-secs")?,
            duration: seconds(pick(args.duration_secs, 10.0, 1.0), "duration-secs")?,
            seed: args.seed,
        },
        partition: PartitionConfig {
            keys: args
                .partition_keys
                .unwrap_or(if quick { 2_000 } else { 100_000 }),
            shared_percent: args.shared_percent,
            value_size: args.partition_value_size.unwrap_or(args.value_size),
            duration: seconds(pick(args.partition_secs, 30.0, 2.0), "partition-secs")?,
            writers: args.partition_writers,
            anti_entropy_ms: args.anti_entropy_ms,
            converge_timeout: seconds(
                pick(args.converge_timeout_secs, 300.0, 120.0),
                "converge-timeout-secs",
            )?,
            seed: args.seed,
        },
        peers: local_peers(&args.run.server_args)?,
        data_dir,
    };
    eventual::validate(&config)?;
    println!(
        "polis bench eventual: 3 nodes, {} shards; SET on strong keys, eventual W=1, eventual W=2 ({} connections, {} s + {} s warm-up each, {} keys of {} bytes); then node 3 cut off for {} s while both sides write {} keys of {} bytes",
        config.shards,
        config.sets.connections,
        config.sets.duration.as_secs_f64(),
        config.sets.warmup.as_secs_f64(),
        config.sets.keys,
        config.sets.value_size,
        config.partition.duration.as_secs_f64(),
        config.partition.keys,
        config.partition.value_size
    );
    let report = eventual::measure(&config, &|line| println!("  {line}")).await?;
    if let Some(sets) = &report.sets {
        print!("{}", sets_table(sets));
    }
    if let Some(partition) = &report.partition {
        print!("{}", partition_summary(partition));
    }
    args.run.write_json(&report)?;
    drop(temporary);
    if !report.errors.is_empty() {
        anyhow::bail!("{}", report.errors.join("; "));
    }
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

/// Returns the SET workloads as a table, with the ratios.
fn sets_table(sets: &SetsReport) -> String {
    let mut text = format!(
        "\nSET, {} connections, {:.1} s each after {:.1} s of warm-up, {} keys of {} bytes:\n{:<22} {:>10} {:>8} {:>8} {:>8} {:>11}  routing\n",
        sets.connections,
        sets.duration_s,
        sets.warmup_s,
        sets.keys,
        sets.value_size,
        "workload",
        "SET/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "CPU us/SET"
    );
    for workload in &sets.workloads {
        let result = &workload.result;
        text.push_str(&format!(
            "{:<22} {:>10} {:>8} {:>8} {:>8} {:>11.0}  {}\n",
            workload.name,
            thousands(result.throughput_per_s),
            ms(result.latency.p50_us as f64),
            ms(result.latency.p99_us as f64),
            result.errors,
            workload.node_cpu_us_per_set,
            workload.routing
        ));
        for sample in &result.error_samples {
            text.push_str(&format!("  error: {sample}\n"));
        }
    }
    text.push_str(
        "(CPU us/SET: the three nodes' CPU time over the recorded time, per SET recorded)\n",
    );
    for (write_quorum, target) in [(1, W1_RATIO_TARGET), (2, W2_RATIO_TARGET)] {
        match sets.ratio(write_quorum) {
            Some(ratio) => text.push_str(&format!(
                "eventual W={write_quorum} / strong: {ratio:.2}x (target >= {target}x): {}\n",
                verdict(ratio >= target)
            )),
            None => text.push_str(&format!(
                "eventual W={write_quorum} / strong: not measured\n"
            )),
        }
    }
    text
}

/// Returns what the partition measured, with the definitions.
fn partition_summary(partition: &PartitionReport) -> String {
    let mut text = format!(
        "\npartition: node {} cut off from the others for {:.1} s; hints and read repair off (anti-entropy alone, every {} ms)\n",
        partition.minority_node, partition.held_s, partition.anti_entropy_ms
    );
    text.push_str(&format!(
        "  operations:      {} SETs acknowledged (minority {}, majority {}); {} errors, {} unwritten\n",
        thousands(partition.operations as f64),
        thousands(partition.minority.acknowledged as f64),
        thousands(partition.majority.acknowledged as f64),
        partition.minority.errors + partition.majority.errors,
        partition.minority.unwritten + partition.majority.unwritten
    ));
    text.push_str(&format!(
        "  divergent keys:  {} ({} written by both sides)\n",
        thousands(partition.divergent_keys as f64),
        thousands(partition.shared_keys as f64)
    ));
    text.push_str(&format!(
        "  diverged bytes:  {} (key and value bytes of every SET acknowledged on the minority, which the majority lacks, plus of every SET acknowledged on the majority, which the minority lacks)\n",
        thousands(partition.diverged_bytes as f64)
    ));
    let converged = if partition.converged {
        format!(
            "converged {:.1} s after the heal (every node's GET /eventual the same keys and digest; polled every {} ms)",
            partition.converge_s, partition.poll_ms
        )
    } else {
        format!("NOT converged {:.1} s after the heal", partition.converge_s)
    };
    text.push_str(&format!("  convergence:     {converged}\n"));
    let by_node: Vec<String> = partition
        .anti_entropy_bytes_by_node
        .iter()
        .map(|(node, bytes)| format!("node {node} {}", thousands(*bytes as f64)))
        .collect();
    text.push_str(&format!(
        "  AE bytes:        {} sent over the nodes ({}): digests, key hashes and states, each byte counted once by its sender\n",
        thousands(partition.anti_entropy_bytes as f64),
        by_node.join(", "),
    ));
    text.push_str(&format!(
        "  AE / diverged:   {:.2}x (target <= {ANTI_ENTROPY_RATIO_TARGET}x): {}\n",
        partition.ratio,
        verdict(partition.converged && partition.ratio <= ANTI_ENTROPY_RATIO_TARGET)
    ));
    text.push_str(&format!(
        "  AE / missing:    {:.2}x of {} bytes: the diverged bytes once per replica lacking them (a minority write is lacked by both majority nodes)\n",
        partition.ratio_missing,
        thousands(partition.missing_bytes as f64)
    ));
    text.push_str(&format!(
        "  rounds:          {} anti-entropy rounds over the nodes until converged; {} hints written, {} read repairs over the whole partition\n",
        partition.anti_entropy_rounds, partition.hints_written, partition.read_repairs
    ));
    text
}
