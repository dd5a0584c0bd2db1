//! `polis verify`: runs concurrent clients and a nemesis against a
//! cluster, records the history and checks it. Exits 0 when the verdict
//! is the one expected (`--expect valid` for polis; `--expect anomalies`
//! for a positive control such as Redis with asynchronous replicas).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use polis_verify::nemesis::parse_faults;
use polis_verify::run::{run, RunConfig, TargetConfig};
use polis_verify::workload::{QueueMode, Workload};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TargetKind {
    /// A polis cluster (started here unless --resp and --admin are given).
    Polis,
    /// Redis 7: one primary, two asynchronous replicas (the positive control).
    Redis,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum WorkloadKind {
    /// GET / SET / SET IFEQ on a few keys, checked for linearizability.
    Register,
    /// Unique adds, then a final read: nothing lost, nothing invented.
    Set,
    /// A stream as a work queue for one consumer group (XADD, XREADGROUP,
    /// XACK, XAUTOCLAIM), then a drain: every acknowledged entry
    /// delivered and kept, acknowledgements durable.
    Queue,
    /// Lists as work queues (RPUSH, BLMOVE then LREM, BLPOP), then a
    /// read of each: no element popped twice, none lost.
    Pop,
    /// MULTI/EXEC transactions of RPUSH and LRANGE, checked for strict
    /// serializability (Elle's list-append).
    Append,
    /// Locks with short leases (LOCK ACQUIRE/REFRESH/RELEASE) guarding
    /// lists written through FENCED, holders stalling past their leases:
    /// tokens increase, no superseded token writes (polis only).
    Lock,
    /// APPENDs to keys under a change feed's prefix, then every key and
    /// the feed stream read back: each write in the feed once, in the
    /// order it applied, nothing lost or invented.
    Changefeed,
    /// Registers, counters, sets and deleted keys in an eventual
    /// namespace (`ev:`, N=3, --write-quorum, --read-quorum), written on
    /// every node; after healing, every key read from every node once
    /// their digests agree: the same everywhere, nothing acknowledged
    /// lost, nothing invented, nothing deleted back (polis only).
    Eventual,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum QueueModeKind {
    Claim,
    Redeliver,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Expect {
    Valid,
    Anomalies,
}

/// Flags of `polis verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[arg(long, value_enum, default_value = "polis")]
    target: TargetKind,
    #[arg(long, value_enum, default_value = "register")]
    workload: WorkloadKind,
    /// Nodes of the cluster started here.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// RESP addresses of a running cluster (comma-separated).
    #[arg(long, value_delimiter = ',')]
    resp: Vec<String>,
    /// Admin address of one node of a running cluster.
    #[arg(long)]
    admin: Option<String>,
    /// The redis-server binary, for --target redis.
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    /// Registers (keys) of the register workload; lists (append) or
    /// strings (changefeed) in use at a time; registers, counters and sets
    /// each (eventual).
    #[arg(long, default_value_t = 5)]
    keys: u32,
    /// The eventual workload's write quorum W: replicas (of N=3, the
    /// coordinator included) that must take a write before it is
    /// acknowledged; fewer in 1 s answer OUTCOMEUNKNOWN.
    #[arg(long, default_value_t = 1)]
    write_quorum: u8,
    /// The eventual workload's read quorum R: replicas a read asks and
    /// merges (the final reads set it to 1, so each node answers alone).
    #[arg(long, default_value_t = 1)]
    read_quorum: u8,
    /// Leave out compare-and-set (SET IFEQ), e.g. against Redis 7.
    #[arg(long)]
    no_cas: bool,
    /// How the queue workload's consumers recover entries others left
    /// pending: `claim` (Redis's XAUTOCLAIM) or `redeliver` (polis's group
    /// options: ack-wait redelivery, max deliveries and a dead-letter
    /// stream, XNACK; every acknowledged entry must end acknowledged or
    /// dead-lettered).
    #[arg(long, value_enum, default_value = "claim")]
    queue_mode: QueueModeKind,
    #[arg(long, default_value_t = 10)]
    clients: u64,
    /// Operations per second, all clients together.
    #[arg(long, default_value_t = 300)]
    rate: u64,
    /// Length of the run in seconds (faults and clients; healing and the
    /// final reads come after).
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    /// Faults to draw from: partition, isolate-leader, bridge, kill,
    /// pause, pause-kill, delay, loss, move-slots, add-remove-node,
    /// clock-skew, hint-window; or all, network, process, none.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Calm between faults, in seconds.
    #[arg(long, default_value_t = 3)]
    quiet_secs: u64,
    /// How long each fault lasts, in seconds.
    #[arg(long, default_value_t = 6)]
    fault_secs: u64,
    /// Seed of every random choice (default: from the clock, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Where the history, summary and timeline go.
    #[arg(long)]
    out: Option<PathBuf>,
    /// How long a client waits for a reply before the outcome is unknown.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    #[arg(long, default_value_t = 60)]
    recovery_timeout_secs: u64,
    /// The verdict that makes this command succeed.
    #[arg(long, value_enum, default_value = "valid")]
    expect: Expect,
    /// Extra flags for every `polis server` started here (after `--`).
    #[arg(last = true)]
    server_args: Vec<String>,
}

/// Runs `polis verify`; returns whether the verdict was the one expected.
pub async fn run_verify(args: VerifyArgs) -> anyhow::Result<bool> {
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let target = match (args.target, args.resp.is_empty(), &args.admin) {
        (TargetKind::Polis, true, None) => TargetConfig::PolisLocal {
            exe: std::env::current_exe().context("locating the polis binary")?,
            nodes: args.nodes,
            server_args: args.server_args.clone(),
        },
        (TargetKind::Polis, false, Some(admin)) => TargetConfig::PolisRemote {
            resp: args.resp.clone(),
            admin: admin.clone(),
        },
        (TargetKind::Polis, _, _) => bail!("give both --resp and --admin, or neither"),
        (TargetKind::Redis, _, _) => TargetConfig::Redis {
            exe: args.redis_server.clone(),
        },
    };
    let workload = match args.workload {
        WorkloadKind::Register => Workload::Register {
            keys: args.keys,
            cas: !args.no_cas,
        },
        WorkloadKind::Set => Workload::Set,
        WorkloadKind::Queue => Workload::Queue {
            mode: match args.queue_mode {
                QueueModeKind::Claim => QueueMode::Claim,
                QueueModeKind::Redeliver => QueueMode::Redeliver,
            },
        },
        WorkloadKind::Pop => Workload::Pop,
        WorkloadKind::Append => Workload::Append { keys: args.keys },
        WorkloadKind::Lock => Workload::Lock,
        WorkloadKind::Changefeed => Workload::Changefeed { keys: args.keys },
        WorkloadKind::Eventual => Workload::Eventual {
            keys: args.keys,
            write_quorum: args.write_quorum,
            read_quorum: args.read_quorum,
        },
    };
    let out_dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("verify-results").join(format!("{}-seed-{seed}", unix_secs()))
    });
    let config = RunConfig {
        target,
        workload,
        clients: args.clients,
        rate: args.rate,
        duration: Duration::from_secs(args.duration_secs),
        faults: parse_faults(&args.faults)?,
        quiet: Duration::from_secs(args.quiet_secs),
        fault_for: Duration::from_secs(args.fault_secs),
        seed,
        out_dir,
        timeout: Duration::from_millis(args.timeout_ms),
        recovery_timeout: Duration::from_secs(args.recovery_timeout_secs),
    };
    println!(
        "polis verify: seed {seed}; results in {}",
        config.out_dir.display()
    );
    let results = run(&config).await?;
    print!("{}", results.text);
    println!(
        "history: {}  timeline: {}",
        config.out_dir.join("history.jsonl").display(),
        config.out_dir.join("timeline.html").display()
    );
    let expected = match args.expect {
        Expect::Valid => results.valid,
        Expect::Anomalies => !results.valid,
    };
    if !expected {
        println!(
            "polis verify: expected {:?}; replay with --seed {seed}",
            args.expect
        );
    }
    Ok(expected)
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
