//! Shards split and merge as slot migrations, while writers write: the
//! scheduler splits a shard past its key threshold and merges small
//! shards back once keys are deleted; `polis cluster split`, `merge` and
//! `rebalance --wait` do the same by hand. Every key stays readable,
//! DBSIZE over the shards counts each once, nothing acknowledged is lost,
//! and a retired shard's replicas are destroyed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::client::FollowingClient;
use common::probe::{assert_nothing_lost, key_in, Probe};
use common::{wait_for, Cluster};
use redis::Value;

/// Runs `polis cluster ARGS` against node 1.
fn polis_cluster(cluster: &Cluster, args: &[&str]) -> (bool, String) {
    let mut all = vec!["--node", cluster.node(1).admin.as_str()];
    all.extend_from_slice(args);
    common::polis_cluster(&all)
}

/// Returns the shards of the map (id -> keys its leader holds), once no
/// migration runs and every shard serves; `None` otherwise.
async fn settled_shards(cluster: &Cluster, id: u64) -> Option<BTreeMap<u64, u64>> {
    let status = cluster.cluster_status(id).await?;
    if !status["migrations"].as_array()?.is_empty() || status["state"] != "ok" {
        return None;
    }
    status["shards"]
        .as_array()?
        .iter()
        .map(|shard| Some((shard["id"].as_u64()?, shard["keys"].as_u64()?)))
        .collect()
}

/// Waits until the shards settle (a leader may be moving a moment after
/// the scheduler called the cluster balanced) and returns them.
async fn settled(cluster: &Cluster) -> BTreeMap<u64, u64> {
    wait_for("the shards to settle", Duration::from_secs(30), || {
        settled_shards(cluster, 1)
    })
    .await
}

/// Returns the shard groups node `id` runs.
async fn groups_on(cluster: &Cluster, id: u64) -> Option<BTreeSet<u64>> {
    let status = cluster.cluster_status(id).await?;
    Some(
        status["replicas"]
            .as_array()?
            .iter()
            .filter_map(|replica| replica["group_id"].as_u64())
            .filter(|group| *group != 0)
            .collect(),
    )
}

async fn set_all(client: &mut FollowingClient, keys: &[String]) {
    for key in keys {
        let set = redis::cmd("SET").arg(key).arg(format!("v-{key}")).clone();
        client.query_idempotent(&set, Duration::from_secs(10)).await;
    }
}

