//! `polis gateway` in front of 3 nodes and 3 shards, driven by a client
//! that knows nothing of clusters (redis-rs without its cluster mode):
//! keys of every shard through one endpoint, multi-key commands split and
//! merged, node-wide commands over the whole cluster, SCAN walking every
//! shard, MULTI/EXEC and WATCH pinned to one node, blocking pops and
//! pub/sub on connections of their own, and a node killed behind it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{wait_for, Cluster};
use redis::aio::MultiplexedConnection;
use redis::Value;

const KEYS: usize = 300;

async fn start() -> (Cluster, std::net::SocketAddr) {
    let (cluster, addr, _) = start_watched().await;
    (cluster, addr)
}

/// Starts 3 nodes of 3 shards and a gateway; returns the gateway's view
/// of the cluster too.
async fn start_watched() -> (
    Cluster,
    std::net::SocketAddr,
    std::sync::Arc<polis_gateway::Cluster>,
) {
    let cluster = Cluster::start(3, &["--shards", "3"]);
    cluster.wait_ready(Duration::from_secs(60)).await;
    let gateway =
        polis_gateway::Gateway::bind("127.0.0.1:0".parse().unwrap(), cluster.resp_addrs())
            .await
            .unwrap();
    let addr = gateway.local_addr().unwrap();
    let view = gateway.cluster();
    tokio::spawn(gateway.serve());
    (cluster, addr, view)
}

