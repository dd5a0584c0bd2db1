//! `polis bench`: load against one system (`run`), polis side by side
//! with etcd and Redis and a report (`compare`), or what idle shards cost
//! (`idle`, also part of `compare`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use polis_bench::compare::cases::{Case, CaseBase};
use polis_bench::compare::record::unix_secs;
use polis_bench::compare::{self, CompareConfig};
use polis_bench::driver;
use polis_bench::idle::{self, IdleConfig};
use polis_bench::peers::{PeerConfig, SystemKind};
use polis_bench::report::format::{ms, thousands, utc_compact};
use polis_bench::report::machine::{load_average, Machine, Versions};
use polis_bench::report::Report;
use polis_bench::spec::{BenchResult, BenchSpec, Distribution, Mode, Target, Workload};

use crate::bench_memory::{run_eviction, run_footprint, EvictionArgs, FootprintArgs};
use crate::bench_moves::{run_migration, run_scale_out, MigrationArgs, RunPlace, ScaleOutArgs};

/// Flags of `polis bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Loads a keyspace into one system and runs one workload against it.
    Run(Box<RunArgs>),
    /// Runs polis, etcd and Redis side by side and writes a report.
    Compare(Box<CompareArgs>),
    /// Starts 3-node clusters with more and more shards and measures what
    /// they cost while idle: time to serve, CPU, memory per replica.
    Idle(IdleArgs),
    /// Measures moving slots between shards on a 3-node cluster: against
    /// the time loading the same keys took, the SET p99 on other slots
    /// meanwhile, and under writes into the moving slots.
    Migration(MigrationArgs),
    /// Measures adding 2 nodes to a loaded 3-node cluster: the time until
    /// the replicas are balanced, and SETs/s meanwhile against before.
    ScaleOut(ScaleOutArgs),
    /// Measures `polis backup` of a loaded 3-node cluster: its time, and
    /// SETs/s meanwhile against before; then restores it into a second
    /// cluster of 2 shards.
    Backup(crate::bench_backup::BackupBenchArgs),
    /// Measures PUBLISH to subscribers spread over a 3-node cluster:
    /// messages delivered per second, against one Redis node.
    Pubsub(crate::bench_pubsub::PubSubArgs),
    /// Compares the memory figure maxmemory bounds (INFO used_memory)
    /// with the node's resident set growth, per data type.
    Footprint(FootprintArgs),
    /// Measures SET at maxmemory (eviction active) against the same load
    /// without a limit, on fresh 3-node clusters.
    Eviction(EvictionArgs),
    /// Measures SET on eventual keys (W=1, W=2) against strong keys, and
    /// convergence by anti-entropy after a partition, on fresh 3-node
    /// clusters.
    Eventual(crate::bench_eventual::EventualArgs),
    /// Measures strong SET with encryption at rest against the same load
    /// without it, on fresh 3-node clusters.
    Encryption(crate::bench_at_rest::AtRestArgs),
    /// Measures strong SET with traces exported (to a collector this
    /// command runs) against the same load without them, on fresh 3-node
    /// clusters.
    Tracing(crate::bench_at_rest::TracingArgs),
}

