//! Stopping and restarting the whole cluster loses nothing: after a clean
//! stop, and after SIGKILL of every node at once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::time::Duration;

use common::client::FollowingClient;
use common::Cluster;

async fn write_keys(client: &mut FollowingClient, prefix: &str, count: usize) {
    for index in 0..count {
        client
            .query_idempotent(
                redis::cmd("SET")
                    .arg(format!("{prefix}:{index}"))
                    .arg(index),
                Duration::from_secs(60),
            )
            .await;
    }
    let hset = redis::cmd("HSET")
        .arg(format!("{prefix}:hash"))
        .arg("f")
        .arg("v")
        .clone();
    client
        .query_idempotent(&hset, Duration::from_secs(60))
        .await;
    let ttl = redis::cmd("SET")
        .arg(format!("{prefix}:ttl"))
        .arg("x")
        .arg("EX")
        .arg(3600)
        .clone();
    client.query_idempotent(&ttl, Duration::from_secs(60)).await;
}

async fn check_keys(client: &mut FollowingClient, prefix: &str, count: usize) {
    for index in 0..count {
        let got = client
            .query(redis::cmd("GET").arg(format!("{prefix}:{index}")), 10)
            .await
            .unwrap();
        assert_eq!(
            got,
            redis::Value::BulkString(index.to_string().into_bytes()),
            "{prefix}:{index} lost"
        );
    }
    let got = client
        .query(
            redis::cmd("HGET").arg(format!("{prefix}:hash")).arg("f"),
            10,
        )
        .await
        .unwrap();
    assert_eq!(got, redis::Value::BulkString(b"v".to_vec()));
    let ttl = client
        .query(redis::cmd("TTL").arg(format!("{prefix}:ttl")), 10)
        .await
        .unwrap();
    let redis::Value::Int(ttl) = ttl else {
        panic!("TTL reply {ttl:?}")
    };
    assert!(ttl > 3000 && ttl <= 3600, "ttl {ttl} lost across restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_survives_stop_and_sigkill_of_all_nodes() {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let addrs: Vec<String> = cluster.nodes.iter().map(|node| node.resp.clone()).collect();
    let mut client = FollowingClient::new(addrs.clone(), (leader - 1) as usize);
    write_keys(&mut client, "clean", 300).await;

    // A clean stop of every node, then a restart on the same data.
    for id in 1..=3 {
        cluster.stop(id).await;
    }
    for id in 1..=3 {
        cluster.start_node(id);
    }
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let mut client = FollowingClient::new(addrs.clone(), 0);
    check_keys(&mut client, "clean", 300).await;
    write_keys(&mut client, "crash", 300).await;

    // SIGKILL of every node at once: acknowledged writes are on disk.
    for id in 1..=3 {
        cluster.kill9(id);
    }
    for id in 1..=3 {
        cluster.start_node(id);
    }
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let mut client = FollowingClient::new(addrs, 1);
    check_keys(&mut client, "clean", 300).await;
    check_keys(&mut client, "crash", 300).await;
}
