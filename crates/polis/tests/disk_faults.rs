//! Disk faults found at start-up: a torn journal tail (writes a crash cut
//! short before their fsync) is cut off and the node catches up; damage to
//! data the node had made durable stops it from starting, with exit code 71
//! and a message naming the file, the group and the index; so does damage
//! to a snapshot file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::client::FollowingClient;
use common::{wait_for, Cluster};

/// Exit code of a node that found corrupt stored data.
const EXIT_CORRUPT_STORAGE: i32 = 71;

fn value(index: usize) -> String {
    format!("disk-fault-value-{index:05}")
}

async fn write_keys(cluster: &Cluster, leader: u64, prefix: &str, range: std::ops::Range<usize>) {
    let addrs: Vec<String> = cluster.nodes.iter().map(|node| node.resp.clone()).collect();
    let mut client = FollowingClient::new(addrs, (leader - 1) as usize);
    for index in range {
        let set = redis::cmd("SET")
            .arg(format!("{prefix}:{index}"))
            .arg(value(index))
            .clone();
        client.query_idempotent(&set, Duration::from_secs(60)).await;
    }
}

/// Waits until node `id` has applied everything the leader has.
async fn wait_until_caught_up(cluster: &Cluster, id: u64, leader: u64) {
    let target = cluster.status(leader).await.unwrap()["applied"]
        .as_u64()
        .unwrap();
    wait_for(
        &format!("node {id} to apply up to index {target}"),
        Duration::from_secs(60),
        || async {
            let status = cluster.status(id).await?;
            (status["applied"].as_u64()? >= target).then_some(())
        },
    )
    .await;
}

/// Reads every key from node `id`'s own copy (READONLY, no redirect).
async fn assert_holds(cluster: &Cluster, id: u64, prefix: &str, range: std::ops::Range<usize>) {
    let mut connection = cluster.connect(id).await;
    let _: () = redis::cmd("READONLY")
        .query_async(&mut connection)
        .await
        .unwrap();
    for index in range {
        let got: Option<String> = redis::cmd("GET")
            .arg(format!("{prefix}:{index}"))
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(got, Some(value(index)), "node {id} misses {prefix}:{index}");
    }
}

/// Returns the newest journal file of a node's log engine: the one
/// written last.
fn newest_journal(data: &Path) -> PathBuf {
    std::fs::read_dir(data.join("log"))
        .unwrap()
        .map(|dirent| dirent.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jnl"))
        .max_by_key(|path| {
            let stem = path.file_stem().unwrap().to_str().unwrap();
            stem.parse::<u64>().unwrap()
        })
        .expect("a journal file")
}

/// Returns the number after `name=` in a log line.
fn field(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|token| token.strip_prefix(&format!("{name}=")))
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

/// Removes terminal colour codes from a log line.
fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(char) = chars.next() {
        if char == '\u{1b}' {
            chars.by_ref().find(|char| char.is_ascii_alphabetic());
        } else {
            plain.push(char);
        }
    }
    plain
}

fn node_log(cluster: &Cluster, id: u64) -> String {
    std::fs::read_to_string(cluster.node(id).data.with_extension("log")).unwrap_or_default()
}

/// Starts a 3-node cluster, writes `count` acknowledged keys, waits until a
/// follower holds them and stops it cleanly. Returns (leader, follower).
async fn cluster_with_stopped_follower(cluster: &mut Cluster, count: usize) -> (u64, u64) {
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    write_keys(cluster, leader, "before", 0..count).await;
    wait_until_caught_up(cluster, follower, leader).await;
    cluster.stop(follower).await;
    (leader, follower)
}

