//! A bounded `polis bench compare` with tiny durations against every
//! system (polis sharded and in one group, etcd, the three Redis set-ups):
//! the runner starts and stops them all, every workload that applies
//! runs, the memory and idle-shard measurements run, and the three report
//! files are written. No
//! performance target is asserted: seconds of load on a shared machine
//! measure nothing worth asserting.
//!
//! The benchmarks take turns (`common::one_at_a_time`): two at once on
//! two cores would measure each other, and the eviction run's memory
//! bound assumes eviction keeps pace with the writes it admits.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

/// The whole comparison must finish within this (it takes about a minute
/// and a half in a debug build).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

const SYSTEMS: [&str; 6] = [
    "polis",
    "polis-one-group",
    "etcd",
    "redis-replicated",
    "redis-fsync",
    "redis-memory",
];

/// Runs `command` (`what`, for the messages) within [`RUN_TIMEOUT`],
/// fails the test unless it succeeds, and returns what it printed.
async fn run_to_success(mut command: tokio::process::Command, what: &str) -> String {
    command.kill_on_drop(true);
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish in time"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_runs_every_system_and_writes_the_report() {
    let _turn = common::one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_polis"));
    command
        .args(["bench", "compare", "--quick"])
        .args([
            "--repetitions",
            "1",
            "--keys",
            "1000",
            "--memory-keys",
            "2000",
            "--idle-shards",
            "3,8",
            "--idle-secs",
            "1",
            // The data-type scenarios have their own test below.
            "--elements",
            "0",
            "--queue-secs",
            "0",
        ])
        // Long enough that one stalled request does not empty a run (a
        // Redis WAIT gives up after 1 s).
        .args(["--warmup-secs", "0.2", "--duration-secs", "1.5"])
        .args(["--ops-max", "200000"])
        .arg("--out")
        .arg(&out)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let stdout = run_to_success(command, "polis bench compare").await;

    for name in ["report.md", "report.json", "report.html"] {
        let len = std::fs::metadata(out.join(name)).map_or(0, |m| m.len());
        assert!(len > 500, "{name} is missing or nearly empty:\n{stdout}");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();

    // Every system ran, and every run of it produced operations.
    let mut ops_by_system: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for run in report["comparison"]["runs"].as_array().unwrap() {
        let system = run["system"].as_str().unwrap().to_owned();
        let case = run["case"].as_str().unwrap().to_owned();
        let ops = run["result"]["ops"].as_u64().unwrap_or(0);
        assert!(
            run["error"].is_null() && ops > 0,
            "{system} {case} produced no operations: {}\n{stdout}",
            run["error"]
        );
        ops_by_system.entry(system).or_default().push((case, ops));
    }
    for system in SYSTEMS {
        let runs = ops_by_system.get(system).map_or(0, Vec::len);
        assert!(runs >= 5, "{system} ran {runs} workloads:\n{stdout}");
    }
    // etcd has no INCR or hashes: the mixed workload must not run there.
    assert!(
        !ops_by_system["etcd"]
            .iter()
            .any(|(case, _)| case == "mixed"),
        "{ops_by_system:?}"
    );

    // CPU and memory were sampled from the server processes.
    for summary in report["summaries"].as_array().unwrap() {
        assert!(
            summary["rss_peak_bytes"].as_u64().unwrap() > 0,
            "no peak RSS in {summary}"
        );
    }
    let memory = &report["comparison"]["memory"];
    assert_eq!(
        memory["polis"]["keys_loaded"].as_u64(),
        Some(2000),
        "{memory}"
    );
    assert_eq!(
        memory["redis"]["keys_loaded"].as_u64(),
        Some(2000),
        "{memory}"
    );

    // Idle clusters of 3 and 8 shards: both measured, the larger one's
    // memory per replica against the smaller one.
    let idle = &report["comparison"]["idle"];
    let runs = idle["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{idle}");
    assert_eq!(runs[0]["shards"].as_u64(), Some(3), "{idle}");
    assert_eq!(runs[1]["shards"].as_u64(), Some(8), "{idle}");
    assert!(runs[1]["rss_per_replica_bytes"].is_number(), "{idle}");
    assert!(runs[1]["cpu_cores"].as_f64().unwrap() >= 0.0, "{idle}");

    // Every target is evaluated (met or not is not this test's business).
    let targets = report["targets"].as_array().unwrap();
    // Ten, and one per data-type write (those run on polis by default).
    assert_eq!(targets.len(), 15);
    for target in targets {
        assert!(!target["met"].is_null(), "target not measured: {target}");
    }
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    for system in SYSTEMS {
        assert!(markdown.contains(&format!("| {system} |")), "{markdown}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("<script"));
}

/// `polis bench compare --data-types`, tiny: polis's SET and each data
/// type's writes run, memory per element is measured for every
/// collection on both systems, the queue runs on both, and every
/// data-type target has a figure (met or not is not this test's business).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_data_types_measures_every_figure() {
    let _turn = common::one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_polis"));
    command
        .args(["bench", "compare", "--quick", "--data-types"])
        .args(["--keys", "1000", "--elements", "3000"])
        .args(["--queue-secs", "1", "--queue-messages", "3000"])
        .args(["--warmup-secs", "0.2", "--duration-secs", "1"])
        .arg("--out")
        .arg(&out)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let stdout = run_to_success(command, "polis bench compare --data-types").await;
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();

    let mut cases: Vec<String> = Vec::new();
    for run in report["comparison"]["runs"].as_array().unwrap() {
        assert_eq!(run["system"], "polis", "{run}");
        let ops = run["result"]["ops"].as_u64().unwrap_or(0);
        assert!(ops > 0, "{run}\n{stdout}");
        cases.push(run["case"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        cases,
        ["set", "lpush", "sadd", "zadd", "xadd", "hset"],
        "{stdout}"
    );

    let collections = report["comparison"]["element_memory"]["collections"]
        .as_array()
        .unwrap();
    assert_eq!(collections.len(), 4, "{stdout}");
    for row in collections {
        for side in ["polis", "redis"] {
            assert_eq!(row[side]["elements"].as_u64(), Some(3000), "{row}");
            assert!(row[side]["rss_per_element_bytes"].is_number(), "{row}");
        }
        assert!(
            row["redis"]["used_memory_per_element_bytes"]
                .as_f64()
                .unwrap()
                > 0.0,
            "{row}"
        );
    }

    let queue = &report["comparison"]["queue"];
    for side in ["polis", "redis"] {
        assert!(queue[side]["acknowledged"].as_u64().unwrap() > 0, "{queue}");
        assert!(
            queue[side]["messages_per_s"].as_f64().unwrap() > 0.0,
            "{queue}"
        );
    }

    // 5 writes against SET, 4 collections, 1 queue: each has a figure.
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 10, "{targets:?}");
    for target in targets {
        assert!(!target["met"].is_null(), "target not measured: {target}");
    }
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    for section in [
        "## Data-type writes against SET",
        "## Memory per element",
        "## Queue on one stream",
    ] {
        assert!(markdown.contains(section), "{markdown}");
    }
}

/// `polis bench migration` on a few thousand keys: both moves end, every
/// figure is written, each move phase has its latency. (It once failed
/// after a change elsewhere retired the emptied shard, and nothing ran it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_benchmark_moves_the_keys_twice_and_writes_its_figures() {
    let _turn = common::one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("migration.json");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_polis"));
    command
        .args([
            "bench",
            "migration",
            "--keys",
            "3000",
            "--write-rate",
            "200",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    run_to_success(command, "polis bench migration").await;
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let moved = report["moved_keys"].as_u64().unwrap();
    assert!(
        (800..=1200).contains(&moved),
        "a third of 3000 keys: {report}"
    );
    for figure in [
        "move_s",
        "load_moved_s",
        "p99_during_move_ms",
        "move_under_writes_s",
    ] {
        assert!(report[figure].as_f64().unwrap() > 0.0, "{figure}: {report}");
    }
    assert!(
        report["writes_per_s_during"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    let phases: Vec<&str> = report["p99_by_phase"]
        .as_array()
        .unwrap()
        .iter()
        .map(|phase| phase["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases.first(), Some(&"copying"), "{report}");
}

/// `polis bench pubsub` for a second per system: both run, every message
/// published reaches every subscriber (nothing overflows at this rate),
/// and the ratio is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pubsub_benchmark_delivers_to_every_subscriber_on_both_systems() {
    let _turn = common::one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("pubsub.json");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_polis"));
    command
        .args(["bench", "pubsub", "--subscribers", "6", "--publishers", "2"])
        .args(["--duration-secs", "1"])
        .arg("--json")
        .arg(&json)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    run_to_success(command, "polis bench pubsub").await;
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for side in ["polis", "redis"] {
        let published = report[side]["published"].as_u64().unwrap();
        assert!(published > 0, "{side}: {report}");
        assert_eq!(
            report[side]["delivered"].as_u64().unwrap(),
            published * 6,
            "{side}: {report}"
        );
        assert!(report[side]["delivered_per_s"].as_f64().unwrap() > 0.0);
    }
    assert!(report["ratio"].as_f64().unwrap() > 0.0, "{report}");
}

/// `polis bench eviction`, tiny: both sides run on their own clusters,
/// the limited one evicts while it serves and stays near its limit, and
/// the ratio is printed (whether it meets 0.8x is not this test's
/// business: a second of load on a shared machine measures nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eviction_benchmark_runs_both_sides() {
    let _turn = common::one_at_a_time().await;
    const LIMIT_BYTES: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("eviction.json");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_polis"));
    command
        .args([
            "bench",
            "eviction",
            "--keys",
            "20000",
            "--connections",
            "10",
        ])
        .args(["--maxmemory", &LIMIT_BYTES.to_string()])
        .args(["--warmup-secs", "0.2", "--duration-secs", "1"])
        .arg("--json")
        .arg(&json)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let stdout = run_to_success(command, "polis bench eviction").await;
    assert!(stdout.contains("SET/s at maxmemory"), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for side in ["unlimited", "limited"] {
        assert!(
            report[side]["result"]["ops"].as_u64().unwrap() > 0,
            "{report}"
        );
    }
    let limited = &report["limited"];
    assert!(limited["evicted_keys"].as_u64().unwrap() > 0, "{report}");
    // Writes go ahead while a node is at most limit/64 over, plus what
    // the connections have in flight.
    let bound = LIMIT_BYTES + LIMIT_BYTES / 64 + 64 * 1024;
    assert!(
        limited["used_memory_max_bytes"].as_u64().unwrap() <= bound,
        "{report}"
    );
    assert_eq!(report["unlimited"]["evicted_keys"].as_u64(), Some(0));
}

/// `polis bench eventual --quick`, smaller still: the three SET workloads
/// run, and after the partition every replica converges by anti-entropy
/// alone on every key written, with its figures (whether the targets are
/// met is not this test's business: seconds of load on a shared machine
/// measure nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eventual_benchmark_runs_three_workloads_and_converges_after_the_partition() {
    let _turn = common::one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("eventual.json");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_polis"));
    command
        .args(["bench", "eventual", "--quick", "--connections", "6"])
        .args(["--partition-keys", "1000", "--shared-percent", "10"])
        .args(["--partition-writers", "2", "--anti-entropy-ms", "200"])
        .arg("--json")
        .arg(&json)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let stdout = run_to_success(command, "polis bench eventual").await;
    assert!(stdout.contains("eventual W=1 / strong"), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(
        report["errors"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );

    let workloads = report["sets"]["workloads"].as_array().unwrap();
    let names: Vec<&str> = workloads
        .iter()
        .map(|workload| workload["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["strong", "eventual N=3 W=1 R=1", "eventual N=3 W=2 R=1"],
        "{report}"
    );
    for workload in workloads {
        assert!(
            workload["result"]["ops"].as_u64().unwrap() > 0,
            "{workload}"
        );
    }

    let partition = &report["partition"];
    assert_eq!(partition["converged"], true, "{partition}");
    // 450 keys on each side alone, 100 on both: 1,100 SETs.
    assert_eq!(partition["operations"].as_u64(), Some(1100), "{partition}");
    assert_eq!(
        partition["divergent_keys"].as_u64(),
        Some(1000),
        "{partition}"
    );
    for view in partition["after"].as_array().unwrap() {
        assert_eq!(view["keys"].as_u64(), Some(1000), "{partition}");
    }
    // Node 3 held only its own side's keys at the heal.
    let before = partition["before_heal"].as_array().unwrap();
    assert_eq!(before[2]["keys"].as_u64(), Some(550), "{partition}");
    assert!(partition["diverged_bytes"].as_u64().unwrap() > 0);
    assert!(partition["anti_entropy_bytes"].as_u64().unwrap() > 0);
    // Hints and read repair were off: anti-entropy alone converged.
    assert_eq!(partition["hints_written"].as_u64(), Some(0), "{partition}");
    assert_eq!(partition["read_repairs"].as_u64(), Some(0), "{partition}");
}

/// `polis bench encryption`, tiny: a plain and an encrypted cluster both
/// serve the load, the encrypted one's nodes keep a keyring, and the
/// ratio is printed (a second of load measures nothing worth asserting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_encryption_benchmark_runs_both_sides() {
    let _turn = common::one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("encryption.json");
    let data = dir.path().join("data");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_polis"));
    command
        .args([
            "bench",
            "encryption",
            "--keys",
            "2000",
            "--connections",
            "10",
        ])
        .args([
            "--warmup-secs",
            "0.2",
            "--duration-secs",
            "1",
            "--rounds",
            "1",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--data-dir")
        .arg(&data);
    let stdout = run_to_success(command, "polis bench encryption").await;
    assert!(stdout.contains("SET/s encrypted / SET/s plain"), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for side in ["plain", "encrypted"] {
        assert!(report[side][0]["ops"].as_u64().unwrap() > 0, "{report}");
    }
    assert!(data.join("encrypted-0/node-1/keyring").is_file());
    assert!(!data.join("plain-0/node-1/keyring").exists());
}
