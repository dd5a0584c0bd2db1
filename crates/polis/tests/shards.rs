//! A sharded cluster under process faults: kill -9 of a node (any node, or
//! the meta group's leader) of 5 nodes and 10 shards, a node coming back
//! with an empty data directory, and a restart of the whole cluster.
//!
//! Measured: every shard whose leader was on the killed node elects a new
//! one within 5 s (busy shards and idle, parked ones alike); the other
//! shards keep serving; no acknowledged write is lost.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::probe::{assert_nothing_lost, Probe};
use common::{node_record, shard_keys, shard_leaders, wait_for, Cluster};

/// How soon a shard must have a new leader after its leader's node died.
const FAILOVER_MAX: Duration = Duration::from_secs(5);
/// The longest a shard whose leader lives may go without an acknowledged
/// write while another node dies (a loaded debug build on two cores).
const UNAFFECTED_GAP_MAX: Duration = Duration::from_secs(1);

/// Kills `victim`, then returns, for every shard it led, how long until a
/// surviving node reported a new leader serving it.
async fn kill_and_time_failovers(cluster: &mut Cluster, victim: u64) -> BTreeMap<u64, Duration> {
    let status = cluster.wait_ready(Duration::from_secs(60)).await;
    let led: BTreeSet<u64> = shard_leaders(&status)
        .into_iter()
        .filter(|(_, node)| *node == victim)
        .map(|(shard, _)| shard)
        .collect();
    let survivor = (1..=cluster.nodes.len() as u64)
        .find(|id| *id != victim)
        .unwrap();
    let killed_at = Instant::now();
    cluster.kill9(victim);
    let mut failovers = BTreeMap::new();
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    while failovers.len() < led.len() && killed_at.elapsed() < Duration::from_secs(30) {
        poll.tick().await;
        if let Some(status) = cluster.cluster_status(survivor).await {
            for shard in status["shards"].as_array().into_iter().flatten() {
                let id = shard["id"].as_u64().unwrap();
                let leader = shard["leader_node"].as_u64();
                if led.contains(&id)
                    && !failovers.contains_key(&id)
                    && shard["serving"] == true
                    && leader.is_some_and(|leader| leader != victim)
                {
                    failovers.insert(id, killed_at.elapsed());
                }
            }
        }
    }
    assert_eq!(
        failovers.len(),
        led.len(),
        "shards {led:?} of node {victim}: only {failovers:?} got a new leader"
    );
    failovers
}

