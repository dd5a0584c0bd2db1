//! Pub/sub and keyspace notifications across a leader's death: a
//! subscriber on a surviving node keeps its subscriptions, receives what
//! any node publishes, and receives the key events of writes the new
//! leader applies, once each and in the order they were acknowledged.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::time::Duration;

use common::client::FollowingClient;
use common::Cluster;
use futures::StreamExt;

/// How long one message may take to arrive.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Returns the next (channel, payload) the subscriber receives.
async fn next(
    messages: &mut (impl futures::Stream<Item = redis::Msg> + Unpin),
) -> Option<(String, String)> {
    let message = tokio::time::timeout(MESSAGE_TIMEOUT, messages.next())
        .await
        .ok()??;
    Some((
        message.get_channel_name().to_owned(),
        message.get_payload::<String>().unwrap(),
    ))
}

/// Publishes on `channel` from `publisher` until the subscriber receives
/// one of them (a subscription on another node is registered there a
/// moment after its confirmation); returns the payload received.
async fn publish_until_received(
    publisher: &mut redis::aio::MultiplexedConnection,
    messages: &mut (impl futures::Stream<Item = redis::Msg> + Unpin),
    channel: &str,
) -> String {
    for attempt in 0..40 {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(format!("{channel}#{attempt}"))
            .query_async(publisher)
            .await
            .unwrap();
        let received = tokio::time::timeout(Duration::from_millis(500), messages.next()).await;
        if let Ok(Some(message)) = received {
            return message.get_payload::<String>().unwrap();
        }
    }
    panic!("nothing published on {channel} was received");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribers_keep_receiving_messages_and_key_events_when_the_leader_dies() {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(60)).await;
    let others: Vec<u64> = (1..=3).filter(|&id| id != leader).collect();
    let (subscriber_node, publisher_node) = (others[0], others[1]);

    // One CONFIG SET turns key events on for every node.
    let mut admin = cluster.connect(publisher_node).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("E$")
        .query_async(&mut admin)
        .await
        .unwrap();
    for id in 1..=3 {
        let mut connection = cluster.connect(id).await;
        let value: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("notify-keyspace-events")
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(value[1], "$E", "node {id}");
    }

    let url = format!("redis://{}/", cluster.node(subscriber_node).resp);
    let mut pubsub = redis::Client::open(url)
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    pubsub.subscribe("news").await.unwrap();
    pubsub.psubscribe("__keyevent@0__:*").await.unwrap();
    let mut messages = pubsub.into_on_message();
    let mut publisher = cluster.connect(publisher_node).await;
    assert!(
        publish_until_received(&mut publisher, &mut messages, "news")
            .await
            .starts_with("news#")
    );

    let mut writer = FollowingClient::new(cluster.resp_addrs(), (publisher_node - 1) as usize);
    writer
        .query(redis::cmd("SET").arg("before").arg("1"), 10)
        .await
        .unwrap();
    assert_eq!(
        next(&mut messages).await,
        Some(("__keyevent@0__:set".to_owned(), "before".to_owned()))
    );

    cluster.kill9(leader);
    let new_leader = cluster.wait_for_leader(Duration::from_secs(60)).await;
    assert_ne!(new_leader, leader);

    // Still subscribed: what any node publishes arrives.
    assert!(
        publish_until_received(&mut publisher, &mut messages, "news")
            .await
            .starts_with("news#")
    );
    // The new leader publishes the events of what it applies: each
    // acknowledged write's event once, in the order acknowledged.
    let keys: Vec<String> = (0..20).map(|index| format!("after:{index}")).collect();
    // The writer finds the new leader with a write retried until
    // acknowledged (its events may come twice: not counted).
    writer
        .query_idempotent(
            redis::cmd("SET").arg("warmup").arg("1"),
            Duration::from_secs(60),
        )
        .await;
    for key in &keys {
        writer
            .query(redis::cmd("SET").arg(key).arg("1"), 10)
            .await
            .unwrap();
    }
    let mut received = Vec::new();
    while received.len() < keys.len() {
        let (channel, key) = next(&mut messages)
            .await
            .unwrap_or_else(|| panic!("events stopped after {received:?}"));
        assert_eq!(channel, "__keyevent@0__:set");
        if key != "warmup" {
            received.push(key);
        }
    }
    assert_eq!(received, keys);
    let extra = tokio::time::timeout(Duration::from_millis(500), messages.next()).await;
    assert!(extra.is_err(), "an event arrived twice: {extra:?}");
}
