//! What moving slots costs, measured on one 3-node, 3-shard polis:
//!
//! ```text
//!   load K keys (pipelined SETs) ─ time the load of the keys of shard 1
//!   SET latency on shard 3's slots, idle                ─ p99 idle
//!   move shard 1's slots to shard 2, SETs on shard 3     ─ move time, p99 during
//!   move them on to shard 3 while writers drive W SETs/s into them
//!                                                       ─ move time under writes
//! ```
//!
//! The targets: a move takes at most half the time loading the same keys
//! took; the p99 of SETs on slots that do not move stays within 2x of
//! idle; under W writes/s into the moving slots the move still ends, in at
//! most 2x its time without them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use polis_client::admin;
use serde::{Deserialize, Serialize};

use crate::driver::resp::{RespConnection, RespOptions};
use crate::driver::resp_load;
use crate::driver::routes;
use crate::peers::polis::PolisCluster;
use crate::peers::PeerConfig;
use crate::workload::Op;

/// How long the idle latency is measured.
const IDLE_WINDOW: Duration = Duration::from_secs(10);
/// How long a move may take before the benchmark gives up.
const MOVE_TIMEOUT: Duration = Duration::from_secs(1800);
/// Writers driving writes into the moving slots.
const WRITERS: usize = 8;

/// What the measurement needs.
#[derive(Debug, Clone)]
pub struct MigrationConfig {
    pub keys: u64,
    pub value_size: usize,
    /// Writes per second into the moving slots during the second move.
    pub write_rate: u64,
    pub peers: PeerConfig,
    pub data_dir: std::path::PathBuf,
}

/// The figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MigrationReport {
    pub keys: u64,
    pub load_s: f64,
    pub moved_slots: String,
    pub moved_keys: u64,
    /// The load time's share of the moved keys.
    pub load_moved_s: f64,
    pub move_s: f64,
    /// move / load of the same keys (target: at most 0.5).
    pub move_vs_load: f64,
    pub p99_idle_ms: f64,
    pub p99_during_move_ms: f64,
    /// p99 during / p99 idle (target: at most 2).
    pub p99_ratio: f64,
    /// The p99 during each phase of the move as the status names it, in
    /// order: "copying" (the copy, its rounds and the freeze), then
    /// "switched" (from the ownership switch until the move is done: the
    /// target activates the keys, the source drops them).
    pub p99_by_phase: Vec<PhaseLatency>,
    pub write_rate: u64,
    /// Writes acknowledged per second into the moving slots, measured.
    pub writes_per_s_during: f64,
    pub move_under_writes_s: f64,
    /// move under writes / move without (target: at most 2).
    pub move_under_writes_ratio: f64,
}

/// SET latency on the slots not moving during one phase of a move.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PhaseLatency {
    pub phase: String,
    pub secs: f64,
    pub p99_ms: f64,
    pub samples: u64,
}

/// Runs the measurement, saying what it does through `say`.
///
/// # Errors
/// Fails when the cluster cannot start, the load fails, or a move does
/// not end.
pub async fn measure(
    config: &MigrationConfig,
    say: &dyn Fn(String),
) -> anyhow::Result<MigrationReport> {
    // The moves measured are the only ones: no split, merge or balancing
    // move beside them.
    let mut server_args = vec!["--scheduler".to_owned(), "false".to_owned()];
    server_args.extend(config.peers.polis_server_args.iter().cloned());
    let mut cluster = PolisCluster::start(
        &config.peers.polis,
        config.data_dir.join("polis"),
        3,
        &server_args,
    )
    .await?;
    let result = run(&cluster, config, say).await;
    cluster.stop().await;
    result
}