async fn connect(addr: std::net::SocketAddr) -> MultiplexedConnection {
    let client = redis::Client::open(format!("redis://{addr}")).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

async fn query<T: redis::FromRedisValue>(
    connection: &mut MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query_async(connection).await
}

fn key(index: usize) -> String {
    format!("key:{index}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_makes_three_shards_look_like_one_redis() {
    let (cluster, addr) = start().await;
    let mut client = connect(addr).await;

    // Writes to every shard, in one pipeline, answered in order.
    let mut pipe = redis::pipe();
    for index in 0..KEYS {
        pipe.cmd("SET").arg(key(index)).arg(index);
        pipe.cmd("GET").arg(key(index));
    }
    let replies: Vec<Value> = pipe.query_async(&mut client).await.unwrap();
    for index in 0..KEYS {
        assert_eq!(replies[2 * index], Value::Okay);
        assert_eq!(
            replies[2 * index + 1],
            Value::BulkString(index.to_string().into_bytes())
        );
    }
    // The keys really are spread: no node leads them all.
    let mut led = 0;
    for id in 1..=3 {
        let mut node = cluster.connect(id).await;
        let size: usize = query(&mut node, &["DBSIZE"]).await.unwrap();
        assert!(size < KEYS, "node {id} leads {size} of {KEYS} keys");
        led += size;
    }
    assert_eq!(led, KEYS);
    assert_eq!(
        query::<usize>(&mut client, &["DBSIZE"]).await.unwrap(),
        KEYS
    );

    // MGET, EXISTS, DEL across slots: split and merged.
    let names: Vec<String> = (0..KEYS).map(key).collect();
    let mut mget = redis::cmd("MGET");
    mget.arg(&names).arg("missing");
    let values: Vec<Option<String>> = mget.query_async(&mut client).await.unwrap();
    assert_eq!(values.len(), KEYS + 1);
    for (index, value) in values.iter().take(KEYS).enumerate() {
        assert_eq!(value.as_deref(), Some(index.to_string().as_str()));
    }
    assert_eq!(values[KEYS], None);
    let exists: usize = redis::cmd("EXISTS")
        .arg(&names)
        .query_async(&mut client)
        .await
        .unwrap();
    assert_eq!(exists, KEYS);
    let deleted: usize = redis::cmd("DEL")
        .arg(&names[..100])
        .query_async(&mut client)
        .await
        .unwrap();
    assert_eq!(deleted, 100);
    assert_eq!(
        query::<usize>(&mut client, &["DBSIZE"]).await.unwrap(),
        KEYS - 100
    );

    // KEYS and a whole SCAN cover every shard.
    let keys: Vec<String> = query(&mut client, &["KEYS", "key:*"]).await.unwrap();
    let expected: BTreeSet<String> = names[100..].iter().cloned().collect();
    assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), expected);
    let mut scanned = BTreeSet::new();
    let mut cursor = "0".to_owned();
    for _ in 0..1000 {
        let (next, page): (String, Vec<String>) =
            query(&mut client, &["SCAN", &cursor, "COUNT", "10"])
                .await
                .unwrap();
        scanned.extend(page);
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(cursor, "0", "SCAN did not end");
    assert_eq!(scanned, expected);

    // MSET across slots is refused, not half applied; within one slot it runs.
    let refused = query::<()>(&mut client, &["MSET", "a", "1", "b", "2"])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("CROSSSLOT"), "{refused}");
    assert_eq!(
        query::<Option<String>>(&mut client, &["GET", "a"])
            .await
            .unwrap(),
        None
    );
    query::<()>(&mut client, &["MSET", "{t}a", "1", "{t}b", "2"])
        .await
        .unwrap();

    // MULTI/EXEC on one slot, and WATCH that sees another client's write.
    let (one, two): (i64, i64) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("{t}a")
        .cmd("INCR")
        .arg("{t}b")
        .query_async(&mut client)
        .await
        .unwrap();
    assert_eq!((one, two), (2, 3));
    let mut watcher = connect(addr).await;
    let mut other = connect(addr).await;
    query::<()>(&mut watcher, &["WATCH", "{t}a"]).await.unwrap();
    query::<()>(&mut other, &["SET", "{t}a", "changed"])
        .await
        .unwrap();
    query::<()>(&mut watcher, &["MULTI"]).await.unwrap();
    query::<()>(&mut watcher, &["SET", "{t}a", "mine"])
        .await
        .unwrap();
    let exec: Value = query(&mut watcher, &["EXEC"]).await.unwrap();
    assert_eq!(exec, Value::Nil, "EXEC ran although a watched key changed");
    assert_eq!(
        query::<String>(&mut client, &["GET", "{t}a"])
            .await
            .unwrap(),
        "changed"
    );
    // A transaction over two slots aborts, as on a node.
    query::<()>(&mut watcher, &["MULTI"]).await.unwrap();
    assert!(query::<()>(&mut watcher, &["SET", "{t}a", "x"])
        .await
        .is_ok());
    let crossed = query::<()>(&mut watcher, &["SET", "{u}a", "x"])
        .await
        .unwrap_err();
    assert_eq!(crossed.code(), Some("CROSSSLOT"));
    let aborted = query::<()>(&mut watcher, &["EXEC"]).await.unwrap_err();
    assert_eq!(aborted.code(), Some("EXECABORT"));

    // A blocked pop on its own connection, woken through the gateway.
    let blocked = {
        tokio::spawn(async move {
            let mut connection = connect(addr).await;
            query::<(String, String)>(&mut connection, &["BLPOP", "queue", "10"]).await
        })
    };
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(cluster.connect(id).await);
    }
    wait_for("BLPOP to block on a node", Duration::from_secs(10), || {
        let nodes = nodes.clone();
        async move {
            for mut node in nodes {
                let info: String = query(&mut node, &["INFO", "clients"]).await.ok()?;
                let blocked: usize = info
                    .lines()
                    .find_map(|line| line.strip_prefix("blocked_clients:"))?
                    .trim()
                    .parse()
                    .ok()?;
                if blocked > 0 {
                    return Some(());
                }
            }
            None
        }
    })
    .await;
    query::<()>(&mut client, &["LPUSH", "queue", "job"])
        .await
        .unwrap();
    let popped = tokio::time::timeout(Duration::from_secs(10), blocked)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(popped, ("queue".to_owned(), "job".to_owned()));

    // FLUSHALL reaches every shard.
    query::<()>(&mut client, &["FLUSHALL"]).await.unwrap();
    assert_eq!(query::<usize>(&mut client, &["DBSIZE"]).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_of_the_gateway_hears_what_any_node_publishes() {
    let (cluster, addr) = start().await;
    let client = redis::Client::open(format!("redis://{addr}")).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("news").await.unwrap();
    let mut messages = pubsub.on_message();
    for id in 1..=3u64 {
        let mut node = cluster.connect(id).await;
        let payload = format!("from node {id}");
        // Published again until heard: a subscription is in place on the
        // other nodes once confirmed there, a moment after it is here.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut heard = false;
        while !heard && tokio::time::Instant::now() < deadline {
            let _: i64 = query(&mut node, &["PUBLISH", "news", &payload])
                .await
                .unwrap();
            let listen = tokio::time::Instant::now() + Duration::from_millis(500);
            while let Ok(Some(message)) =
                tokio::time::timeout_at(listen, futures::StreamExt::next(&mut messages)).await
            {
                if message.get_payload::<String>().unwrap() == payload {
                    heard = true;
                    break;
                }
            }
        }
        assert!(
            heard,
            "no message published on node {id} reached the gateway's subscriber"
        );
    }
}

/// Writes every key once through the gateway; returns how many were
/// acknowledged. Every command must answer within 5 s, error or not:
/// nothing behind the gateway may hang a client.
async fn write_all(client: &mut MultiplexedConnection, round: usize) -> usize {
    let mut acknowledged = 0;
    for index in 0..30 {
        let value = format!("{round}");
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            query::<()>(client, &["SET", &key(index), &value]),
        )
        .await
        .expect("a SET through the gateway hung");
        acknowledged += usize::from(answer.is_ok());
    }
    acknowledged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_behind_the_gateway_costs_a_failover_and_hangs_nothing() {
    let _turn = common::one_at_a_time().await;
    let (mut cluster, addr, view) = start_watched().await;
    let mut client = connect(addr).await;
    assert_eq!(write_all(&mut client, 0).await, 30);
    let victim_addr = cluster.node(2).resp.clone();
    cluster.kill9(2);
    wait_for(
        "the gateway to mark the killed node unhealthy",
        Duration::from_secs(10),
        || {
            let healthy = view.is_healthy(&victim_addr);
            async move { (!healthy).then_some(()) }
        },
    )
    .await;
    // Until the killed node's shard has a new leader, its keys answer
    // errors; then every write goes through again.
    let mut round = 1;
    wait_for(
        "every key writable through the gateway again",
        Duration::from_secs(60),
        || {
            round += 1;
            let mut client = client.clone();
            let round = round;
            async move { (write_all(&mut client, round).await == 30).then_some(round) }
        },
    )
    .await;
    let last = round;
    for index in 0..30 {
        let value: String = query(&mut client, &["GET", &key(index)]).await.unwrap();
        assert_eq!(
            value,
            last.to_string(),
            "{} lost its acknowledged write",
            key(index)
        );
    }
    // The node comes back, and so does the gateway's traffic to it.
    cluster.start_node(2);
    wait_for(
        "the gateway to mark the node healthy again",
        Duration::from_secs(60),
        || {
            let healthy = view.is_healthy(&victim_addr);
            async move { healthy.then_some(()) }
        },
    )
    .await;
    assert_eq!(write_all(&mut client, last + 1).await, 30);
    assert_eq!(query::<usize>(&mut client, &["DBSIZE"]).await.unwrap(), 30);
}
