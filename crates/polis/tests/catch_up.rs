//! A follower that was down during many writes catches up when it comes
//! back: from the log when the log still has what it missed, from a
//! snapshot when the log was compacted past it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::client::FollowingClient;
use common::{wait_for, Cluster};

/// Writes `count` keys `prefix:i` over `connections` concurrent clients.
async fn write_concurrently(
    addrs: &[String],
    leader: u64,
    prefix: &str,
    count: usize,
    connections: usize,
) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let next = next.clone();
        let prefix = prefix.to_owned();
        let mut client = FollowingClient::new(addrs.to_vec(), (leader - 1) as usize);
        tasks.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= count {
                    break;
                }
                client
                    .query_idempotent(
                        redis::cmd("SET")
                            .arg(format!("{prefix}:{index}"))
                            .arg(index),
                        Duration::from_secs(60),
                    )
                    .await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

async fn wait_until_follower_has(cluster: &Cluster, id: u64, keys: u64) {
    wait_for(
        &format!("node {id} to hold {keys} keys"),
        Duration::from_secs(120),
        || async {
            let status = cluster.status(id).await?;
            (status["items"].as_u64()? == keys).then_some(())
        },
    )
    .await;
}

async fn follower_reads(cluster: &Cluster, id: u64, prefix: &str, count: usize) {
    let mut connection = cluster.connect(id).await;
    let _: () = redis::cmd("READONLY")
        .query_async(&mut connection)
        .await
        .unwrap();
    for index in (0..count).step_by(97).chain([count - 1]) {
        let value: Option<String> = redis::cmd("GET")
            .arg(format!("{prefix}:{index}"))
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(
            value,
            Some(index.to_string()),
            "follower {id} misses {prefix}:{index}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopped_follower_catches_up_from_the_log() {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let addrs: Vec<String> = cluster.nodes.iter().map(|node| node.resp.clone()).collect();
    cluster.stop(follower).await;
    write_concurrently(&addrs, leader, "log", 5_000, 16).await;
    cluster.start_node(follower);
    wait_until_follower_has(&cluster, follower, 5_000).await;
    follower_reads(&cluster, follower, "log", 5_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follower_behind_the_compacted_log_catches_up_from_a_snapshot() {
    let writes = 100_000;
    let mut cluster = Cluster::start(
        3,
        &[
            "--snapshot-every-entries",
            "10000",
            "--entries-kept-after-snapshot",
            "1000",
        ],
    );
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let addrs: Vec<String> = cluster.nodes.iter().map(|node| node.resp.clone()).collect();
    // Stopped during the writes: a tenth go in while it is up.
    write_concurrently(&addrs, leader, "snap", writes / 10, 32).await;
    cluster.kill9(follower);
    write_concurrently(&addrs, leader, "snap2", writes - writes / 10, 32).await;
    let leader_status = cluster.status(leader).await.unwrap();
    let purged = leader_status["purged_index"].as_u64().unwrap_or(0);
    assert!(purged > 0, "the leader compacted its log: {leader_status}");

    cluster.start_node(follower);
    wait_until_follower_has(&cluster, follower, writes as u64).await;
    let status = cluster.status(follower).await.unwrap();
    // Entries up to `purged` exist nowhere but in snapshots, so holding
    // them means the follower installed the leader's snapshot.
    assert!(
        status["snapshot_index"].as_u64().unwrap_or(0) >= purged,
        "the follower installed a snapshot past index {purged}: {status}"
    );
    follower_reads(&cluster, follower, "snap2", writes - writes / 10).await;
}

/// Sets `big:{index}` to `bytes` bytes.
async fn set_big(client: &mut FollowingClient, index: usize, bytes: usize) {
    client
        .query_idempotent(
            redis::cmd("SET")
                .arg(format!("big:{index}"))
                .arg(vec![b'x'; bytes]),
            Duration::from_secs(30),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logs_growth_in_bytes_paces_snapshots() {
    let value_bytes = 64 * 1024;
    let cluster = Cluster::start(
        3,
        &[
            "--snapshot-every-entries",
            "1000000",
            "--snapshot-log-bytes-min",
            "1048576",
        ],
    );
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let addrs: Vec<String> = cluster.nodes.iter().map(|node| node.resp.clone()).collect();
    let mut client = FollowingClient::new(addrs, (leader - 1) as usize);
    let status = cluster.status(leader).await.unwrap();
    assert_eq!(
        status["snapshot_index"].as_u64().unwrap_or(0),
        0,
        "no snapshot before the writes: {status}"
    );
    // Two entries short of 1 MiB: no snapshot is due yet.
    for index in 0..14 {
        set_big(&mut client, index, value_bytes).await;
    }
    let status = cluster.status(leader).await.unwrap();
    assert_eq!(
        status["snapshot_index"].as_u64().unwrap_or(0),
        0,
        "no snapshot below the minimum growth: {status}"
    );
    // Past 1 MiB: every node snapshots by itself, long before 1,000,000
    // entries.
    for index in 14..20 {
        set_big(&mut client, index, value_bytes).await;
    }
    for id in 1..=3 {
        cluster.wait_for_snapshot(id).await;
    }
}