/// Flags of `polis bench idle`.
#[derive(Debug, Args)]
struct IdleArgs {
    /// Shard counts (comma-separated), each on a fresh cluster.
    #[arg(long, value_delimiter = ',', default_values_t = idle::SHARD_COUNTS)]
    shards: Vec<usize>,
    /// Seconds of idleness measured per cluster.
    #[arg(long, default_value_t = 20.0)]
    window_secs: f64,
    #[command(flatten)]
    run: RunPlace,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum WorkloadArg {
    /// YCSB A: 50 % reads, 50 % updates.
    A,
    /// YCSB B: 95 % reads, 5 % updates.
    B,
    /// YCSB C: reads only.
    C,
    /// Updates only.
    WriteOnly,
    /// Reads, updates, INCR, HSET, HGET.
    Mixed,
}

/// Flags of `polis bench run`.
#[derive(Debug, Args)]
struct RunArgs {
    /// RESP addresses (comma-separated); MOVED is followed.
    #[arg(long, value_delimiter = ',', conflicts_with = "etcd")]
    resp: Vec<String>,
    /// etcd client endpoints (comma-separated, http://host:port).
    #[arg(long, value_delimiter = ',')]
    etcd: Vec<String>,
    /// Send READONLY first and read from these nodes (stale follower reads).
    #[arg(long)]
    readonly: bool,
    /// After each write, WAIT for this many replicas (Redis).
    #[arg(long)]
    wait_replicas: Option<u32>,
    /// The WAIT timeout.
    #[arg(long, default_value_t = 1000)]
    wait_timeout_ms: u64,
    #[arg(long, value_enum, default_value = "c")]
    workload: WorkloadArg,
    /// Keys in the keyspace.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Zipfian keys with this exponent (0.99 if no value is given);
    /// uniform without the flag.
    #[arg(long, num_args = 0..=1, default_missing_value = "0.99")]
    zipfian: Option<f64>,
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Open loop at this many requests per second (closed loop without it).
    #[arg(long)]
    rate: Option<u64>,
    #[arg(long, default_value_t = 2.0)]
    warmup_secs: f64,
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Stop after this many recorded operations, if sooner.
    #[arg(long)]
    ops_max: Option<u64>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Do not load the keyspace first (it is there already).
    #[arg(long)]
    skip_load: bool,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Flags of `polis bench compare`.
#[derive(Debug, Args)]
struct CompareArgs {
    /// A short run (about a minute): one repetition, 1 s per workload,
    /// 10,000 keys, 50,000 keys for the memory measurement. Flags given
    /// explicitly still win.
    #[arg(long)]
    quick: bool,
    /// Repetitions of every system and workload [default: 2; quick: 1].
    #[arg(long)]
    repetitions: Option<u32>,
    /// Where report.md, report.json and report.html go
    /// [default: ./bench-results/<UTC time>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Systems to compare (comma-separated): polis, polis-one-group, etcd,
    /// redis-replicated, redis-fsync, redis-memory [default: all].
    #[arg(long, value_delimiter = ',')]
    systems: Vec<String>,
    /// Workloads (comma-separated): get, get-readonly, ycsb-b, ycsb-a,
    /// mixed, set, set-pipeline-16, and the data-type writes lpush, sadd,
    /// zadd, xadd, hset (polis only) [default: all].
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Keys for the memory measurement, 0 to skip it [default: 1000000; quick: 50000].
    #[arg(long)]
    memory_keys: Option<u64>,
    /// Shard counts of the idle measurement (comma-separated), 0 to skip
    /// it [default: 3,32,128; quick: 3,32].
    #[arg(long, value_delimiter = ',')]
    idle_shards: Vec<usize>,
    /// Seconds of idleness measured per shard count [default: 20; quick: 5].
    #[arg(long)]
    idle_secs: Option<f64>,
    /// Only the data-type scenarios: polis's SET, LPUSH, SADD, ZADD,
    /// XADD and HSET; memory per element; the queue on one stream
    /// (memory per key and idle shards skipped, other systems left out).
    #[arg(long)]
    data_types: bool,
    /// Elements per list, set, sorted set and hash for memory per
    /// element, 0 to skip it [default: 1000000; quick: 20000].
    #[arg(long)]
    elements: Option<u64>,
    /// Seconds the queue's 10 producers produce, 0 to skip the queue
    /// [default: 10; quick: 2].
    #[arg(long)]
    queue_secs: Option<f64>,
    /// Messages the queue's producers produce, at most.
    #[arg(long, default_value_t = 1_000_000)]
    queue_messages: u64,
    /// Keys loaded before the workloads [default: 100000; quick: 10000].
    #[arg(long)]
    keys: Option<u64>,
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Warm-up per run, not recorded [default: 2; quick: 0.3].
    #[arg(long)]
    warmup_secs: Option<f64>,
    /// Recorded time per run [default: 8; quick: 1].
    #[arg(long)]
    duration_secs: Option<f64>,
    /// Recorded operations per run, at most.
    #[arg(long, default_value_t = 20_000_000)]
    ops_max: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where the systems keep their data [default: a temporary directory].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep each system's data directory after it stops.
    #[arg(long)]
    keep_data: bool,
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    #[arg(long, default_value = "etcd")]
    etcd_bin: PathBuf,
    /// Extra flags for every `polis server` started here (after `--`).
    #[arg(last = true)]
    server_args: Vec<String>,
}

/// Runs `polis bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Run(args) => run_one(*args).await,
        BenchCommand::Compare(args) => run_compare(*args).await,
        BenchCommand::Idle(args) => run_idle(args).await,
        BenchCommand::Migration(args) => run_migration(args).await,
        BenchCommand::ScaleOut(args) => run_scale_out(args).await,
        BenchCommand::Backup(args) => crate::bench_backup::run(args).await,
        BenchCommand::Pubsub(args) => crate::bench_pubsub::run_pubsub(args).await,
        BenchCommand::Footprint(args) => run_footprint(args).await,
        BenchCommand::Eviction(args) => run_eviction(args).await,
        BenchCommand::Eventual(args) => crate::bench_eventual::run_eventual(args).await,
        BenchCommand::Encryption(args) => crate::bench_at_rest::run_at_rest(args).await,
        BenchCommand::Tracing(args) => crate::bench_at_rest::run_tracing(args).await,
    }
}

