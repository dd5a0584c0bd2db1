//! A rolling restart (each node stopped and started again in turn, the
//! leader included) under a steady write load: the cluster keeps
//! acknowledging writes through every step, each restarted node catches
//! up, and no acknowledged write is lost. Then the same with SIGSTOP /
//! SIGCONT of the leader (a pause): the others elect a new leader, and
//! the paused one rejoins as a follower. And a rolling upgrade: the
//! same restarts, from a node that acts as the previous release to this
//! one, with the newest log entries enabled only once every node runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::client::FollowingClient;
use common::{wait_for, Cluster};
use nix::sys::signal::Signal;

struct Load {
    acked: Arc<Mutex<BTreeSet<String>>>,
    stop: Arc<AtomicBool>,
    writers: Vec<tokio::task::JoinHandle<()>>,
}

fn start_load(addrs: &[String], writers: usize) -> Load {
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers = (0..writers)
        .map(|writer| {
            let acked = acked.clone();
            let stop = stop.clone();
            let mut client = FollowingClient::new(addrs.to_vec(), writer % addrs.len());
            tokio::spawn(async move {
                for seq in 0u64..1_000_000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let key = format!("roll:{writer}:{seq}");
                    if client
                        .query(redis::cmd("SET").arg(&key).arg(seq), 10)
                        .await
                        .is_ok()
                    {
                        acked.lock().unwrap().insert(key);
                    }
                }
            })
        })
        .collect();
    Load {
        acked,
        stop,
        writers,
    }
}

impl Load {
    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `more` writes beyond the current count are acknowledged.
    async fn progress(&self, more: usize, during: &str) {
        let target = self.acked() + more;
        wait_for(
            &format!("{more} acknowledged writes {during}"),
            Duration::from_secs(60),
            || async { (self.acked() >= target).then_some(()) },
        )
        .await;
    }

    async fn stop(self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::SeqCst);
        for writer in self.writers {
            writer.await.unwrap();
        }
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }
}

async fn applied(cluster: &Cluster, id: u64) -> Option<u64> {
    cluster.status(id).await?["applied"].as_u64()
}

/// Waits until node `id` has applied everything the leader had committed
/// when the wait began.
async fn wait_caught_up(cluster: &Cluster, id: u64) {
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let committed = cluster.status(leader).await.unwrap()["committed"]
        .as_u64()
        .unwrap();
    wait_for(
        &format!("node {id} to apply index {committed}"),
        Duration::from_secs(60),
        || async { (applied(cluster, id).await? >= committed).then_some(()) },
    )
    .await;
}

