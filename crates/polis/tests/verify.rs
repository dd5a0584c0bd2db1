//! Bounded `polis verify` runs, as the test suite's share of the fault
//! testing: polis under partitions, kills and pauses must show no
//! anomaly, in its registers, sets, list-append transactions, stream queue,
//! blocking pops, fenced locks and change feed, and its eventual namespaces
//! (under partitions, kills, clock skew and hints expiring) must converge
//! with nothing lost or invented, and the positive control (Redis with asynchronous
//! replicas, failed over while its primary is cut off) must show lost
//! writes. Each run prints its seed; `POLIS_VERIFY_SEED=N` replays one.
//!
//! The runs are short (20 to 40 s of 4 s faults with 2 s of calm between,
//! a few minutes for them all) to keep the suite within its budget; a soak
//! runs the same commands for longer and over many seeds, for example
//! `for seed in $(seq 1 1000); do polis verify --faults all
//! --duration-secs 300 --seed $seed || break; done`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Mutex;

/// One run at a time: each starts its own cluster, and two at once on
/// two cores would measure the machine rather than polis.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// The fault cycle of a run that names none: 4 s faults, 2 s of calm.
const SHORT_FAULTS: [&str; 4] = ["--quiet-secs", "2", "--fault-secs", "4"];

fn seed() -> u64 {
    std::env::var("POLIS_VERIFY_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                .into()
        })
}

struct Run {
    summary: String,
    events: Vec<serde_json::Value>,
}

impl Run {
    fn count(&self, kind: &str, f: &str) -> usize {
        self.events
            .iter()
            .filter(|event| event["type"] == kind && event["f"] == f)
            .count()
    }

    /// Faults that started without an error.
    fn faults_started(&self) -> usize {
        self.events
            .iter()
            .filter(|e| e["f"] == "nemesis" && e["phase"] == "start" && e["error"].is_null())
            .filter(|e| e["fault"] != "recover")
            .count()
    }
}

async fn verify(args: &[&str], out: &Path) -> Run {
    let _turn = ONE_AT_A_TIME.lock().await;
    let seed = seed();
    let mut args = args.to_vec();
    if !args.contains(&"--fault-secs") {
        args.extend(SHORT_FAULTS);
    }
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_polis"));
    command
        .arg("verify")
        .args(&args)
        .args(["--seed", &seed.to_string()])
        .arg("--out")
        .arg(out)
        .kill_on_drop(true);
    println!("polis verify {} --seed {seed}", args.join(" "));
    let output = tokio::time::timeout(Duration::from_secs(240), command.output())
        .await
        .expect("polis verify finishes within 240 s")
        .expect("polis verify runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "polis verify {} --seed {seed} did not give the expected verdict ({})",
        args.join(" "),
        output.status
    );
    let history = std::fs::read_to_string(out.join("history.jsonl")).unwrap();
    Run {
        summary: std::fs::read_to_string(out.join("summary.txt")).unwrap(),
        events: history
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect(),
    }
}

