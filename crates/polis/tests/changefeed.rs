//! The change feed end to end: set and read through the admin API
//! (`GET`/`PUT /changefeeds`), and moved slots under APPENDs: the slot of
//! the written keys, then the slot of the feed stream itself, while
//! writers append; the feed must still list every write of each key once,
//! in the order it applied (the change-feed checker of `polis verify`
//! judges the history).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{wait_for, Cluster};
use polis_client::admin;
use polis_client::resp::{Client, Outcome};
use polis_verify::check::changefeed::check;
use polis_verify::history::{Kind, Op};
use polis_verify::recorder::Recorder;
use polis_verify::workload::changefeed;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn admins(cluster: &Cluster) -> Vec<String> {
    cluster
        .nodes
        .iter()
        .map(|node| node.admin.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_feeds_are_set_and_shown_through_the_admin_api() {
    let _turn = common::one_at_a_time().await;
    let cluster = Cluster::start(3, &["--shards", "3"]);
    cluster.wait_ready(Duration::from_secs(60)).await;
    let admins = admins(&cluster);

    let before = admin::changefeeds(&admins[0]).await.unwrap();
    assert_eq!(before["version"], 0, "{before}");
    assert_eq!(before["feeds"], serde_json::json!([]), "{before}");
    assert_eq!(before["replicas"].as_array().unwrap().len(), 3, "{before}");

    let set = admin::set_changefeeds(&admins[1], &[("orders:", "{feed}orders")])
        .await
        .unwrap();
    let version = set["version"].as_u64().unwrap();
    assert!(version > 0, "{set}");
    let feeds = serde_json::json!([{ "prefix": "orders:", "stream": "{feed}orders" }]);
    assert_eq!(set["feeds"], feeds, "{set}");
    // Every replica on every node takes them.
    wait_for(
        "every replica to hold the feeds",
        Duration::from_secs(30),
        || async {
            for addr in &admins {
                let view = admin::changefeeds(addr).await.ok()?;
                let same = view["version"] == version && view["feeds"] == feeds;
                (same && admin::changefeeds_adopted(&view)).then_some(())?;
            }
            Some(())
        },
    )
    .await;
    // CONFIG GET shows what the API set, and writes reach the stream.
    let mut client = Client::new(cluster.resp_addrs(), 2, Duration::from_secs(5));
    let mut get = redis::cmd("CONFIG");
    get.arg("GET").arg("changefeeds");
    let shown = client.call(&get).await;
    assert!(
        format!("{shown:?}").contains("orders: {feed}orders"),
        "{shown:?}"
    );
    let mut set_key = redis::cmd("SET");
    set_key.arg("orders:1").arg("paid");
    assert!(matches!(client.call(&set_key).await, Outcome::Ok(_)));
    let mut xrange = redis::cmd("XRANGE");
    xrange.arg("{feed}orders").arg("-").arg("+");
    let entries = wait_for(
        "the write's event in the stream",
        Duration::from_secs(30),
        || async {
            let mut reader = Client::new(cluster.resp_addrs(), 0, Duration::from_secs(5));
            let Outcome::Ok(entries) = reader.call(&xrange).await else {
                return None;
            };
            let text = format!("{entries:?}");
            text.contains("orders:1").then_some(text)
        },
    )
    .await;
    for field in ["\"set\"", "\"paid\"", "\"shard\"", "\"index\""] {
        assert!(entries.contains(field), "{field} in {entries}");
    }

    // What the text form cannot carry is refused; an empty list removes
    // every feed, with a newer version.
    let bad = serde_json::json!([{ "prefix": "a b", "stream": "s" }]);
    let (code, _) = admin::put_json(&admins[0], "/changefeeds", &bad, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(code, 400);
    let cleared = admin::set_changefeeds(&admins[2], &[]).await.unwrap();
    assert!(cleared["version"].as_u64().unwrap() > version, "{cleared}");
    wait_for("the feeds removed", Duration::from_secs(30), || async {
        let view = admin::changefeeds(&admins[0]).await.ok()?;
        (view["feeds"] == serde_json::json!([]) && admin::changefeeds_adopted(&view)).then_some(())
    })
    .await;
}

fn seed() -> u64 {
    std::env::var("POLIS_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                .into()
        })
}

/// Writers APPENDing unique tokens to a few keys, each APPEND recorded.
struct Appenders {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Appenders {
    fn start(addrs: &[String], keys: &[String], recorder: &Recorder, seed: u64) -> Self {
        const WRITERS: u64 = 4;
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let tasks = (0..WRITERS)
            .map(|writer| {
                let (stop, acked) = (stop.clone(), acked.clone());
                let (keys, recorder) = (keys.to_vec(), recorder.clone());
                let mut client =
                    Client::new(addrs.to_vec(), writer as usize, Duration::from_secs(3));
                tokio::spawn(async move {
                    let mut rng = StdRng::seed_from_u64(seed ^ writer.wrapping_mul(0x9e37_79b9));
                    let mut process = writer;
                    for n in 1u64.. {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let key = &keys[rng.random_range(0..keys.len())];
                        let token = format!("{writer}.{n},");
                        match changefeed::append(&mut client, &recorder, process, key, &token).await
                        {
                            Kind::Ok => {
                                acked.fetch_add(1, Ordering::SeqCst);
                            }
                            // A new process after an unknown outcome.
                            Kind::Info => process += WRITERS,
                            Kind::Fail | Kind::Invoke => {}
                        }
                    }
                })
            })
            .collect();
        Self { stop, acked, tasks }
    }

    /// Waits until `more` APPENDs more than now are acknowledged.
    async fn wait_for_more(&self, more: usize) {
        let target = self.acked.load(Ordering::SeqCst) + more;
        wait_for(
            &format!("{target} acknowledged APPENDs"),
            Duration::from_secs(60),
            || async { (self.acked.load(Ordering::SeqCst) >= target).then_some(()) },
        )
        .await;
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

/// Moves `slot` to another shard with CLUSTER MIGRATESLOTS (naming that
/// shard's leader) and waits until it has moved; returns the shards it
/// moved from and to.
async fn move_slot(cluster: &Cluster, slot: u16) -> (u64, u64) {
    let admins = admins(cluster);
    // Settled: each node leads one shard, so naming a node names a shard.
    let status = admin::wait_until_settled(&admins, Duration::from_secs(60))
        .await
        .unwrap();
    let from = admin::slot_owner(&status, slot).unwrap();
    let (to, leader) = common::shard_leaders(&status)
        .into_iter()
        .find(|(shard, _)| *shard != from)
        .unwrap();
    let mut client = Client::new(cluster.resp_addrs(), 0, Duration::from_secs(10));
    let mut migrate = redis::cmd("CLUSTER");
    migrate
        .arg("MIGRATESLOTS")
        .arg("SLOTSRANGE")
        .arg(slot)
        .arg(slot)
        .arg("NODE")
        .arg(format!("{leader:040x}"));
    let answer = client.call(&migrate).await;
    assert!(matches!(answer, Outcome::Ok(_)), "{answer:?}");
    let mut under_way = redis::cmd("CLUSTER");
    under_way.arg("GETSLOTMIGRATIONS");
    wait_for(
        &format!("slot {slot} to move from shard {from} to shard {to}"),
        Duration::from_secs(120),
        || async {
            let status = cluster.cluster_status(1).await?;
            let Outcome::Ok(redis::Value::Array(migrations)) =
                Client::new(cluster.resp_addrs(), 0, Duration::from_secs(5))
                    .call(&under_way)
                    .await
            else {
                return None;
            };
            (admin::slot_owner(&status, slot) == Some(to) && migrations.is_empty()).then_some(())
        },
    )
    .await;
    println!("slot {slot} moved from shard {from} to shard {to}");
    (from, to)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feed_keeps_each_keys_writes_in_order_while_their_slot_and_the_streams_move() {
    let _turn = common::one_at_a_time().await;
    let seed = seed();
    println!("seed {seed} (POLIS_TEST_SEED={seed} replays the writers' choices)");
    let cluster = Cluster::start(3, &["--shards", "3"]);
    cluster.wait_ready(Duration::from_secs(60)).await;
    // The moves below start from the settled layout. Waiting for it here,
    // before any writer runs, keeps the writes to what the moves need:
    // writers running while the balancer settles (ten seconds and more)
    // made values of thousands of tokens, whose feed events (each with
    // the key's value) filled the log with hundreds of megabytes.
    admin::wait_until_settled(&admins(&cluster), Duration::from_secs(60))
        .await
        .unwrap();
    let (prefix, stream) = ("moving:", "{feedmove}stream");
    changefeed::configure(
        &cluster.resp_addrs(),
        &admins(&cluster),
        prefix,
        stream,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    // Every key in the slot of {m}.
    let keys: Vec<String> = (0..4).map(|n| format!("{prefix}{{m}}k{n}")).collect();
    let keys_slot = polis_types::key_hash_slot(keys[0].as_bytes()).get();
    let stream_slot = polis_types::key_hash_slot(stream.as_bytes()).get();
    assert_ne!(keys_slot, stream_slot);

    let recorder = Recorder::new();
    let appenders = Appenders::start(&cluster.resp_addrs(), &keys, &recorder, seed);
    appenders.wait_for_more(200).await;
    let (keys_from, keys_to) = move_slot(&cluster, keys_slot).await;
    appenders.wait_for_more(200).await;
    move_slot(&cluster, stream_slot).await;
    appenders.wait_for_more(200).await;
    appenders.stop().await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    assert!(
        changefeed::wait_drained(&admins(&cluster), deadline).await,
        "the outboxes did not empty"
    );
    let mut client = Client::new(cluster.resp_addrs(), 0, Duration::from_secs(5));
    changefeed::final_read(&mut client, &recorder, stream, 1 << 40)
        .await
        .unwrap();
    let events = recorder.events();
    let report = check(&events);
    println!("{report:#?}");
    assert!(report.is_valid(), "seed {seed}: {report:#?}");
    assert!(report.ok >= 600, "{report:#?}");
    // The keys' events came from both shards, in one order per key.
    let shards: std::collections::BTreeSet<u64> = events
        .iter()
        .filter_map(|event| match (&event.kind, &event.op) {
            (Kind::Ok, Op::FeedRead { entries, .. }) => entries.clone(),
            _ => None,
        })
        .flatten()
        .map(|entry| entry.shard)
        .collect();
    assert_eq!(
        shards,
        [keys_from, keys_to].into_iter().collect(),
        "seed {seed}"
    );
}