/// Prints a comparison's ratio against its target; fails if a side
/// failed (`errors`) and left no ratio.
pub(crate) fn print_ratio(
    what: &str,
    ratio: Option<f64>,
    target: f64,
    errors: &[String],
) -> anyhow::Result<()> {
    let Some(ratio) = ratio else {
        anyhow::bail!("a side failed: {errors:?}");
    };
    let verdict = if ratio >= target { "met" } else { "NOT met" };
    println!("{what}: {ratio:.3}x (target >= {target}x): {verdict}");
    Ok(())
}

/// Returns a data directory: `dir` if given, else a temporary one (kept
/// alive by the returned guard).
pub(crate) fn data_dir_or_temporary(
    dir: Option<&PathBuf>,
) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(dir) = dir {
        return Ok((dir.clone(), None));
    }
    let temporary = tempfile::Builder::new()
        .prefix("polis-bench-")
        .tempdir()
        .context("creating a temporary data directory")?;
    Ok((temporary.path().to_path_buf(), Some(temporary)))
}

/// Returns the peers of a measurement of this binary's polis alone.
pub(crate) fn local_peers(server_args: &[String]) -> anyhow::Result<PeerConfig> {
    Ok(PeerConfig {
        polis: std::env::current_exe().context("locating the polis binary")?,
        etcd: PathBuf::from("etcd"),
        redis_server: PathBuf::from("redis-server"),
        polis_server_args: server_args.to_vec(),
    })
}

async fn run_idle(args: IdleArgs) -> anyhow::Result<()> {
    let (data_dir, temporary) = data_dir_or_temporary(args.run.data_dir.as_ref())?;
    let config = IdleConfig {
        shard_counts: args.shards.clone(),
        window: seconds(args.window_secs, "window-secs")?,
        peers: local_peers(&args.run.server_args)?,
        data_dir,
    };
    println!(
        "polis bench idle: shards {:?}, {} s idle each",
        config.shard_counts, args.window_secs
    );
    let report = idle::measure(&config, &|line| println!("  {line}")).await;
    println!(
        "{:>7} {:>9} {:>10} {:>10} {:>11} {:>10} {:>14}",
        "shards", "replicas", "serving s", "parked s", "CPU cores", "RSS MiB", "KiB/replica"
    );
    for run in &report.runs {
        println!(
            "{:>7} {:>9} {:>10.1} {:>10} {:>11.3} {:>10.1} {:>14}",
            run.shards,
            run.replicas,
            run.ready_s,
            run.parked_s
                .map_or_else(|| "not all".to_owned(), |s| format!("{s:.1}")),
            run.cpu_cores,
            run.rss_bytes_sum as f64 / (1024.0 * 1024.0),
            run.rss_per_replica_bytes
                .map_or_else(|| "-".to_owned(), |b| format!("{:.0}", b / 1024.0)),
        );
    }
    args.run.write_json(&report)?;
    drop(temporary);
    if !report.errors.is_empty() {
        bail!("{}", report.errors.join("; "));
    }
    Ok(())
}

