//! Slots move between shards while a writer writes to them: every key
//! (its value, its expiry deadline, a hash's fields) arrives, ownership
//! changes once, DBSIZE over the shards counts each key once, and nothing
//! acknowledged is lost; bad requests are refused with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::client::FollowingClient;
use common::probe::{assert_nothing_lost, key_in, Probe};
use common::{wait_for, Cluster};
use redis::Value;

/// Runs `polis cluster ARGS` against node 1 and returns whether it
/// succeeded and what it printed.
fn polis_cluster(cluster: &Cluster, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_polis"))
        .args(["cluster", "--node", &cluster.node(1).admin])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn keys_in(start: u16, end: u16, label: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| key_in(start, end, &format!("{label}:{n}")))
        .collect()
}

async fn get(client: &mut FollowingClient, key: &str) -> Value {
    client
        .query_idempotent(redis::cmd("GET").arg(key), Duration::from_secs(30))
        .await
}

/// Returns the sum of DBSIZE over the shard leaders.
async fn dbsize_over_leaders(cluster: &Cluster) -> Option<i64> {
    let status = cluster.cluster_status(1).await?;
    let mut total = 0;
    for shard in status["shards"].as_array()? {
        total += shard["keys"].as_i64()?;
    }
    Some(total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slots_move_to_another_shard_under_writes_and_every_key_arrives() {
    // Three shards: 0-5460, 5461-10922, 10923-16383.
    let cluster = Cluster::start(3, &["--shards", "3"]);
    cluster.wait_ready(Duration::from_secs(60)).await;
    let mut client = FollowingClient::new(cluster.resp_addrs(), 0);
    let moving = keys_in(0, 99, "moving", 500);
    let staying = keys_in(100, 5460, "staying", 100);
    for key in moving.iter().chain(&staying) {
        let set = redis::cmd("SET").arg(key).arg(format!("v-{key}")).clone();
        client.query_idempotent(&set, Duration::from_secs(10)).await;
    }
    let hash = key_in(0, 99, "hash");
    let hset = redis::cmd("HSET")
        .arg(&hash)
        .arg("f1")
        .arg("a")
        .arg("f2")
        .arg("b")
        .clone();
    client
        .query_idempotent(&hset, Duration::from_secs(10))
        .await;
    let expiring = key_in(0, 99, "expiring");
    let set_ex = redis::cmd("SET")
        .arg(&expiring)
        .arg("x")
        .arg("EX")
        .arg(3600)
        .clone();
    client
        .query_idempotent(&set_ex, Duration::from_secs(10))
        .await;
    let total_keys = (moving.len() + staying.len() + 2) as i64;

    // Writers on a moving key and on a key of each other shard.
    let mut probed = BTreeMap::new();
    probed.insert(1, key_in(0, 99, "probe-moving"));
    probed.insert(2, key_in(5461, 10922, "probe-2"));
    probed.insert(3, key_in(10923, 16383, "probe-3"));
    let probe = Probe::start(cluster.resp_addrs(), probed, 3);
    probe.wait_acked(30).await;

    let (moved, said) = polis_cluster(&cluster, &["migrate", "--slots", "0-99", "--to-shard", "2"]);
    assert!(moved, "{said}");
    assert!(said.contains("slots moved to shard 2"), "{said}");
    probe.wait_acked(60).await;
    let logs = probe.stop().await;

    let status = cluster.cluster_status(1).await.unwrap();
    assert_eq!(polis_client::admin::slot_owner(&status, 0), Some(2));
    assert_eq!(polis_client::admin::slot_owner(&status, 99), Some(2));
    assert_eq!(polis_client::admin::slot_owner(&status, 100), Some(1));
    assert!(
        status["migrations"].as_array().unwrap().is_empty(),
        "{status}"
    );

    for key in moving.iter().chain(&staying) {
        assert_eq!(
            get(&mut client, key).await,
            Value::BulkString(format!("v-{key}").into_bytes()),
            "{key}"
        );
    }
    let fields = client
        .query_idempotent(redis::cmd("HGETALL").arg(&hash), Duration::from_secs(10))
        .await;
    assert_eq!(
        fields.as_map_iter().map(Iterator::count).unwrap_or(0),
        2,
        "{fields:?}"
    );
    let ttl = client
        .query_idempotent(redis::cmd("TTL").arg(&expiring), Duration::from_secs(10))
        .await;
    assert!(
        matches!(ttl, Value::Int(seconds) if seconds > 3500 && seconds <= 3600),
        "the deadline moved as an absolute time: {ttl:?}"
    );
    assert_nothing_lost(cluster.resp_addrs(), &logs).await;

    // Each key counted once: the source dropped its copy.
    wait_for(
        "DBSIZE over the leaders to count every key once",
        Duration::from_secs(30),
        || async {
            let total = dbsize_over_leaders(&cluster).await?;
            (total == total_keys + 3).then_some(total)
        },
    )
    .await;

    // Bad requests, with the reason.
    for (args, expected) in [
        (
            vec!["--slots", "0-99", "--to-shard", "2"],
            "owns slots 0-99 already",
        ),
        (vec!["--slots", "0-99", "--to-shard", "9"], "no shard 9"),
        (
            vec!["--slots", "10-5", "--to-shard", "3"],
            "starts at or below",
        ),
        (vec!["--slots", "0-16384", "--to-shard", "3"], "not a slot"),
        (vec!["--slots", "0-10,5-20", "--to-shard", "3"], "overlap"),
    ] {
        let mut all = vec!["migrate"];
        all.extend(args);
        let (ok, said) = polis_cluster(&cluster, &all);
        assert!(!ok && said.contains(expected), "{all:?}: {said}");
    }
}
