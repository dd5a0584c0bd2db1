//! The queue options of a consumer group survive a leader change: a
//! delivery acknowledged by commit on the old leader is pending on the
//! new one, redelivered there after the ack-wait, then dead-lettered
//! after max deliveries (docs/queues.md, "On failover").

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::client::FollowingClient;
use common::{one_at_a_time, wait_for, Cluster};
use redis::Value;
use tokio::sync::Mutex;

const STREAM: &str = "{orders}";
const DEAD: &str = "{orders}:dead";
const ACK_WAIT_MS: u64 = 1_500;

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(text) => text.clone(),
        Value::Int(number) => number.to_string(),
        other => format!("{other:?}"),
    }
}

fn items(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) => items,
        _ => &[],
    }
}

/// Reads new entries as `consumer`; returns their ids (empty: none).
async fn read_new(client: &mut FollowingClient, consumer: &str) -> Option<Vec<String>> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP").arg("workers").arg(consumer);
    cmd.arg("COUNT").arg(10).arg("STREAMS").arg(STREAM).arg(">");
    let reply = client.query(&cmd, 10).await.ok()?;
    Some(
        items(&reply)
            .iter()
            .flat_map(|stream| items(&items(stream)[1]).to_vec())
            .map(|entry| text(&items(&entry)[0]))
            .collect(),
    )
}

/// Returns `(id, consumer, deliveries)` of every pending entry.
async fn pending(client: &mut FollowingClient) -> Vec<(String, String, i64)> {
    let mut cmd = redis::cmd("XPENDING");
    cmd.arg(STREAM).arg("workers").arg("-").arg("+").arg(10);
    // A read: safe to try again until a leader answers.
    let reply = client.query_idempotent(&cmd, Duration::from_secs(30)).await;
    items(&reply)
        .iter()
        .map(|entry| {
            let parts = items(entry);
            let Value::Int(deliveries) = parts[3] else {
                panic!("{parts:?}");
            };
            (text(&parts[0]), text(&parts[1]), deliveries)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_survive_a_leader_change_then_redeliver_and_dead_letter() {
    let _turn = one_at_a_time().await;
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(60)).await;
    let mut client = FollowingClient::new(cluster.resp_addrs(), (leader - 1) as usize);
    let mut create = redis::cmd("XGROUP");
    create.arg("CREATE").arg(STREAM).arg("workers").arg("$");
    create.arg("MKSTREAM").arg("ACKWAIT").arg(ACK_WAIT_MS);
    create
        .arg("MAXDELIVERIES")
        .arg(3)
        .arg("DEADLETTER")
        .arg(DEAD);
    client.query(&create, 10).await.unwrap();
    let added = client
        .query(redis::cmd("XADD").arg(STREAM).arg("*").arg("n").arg(1), 10)
        .await
        .unwrap();
    let id = text(&added);
    assert_eq!(read_new(&mut client, "alice").await, Some(vec![id.clone()]));
    let delivered = Instant::now();

    // The delivery was acknowledged by commit: the new leader has it.
    cluster.kill9(leader);
    let new_leader = cluster.wait_for_leader(Duration::from_secs(60)).await;
    assert_ne!(new_leader, leader);
    assert_eq!(
        pending(&mut client).await,
        [(id.clone(), "alice".to_owned(), 1)]
    );
    let info = redis::cmd("XINFO").arg("GROUPS").arg(STREAM).clone();
    let groups = client
        .query_idempotent(&info, Duration::from_secs(30))
        .await;
    let fields: Vec<String> = items(&items(&groups)[0]).iter().map(text).collect();
    let ack_wait = fields.iter().position(|field| field == "ack-wait").unwrap();
    assert_eq!(fields[ack_wait + 1], ACK_WAIT_MS.to_string());

    // The new leader redelivers it after the ack-wait, to the next reader.
    let shared = Arc::new(Mutex::new(client));
    let redelivered = wait_for("the redelivery to bob", Duration::from_secs(30), || {
        let client = shared.clone();
        async move {
            let mut client = client.lock().await;
            read_new(&mut client, "bob")
                .await
                .filter(|ids| !ids.is_empty())
        }
    })
    .await;
    assert_eq!(redelivered, std::slice::from_ref(&id));
    assert!(delivered.elapsed() >= Duration::from_millis(ACK_WAIT_MS));
    assert_eq!(
        pending(&mut *shared.lock().await).await,
        [(id.clone(), "bob".to_owned(), 2)]
    );

    // Nobody acknowledges: a third delivery, then the dead-letter stream.
    let readers = Arc::new(AtomicU64::new(0));
    let moved = wait_for(
        "the move to the dead-letter stream",
        Duration::from_secs(30),
        || {
            let client = shared.clone();
            let consumer = format!("carol{}", readers.fetch_add(1, Ordering::Relaxed));
            async move {
                let mut client = client.lock().await;
                read_new(&mut client, &consumer).await?;
                let range = redis::cmd("XRANGE").arg(DEAD).arg("-").arg("+").clone();
                let dead = client.query(&range, 10).await.ok()?;
                items(&dead).first().cloned()
            }
        },
    )
    .await;
    let fields: Vec<String> = items(&items(&moved)[1]).iter().map(text).collect();
    let field = |name: &str| {
        let at = fields.iter().position(|field| field == name).unwrap();
        fields[at + 1].clone()
    };
    assert_eq!(field("source-id"), id);
    assert_eq!(field("deliveries"), "3");
    assert_eq!(field("reason"), "max-deliveries");
    assert_eq!(field("n"), "1");
    assert!(pending(&mut *shared.lock().await).await.is_empty());
}
