//! `polis bench pubsub`: PUBLISH fan-out to subscribers spread over the
//! nodes, against one Redis node (see `polis_bench::pubsub`).

use clap::Args;

use crate::bench::{data_dir_or_temporary, local_peers, seconds};
use crate::bench_moves::RunPlace;

/// Flags of `polis bench pubsub`.
#[derive(Debug, Args)]
pub(crate) struct PubSubArgs {
    /// Subscribers, spread round-robin over the nodes.
    #[arg(long, default_value_t = 50)]
    subscribers: usize,
    /// Publishers, each one PUBLISH at a time, spread over the nodes.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Seconds of publishing per system.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Bytes per message.
    #[arg(long, default_value_t = 64)]
    message_size: usize,
    #[command(flatten)]
    run: RunPlace,
}

pub(crate) async fn run_pubsub(args: PubSubArgs) -> anyhow::Result<()> {
    let (data_dir, temporary) = data_dir_or_temporary(args.run.data_dir.as_ref())?;
    let config = polis_bench::pubsub::PubSubConfig {
        subscribers: args.subscribers,
        publishers: args.publishers,
        duration: seconds(args.duration_secs, "duration-secs")?,
        message_size: args.message_size,
        peers: local_peers(&args.run.server_args)?,
        data_dir,
    };
    println!(
        "polis bench pubsub: {} subscribers, {} publishers, {} s, {}-byte messages: 3-node polis, then one Redis node",
        args.subscribers, args.publishers, args.duration_secs, args.message_size
    );
    let report = polis_bench::pubsub::measure(&config, &|line| println!("  {line}")).await?;
    let verdict = if report.ratio >= 0.5 {
        "met"
    } else {
        "NOT met"
    };
    println!(
        "delivered/s: polis {:.0} / Redis {:.0} = {:.2} (target >= 0.5: {verdict}); lost: polis {}, Redis {}",
        report.polis.delivered_per_s,
        report.redis.delivered_per_s,
        report.ratio,
        report.polis.lost,
        report.redis.lost
    );
    args.run.write_json(&report)?;
    drop(temporary);
    Ok(())
}
