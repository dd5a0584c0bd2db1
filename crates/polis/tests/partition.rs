//! Transport-level partitions through `polis chaos`: an isolated leader
//! acknowledges nothing, the majority elects a new leader and keeps
//! serving, and after the heal the old leader catches up and drops its
//! unacknowledged entry. Reference: Raft paper, sections 5.2 and 5.3.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::time::Duration;

use common::client::FollowingClient;
use common::{wait_for, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_loses_leadership_and_catches_up_after_the_heal() {
    let cluster = Cluster::start(3, &["--enable-fault-injection"]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let mut old_leader = cluster.connect(leader).await;
    let _: () = redis::cmd("SET")
        .arg("before")
        .arg("1")
        .query_async(&mut old_leader)
        .await
        .unwrap();

    cluster.chaos(&["isolate", &leader.to_string()]);

    // The isolated leader cannot commit: no acknowledgement.
    let mut set = redis::cmd("SET");
    set.arg("minority").arg("1");
    let write = set.query_async::<redis::Value>(&mut old_leader);
    if let Ok(Ok(value)) = tokio::time::timeout(Duration::from_secs(3), write).await {
        panic!("an isolated leader acknowledged a write: {value:?}");
    }

    // The majority elects a new leader and serves writes.
    let majority: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let new_leader = wait_for(
        "a leader in the majority",
        Duration::from_secs(30),
        || async {
            for id in &majority {
                if cluster.status(*id).await?["state"] == "Leader" {
                    return Some(*id);
                }
            }
            None
        },
    )
    .await;
    let addrs: Vec<String> = majority
        .iter()
        .map(|id| cluster.node(*id).resp.clone())
        .collect();
    let mut client = FollowingClient::new(addrs, 0);
    client
        .query(redis::cmd("SET").arg("majority").arg("2"), 200)
        .await
        .unwrap();
    assert_ne!(new_leader, leader);

    cluster.chaos(&["heal"]);

    // The old leader follows the new one and holds what the majority wrote.
    let mut follower = cluster.connect(leader).await;
    let _: () = redis::cmd("READONLY")
        .query_async(&mut follower)
        .await
        .unwrap();
    wait_for(
        "the old leader to catch up",
        Duration::from_secs(30),
        || {
            let mut follower = follower.clone();
            async move {
                let value: Option<String> = redis::cmd("GET")
                    .arg("majority")
                    .query_async(&mut follower)
                    .await
                    .ok()?;
                (value.as_deref() == Some("2")).then_some(())
            }
        },
    )
    .await;
    // Its unacknowledged entry was never committed, so no replica has it.
    let mut client = FollowingClient::new(
        cluster.nodes.iter().map(|node| node.resp.clone()).collect(),
        0,
    );
    let minority = client
        .query(redis::cmd("GET").arg("minority"), 200)
        .await
        .unwrap();
    assert_eq!(
        minority,
        redis::Value::Nil,
        "an unacknowledged minority write became visible"
    );
    let before = client
        .query(redis::cmd("GET").arg("before"), 200)
        .await
        .unwrap();
    assert_eq!(before, redis::Value::BulkString(b"1".to_vec()));
}
