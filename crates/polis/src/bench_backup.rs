//! `polis bench backup`: what a backup costs, on one local cluster.
//!
//! ```text
//!   3 nodes, 3 shards ─ load K keys of V bytes (pipelined SETs)
//!   writers at full speed for a window          ─ SETs/s before
//!   polis backup, writers on                    ─ backup time, SETs/s during
//!   a second cluster of 2 shards: polis restore ─ restore time, digests compared
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use polis_bench::driver::resp::RespOptions;
use polis_bench::driver::resp_load;
use polis_bench::peers::polis::PolisCluster;
use polis_client::admin;
use serde::Serialize;

use crate::bench::{data_dir_or_temporary, local_peers};
use crate::bench_moves::RunPlace;

/// How long throughput is measured before the backup.
const BEFORE_WINDOW: Duration = Duration::from_secs(15);
/// Writer connections, each sending pipelined batches.
const WRITERS: usize = 8;

/// Flags of `polis bench backup`.
#[derive(Debug, Args)]
pub(crate) struct BackupBenchArgs {
    /// Keys loaded.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Skip the restore into a second cluster.
    #[arg(long)]
    no_restore: bool,
    #[command(flatten)]
    run: RunPlace,
}

/// The figures.
#[derive(Debug, Default, Serialize)]
struct BackupReport {
    keys: u64,
    value_size: usize,
    load_s: f64,
    sets_per_s_before: f64,
    backup_s: f64,
    backup_bytes: u64,
    sets_per_s_during: f64,
    /// during / before.
    during_vs_before: f64,
    restore_s: Option<f64>,
}

pub(crate) async fn run(args: BackupBenchArgs) -> anyhow::Result<()> {
    let (data_dir, _temporary) = data_dir_or_temporary(args.run.data_dir.as_ref())?;
    let peers = local_peers(&args.run.server_args)?;
    println!(
        "polis bench backup: {} keys of {} bytes on 3 nodes, 3 shards",
        args.keys, args.value_size
    );
    let mut cluster = PolisCluster::start(
        &peers.polis,
        data_dir.join("source"),
        3,
        &peers.polis_server_args,
    )
    .await?;
    let measured = measure_backup(&cluster, &args, &data_dir).await;
    cluster.stop().await;
    let mut report = measured?;
    if !args.no_restore {
        let mut target = PolisCluster::start(
            &peers.polis,
            data_dir.join("target"),
            2,
            &peers.polis_server_args,
        )
        .await?;
        let restored = restore(&target, &data_dir).await;
        target.stop().await;
        report.restore_s = Some(restored?);
    }
    println!(
        "backup of {} keys: {:.1} s, {:.0} MB; SETs/s before {:.0}, during {:.0}: {:.2}x{}",
        report.keys,
        report.backup_s,
        report.backup_bytes as f64 / 1e6,
        report.sets_per_s_before,
        report.sets_per_s_during,
        report.during_vs_before,
        report.restore_s.map_or(String::new(), |secs| format!(
            "; restored into 2 shards and verified in {secs:.1} s"
        ))
    );
    args.run.write_json(&report)
}

async fn measure_backup(
    cluster: &PolisCluster,
    args: &BackupBenchArgs,
    data_dir: &std::path::Path,
) -> anyhow::Result<BackupReport> {
    let admins = cluster.admin_addrs();
    admin::wait_until_ready(&admins, Duration::from_secs(60)).await?;
    let polis_bench::spec::Target::Resp { addrs, .. } = cluster.target() else {
        bail!("polis is reached over RESP");
    };
    let options = RespOptions {
        addrs,
        readonly: false,
        wait_replicas: None,
    };
    let value: Arc<[u8]> = vec![b'v'; args.value_size].into();
    let load_s = resp_load::load_timed(&options, args.keys, value.clone())
        .await
        .map_err(|error| anyhow::anyhow!(error))?;
    println!("  loaded in {load_s:.1} s");

    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (options, value, acked, stop) =
                (options.clone(), value.clone(), acked.clone(), stop.clone());
            let keys = args.keys;
            tokio::spawn(async move {
                polis_bench::scale_out::write_flat_out(
                    &options,
                    writer,
                    keys,
                    &value,
                    writer as u64 + 1,
                    &stop,
                    &acked,
                )
                .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_from = acked.load(Ordering::Relaxed);
    tokio::time::sleep(BEFORE_WINDOW).await;
    let sets_per_s_before =
        (acked.load(Ordering::Relaxed) - before_from) as f64 / BEFORE_WINDOW.as_secs_f64();
    println!("  {sets_per_s_before:.0} SETs/s before");

    let during_from = acked.load(Ordering::Relaxed);
    let started = Instant::now();
    let backup_dir = data_dir.join("backup");
    let taken = crate::backup::run(crate::backup::BackupArgs {
        node: admins[0].clone(),
        to: backup_dir.clone(),
    })
    .await;
    let backup_s = started.elapsed().as_secs_f64();
    let sets_per_s_during = (acked.load(Ordering::Relaxed) - during_from) as f64 / backup_s;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await??;
    }
    taken?;
    let backup_bytes = std::fs::read_dir(&backup_dir)?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.metadata().ok())
        .map(|metadata| metadata.len())
        .sum();
    Ok(BackupReport {
        keys: args.keys,
        value_size: args.value_size,
        load_s,
        sets_per_s_before,
        backup_s,
        backup_bytes,
        sets_per_s_during,
        during_vs_before: sets_per_s_during / sets_per_s_before.max(1.0),
        restore_s: None,
    })
}

/// Restores the backup into `target`; returns the seconds it took,
/// verification included.
async fn restore(target: &PolisCluster, data_dir: &std::path::Path) -> anyhow::Result<f64> {
    let admins = target.admin_addrs();
    admin::wait_until_ready(&admins, Duration::from_secs(60)).await?;
    let started = Instant::now();
    crate::restore::run(crate::restore::RestoreArgs {
        node: admins[0].clone(),
        from: data_dir.join("backup"),
    })
    .await?;
    Ok(started.elapsed().as_secs_f64())
}