async fn run(
    cluster: &PolisCluster,
    config: &MigrationConfig,
    say: &dyn Fn(String),
) -> anyhow::Result<MigrationReport> {
    let admins = cluster.admin_addrs();
    let status = admin::wait_until_ready(&admins, Duration::from_secs(60)).await?;
    let range = |shard: u64| -> anyhow::Result<(u16, u16)> {
        let text = status["shards"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|candidate| candidate["id"] == shard)
            .and_then(|candidate| candidate["slots"][0].as_str())
            .with_context(|| format!("no shard {shard}"))?
            .to_owned();
        let (start, end) = text.split_once('-').unwrap_or((&text, &text));
        Ok((start.parse()?, end.parse()?))
    };
    let moving = range(1)?;
    let still = range(3)?;
    let Target { addrs } = target(cluster);
    let options = RespOptions {
        addrs: addrs.clone(),
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
    let in_range = |key: u64, (start, end): (u16, u16)| {
        let slot = routes::slot(format!("key:{key}").as_bytes());
        start <= slot && slot <= end
    };
    let moved_keys = (0..config.keys)
        .filter(|key| in_range(*key, moving))
        .count() as u64;
    let load_moved_s = load_s * moved_keys as f64 / config.keys.max(1) as f64;
    say(format!(
        "loaded in {load_s:.1} s; shard 1's slots {}-{} hold {moved_keys} keys ({load_moved_s:.1} s of the load)",
        moving.0, moving.1
    ));

    let probe_keys: Vec<u64> = (0..config.keys)
        .filter(|key| in_range(*key, still))
        .take(1000)
        .collect();
    let idle = latency(&options, &probe_keys, &value, Stop::After(IDLE_WINDOW)).await?;
    let p99_idle_ms = p99_ms(&histogram(&idle, |_| true)?);
    say(format!(
        "SET p99 on shard 3's slots, idle: {p99_idle_ms:.2} ms"
    ));

    let slots = format!("{}-{}", moving.0, moving.1);
    let admin_addr = admins.first().context("no admin address")?.clone();
    let done = Arc::new(AtomicBool::new(false));
    let mut phases = Vec::new();
    let probe = {
        let options = options.clone();
        let keys = probe_keys.clone();
        let value = value.clone();
        let done = done.clone();
        tokio::spawn(async move { latency(&options, &keys, &value, Stop::When(done)).await })
    };
    let move_s = move_slots(&admin_addr, &slots, 2, moving.0, &mut phases).await;
    done.store(true, Ordering::Relaxed);
    let during = probe.await.context("the latency probe failed")??;
    let move_s = move_s?;
    let p99_during_move_ms = p99_ms(&histogram(&during, |_| true)?);
    say(format!(
        "moved {moved_keys} keys to shard 2 in {move_s:.1} s; SET p99 on shard 3's slots meanwhile {p99_during_move_ms:.2} ms"
    ));
    let p99_by_phase = by_phase(&during, &phases)?;
    say(format!(
        "  by phase: {}",
        p99_by_phase
            .iter()
            .map(|phase| format!(
                "{} {:.1} s p99 {:.2} ms",
                phase.phase, phase.secs, phase.p99_ms
            ))
            .collect::<Vec<_>>()
            .join("; ")
    ));

    let writer_keys: Vec<u64> = (0..config.keys)
        .filter(|key| in_range(*key, moving))
        .take(10_000)
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let options = options.clone();
        let keys = writer_keys.clone();
        let value = value.clone();
        let stop = stop.clone();
        let acked = acked.clone();
        let rate = config.write_rate / WRITERS as u64;
        writers.push(tokio::spawn(async move {
            paced_writes(&options, writer, &keys, &value, rate, &stop, &acked).await
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = acked.load(Ordering::Relaxed);
    let started = Instant::now();
    // On to shard 3, not back: the emptied shard 1 is retired (even with
    // the scheduler off), and the same keys move either way.
    let under_writes = move_slots(&admin_addr, &slots, 3, moving.0, &mut Vec::new()).await;
    let writes_per_s_during =
        (acked.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.context("a writer failed")??;
    }
    let move_under_writes_s = under_writes?;
    say(format!(
        "moved them on to shard 3 under {writes_per_s_during:.0} acknowledged writes/s into the moving slots in {move_under_writes_s:.1} s"
    ));
    Ok(MigrationReport {
        keys: config.keys,
        load_s,
        moved_slots: slots,
        moved_keys,
        load_moved_s,
        move_s,
        move_vs_load: move_s / load_moved_s,
        p99_idle_ms,
        p99_during_move_ms,
        p99_ratio: p99_during_move_ms / p99_idle_ms,
        p99_by_phase,
        write_rate: config.write_rate,
        writes_per_s_during,
        move_under_writes_s,
        move_under_writes_ratio: move_under_writes_s / move_s,
    })
}

struct Target {
    addrs: Vec<String>,
}

fn target(cluster: &PolisCluster) -> Target {
    match cluster.target() {
        crate::spec::Target::Resp { addrs, .. } => Target { addrs },
        crate::spec::Target::Etcd { .. } => Target { addrs: Vec::new() },
    }
}

/// Begins moving `slots` to `shard` and returns how long until the move
/// ended with `probe_slot` owned by `shard`; notes in `phases` when each
/// phase the status reported began, and "done" when the move ended.
async fn move_slots(
    admin_addr: &str,
    slots: &str,
    shard: u64,
    probe_slot: u16,
    phases: &mut Vec<(String, Instant)>,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let said = admin::begin_migration(admin_addr, slots, shard).await?;
    // A node whose map is older than the one that began the move knows
    // nothing of it yet.
    let began = admin::map_version_in(&said);
    loop {
        if started.elapsed() > MOVE_TIMEOUT {
            bail!("moving slots {slots} to shard {shard} took over {MOVE_TIMEOUT:?}");
        }
        if let Ok(status) = admin::status(admin_addr).await {
            if status["map_version"].as_u64().unwrap_or(0) < began {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let moving = status["migrations"]
                .as_array()
                .is_some_and(|list| !list.is_empty());
            if let Some(phase) = status["migrations"][0]["phase"].as_str() {
                if phases.last().is_none_or(|(last, _)| last != phase) {
                    phases.push((phase.to_owned(), Instant::now()));
                }
            }
            if !moving {
                if admin::slot_owner(&status, probe_slot) == Some(shard) {
                    phases.push(("done".to_owned(), Instant::now()));
                    return Ok(started.elapsed().as_secs_f64());
                }
                bail!("moving slots {slots} to shard {shard} ended without moving them");
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

enum Stop {
    After(Duration),
    When(Arc<AtomicBool>),
}

/// SETs `keys` in turn on one connection, one at a time, until told to
/// stop; returns when each was sent and its latency.
async fn latency(
    options: &RespOptions,
    keys: &[u64],
    value: &[u8],
    stop: Stop,
) -> anyhow::Result<Vec<(Instant, Duration)>> {
    let connection = RespConnection::connect(options, 0)
        .await
        .map_err(|error| anyhow::anyhow!(error))?;
    let mut samples = Vec::new();
    let started = Instant::now();
    for key in keys.iter().cycle() {
        let done = match &stop {
            Stop::After(window) => started.elapsed() >= *window,
            Stop::When(flag) => flag.load(Ordering::Relaxed),
        };
        if done {
            break;
        }
        let at = Instant::now();
        if connection.execute(Op::Set, *key, value).await.is_ok() {
            samples.push((at, at.elapsed()));
        }
    }
    Ok(samples)
}

/// The latencies (microseconds) of the samples sent when `when` holds.
fn histogram(
    samples: &[(Instant, Duration)],
    when: impl Fn(Instant) -> bool,
) -> anyhow::Result<Histogram<u64>> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for (sent, took) in samples {
        if when(*sent) {
            histogram.saturating_record(took.as_micros().max(1) as u64);
        }
    }
    Ok(histogram)
}

/// The p99 of the samples in each phase of a move (the last entry of
/// `phases` marks its end).
fn by_phase(
    samples: &[(Instant, Duration)],
    phases: &[(String, Instant)],
) -> anyhow::Result<Vec<PhaseLatency>> {
    let mut out = Vec::new();
    for pair in phases.windows(2) {
        let [(phase, began), (_, ended)] = pair else {
            continue;
        };
        let window = histogram(samples, |sent| (*began..*ended).contains(&sent))?;
        out.push(PhaseLatency {
            phase: phase.clone(),
            secs: (*ended - *began).as_secs_f64(),
            p99_ms: p99_ms(&window),
            samples: window.len(),
        });
    }
    Ok(out)
}

/// Writes `keys` at `rate` per second (in batches every 10 ms) until
/// `stop`; counts what was acknowledged. Refusals during the freeze
/// (TRYAGAIN) are not errors of the benchmark.
async fn paced_writes(
    options: &RespOptions,
    index: usize,
    keys: &[u64],
    value: &[u8],
    rate: u64,
    stop: &AtomicBool,
    acked: &AtomicU64,
) -> anyhow::Result<()> {
    let connection = RespConnection::connect(options, index)
        .await
        .map_err(|error| anyhow::anyhow!(error))?;
    let per_tick = (rate / 100).max(1) as usize;
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut next = index;
    while !stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        let batch: Vec<(Op, u64)> = (0..per_tick)
            .map(|n| (Op::Set, keys[(next + n * WRITERS) % keys.len()]))
            .collect();
        next += per_tick * WRITERS;
        let results = connection.execute_batch(&batch, value).await;
        acked.fetch_add(
            results.iter().filter(|result| result.is_ok()).count() as u64,
            Ordering::Relaxed,
        );
    }
    Ok(())
}

fn p99_ms(histogram: &Histogram<u64>) -> f64 {
    histogram.value_at_quantile(0.99) as f64 / 1000.0
}