/// Starts node `id` on its damaged data and checks that it refuses to:
/// exit code 71, a refusal saying the data is corrupt and naming each of
/// `expected`, and no start logged beyond the `starts_before` it had.
async fn assert_refuses_to_start(
    cluster: &mut Cluster,
    id: u64,
    starts_before: usize,
    expected: &[&str],
) {
    cluster.start_node(id);
    let status = wait_for(
        &format!("node {id} on damaged data to exit"),
        Duration::from_secs(30),
        || {
            let status = cluster.exit_status(id);
            async move { status }
        },
    )
    .await;
    assert_eq!(status.code(), Some(EXIT_CORRUPT_STORAGE), "{status:?}");
    let log = node_log(cluster, id);
    let refusal = log
        .lines()
        .find(|line| line.starts_with("polis: refusing to start"))
        .unwrap_or_else(|| panic!("no refusal in the node's log:\n{log}"));
    for expected in ["stored data is corrupt"].iter().chain(expected) {
        assert!(
            refusal.contains(expected),
            "{expected:?} missing: {refusal}"
        );
    }
    assert_eq!(
        log.matches("node started").count(),
        starts_before,
        "the damaged node never served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_journal_tail_is_cut_off_and_the_node_catches_up() {
    let mut cluster = Cluster::start(3, &[]);
    let (leader, follower) = cluster_with_stopped_follower(&mut cluster, 200).await;

    // A crash while the last writes were on their way to the disk: the
    // journal's data ends in the middle of a batch. Past the data lies
    // zero-filled preallocated space; cut the data, not the zeros.
    let journal = newest_journal(&cluster.node(follower).data);
    let bytes = std::fs::read(&journal).unwrap();
    let written = bytes.iter().rposition(|byte| *byte != 0).unwrap() + 1;
    let mut cut = written - 2000;
    // Not on a batch boundary (every batch ends with fjall's trailer).
    while bytes[..cut].ends_with(b"FJL\x03") || bytes[cut - 1] == 0 {
        cut -= 1;
    }
    std::fs::File::options()
        .write(true)
        .open(&journal)
        .unwrap()
        .set_len(cut as u64)
        .unwrap();

    cluster.start_node(follower);
    let report = wait_for(
        "the follower to report the torn tail it cut off",
        Duration::from_secs(30),
        || {
            let log = node_log(&cluster, follower);
            let line = log
                .lines()
                .find(|line| line.contains("cut off a torn journal tail"))
                .map(strip_ansi);
            async move { line }
        },
    )
    .await;
    let intact = field(&report, "intact_bytes");
    let torn = field(&report, "torn_bytes");
    assert!(torn > 0 && intact + torn == cut as u64, "{report}");
    write_keys(&cluster, leader, "after", 0..20).await;
    wait_until_caught_up(&cluster, follower, leader).await;
    assert_holds(&cluster, follower, "before", 0..200).await;
    assert_holds(&cluster, follower, "after", 0..20).await;
    assert!(cluster.is_running(follower));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_durable_journal_data_stops_the_node_from_starting() {
    let mut cluster = Cluster::start(3, &[]);
    let (leader, follower) = cluster_with_stopped_follower(&mut cluster, 200).await;
    let starts_before = node_log(&cluster, follower).matches("node started").count();
    assert_eq!(starts_before, 1);

    // One flipped byte in an entry the follower had fsynced and
    // acknowledged, in the middle of the journal.
    let journal = newest_journal(&cluster.node(follower).data);
    let mut bytes = std::fs::read(&journal).unwrap();
    let at = bytes
        .windows(value(100).len())
        .position(|window| window == value(100).as_bytes())
        .expect("the entry of key 100 in the journal");
    bytes[at + 3] ^= 0x20;
    std::fs::write(&journal, &bytes).unwrap();

    let file_name = journal.file_name().unwrap().to_str().unwrap();
    assert_refuses_to_start(
        &mut cluster,
        follower,
        starts_before,
        &[
            file_name,
            "checksum mismatch",
            "of group 1",
            "log entry at index",
        ],
    )
    .await;
    assert_eq!(std::fs::read(&journal).unwrap(), bytes, "nothing was cut");

    // The other two carry on.
    write_keys(&cluster, leader, "after", 0..20).await;
    let other = (1..=3).find(|id| *id != leader && *id != follower).unwrap();
    wait_until_caught_up(&cluster, other, leader).await;
    assert_holds(&cluster, other, "after", 0..20).await;

    // The remedy the message gives: replace the data directory; the node
    // catches up from its peers.
    std::fs::remove_dir_all(&cluster.node(follower).data).unwrap();
    cluster.start_node(follower);
    wait_until_caught_up(&cluster, follower, leader).await;
    assert_holds(&cluster, follower, "before", 0..200).await;
    assert_holds(&cluster, follower, "after", 0..20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_file_stops_the_node_from_starting() {
    let mut cluster = Cluster::start(3, &["--snapshot-every-entries", "100"]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    write_keys(&cluster, leader, "before", 0..200).await;
    wait_until_caught_up(&cluster, follower, leader).await;
    cluster.wait_for_snapshot(follower).await;
    cluster.stop(follower).await;
    let starts_before = node_log(&cluster, follower).matches("node started").count();

    // One flipped bit in the middle of the snapshot the follower wrote.
    let snapshot = cluster
        .node(follower)
        .data
        .join("snapshots")
        .join("group-1.snapshot");
    let mut bytes = std::fs::read(&snapshot).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&snapshot, &bytes).unwrap();

    assert_refuses_to_start(
        &mut cluster,
        follower,
        starts_before,
        &["snapshot file", "group-1.snapshot", "checksum mismatch"],
    )
    .await;
}
