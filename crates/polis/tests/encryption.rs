//! Encryption at rest, end to end: a cluster started with
//! `--encryption-key-file` keeps no value (and no key name) of its strong
//! keys in the clear anywhere in its data directories, log, snapshots and
//! small files alike, while a plaintext node's files do hold them; a
//! restart with the right key keeps every key; the wrong key, or none,
//! refuses to start with a message that says why; after `polis
//! encryption rotate` the new key opens everything written before and
//! the old key opens nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::client::FollowingClient;
use common::{wait_for, Cluster};

/// In every value written: what must not be found on disk.
const SECRET: &str = "polis-at-rest-secret-value";
/// In every key name written.
const KEY_NAME: &str = "polis-hidden-key-name";
const KEYS: usize = 200;

fn polis(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_polis"))
        .args(args)
        .output()
        .expect("run polis")
}

fn new_key(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let output = polis(&["encryption", "new-key", path.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let again = polis(&["encryption", "new-key", path.to_str().unwrap()]);
    assert!(!again.status.success(), "a key file was overwritten");
    path
}

/// Returns the files under `dir` that hold `needle`, and how many bytes
/// were read.
fn files_holding(dir: &Path, needle: &[u8]) -> (Vec<PathBuf>, usize) {
    let (mut found, mut scanned) = (Vec::new(), 0);
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            scanned += bytes.len();
            if bytes.windows(needle.len()).any(|window| window == needle) {
                found.push(path);
            }
        }
    }
    (found, scanned)
}

fn assert_sealed(cluster: &Cluster) {
    for node in &cluster.nodes {
        for needle in [SECRET, KEY_NAME] {
            let (found, scanned) = files_holding(&node.data, needle.as_bytes());
            assert!(
                scanned > 10_000,
                "only {scanned} bytes under node {}",
                node.id
            );
            assert!(found.is_empty(), "{needle:?} in the clear in {found:?}");
        }
    }
}

async fn write_keys(client: &mut FollowingClient, round: &str) {
    for index in 0..KEYS {
        let set = redis::cmd("SET")
            .arg(format!("{KEY_NAME}:{round}:{index}"))
            .arg(format!("{SECRET}:{round}:{index}"))
            .clone();
        client.query_idempotent(&set, Duration::from_secs(60)).await;
    }
    let hset = redis::cmd("HSET")
        .arg(format!("{KEY_NAME}:{round}:hash"))
        .arg("field")
        .arg(format!("{SECRET}:{round}:field"))
        .clone();
    client
        .query_idempotent(&hset, Duration::from_secs(60))
        .await;
}

async fn check_keys(client: &mut FollowingClient, round: &str) {
    for index in 0..KEYS {
        let got = client
            .query(
                redis::cmd("GET").arg(format!("{KEY_NAME}:{round}:{index}")),
                10,
            )
            .await
            .unwrap();
        let want = format!("{SECRET}:{round}:{index}").into_bytes();
        assert_eq!(got, redis::Value::BulkString(want), "{round}:{index}");
    }
    let got = client
        .query(
            redis::cmd("HGET")
                .arg(format!("{KEY_NAME}:{round}:hash"))
                .arg("field"),
            10,
        )
        .await
        .unwrap();
    let want = format!("{SECRET}:{round}:field").into_bytes();
    assert_eq!(got, redis::Value::BulkString(want));
}

async fn client_of(cluster: &Cluster) -> FollowingClient {
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    FollowingClient::new(cluster.resp_addrs(), (leader - 1) as usize)
}

async fn stop_all(cluster: &mut Cluster) {
    for id in 1..=cluster.nodes.len() as u64 {
        cluster.stop(id).await;
    }
}

/// Starts node `id` and waits for it to exit; returns its log.
async fn start_refused(cluster: &mut Cluster, id: u64) -> String {
    cluster.start_node(id);
    let status = wait_for(
        &format!("node {id} to refuse to start"),
        Duration::from_secs(30),
        || {
            let status = cluster.exit_status(id);
            async move { status }
        },
    )
    .await;
    assert!(!status.success(), "node {id} exited with {status}");
    std::fs::read_to_string(cluster.node(id).data.with_extension("log")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_node_keeps_values_in_the_clear() {
    // The control: the scan finds what an unencrypted node stores.
    let _turn = common::one_at_a_time().await;
    let mut cluster = Cluster::start(1, &[]);
    let mut client = client_of(&cluster).await;
    write_keys(&mut client, "plain").await;
    stop_all(&mut cluster).await;
    let (found, _) = files_holding(&cluster.node(1).data, SECRET.as_bytes());
    assert!(
        !found.is_empty(),
        "the scan found no value of a plaintext node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_cluster_keeps_nothing_in_the_clear_and_rotates_its_key() {
    let _turn = common::one_at_a_time().await;
    let keys = tempfile::tempdir().unwrap();
    let (first, wrong, rotated) = (
        new_key(keys.path(), "first.key"),
        new_key(keys.path(), "wrong.key"),
        new_key(keys.path(), "rotated.key"),
    );
    let with_key = |key: &Path| {
        vec![
            "--snapshot-every-entries".to_owned(),
            "100".to_owned(),
            "--encryption-key-file".to_owned(),
            key.to_str().unwrap().to_owned(),
        ]
    };
    let args = with_key(&first);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cluster = Cluster::start(3, &args);
    let mut client = client_of(&cluster).await;
    write_keys(&mut client, "first").await;
    cluster.wait_for_snapshot(1).await;
    stop_all(&mut cluster).await;
    for node in &cluster.nodes {
        let snapshots = std::fs::read_dir(node.data.join("snapshots"))
            .unwrap()
            .count();
        assert!(snapshots > 0, "node {} wrote no snapshot", node.id);
    }
    assert_sealed(&cluster);

    // The wrong key, and no key, refuse to start.
    let args = with_key(&wrong);
    cluster.set_extra_args(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let log = start_refused(&mut cluster, 1).await;
    assert!(log.contains("is not the one the keyring"), "{log}");
    cluster.set_extra_args(&[]);
    let log = start_refused(&mut cluster, 1).await;
    assert!(log.contains("is encrypted (it has a keyring)"), "{log}");

    // The right key keeps everything.
    let args = with_key(&first);
    cluster.set_extra_args(&args.iter().map(String::as_str).collect::<Vec<_>>());
    for id in 1..=3 {
        cluster.start_node(id);
    }
    let mut client = client_of(&cluster).await;
    check_keys(&mut client, "first").await;
    stop_all(&mut cluster).await;

    // Rotation: the new key reads the old data, the old key nothing.
    for node in &cluster.nodes {
        let output = polis(&[
            "encryption",
            "rotate",
            "--data-dir",
            node.data.to_str().unwrap(),
            "--key-file",
            first.to_str().unwrap(),
            "--new-key-file",
            rotated.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{output:?}");
    }
    let log = start_refused(&mut cluster, 2).await;
    assert!(log.contains("is not the one the keyring"), "{log}");
    let args = with_key(&rotated);
    cluster.set_extra_args(&args.iter().map(String::as_str).collect::<Vec<_>>());
    for id in 1..=3 {
        cluster.start_node(id);
    }
    let mut client = client_of(&cluster).await;
    check_keys(&mut client, "first").await;
    write_keys(&mut client, "rotated").await;
    check_keys(&mut client, "rotated").await;
    stop_all(&mut cluster).await;
    assert_sealed(&cluster);
}
