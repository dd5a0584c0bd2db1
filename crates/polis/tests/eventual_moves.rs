//! Eventual keys over time and across the cluster: tombstones purged
//! only once every replica holds them (deleted keys never come back), and
//! keys that follow their slot to another shard.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::time::Duration;

use common::eventual::{
    bulk, config_set, converge, eventual_figure, eventual_namespace, eventual_status, query,
    shard_nodes,
};
use common::{wait_for, Cluster};
use redis::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_keys_are_purged_once_every_replica_holds_the_tombstone_and_stay_deleted() {
    let cluster = Cluster::start(3, &["--enable-fault-injection"]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    eventual_namespace(&cluster, "user:", "2", "1");
    config_set(&cluster, "eventual-anti-entropy-ms", "200").await;
    for id in 1..=3 {
        let set = query(
            &cluster,
            id,
            redis::cmd("SET").arg(format!("user:{id}")).arg("x"),
        )
        .await;
        assert_eq!(set.unwrap(), Value::Okay);
    }
    let sadd = query(
        &cluster,
        1,
        redis::cmd("SADD").arg("user:set").arg("a").arg("b"),
    )
    .await;
    assert_eq!(sadd.unwrap(), Value::Int(2));
    converge(
        &cluster,
        redis::cmd("SCARD").arg("user:set"),
        &Value::Int(2),
        "the set everywhere",
    )
    .await;

    // Node 3 misses the deletes: it holds the values while cut off.
    cluster.chaos(&["isolate", "3"]);
    for key in ["user:1", "user:2", "user:3", "user:set"] {
        let del = query(&cluster, 1, redis::cmd("DEL").arg(key)).await;
        assert_eq!(del.unwrap(), Value::Int(1), "DEL {key}");
    }
    let held = query(&cluster, 3, redis::cmd("GET").arg("user:3")).await;
    assert_eq!(held.unwrap(), bulk("x"));
    cluster.chaos(&["heal"]);

    // Every replica ends with nothing stored, and the keys stay deleted.
    wait_for(
        "every tombstone purged everywhere",
        Duration::from_secs(60),
        || async {
            for id in 1..=3 {
                if eventual_status(&cluster, id).await?["keys"] != 0 {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let mut purged = 0;
    for id in 1..=3 {
        purged += eventual_figure(&cluster, id, "tombstones_purged_total").await;
    }
    assert!(purged >= 4, "{purged} purged");
    for id in 1..=3 {
        for key in ["user:1", "user:2", "user:3"] {
            let value = query(&cluster, id, redis::cmd("GET").arg(key)).await;
            assert_eq!(value.unwrap(), Value::Nil, "{key} came back on node {id}");
        }
        let set = query(&cluster, id, redis::cmd("SCARD").arg("user:set")).await;
        assert_eq!(
            set.unwrap(),
            Value::Int(0),
            "the set came back on node {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventual_keys_and_tombstones_follow_their_slots_to_another_shard() {
    let cluster = Cluster::start(4, &["--shards", "2", "--replicas", "3"]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    eventual_namespace(&cluster, "inv:", "3", "1");
    let keys: Vec<String> = (0..10)
        .map(|n| common::probe::key_in(0, 99, &format!("inv:k{n}")))
        .collect();
    for (index, key) in keys.iter().enumerate() {
        let set = query(
            &cluster,
            1 + index as u64 % 4,
            redis::cmd("SET").arg(key).arg(index),
        )
        .await;
        assert_eq!(set.unwrap(), Value::Okay, "{key}");
    }
    let deleted = &keys[9];
    let del = query(&cluster, 2, redis::cmd("DEL").arg(deleted)).await;
    assert_eq!(del.unwrap(), Value::Int(1));
    let source = shard_nodes(&cluster, 1).await;
    let target = shard_nodes(&cluster, 2).await;
    let leaver = *source
        .iter()
        .find(|id| !target.contains(id))
        .expect("a node of shard 1 only");
    let newcomer = *target
        .iter()
        .find(|id| !source.contains(id))
        .expect("a node of shard 2 only");
    wait_for(
        "the leaver holds the keys",
        Duration::from_secs(30),
        || async { (eventual_status(&cluster, leaver).await?["keys"] == 10).then_some(()) },
    )
    .await;

    let (moved, said) = common::polis_cluster(&[
        "--node",
        &cluster.node(1).admin,
        "migrate",
        "--slots",
        "0-99",
        "--to-shard",
        "2",
    ]);
    assert!(moved, "{said}");
    // The keys, the tombstone among them, leave the node that no longer
    // replicates their slot for the one that now does.
    wait_for("the keys handed off", Duration::from_secs(60), || async {
        let left = eventual_status(&cluster, leaver).await?["keys"] == 0;
        let arrived = eventual_status(&cluster, newcomer).await?["keys"] == 10;
        (left && arrived).then_some(())
    })
    .await;
    for id in 1..=4 {
        for (index, key) in keys.iter().enumerate().take(9) {
            let value = query(&cluster, id, redis::cmd("GET").arg(key))
                .await
                .unwrap();
            assert_eq!(value, bulk(&index.to_string()), "{key} on node {id}");
        }
        let gone = query(&cluster, id, redis::cmd("GET").arg(deleted))
            .await
            .unwrap();
        assert_eq!(gone, Value::Nil, "the deleted key came back on node {id}");
    }
}