async fn assert_readable(client: &mut FollowingClient, keys: &[String]) {
    for key in keys {
        let value = client
            .query_idempotent(redis::cmd("GET").arg(key), Duration::from_secs(30))
            .await;
        assert_eq!(
            value,
            Value::BulkString(format!("v-{key}").into_bytes()),
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_past_its_threshold_splits_and_small_shards_merge_back() {
    let _turn = common::one_at_a_time().await;
    let cluster = Cluster::start(3, &["--shards", "1", "--split-above-keys", "1500"]);
    cluster.wait_ready(Duration::from_secs(60)).await;
    let mut client = FollowingClient::new(cluster.resp_addrs(), 0);
    let keys: Vec<String> = (0..2_000).map(|n| format!("key:{n}")).collect();
    set_all(&mut client, &keys).await;

    let mut probed = BTreeMap::new();
    probed.insert(1, key_in(0, 8191, "probe-low"));
    probed.insert(2, key_in(8192, 16383, "probe-high"));
    let probe = Probe::start(cluster.resp_addrs(), probed, 2);
    probe.wait_acked(20).await;

    // Past 1,500 keys: split in two, each then below the threshold.
    let shards = wait_for(
        "the shard to split in two",
        Duration::from_secs(120),
        || async {
            let shards = settled_shards(&cluster, 1).await?;
            (shards.len() == 2).then_some(shards)
        },
    )
    .await;
    eprintln!("after the split: {shards:?}");
    assert!(
        shards.values().all(|keys| *keys < 1_500),
        "both halves below the threshold: {shards:?}"
    );
    let status = cluster.cluster_status(1).await.unwrap();
    assert!(
        polis_client::admin::slot_owner(&status, 16_383) != Some(1),
        "the upper half moved: {status}"
    );
    // Below the threshold and above a quarter of it: it stays two shards.
    let (balanced, said) =
        polis_cluster(&cluster, &["rebalance", "--wait", "--timeout-secs", "60"]);
    assert!(balanced, "{said}");
    assert_eq!(settled(&cluster).await.len(), 2);
    assert_readable(&mut client, &keys).await;
    let total: u64 = settled(&cluster).await.values().sum();
    assert_eq!(total, keys.len() as u64 + 2, "DBSIZE counts each key once");

    // Deleted down to 100 keys: the two merge back into one, and the
    // emptied shard is retired and its replicas destroyed.
    for key in &keys[100..] {
        client
            .query_idempotent(redis::cmd("DEL").arg(key), Duration::from_secs(10))
            .await;
    }
    let shards = wait_for(
        "the shards to merge back into one",
        Duration::from_secs(120),
        || async {
            let shards = settled_shards(&cluster, 1).await?;
            (shards.len() == 1).then_some(shards)
        },
    )
    .await;
    let survivor = *shards.keys().next().unwrap();
    for id in 1..=3 {
        wait_for(
            "the retired shard's replicas to be destroyed",
            Duration::from_secs(30),
            || async {
                let groups = groups_on(&cluster, id).await?;
                (groups == BTreeSet::from([survivor])).then_some(())
            },
        )
        .await;
    }
    probe.wait_acked(60).await;
    let logs = probe.stop().await;
    assert_nothing_lost(cluster.resp_addrs(), &logs).await;
    assert_readable(&mut client, &keys[..100]).await;
    let total: u64 = settled(&cluster).await.values().sum();
    assert_eq!(total, 102);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn split_merge_and_rebalance_by_hand_with_the_scheduler_off() {
    let _turn = common::one_at_a_time().await;
    // Two shards: 0-8191 and 8192-16383.
    let cluster = Cluster::start(3, &["--shards", "2", "--scheduler", "false"]);
    cluster.wait_ready(Duration::from_secs(60)).await;
    let mut client = FollowingClient::new(cluster.resp_addrs(), 0);
    let keys: Vec<String> = (0..400).map(|n| format!("key:{n}")).collect();
    set_all(&mut client, &keys).await;

    let (split, said) = polis_cluster(&cluster, &["split", "--shard", "1"]);
    assert!(split, "{said}");
    let status = cluster.cluster_status(1).await.unwrap();
    assert_eq!(polis_client::admin::slot_owner(&status, 0), Some(1));
    assert_eq!(polis_client::admin::slot_owner(&status, 8191), Some(3));
    assert_readable(&mut client, &keys).await;

    // Shard 3 (4096-8191) into its neighbour, shard 2.
    let (merged, said) = polis_cluster(&cluster, &["merge", "--shard", "3", "--into", "2"]);
    assert!(merged, "{said}");
    let shards = wait_for("shard 3 to be retired", Duration::from_secs(60), || async {
        let shards = settled_shards(&cluster, 1).await?;
        (shards.len() == 2).then_some(shards)
    })
    .await;
    assert_eq!(shards.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    let status = cluster.cluster_status(1).await.unwrap();
    assert_eq!(polis_client::admin::slot_owner(&status, 8191), Some(2));
    assert_readable(&mut client, &keys).await;
    assert_eq!(shards.values().sum::<u64>(), keys.len() as u64);

    let (balanced, said) =
        polis_cluster(&cluster, &["rebalance", "--wait", "--timeout-secs", "60"]);
    assert!(balanced, "{said}");

    for (args, expected) in [
        (vec!["split", "--shard", "9"], "no shard 9"),
        (vec!["merge", "--shard", "1", "--into", "1"], "into itself"),
        (vec!["merge", "--shard", "9", "--into", "1"], "no shard 9"),
        (vec!["merge", "--shard", "1", "--into", "3"], "no shard 3"),
    ] {
        let (done, said) = polis_cluster(&cluster, &args);
        assert!(!done && said.contains(expected), "{args:?}: {said}");
    }
}