async fn kill_one_of_five(victim_of: impl Fn(&serde_json::Value) -> u64) {
    let _turn = common::one_at_a_time().await;
    let mut cluster = Cluster::start(5, &["--shards", "10", "--idle-before-park-ms", "1000"]);
    let status = cluster.wait_ready(Duration::from_secs(60)).await;
    let victim = victim_of(&status);
    let leaders = shard_leaders(&status);
    // Half the shards busy, half idle (parked by the time of the kill).
    let busy: BTreeMap<u64, String> = shard_keys(&status, "busy")
        .into_iter()
        .filter(|(shard, _)| shard % 2 == 0)
        .collect();
    // One writer per shard: a writer stuck on a shard that fails over
    // would make the others look stopped.
    let writers = busy.len();
    let probe = Probe::start(cluster.resp_addrs(), busy, writers);
    probe.wait_acked(0).await;
    wait_for(
        "the idle shards to park",
        Duration::from_secs(30),
        || async {
            let status = cluster.cluster_status(victim).await?;
            let parked = status["shards"]
                .as_array()?
                .iter()
                .all(|shard| shard["id"].as_u64().unwrap() % 2 == 0 || shard["parked"] == true);
            parked.then_some(())
        },
    )
    .await;
    let killed_at = Instant::now();
    let failovers = kill_and_time_failovers(&mut cluster, victim).await;
    let settled = Instant::now();
    wait_for(
        "every busy shard to acknowledge writes after the failovers",
        Duration::from_secs(30),
        || async {
            let logs = probe.snapshot();
            logs.values()
                .all(|log| log.acked_at.iter().filter(|at| **at > settled).count() >= 5)
                .then_some(())
        },
    )
    .await;
    let logs = probe.stop().await;
    let observed_until = Instant::now();
    eprintln!("node {victim} killed; failovers of its shards: {failovers:?}");
    for (shard, took) in &failovers {
        assert!(
            *took <= FAILOVER_MAX,
            "shard {shard} took {took:?} to get a new leader"
        );
    }
    for (shard, log) in &logs {
        if leaders.get(shard) == Some(&victim) {
            continue;
        }
        let gap = log.longest_gap(killed_at, observed_until);
        assert!(
            gap <= UNAFFECTED_GAP_MAX,
            "shard {shard} (led by node {:?}) stopped serving for {gap:?}",
            leaders.get(shard)
        );
    }
    let survivors: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|node| node.id != victim)
        .map(|node| node.resp.clone())
        .collect();
    assert_nothing_lost(survivors, &logs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_a_node_of_five_fails_its_shards_over_within_five_seconds() {
    // A node that leads data shards but not the meta group.
    kill_one_of_five(|status| {
        let meta = status["meta_leader"].as_u64().unwrap();
        let leaders = shard_leaders(status);
        (1..=5)
            .find(|node| *node != meta && leaders.values().any(|leader| leader == node))
            .unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_meta_leader_keeps_routing_and_fails_over() {
    kill_one_of_five(|status| status["meta_leader"].as_u64().unwrap()).await;
}

/// Returns every replica id node `id`'s status reports for itself.
fn own_replicas(status: &serde_json::Value) -> BTreeSet<u64> {
    status["replicas"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|replica| replica["replica_id"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_restarted_empty_gets_new_replica_ids_and_catches_up() {
    restart_empty(3).await;
}

/// Node 1 created the map and leads the meta group: wiped, it must not
/// create a second cluster, and it must find the meta group's new leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_map_creator_restarted_empty_registers_again() {
    restart_empty(1).await;
}

/// The creator's disk lost the moment the others hold the map: the meta
/// group started on every member that answered, so the two left elect a
/// meta leader, and the creator, wiped, registers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_creator_wiped_as_the_cluster_forms_rejoins() {
    let _turn = common::one_at_a_time().await;
    let mut cluster = Cluster::start(3, &["--shards", "3"]);
    wait_for(
        "nodes 2 and 3 to hold the map",
        Duration::from_secs(60),
        || async {
            for id in [2, 3] {
                cluster.cluster_status(id).await?["cluster_id"].as_str()?;
            }
            Some(())
        },
    )
    .await;
    cluster.kill9(1);
    std::fs::remove_dir_all(&cluster.node(1).data).unwrap();
    cluster.start_node(1);
    let status = wait_for(
        "node 1 to register again and every shard to serve",
        Duration::from_secs(60),
        || async {
            let status = cluster.cluster_status(1).await?;
            let node = node_record(&status, 1)?;
            (node["incarnation"] == 2 && status["state"] == "ok").then_some(status)
        },
    )
    .await;
    let probe = Probe::start(cluster.resp_addrs(), shard_keys(&status, "formed"), 3);
    probe.wait_acked(9).await;
    let logs = probe.stop().await;
    assert_nothing_lost(cluster.resp_addrs(), &logs).await;
}

/// Stops `victim`, wipes its data directory and starts it again: it
/// registers as a new incarnation with new replica ids and catches up.
async fn restart_empty(victim: u64) {
    let _turn = common::one_at_a_time().await;
    let mut cluster = Cluster::start(3, &["--shards", "3"]);
    let status = cluster.wait_ready(Duration::from_secs(60)).await;
    let keys = shard_keys(&status, "wiped");
    let probe = Probe::start(cluster.resp_addrs(), keys, 3);
    probe.wait_acked(21).await;
    let before = own_replicas(&cluster.cluster_status(victim).await.unwrap());
    cluster.stop(victim).await;
    std::fs::remove_dir_all(&cluster.node(victim).data).unwrap();
    cluster.start_node(victim);
    // It registers again: a new incarnation, and new ids for every one of
    // its replicas; it catches up on every shard.
    let after = wait_for(
        &format!("node {victim} to run new replicas of the meta group and every shard"),
        Duration::from_secs(60),
        || async {
            let status = cluster.cluster_status(victim).await?;
            let replicas = status["replicas"].as_array()?;
            (replicas.len() == 4
                && replicas
                    .iter()
                    .all(|replica| replica["state"] == "Follower" || replica["state"] == "Leader"))
            .then_some(status)
        },
    )
    .await;
    let incarnation = node_record(&after, victim).unwrap()["incarnation"].as_u64();
    assert_eq!(incarnation, Some(2), "{after}");
    let now = own_replicas(&after);
    assert!(
        now.is_disjoint(&before),
        "old replica ids came back: before {before:?}, after {now:?}"
    );
    assert!(
        now.iter().all(|id| id > before.iter().max().unwrap()),
        "new ids come after every old one: {now:?} vs {before:?}"
    );
    let logs = probe.stop().await;
    // Every shard's new replica on the node holds the shard's data.
    wait_for(
        &format!("node {victim}'s replicas to hold every shard's key"),
        Duration::from_secs(60),
        || async {
            let status = cluster.cluster_status(victim).await?;
            let caught_up = status["replicas"].as_array()?.iter().all(|replica| {
                replica["group_id"] == 0 || replica["items"].as_u64().unwrap_or(0) >= 1
            });
            caught_up.then_some(())
        },
    )
    .await;
    // And the old ids are out of every group's membership.
    let survivor = if victim == 1 { 2 } else { 1 };
    let leader_view = cluster.cluster_status(survivor).await.unwrap();
    for replica in leader_view["replicas"].as_array().unwrap() {
        for member in replica["members"].as_array().unwrap() {
            let id = member["replica_id"].as_u64().unwrap();
            assert!(
                !before.contains(&id),
                "group {} still lists old replica {id}",
                replica["group_id"]
            );
        }
    }
    assert_nothing_lost(cluster.resp_addrs(), &logs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_cluster_comes_back_with_its_map_and_data() {
    let _turn = common::one_at_a_time().await;
    let mut cluster = Cluster::start(3, &["--shards", "4"]);
    let before = cluster.wait_ready(Duration::from_secs(60)).await;
    let keys = shard_keys(&before, "restart");
    let probe = Probe::start(cluster.resp_addrs(), keys, 2);
    probe.wait_acked(11).await;
    let logs = probe.stop().await;
    for id in 1..=3 {
        cluster.stop(id).await;
    }
    for id in 1..=3 {
        cluster.start_node(id);
    }
    let after = cluster.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(after["cluster_id"], before["cluster_id"]);
    assert!(after["map_version"].as_u64() >= before["map_version"].as_u64());
    let slots = |status: &serde_json::Value| -> Vec<(u64, serde_json::Value)> {
        status["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|shard| (shard["id"].as_u64().unwrap(), shard["slots"].clone()))
            .collect()
    };
    assert_eq!(
        slots(&after),
        slots(&before),
        "the same shards own the same slots"
    );
    assert_nothing_lost(cluster.resp_addrs(), &logs).await;
}

/// A shard left idle parks and its leader's lease (2 s) runs out; the next
/// write to that leader is served by it (the leader renews its lease with
/// a heartbeat round first), not redirected back to itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_to_a_long_parked_shard_is_served_by_its_leader() {
    let _turn = common::one_at_a_time().await;
    let cluster = Cluster::start(3, &["--shards", "3", "--idle-before-park-ms", "300"]);
    let status = cluster.wait_ready(Duration::from_secs(60)).await;
    let leaders = shard_leaders(&status);
    let keys = shard_keys(&status, "parked");
    // Every shard parked for longer than its leader lease
    // (election_timeout_max, 2 s), so every lease ran out.
    let parked_since = std::sync::Mutex::new(None::<Instant>);
    wait_for(
        "every shard to stay parked past its leader lease",
        Duration::from_secs(60),
        || async {
            let status = cluster.cluster_status(1).await?;
            let parked = status["shards"]
                .as_array()?
                .iter()
                .all(|shard| shard["parked"] == true);
            let mut since = parked_since.lock().unwrap();
            *since = if parked {
                Some(since.unwrap_or_else(Instant::now))
            } else {
                None
            };
            since
                .is_some_and(|at| at.elapsed() >= Duration::from_millis(2_500))
                .then_some(())
        },
    )
    .await;
    for (shard, key) in &keys {
        let mut leader = cluster.connect(leaders[shard]).await;
        let reply: redis::Value = redis::cmd("SET")
            .arg(key)
            .arg("after parking")
            .query_async(&mut leader)
            .await
            .unwrap_or_else(|error| panic!("shard {shard}: SET on its leader: {error}"));
        assert_eq!(reply, redis::Value::Okay, "shard {shard}");
    }
}
