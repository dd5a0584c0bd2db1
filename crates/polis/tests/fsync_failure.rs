//! A node whose fsync fails stops at once (crash-stop) and acknowledges
//! nothing after the failure; the rest of the cluster carries on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::time::Duration;

use common::client::FollowingClient;
use common::{wait_for, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_fsync_fails_stops_without_acknowledging() {
    let mut cluster = Cluster::start(3, &["--enable-fault-injection"]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let mut connection = cluster.connect(leader).await;
    let _: () = redis::cmd("SET")
        .arg("before")
        .arg("1")
        .query_async(&mut connection)
        .await
        .unwrap();

    let admin = cluster.node(leader).admin.clone();
    let (code, _) =
        polis_client::admin::post(&admin, "/faults/fsync-error", Duration::from_secs(5))
            .await
            .unwrap();
    assert_eq!(code, 200);

    let mut set = redis::cmd("SET");
    set.arg("after").arg("1");
    let write = set.query_async::<redis::Value>(&mut connection);
    if let Ok(Ok(value)) = tokio::time::timeout(Duration::from_secs(10), write).await {
        panic!("a write was acknowledged after a failed fsync: {value:?}");
    }
    let status = wait_for("the leader to stop", Duration::from_secs(10), || {
        let status = cluster.exit_status(leader);
        async move { status }
    })
    .await;
    assert_eq!(status.code(), Some(70), "crash-stop exit code");

    // The other two elect a leader and still have every acknowledged write.
    let addrs: Vec<String> = cluster.nodes.iter().map(|node| node.resp.clone()).collect();
    let mut client = FollowingClient::new(addrs, (leader % 3) as usize);
    let value = client
        .query(redis::cmd("GET").arg("before"), 200)
        .await
        .unwrap();
    assert_eq!(value, redis::Value::BulkString(b"1".to_vec()));

    // Without fault injection the endpoint does not exist.
    let plain = Cluster::start(1, &[]);
    let only = plain.wait_for_leader(Duration::from_secs(30)).await;
    let (code, _) = polis_client::admin::post(
        &plain.node(only).admin,
        "/faults/fsync-error",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(code, 404, "fault injection is off unless enabled");
}