async fn assert_all_present(cluster: &Cluster, addrs: &[String], acked: &BTreeSet<String>) {
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let mut client = FollowingClient::new(addrs.to_vec(), (leader - 1) as usize);
    let mut lost = Vec::new();
    for key in acked {
        let value = client
            .query_idempotent(redis::cmd("GET").arg(key), Duration::from_secs(30))
            .await;
        if value == redis::Value::Nil {
            lost.push(key.clone());
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_loses_nothing_and_keeps_serving() {
    let mut cluster = Cluster::start(3, &[]);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let addrs: Vec<String> = cluster.nodes.iter().map(|node| node.resp.clone()).collect();
    let load = start_load(&addrs, 4);
    load.progress(100, "before the restarts").await;
    for id in 1..=3 {
        cluster.stop(id).await;
        load.progress(50, &format!("while node {id} is down")).await;
        cluster.start_node(id);
        wait_caught_up(&cluster, id).await;
        load.progress(50, &format!("after node {id} restarted"))
            .await;
    }
    let acked = load.stop().await;
    println!("rolling restart: {} acknowledged writes", acked.len());
    assert_all_present(&cluster, &addrs, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_leader_is_replaced_and_rejoins_as_a_follower() {
    let cluster = Cluster::start(3, &[]);
    let old_leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let addrs: Vec<String> = cluster.nodes.iter().map(|node| node.resp.clone()).collect();
    let load = start_load(&addrs, 4);
    load.progress(100, "before the pause").await;
    cluster.signal(old_leader, Signal::SIGSTOP);
    let others: Vec<u64> = (1..=3).filter(|id| *id != old_leader).collect();
    let new_leader = wait_for(
        "a new leader among the others",
        Duration::from_secs(30),
        || async {
            for id in &others {
                if cluster.status(*id).await?["state"] == "Leader" {
                    return Some(*id);
                }
            }
            None
        },
    )
    .await;
    load.progress(50, "while the old leader is paused").await;
    cluster.signal(old_leader, Signal::SIGCONT);
    wait_for(
        "the old leader to follow again",
        Duration::from_secs(30),
        || async {
            let status = cluster.status(old_leader).await?;
            (status["state"] == "Follower").then_some(())
        },
    )
    .await;
    wait_caught_up(&cluster, old_leader).await;
    load.progress(50, "after the pause").await;
    let acked = load.stop().await;
    println!(
        "pause: leader {old_leader} paused, {new_leader} elected, {} acknowledged writes",
        acked.len()
    );
    assert_all_present(&cluster, &addrs, &acked).await;
}

/// Sends one restore request (a format-10 entry, the newest this binary
/// writes) for `key` to the leader of [`common::SHARD`]; returns the
/// status code and what the node said.
async fn restore_one(cluster: &Cluster, leader: u64, key: &str) -> (u16, String) {
    use polis_server::backup::RestoreChunk;
    use polis_store::{Entry, Value};
    let chunk = RestoreChunk::Keys(vec![(
        bytes::Bytes::from(key.to_owned()),
        Some(Entry::new(
            Value::String(bytes::Bytes::from_static(b"restored")),
            None,
            0,
        )),
    )]);
    let (code, _, body) = polis_client::admin::exchange(
        polis_client::admin::Method::POST,
        &cluster.node(leader).admin,
        &format!("/restore/shards/{}", common::SHARD),
        Some((
            "application/octet-stream",
            postcard::to_stdvec(&chunk).unwrap().into(),
        )),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    (code, String::from_utf8_lossy(&body).into_owned())
}

async fn cluster_version(cluster: &Cluster, id: u64) -> Option<u64> {
    cluster.cluster_status(id).await?["cluster_version"].as_u64()
}

/// A rolling upgrade under a write load: three nodes start as the
/// previous release does (they register log entry formats up to the one
/// before this binary's newest, `--entry-format-max`), then each stops and
/// starts again as this release, one at a time. No acknowledged write is
/// lost and writes go on through every step; the cluster keeps the older
/// format until the last node runs the new release, so an entry of the
/// newest format (a restored key) is refused with the error that says to
/// upgrade every node until then, and accepted after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_upgrade_loses_nothing_and_enables_new_entries_last() {
    let newest = u64::from(polis_cluster::ENTRY_FORMAT_MAX);
    let previous = (newest - 1).to_string();
    let mut cluster = Cluster::start(3, &["--entry-format-max", &previous]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    assert_eq!(cluster_version(&cluster, leader).await, Some(newest - 1));
    let addrs: Vec<String> = cluster.nodes.iter().map(|node| node.resp.clone()).collect();
    let load = start_load(&addrs, 4);
    load.progress(100, "before the upgrade").await;
    let (code, said) = restore_one(&cluster, leader, "upgrade:early").await;
    assert_eq!(code, 409, "{said}");
    assert!(said.contains("upgrade every node"), "{said}");

    cluster.set_extra_args(&[]);
    for id in 1..=3 {
        cluster.stop(id).await;
        load.progress(50, &format!("while node {id} is down")).await;
        cluster.start_node(id);
        wait_caught_up(&cluster, id).await;
        load.progress(50, &format!("after node {id} runs the new release"))
            .await;
        if id < 3 {
            let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
            assert_eq!(
                cluster_version(&cluster, leader).await,
                Some(newest - 1),
                "the cluster version rose with node {} still on the previous release",
                id + 1
            );
        }
    }
    let leader = wait_for(
        "the cluster version to reach the newest format",
        Duration::from_secs(30),
        || async {
            for id in 1..=3 {
                if cluster_version(&cluster, id).await == Some(newest) {
                    return Some(cluster.wait_for_leader(Duration::from_secs(30)).await);
                }
            }
            None
        },
    )
    .await;
    let (code, said) = restore_one(&cluster, leader, "upgrade:late").await;
    assert_eq!(code, 200, "{said}");
    let acked = load.stop().await;
    println!("rolling upgrade: {} acknowledged writes", acked.len());
    assert_all_present(&cluster, &addrs, &acked).await;
    let mut client = FollowingClient::new(addrs.clone(), 0);
    let restored = client
        .query_idempotent(
            redis::cmd("GET").arg("upgrade:late"),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(restored, redis::Value::BulkString(b"restored".to_vec()));
}