pub(crate) fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("--{flag} {value} is not a duration"))
}

async fn run_one(args: RunArgs) -> anyhow::Result<()> {
    let target = match (args.resp.is_empty(), args.etcd.is_empty()) {
        (false, true) => Target::Resp {
            addrs: args.resp.clone(),
            readonly: args.readonly,
            wait_replicas: args.wait_replicas.map(|n| (n, args.wait_timeout_ms)),
        },
        (true, false) => Target::Etcd {
            endpoints: args.etcd.clone(),
        },
        _ => bail!("give --resp or --etcd"),
    };
    let spec = BenchSpec {
        workload: match args.workload {
            WorkloadArg::A => Workload::A,
            WorkloadArg::B => Workload::B,
            WorkloadArg::C => Workload::C,
            WorkloadArg::WriteOnly => Workload::WriteOnly,
            WorkloadArg::Mixed => Workload::Mixed,
        },
        keys: args.keys,
        value_size: args.value_size,
        distribution: args
            .zipfian
            .map_or(Distribution::Uniform, Distribution::Zipfian),
        connections: args.connections,
        pipeline: args.pipeline,
        mode: args
            .rate
            .map_or(Mode::Closed, |rate_per_s| Mode::Open { rate_per_s }),
        warmup: seconds(args.warmup_secs, "warmup-secs")?,
        duration: seconds(args.duration_secs, "duration-secs")?,
        ops_max: args.ops_max,
        seed: args.seed,
    };
    if !args.skip_load {
        let keys = driver::load(&target, &spec)
            .await
            .context("loading the keyspace")?;
        if !args.json {
            println!("loaded {keys} keys");
        }
    }
    let result = driver::run(&target, &spec).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", result_table(&result));
    }
    Ok(())
}

/// Returns a run's result as a text table.
fn result_table(result: &BenchResult) -> String {
    let mut text = format!(
        "{} ops, {} errors in {:.2} s: {} ops/s\n{:<8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        result.ops,
        result.errors,
        result.elapsed_s,
        thousands(result.throughput_per_s),
        "op",
        "count",
        "mean ms",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms"
    );
    let rows = std::iter::once(("all", &result.latency)).chain(
        result
            .by_op
            .iter()
            .map(|(name, latency)| (name.as_str(), latency)),
    );
    for (name, latency) in rows {
        text.push_str(&format!(
            "{name:<8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            latency.count,
            ms(latency.mean_us),
            ms(latency.p50_us as f64),
            ms(latency.p99_us as f64),
            ms(latency.p999_us as f64),
            ms(latency.max_us as f64),
        ));
    }
    for sample in &result.error_samples {
        text.push_str(&format!("error: {sample}\n"));
    }
    text
}

