//! A leader cut off from the majority never acknowledges a write.
//! Reference: Raft paper, section 5.3 (an entry commits on a majority).
//! The followers are paused with SIGSTOP, which partitions the leader as
//! surely as a network split (`partition.rs` does it in the transport).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::time::Duration;

use common::client::FollowingClient;
use common::Cluster;
use nix::sys::signal::Signal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_acknowledges_nothing() {
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let mut connection = cluster.connect(leader).await;
    let _: () = redis::cmd("SET")
        .arg("before")
        .arg("1")
        .query_async(&mut connection)
        .await
        .unwrap();

    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    for id in &followers {
        cluster.signal(*id, Signal::SIGSTOP);
    }
    // For three seconds (longer than an election timeout) no write is
    // acknowledged, and no linearizable read is served either.
    let mut set = redis::cmd("SET");
    set.arg("during").arg("1");
    let write = set.query_async::<redis::Value>(&mut connection);
    let outcome = tokio::time::timeout(Duration::from_secs(3), write).await;
    match outcome {
        Err(_) => {}
        Ok(Err(_)) => {}
        Ok(Ok(value)) => panic!("a minority leader acknowledged a write: {value:?}"),
    }
    let mut reader = cluster.connect(leader).await;
    let mut get = redis::cmd("GET");
    get.arg("before");
    let read = get.query_async::<redis::Value>(&mut reader);
    match tokio::time::timeout(Duration::from_secs(2), read).await {
        Err(_) | Ok(Err(_)) => {}
        Ok(Ok(value)) => panic!("a minority leader served a linearizable read: {value:?}"),
    }

    for id in &followers {
        cluster.signal(*id, Signal::SIGCONT);
    }
    // Once the majority is back, the cluster serves again.
    let addrs: Vec<String> = cluster.nodes.iter().map(|node| node.resp.clone()).collect();
    let mut client = FollowingClient::new(addrs, 0);
    client
        .query(redis::cmd("SET").arg("after").arg("1"), 200)
        .await
        .unwrap();
    let value = client
        .query(redis::cmd("GET").arg("before"), 200)
        .await
        .unwrap();
    assert_eq!(value, redis::Value::BulkString(b"1".to_vec()));
}
