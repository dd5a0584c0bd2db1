//! Pipelined commands: consecutive writes go to Raft as one log entry,
//! yet every command takes effect in the order sent and gets its own
//! reply (errors too: tests/python/test_pipeline.py); reads in between
//! see the writes before them; a follower redirects each one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::time::Duration;

use common::Cluster;
use redis::Value;

fn text(value: &Value) -> String {
    match value {
        Value::Okay => "OK".into(),
        Value::Nil => "nil".into(),
        Value::Int(n) => n.to_string(),
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_pipeline_of_writes_is_acknowledged_and_readable() {
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let mut connection = cluster.connect(leader).await;
    let mut pipe = redis::pipe();
    for n in 0..2_000 {
        pipe.cmd("SET").arg(format!("p:{n}")).arg(n);
        if n % 500 == 0 {
            pipe.cmd("GET").arg(format!("p:{n}"));
        }
    }
    let replies: Vec<Value> = pipe.query_async(&mut connection).await.unwrap();
    assert_eq!(replies.len(), 2_004);
    let gets: Vec<String> = replies
        .iter()
        .filter(|value| !matches!(value, Value::Okay))
        .map(text)
        .collect();
    assert_eq!(gets, ["0", "500", "1000", "1500"]);
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let mut on_follower = cluster.connect(follower).await;
    redis::cmd("READONLY")
        .query_async::<Value>(&mut on_follower)
        .await
        .unwrap();
    common::wait_for(
        "the follower to apply the pipeline",
        Duration::from_secs(30),
        || {
            let mut on_follower = on_follower.clone();
            async move {
                let value: Value = redis::cmd("GET")
                    .arg("p:1999")
                    .query_async(&mut on_follower)
                    .await
                    .ok()?;
                (text(&value) == "1999").then_some(())
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_writes_to_a_follower_are_each_redirected() {
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let url = format!("redis://{}/", cluster.node(follower).resp);
    let client = redis::Client::open(url).unwrap();
    let connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut replies = Vec::new();
    // Sent concurrently on one connection, so they arrive pipelined.
    let mut sets = tokio::task::JoinSet::new();
    for n in 0..10 {
        let mut connection = connection.clone();
        sets.spawn(async move {
            redis::cmd("SET")
                .arg(format!("f:{n}"))
                .arg(n)
                .query_async::<Value>(&mut connection)
                .await
        });
    }
    while let Some(result) = sets.join_next().await {
        replies.push(result.unwrap().unwrap_err());
    }
    assert!(
        replies.iter().all(|error| error.redirect_node().is_some()),
        "{replies:?}"
    );
}