fn parse_list<T>(
    names: &[String],
    all: &[T],
    parse: fn(&str) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<T>>
where
    T: Copy + PartialEq,
{
    if names.is_empty() {
        return Ok(all.to_vec());
    }
    let mut parsed = Vec::new();
    for name in names {
        let item = parse(name)?;
        if !parsed.contains(&item) {
            parsed.push(item);
        }
    }
    Ok(parsed)
}

async fn run_compare(args: CompareArgs) -> anyhow::Result<()> {
    let quick = args.quick;
    let pick = |explicit: Option<f64>, full: f64, short: f64| {
        explicit.unwrap_or(if quick { short } else { full })
    };
    let (all_systems, all_cases): (&[SystemKind], Vec<Case>) = if args.data_types {
        let cases = std::iter::once(Case::Set).chain(Case::DATA_TYPES).collect();
        (&[SystemKind::Polis], cases)
    } else {
        (&SystemKind::ALL, Case::ALL.to_vec())
    };
    let systems = parse_list(&args.systems, all_systems, SystemKind::parse)?;
    let cases = parse_list(&args.workloads, &all_cases, Case::parse)?;
    let profile = match (quick, args.duration_secs.is_some() || args.keys.is_some()) {
        (_, true) => "custom",
        (true, false) if args.data_types => "quick, data types",
        (true, false) => "quick",
        (false, false) if args.data_types => "full, data types",
        (false, false) => "full",
    };
    let (data_dir, temporary) = data_dir_or_temporary(args.data_dir.as_ref())?;
    let idle_shards = match args.idle_shards.as_slice() {
        [] if args.data_types => Vec::new(),
        [] if quick => vec![3, 32],
        [] => idle::SHARD_COUNTS.to_vec(),
        [0] => Vec::new(),
        given => given.to_vec(),
    };
    let config = CompareConfig {
        systems,
        cases,
        repetitions: args.repetitions.unwrap_or(if quick { 1 } else { 2 }),
        base: CaseBase {
            keys: args.keys.unwrap_or(if quick { 10_000 } else { 100_000 }),
            value_size: args.value_size,
            connections: args.connections,
            warmup: seconds(pick(args.warmup_secs, 2.0, 0.3), "warmup-secs")?,
            duration: seconds(pick(args.duration_secs, 8.0, 1.0), "duration-secs")?,
            ops_max: Some(args.ops_max),
            seed: args.seed,
        },
        memory_keys: args.memory_keys.unwrap_or(match (args.data_types, quick) {
            (true, _) => 0,
            (false, true) => 50_000,
            (false, false) => 1_000_000,
        }),
        elements: args
            .elements
            .unwrap_or(if quick { 20_000 } else { 1_000_000 }),
        queue_duration: seconds(pick(args.queue_secs, 10.0, 2.0), "queue-secs")?,
        queue_messages_max: args.queue_messages,
        idle_shards,
        idle_window: seconds(pick(args.idle_secs, 20.0, 5.0), "idle-secs")?,
        peers: PeerConfig {
            polis: std::env::current_exe().context("locating the polis binary")?,
            etcd: args.etcd_bin.clone(),
            redis_server: args.redis_server.clone(),
            polis_server_args: args.server_args.clone(),
        },
        data_dir: data_dir.clone(),
        keep_data: args.keep_data,
        profile: profile.to_owned(),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("bench-results").join(utc_compact(unix_secs())));
    println!(
        "polis bench compare: {} ({} repetition(s) of {} systems x {} workloads); data in {}; report into {}",
        profile,
        config.repetitions,
        config.systems.len(),
        config.cases.len(),
        data_dir.display(),
        out.display()
    );
    let mut machine = Machine::describe(&data_dir);
    let versions = Versions::describe(&config.peers.redis_server, &config.peers.etcd);
    let comparison = compare::run(&config, &|line| println!("  {line}")).await?;
    machine.load_average_after = load_average();
    let report = Report::build(comparison, machine, versions);
    let files = report.write(&out)?;
    for check in &report.targets {
        let verdict = match check.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured",
        };
        let measured = check.measured.map_or_else(
            || "-".to_owned(),
            |value| format!("{value:.2}{}", check.unit),
        );
        println!(
            "target {}: {measured} (needs {} {}{}): {verdict}",
            check.name,
            check.bound.symbol(),
            check.required,
            check.unit
        );
    }
    println!(
        "report: {}\n        {}\n        {}",
        files.markdown.display(),
        files.json.display(),
        files.html.display()
    );
    drop(temporary);
    Ok(())
}
