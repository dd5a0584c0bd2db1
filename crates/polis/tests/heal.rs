//! A node that comes back from a partition does not depose a healthy
//! leader: while cut off it asks first whether it could win (pre-vote,
//! Raft thesis section 9.6) instead of raising its term, so after the heal
//! no shard changes leader or term and none stops serving for more than
//! half a second. Measured in a single group and across 32 shards.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::probe::{assert_nothing_lost, Probe, ShardLog};
use common::{shard_keys, shard_leaders, shard_terms, wait_for, Cluster};

/// The longest a shard may go without an acknowledged write after the
/// heal.
const GAP_AFTER_HEAL_MAX: Duration = Duration::from_millis(500);
/// How long the partition holds (at least), as the probe measures it.
const PARTITION_MIN: Duration = Duration::from_secs(6);
/// How long after the heal leaders and gaps are watched.
const WATCHED_AFTER_HEAL: Duration = Duration::from_secs(5);

/// Returns true when every log acknowledged writes from `from` to at least
/// `until` after it.
fn acked_through(logs: &BTreeMap<u64, ShardLog>, from: Instant, span: Duration) -> bool {
    logs.values()
        .all(|log| log.acked_at.last().is_some_and(|last| *last >= from + span))
}

async fn partition_a_follower_and_heal(shards: u64, writers: usize) {
    let _turn = common::one_at_a_time().await;
    let cluster = Cluster::start(
        3,
        &["--shards", &shards.to_string(), "--enable-fault-injection"],
    );
    let status = cluster.wait_ready(Duration::from_secs(90)).await;
    // A node that leads the meta group is no follower: isolate another.
    let meta = status["meta_leader"].as_u64().unwrap();
    let leaders = shard_leaders(&status);
    let isolated = (1..=3u64)
        .filter(|node| *node != meta)
        .min_by_key(|node| leaders.values().filter(|leader| *leader == node).count())
        .unwrap();
    let keys = shard_keys(&status, "heal");
    let probe = Probe::start(cluster.resp_addrs(), keys, writers);
    probe.wait_acked(0).await;

    let cut_at = Instant::now();
    cluster.chaos(&["isolate", &isolated.to_string()]);
    // Hold the partition while the majority serves, until its leaders
    // settle: the shards the isolated node led have failed over and the
    // meta leader's balancer has nothing left to move.
    let observer = (1..=3u64).find(|node| *node != isolated).unwrap();
    let stable_since: Mutex<Option<(BTreeMap<u64, u64>, Instant)>> = Mutex::new(None);
    let before_heal = wait_for(
        "the majority serving with settled leaders",
        Duration::from_secs(90),
        || async {
            let status = cluster.cluster_status(observer).await?;
            let meta = status["meta_leader"].as_u64()?;
            let balanced = cluster.cluster_status(meta).await?["leader_moves_pending"] == 0;
            let leaders = shard_leaders(&status);
            let settled = status["state"] == "ok"
                && balanced
                && leaders.values().all(|leader| *leader != isolated);
            let now = Instant::now();
            let mut stable_since = stable_since.lock().unwrap();
            match &*stable_since {
                Some((previous, since)) if *previous == leaders && settled => {
                    let long_enough = now.duration_since(*since) >= Duration::from_secs(3);
                    (long_enough && acked_through(&probe.snapshot(), cut_at, PARTITION_MIN))
                        .then_some(status)
                }
                _ => {
                    *stable_since = settled.then_some((leaders, now));
                    None
                }
            }
        },
    )
    .await;
    let leaders_before = shard_leaders(&before_heal);
    let terms_before = shard_terms(&before_heal);

    let healed_at = Instant::now();
    cluster.chaos(&["heal"]);
    wait_for(
        "writes acknowledged for a while after the heal",
        Duration::from_secs(60),
        || async { acked_through(&probe.snapshot(), healed_at, WATCHED_AFTER_HEAL).then_some(()) },
    )
    .await;
    let after = cluster.cluster_status(observer).await.unwrap();
    let logs = probe.stop().await;

    assert_eq!(
        shard_leaders(&after),
        leaders_before,
        "a shard changed leader after node {isolated} came back"
    );
    assert_eq!(
        shard_terms(&after),
        terms_before,
        "a shard's term changed after node {isolated} came back (an election ran)"
    );
    for (shard, log) in &logs {
        let gap = log.longest_gap(healed_at, healed_at + WATCHED_AFTER_HEAL);
        assert!(
            gap <= GAP_AFTER_HEAL_MAX,
            "shard {shard} went {gap:?} without an acknowledged write after the heal"
        );
    }
    assert_nothing_lost(cluster.resp_addrs(), &logs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_healed_follower_deposes_no_leader_of_a_single_group() {
    partition_a_follower_and_heal(1, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_healed_follower_deposes_no_leader_across_32_shards() {
    partition_a_follower_and_heal(32, 16).await;
}