/// The run must have done enough to mean something: operations
/// acknowledged, faults injected, and the checker's verdict valid.
fn assert_meaningful_and_valid(run: &Run, faults_min: usize) {
    let acknowledged = run.count("ok", "write") + run.count("ok", "cas") + run.count("ok", "add");
    assert!(
        acknowledged >= 500,
        "only {acknowledged} writes acknowledged"
    );
    assert!(
        run.faults_started() >= faults_min,
        "only {} faults were injected",
        run.faults_started()
    );
    assert!(run.summary.contains("verdict: valid"), "{}", run.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_stays_linearizable_under_partitions() {
    let out = tempfile::tempdir().unwrap();
    let run = verify(
        &[
            "--faults",
            "partition,isolate-leader,bridge",
            "--duration-secs",
            "40",
        ],
        out.path(),
    )
    .await;
    assert!(run.count("ok", "read") >= 500);
    assert_meaningful_and_valid(&run, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_stays_linearizable_under_kills() {
    let out = tempfile::tempdir().unwrap();
    let run = verify(
        &["--faults", "kill,pause-kill", "--duration-secs", "40"],
        out.path(),
    )
    .await;
    assert!(run.count("ok", "read") >= 500);
    assert_meaningful_and_valid(&run, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_stays_linearizable_under_pauses_and_slow_networks() {
    let out = tempfile::tempdir().unwrap();
    let run = verify(
        &["--faults", "pause,delay,loss", "--duration-secs", "40"],
        out.path(),
    )
    .await;
    assert!(run.count("ok", "read") >= 500);
    assert_meaningful_and_valid(&run, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_loses_no_acknowledged_set_element() {
    let out = tempfile::tempdir().unwrap();
    let run = verify(
        &[
            "--workload",
            "set",
            "--faults",
            "all",
            "--duration-secs",
            "24",
        ],
        out.path(),
    )
    .await;
    assert_eq!(run.count("ok", "read-all"), 1, "one final read");
    assert_meaningful_and_valid(&run, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_catches_redis_losing_acknowledged_writes() {
    let out = tempfile::tempdir().unwrap();
    let run = verify(
        &[
            "--target",
            "redis",
            "--workload",
            "set",
            "--faults",
            "isolate-leader",
            "--duration-secs",
            "20",
            "--expect",
            "anomalies",
        ],
        out.path(),
    )
    .await;
    assert!(run.faults_started() >= 1);
    assert!(run.summary.contains("verdict: INVALID"), "{}", run.summary);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json")).unwrap())
            .unwrap();
    let lost = report["results"]["set"]["lost"].as_array().unwrap().len();
    assert!(lost > 0, "the control lost nothing: {}", run.summary);
    println!("control: Redis lost {lost} acknowledged writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_stays_linearizable_while_slots_move() {
    // Every fault is a move (a seed drawing among several kinds may draw
    // none); moves under kills of each leader are in tests/migration.rs.
    let out = tempfile::tempdir().unwrap();
    let run = verify(
        &[
            "--faults",
            "move-slots",
            "--duration-secs",
            "60",
            "--quiet-secs",
            "3",
            "--fault-secs",
            "6",
        ],
        out.path(),
    )
    .await;
    let moves = run
        .events
        .iter()
        .filter(|e| e["f"] == "nemesis" && e["phase"] == "start" && e["error"].is_null())
        .filter(|e| {
            e["fault"]
                .as_str()
                .unwrap_or_default()
                .starts_with("move slots")
        })
        .count();
    println!("slot moves begun: {moves}");
    assert!(moves >= 1, "no slot move began: {}", run.summary);
    assert!(run.count("ok", "read") >= 500);
    assert_meaningful_and_valid(&run, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_stays_linearizable_while_nodes_join_and_leave() {
    // Every fault adds a node or removes the one added last once replicas
    // moved to it, so replicas keep moving (the set workload's run draws
    // these among every kind).
    let out = tempfile::tempdir().unwrap();
    let run = verify(
        &[
            "--faults",
            "add-remove-node",
            "--duration-secs",
            "90",
            "--quiet-secs",
            "3",
            "--fault-secs",
            "6",
        ],
        out.path(),
    )
    .await;
    let begun = |prefix: &str| {
        run.events
            .iter()
            .filter(|e| e["f"] == "nemesis" && e["phase"] == "start" && e["error"].is_null())
            .filter(|e| e["fault"].as_str().unwrap_or_default().starts_with(prefix))
            .count()
    };
    let (added, removed) = (begun("add node"), begun("remove node"));
    println!("nodes added: {added}, removed: {removed}");
    assert!(added >= 2 && removed >= 1, "{}", run.summary);
    assert!(run.count("ok", "read") >= 500);
    assert_meaningful_and_valid(&run, 3);
}

/// Reads one checker's report from a run's summary.json.
fn checker_report(out: &Path, checker: &str) -> serde_json::Value {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    summary["results"][checker].clone()
}

/// A queue run must have added, delivered and acknowledged entries under
/// faults, and found every acknowledged entry delivered and kept; in the
/// redeliver mode (`mode`), also every one acknowledged or dead-lettered,
/// with redeliveries, XNACKs and dead letters among them.
async fn queue_run(faults: &str, mode: &str) {
    let out = tempfile::tempdir().unwrap();
    let run = verify(
        &[
            "--workload",
            "queue",
            "--queue-mode",
            mode,
            "--faults",
            faults,
            "--duration-secs",
            "24",
        ],
        out.path(),
    )
    .await;
    let report = checker_report(out.path(), "queue");
    println!("queue report: {report}");
    assert!(run.faults_started() >= 2, "{}", run.summary);
    assert!(report["acknowledged"].as_u64().unwrap() >= 300, "{report}");
    assert!(report["deliveries"].as_u64().unwrap() >= 300, "{report}");
    assert!(run.count("ok", "xack") >= 50, "{}", run.summary);
    assert_eq!(run.count("ok", "xrange"), 1, "one final XRANGE");
    if mode == "redeliver" {
        assert!(report["duplicates"].as_u64().unwrap() >= 10, "{report}");
        assert!(report["dead_lettered"].as_u64().unwrap() >= 1, "{report}");
        assert!(run.count("ok", "xnack") >= 10, "{}", run.summary);
        assert_eq!(run.count("ok", "xrange-dead"), 1, "one final dead XRANGE");
    } else {
        assert!(run.count("ok", "xautoclaim") >= 10, "{}", run.summary);
    }
    assert!(run.summary.contains("verdict: valid"), "{}", run.summary);
}

/// A pop run must have pushed and popped elements under faults, and
/// found none popped twice, lost or invented.
async fn pop_run(faults: &str) {
    let out = tempfile::tempdir().unwrap();
    let run = verify(
        &[
            "--workload",
            "pop",
            "--faults",
            faults,
            "--duration-secs",
            "24",
        ],
        out.path(),
    )
    .await;
    let report = checker_report(out.path(), "pops");
    println!("pop report: {report}");
    assert!(run.faults_started() >= 2, "{}", run.summary);
    assert!(report["acknowledged"].as_u64().unwrap() >= 300, "{report}");
    assert!(report["pops"].as_u64().unwrap() >= 200, "{report}");
    assert!(run.count("ok", "lrem") >= 50, "{}", run.summary);
    assert_eq!(run.count("ok", "lrange"), 3, "one final LRANGE per list");
    assert!(run.summary.contains("verdict: valid"), "{}", run.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_queue_delivers_every_acknowledged_entry_under_kills_partitions_and_pauses() {
    queue_run("kill,partition,pause,isolate-leader", "claim").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_queue_redelivers_or_dead_letters_every_entry_under_kills_and_partitions() {
    queue_run("kill,partition", "redeliver").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_pops_each_element_once_under_kills_partitions_and_pauses() {
    pop_run("kill,partition,pause,isolate-leader").await;
}

/// A list-append run (MULTI/EXEC transactions of RPUSH and LRANGE) under
/// `faults`: enough transactions acknowledged, faults injected, every
/// list read after healing, and no anomaly.
async fn append_run_is_valid(faults: &str) {
    let out = tempfile::tempdir().unwrap();
    let run = verify(
        &[
            "--workload",
            "append",
            "--faults",
            faults,
            "--duration-secs",
            "24",
        ],
        out.path(),
    )
    .await;
    let final_reads = run
        .events
        .iter()
        .filter(|e| e["type"] == "ok" && e["f"] == "txn")
        .filter(|e| e["process"].as_u64().unwrap() >= 1 << 40)
        .count();
    println!(
        "transactions: {} ok, {} fail, {} unknown; final reads: {final_reads}; faults: {}",
        run.count("ok", "txn"),
        run.count("fail", "txn"),
        run.count("info", "txn"),
        run.faults_started()
    );
    assert!(final_reads >= 1, "no final read: {}", run.summary);
    assert!(
        run.count("ok", "txn") >= 300,
        "only {} transactions acknowledged",
        run.count("ok", "txn")
    );
    assert!(run.faults_started() >= 2, "{}", run.summary);
    assert!(
        run.summary.contains(": strictly serializable"),
        "{}",
        run.summary
    );
    assert!(run.summary.contains("verdict: valid"), "{}", run.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_transactions_stay_strictly_serializable_under_kills_and_pauses() {
    append_run_is_valid("kill,pause-kill,pause").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_transactions_stay_strictly_serializable_under_partitions() {
    append_run_is_valid("partition,isolate-leader,bridge").await;
}

/// A lock run under `faults`: holders with short leases stall past them
/// and write anyway; tokens must increase in the order of grants, and no
/// write with a superseded token may take effect.
async fn lock_run_is_valid(faults: &str) {
    let out = tempfile::tempdir().unwrap();
    let run = verify(
        &[
            "--workload",
            "lock",
            "--faults",
            faults,
            "--duration-secs",
            "24",
        ],
        out.path(),
    )
    .await;
    let report = checker_report(out.path(), "locks");
    println!("lock report: {report}");
    assert!(run.faults_started() >= 2, "{}", run.summary);
    assert!(report["grants"].as_u64().unwrap() >= 100, "{report}");
    assert!(report["writes_ok"].as_u64().unwrap() >= 200, "{report}");
    // Stalled holders wrote with tokens already superseded: refused.
    assert!(report["stale_refused"].as_u64().unwrap() >= 5, "{report}");
    assert_eq!(run.count("ok", "lrange"), 3, "one final LRANGE per lock");
    assert!(run.summary.contains("verdict: valid"), "{}", run.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_fences_off_stalled_lock_holders_under_pauses_kills_and_partitions() {
    lock_run_is_valid("pause,kill,partition").await;
}

/// A change-feed run under `faults`: APPENDs acknowledged under faults,
/// every key and the whole feed read after healing, and every write in
/// the feed once, in the order it applied.
async fn changefeed_run_is_valid(faults: &str) {
    let out = tempfile::tempdir().unwrap();
    let run = verify(
        &[
            "--workload",
            "changefeed",
            "--faults",
            faults,
            "--duration-secs",
            "24",
        ],
        out.path(),
    )
    .await;
    let report = checker_report(out.path(), "changefeed");
    println!("changefeed report: {report}");
    assert!(run.faults_started() >= 2, "{}", run.summary);
    assert_eq!(run.count("ok", "feed-read"), 1, "one read of the feed");
    let acknowledged = report["ok"].as_u64().unwrap();
    assert!(acknowledged >= 300, "{report}");
    // Each acknowledged APPEND is an event, and each key's creation one more.
    let keys = report["keys"].as_u64().unwrap();
    assert!(
        report["events"].as_u64().unwrap() >= acknowledged + keys / 2,
        "{report}"
    );
    assert!(keys >= 10, "{report}");
    assert!(
        run.summary.contains("every write once, in order"),
        "{}",
        run.summary
    );
    assert!(run.summary.contains("verdict: valid"), "{}", run.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_change_feed_lists_every_write_once_in_order_under_kills_pauses_and_partitions() {
    changefeed_run_is_valid("kill,pause,partition").await;
}

/// An eventual run with write quorum `write` and read quorum `read`
/// under partitions, kills, clock skew and hint-window isolations: writes
/// acknowledged on every node under faults (SREMs and DELs that removed
/// something among them), the nodes' digests agreeing after healing,
/// every key read from each of the 3 nodes, and no anomaly.
async fn eventual_run_is_valid(write: &str, read: &str) {
    let out = tempfile::tempdir().unwrap();
    let run = verify(
        &[
            "--workload",
            "eventual",
            "--write-quorum",
            write,
            "--read-quorum",
            read,
            "--faults",
            "partition,kill,clock-skew,hint-window",
            "--duration-secs",
            "21",
            "--quiet-secs",
            "2",
            "--fault-secs",
            "3",
        ],
        out.path(),
    )
    .await;
    let report = checker_report(out.path(), "eventual");
    println!("eventual report: {report}");
    assert!(run.faults_started() >= 3, "{}", run.summary);
    let acknowledged: usize = ["eventual-set", "eventual-incrby", "eventual-sadd"]
        .iter()
        .map(|f| run.count("ok", f))
        .sum();
    assert!(acknowledged >= 1_000, "{}", run.summary);
    assert!(report["srem_removed"].as_u64().unwrap() >= 50, "{report}");
    assert!(report["del_removed"].as_u64().unwrap() >= 50, "{report}");
    assert_eq!(run.count("ok", "eventual-converge"), 1, "{}", run.summary);
    assert_eq!(report["converged"], true, "{report}");
    assert_eq!(report["nodes"], 3, "{report}");
    assert_eq!(report["divergent"], 0, "{report}");
    assert!(run.summary.contains("verdict: valid"), "{}", run.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_eventual_keys_converge_with_nothing_lost_at_w1_r1() {
    eventual_run_is_valid("1", "1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polis_eventual_keys_converge_with_nothing_lost_at_w2_r2() {
    eventual_run_is_valid("2", "2").await;
}
