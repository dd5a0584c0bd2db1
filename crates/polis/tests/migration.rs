//! Slots move between shards while a writer writes to them: every key
//! (its value, its expiry deadline, a hash's fields) arrives, ownership
//! changes once, DBSIZE over the shards counts each key once, and nothing
//! acknowledged is lost; bad requests are refused with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::client::FollowingClient;
use common::probe::{assert_nothing_lost, key_in, Probe};
use common::{wait_for, Cluster};
use redis::Value;

/// Runs `polis cluster ARGS` against node 1 and returns whether it
/// succeeded and what it printed.
fn polis_cluster(cluster: &Cluster, args: &[&str]) -> (bool, String) {
    let mut all = vec!["--node", cluster.node(1).admin.as_str()];
    all.extend_from_slice(args);
    common::polis_cluster(&all)
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

/// What one held key's writer saw.
struct Held {
    key: String,
    answered: u64,
    tryagain: u64,
    /// TRYAGAIN because the shard's leader was changing (an election or a
    /// leader transfer), not because of the freeze.
    leader_changes: u64,
    /// The last value a SET of it was acknowledged with.
    acked: Option<u64>,
}

/// SETs and GETs `key` in turn until `stop`, following MOVED by hand
/// (a cluster client would retry TRYAGAIN and hide it).
async fn count_tryagain(addrs: Vec<String>, key: String, stop: Arc<AtomicBool>) -> Held {
    let (mut answered, mut tryagain, mut leader_changes, mut acked) = (0, 0, 0, None);
    let mut addr = addrs[0].clone();
    let mut connection = None;
    for n in 0u64.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if connection.is_none() {
            let client = redis::Client::open(format!("redis://{addr}")).unwrap();
            connection = common::wait_for_opt(Duration::from_secs(10), || async {
                client.get_multiplexed_async_connection().await.ok()
            })
            .await;
        }
        let Some(open) = connection.as_mut() else {
            continue;
        };
        let cmd = if n % 2 == 0 {
            redis::cmd("SET").arg(&key).arg(n).clone()
        } else {
            redis::cmd("GET").arg(&key).clone()
        };
        match cmd.query_async::<Value>(open).await {
            Ok(_) => {
                answered += 1;
                if n % 2 == 0 {
                    acked = Some(n);
                }
            }
            Err(error) if error.code() == Some("TRYAGAIN") => {
                eprintln!("{key}:{n}: {error}");
                if error.to_string().contains("is changing leaders") {
                    leader_changes += 1;
                } else {
                    tryagain += 1;
                }
            }
            Err(error) => {
                if let Some((to, _)) = error.redirect_node() {
                    addr = to.to_owned();
                }
                connection = None;
            }
        }
    }
    Held {
        key,
        answered,
        tryagain,
        leader_changes,
        acked,
    }
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
    let _turn = common::one_at_a_time().await;
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
    // A hash of about 3 MB travels in parts (a chunk is 1 MiB), its
    // deadline with it.
    let big = key_in(0, 99, "big-hash");
    for batch in 0..20 {
        let mut hset = redis::cmd("HSET");
        hset.arg(&big);
        for field in batch * 1000..(batch + 1) * 1000 {
            hset.arg(format!("f{field}")).arg(format!("{field:0>100}"));
        }
        client
            .query_idempotent(&hset, Duration::from_secs(10))
            .await;
    }
    let expire = redis::cmd("EXPIRE").arg(&big).arg(3600).clone();
    client
        .query_idempotent(&expire, Duration::from_secs(10))
        .await;
    let total_keys = (moving.len() + staying.len() + 3) as i64;

    // Writers on a moving key and on a key of each other shard.
    let mut probed = BTreeMap::new();
    probed.insert(1, key_in(0, 99, "probe-moving"));
    probed.insert(2, key_in(5461, 10922, "probe-2"));
    probed.insert(3, key_in(10923, 16383, "probe-3"));
    let probe = Probe::start(cluster.resp_addrs(), probed, 3);
    probe.wait_acked(30).await;
    // Single-key commands on a moving slot are held through the freeze
    // and then answered (or redirected): never TRYAGAIN.
    let stop = Arc::new(AtomicBool::new(false));
    let held: Vec<_> = (0..8)
        .map(|n| {
            tokio::spawn(count_tryagain(
                cluster.resp_addrs(),
                key_in(0, 99, &format!("held-{n}")),
                stop.clone(),
            ))
        })
        .collect();

    let (moved, said) = polis_cluster(&cluster, &["migrate", "--slots", "0-99", "--to-shard", "2"]);
    assert!(moved, "{said}");
    assert!(said.contains("slots moved to shard 2"), "{said}");
    probe.wait_acked(60).await;
    let logs = probe.stop().await;
    stop.store(true, Ordering::SeqCst);
    let (mut answered, mut tryagain, mut leader_changes) = (0, 0, 0);
    for task in held {
        let held = task.await.unwrap();
        answered += held.answered;
        tryagain += held.tryagain;
        leader_changes += held.leader_changes;
        // Its last acknowledged SET is what the key holds: nothing a
        // source applied after the switch was dropped.
        if let Some(acked) = held.acked {
            assert_eq!(
                get(&mut client, &held.key).await,
                Value::BulkString(acked.to_string().into_bytes()),
                "{}",
                held.key
            );
        }
    }
    eprintln!(
        "held keys: {answered} answered, {tryagain} TRYAGAIN of the freeze, {leader_changes} of a leader change"
    );
    assert!(answered > 10, "{answered}");
    // A shard's leader may change meanwhile (an election under load): its
    // TRYAGAIN is the one every client retries, and not this test's
    // subject. The freeze must never answer one.
    assert_eq!(tryagain, 0, "single-key commands wait out the freeze");

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
    let hlen = client
        .query_idempotent(redis::cmd("HLEN").arg(&big), Duration::from_secs(10))
        .await;
    assert_eq!(hlen, Value::Int(20_000), "every part of the large hash");
    let field = client
        .query_idempotent(
            redis::cmd("HGET").arg(&big).arg("f19999"),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        field,
        Value::BulkString(format!("{:0>100}", 19_999).into_bytes())
    );
    let ttl = client
        .query_idempotent(redis::cmd("TTL").arg(&big), Duration::from_secs(10))
        .await;
    assert!(
        matches!(ttl, Value::Int(seconds) if seconds > 3500 && seconds <= 3600),
        "the large hash's deadline moved with it: {ttl:?}"
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
            // The three probe keys and the eight held keys.
            let total = dbsize_over_leaders(&cluster).await?;
            (total == total_keys + 11).then_some(total)
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

/// Returns `per_range` hash tags whose slots lie in `start..=end`, each
/// in another slot.
fn tags_in(start: u16, end: u16, per_range: usize) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    (0u64..)
        .map(|n| format!("t{n}"))
        .filter(|tag| {
            let slot = polis_types::key_hash_slot(format!("{{{tag}}}").as_bytes()).get();
            (start..=end).contains(&slot) && seen.insert(slot)
        })
        .take(per_range)
        .collect()
}

/// Loads `keys_per_tag` keys under each tag into shard 1 through its
/// leader, with pipelines; returns the tags.
async fn load(cluster: &Cluster, leader: u64, tags: &[String], keys_per_tag: usize) {
    let mut connection = cluster.connect(leader).await;
    let value = "v".repeat(100);
    for tag in tags {
        let mut pipe = redis::pipe();
        for n in 0..keys_per_tag {
            pipe.cmd("SET")
                .arg(format!("{{{tag}}}:{n}"))
                .arg(&value)
                .ignore();
        }
        let () = pipe.query_async(&mut connection).await.unwrap();
    }
}

/// Checks that every loaded key holds its value, with one MGET per tag.
async fn assert_loaded(cluster: &Cluster, tags: &[String], keys_per_tag: usize) {
    let mut client = FollowingClient::new(cluster.resp_addrs(), 0);
    let value = "v".repeat(100);
    for tag in tags {
        let mut mget = redis::cmd("MGET");
        for n in 0..keys_per_tag {
            mget.arg(format!("{{{tag}}}:{n}"));
        }
        let got = client
            .query_idempotent(&mget, Duration::from_secs(30))
            .await;
        let Value::Array(values) = got else {
            panic!("MGET answered {got:?}");
        };
        let missing = values
            .iter()
            .filter(|got| **got != Value::BulkString(value.clone().into_bytes()))
            .count();
        assert_eq!(
            missing, 0,
            "tag {tag}: {missing} of {keys_per_tag} keys lost"
        );
    }
}

/// Waits until migration `id`'s driver (the source leader) has sent some
/// keys but is still copying; returns its /status entry.
async fn wait_copying(cluster: &Cluster, source_shard: u64) -> serde_json::Value {
    wait_for(
        "the migration to be copying",
        Duration::from_secs(60),
        || async {
            let status = cluster.cluster_status(1).await?;
            let (leader, _) = polis_client::admin::shard_leader(&status, source_shard)?;
            let theirs = cluster.cluster_status(leader).await?;
            let migration = theirs["migrations"].as_array()?.first()?.clone();
            let progress = &migration["progress"];
            (progress["step"] == "copying" && progress["keys_sent"].as_u64()? > 0)
                .then_some(migration)
        },
    )
    .await
}

/// Waits until no migration is under way and `slot` belongs to `shard`.
async fn wait_moved(cluster: &Cluster, ask: u64, slot: u16, shard: u64) {
    wait_for(
        "the migration to end with the slots moved",
        Duration::from_secs(180),
        || async {
            let status = cluster.cluster_status(ask).await?;
            (status["migrations"].as_array()?.is_empty()
                && polis_client::admin::slot_owner(&status, slot) == Some(shard))
            .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_end_done_or_cancelled_through_kill_9_of_each_leader_and_nothing_is_lost() {
    let _turn = common::one_at_a_time().await;
    // The copy is slowed to 300 KB/s so that each migration (about 1.4 MB)
    // copies for seconds: long enough to kill a leader in the middle.
    let mut cluster = Cluster::start(3, &["--shards", "3", "--migration-bytes-per-sec", "300000"]);
    let status = cluster.wait_ready(Duration::from_secs(60)).await;
    let (leader, _) = polis_client::admin::shard_leader(&status, 1).unwrap();
    const KEYS_PER_TAG: usize = 100;
    let ranges: [(u16, u16); 4] = [(0, 999), (1000, 1999), (2000, 2999), (3000, 3999)];
    let tags: Vec<Vec<String>> = ranges
        .iter()
        .map(|(start, end)| tags_in(*start, *end, 100))
        .collect();
    for range_tags in &tags {
        load(&cluster, leader, range_tags, KEYS_PER_TAG).await;
    }
    let mut probed = BTreeMap::new();
    for (n, (start, end)) in ranges.iter().enumerate() {
        probed.insert(n as u64 + 1, key_in(*start, *end, "probe"));
    }
    probed.insert(9, key_in(12000, 12100, "probe-still"));
    let probe = Probe::start(cluster.resp_addrs(), probed, 4);
    probe.wait_acked(20).await;

    // Kill -9 the source's leader, the target's leader, then the meta
    // leader, each while a migration copies: each migration finishes.
    for (step, ((start, end), target)) in ranges.iter().zip([2u64, 3, 2]).enumerate() {
        let slots = format!("{start}-{end}");
        let source = 1;
        let (began, said) = polis_cluster(
            &cluster,
            &[
                "migrate",
                "--slots",
                &slots,
                "--to-shard",
                &target.to_string(),
                "--no-wait",
            ],
        );
        assert!(began, "{said}");
        wait_copying(&cluster, source).await;
        let status = cluster.cluster_status(1).await.unwrap();
        let victim = match step {
            0 => {
                polis_client::admin::shard_leader(&status, source)
                    .unwrap()
                    .0
            }
            1 => {
                polis_client::admin::shard_leader(&status, target)
                    .unwrap()
                    .0
            }
            _ => status["meta_leader"].as_u64().unwrap(),
        };
        eprintln!("migration of {slots}: kill -9 node {victim} while copying");
        cluster.kill9(victim);
        let ask = (1..=3).find(|id| *id != victim).unwrap();
        wait_moved(&cluster, ask, *start, target).await;
        cluster.start_node(victim);
        cluster.wait_ready(Duration::from_secs(60)).await;
    }

    // Cancelled while copying: the slots stay where they were; moved
    // afterwards, everything arrives.
    let (start, end) = ranges[3];
    let slots = format!("{start}-{end}");
    let (began, said) = polis_cluster(
        &cluster,
        &["migrate", "--slots", &slots, "--to-shard", "3", "--no-wait"],
    );
    assert!(began, "{said}");
    wait_copying(&cluster, 1).await;
    let (cancelled, said) = polis_cluster(&cluster, &["cancel-migrations"]);
    assert!(
        cancelled && said.contains("cancelled 1 migrations"),
        "{said}"
    );
    // Node 1 may have restarted lately: it learns of the cancel soon.
    let status = wait_for(
        "node 1 to see the migration cancelled",
        Duration::from_secs(30),
        || async {
            let status = cluster.cluster_status(1).await?;
            status["migrations"]
                .as_array()?
                .is_empty()
                .then_some(status)
        },
    )
    .await;
    assert_eq!(polis_client::admin::slot_owner(&status, start), Some(1));
    let (moved, said) = polis_cluster(&cluster, &["migrate", "--slots", &slots, "--to-shard", "3"]);
    assert!(moved, "{said}");

    probe.wait_acked(40).await;
    let logs = probe.stop().await;
    assert_nothing_lost(cluster.resp_addrs(), &logs).await;
    for range_tags in &tags {
        assert_loaded(&cluster, range_tags, KEYS_PER_TAG).await;
    }
    let loaded = (tags.len() * 100 * KEYS_PER_TAG) as i64;
    wait_for(
        "DBSIZE over the leaders to count every key once",
        Duration::from_secs(30),
        || async {
            let total = dbsize_over_leaders(&cluster).await?;
            (total == loaded + 5).then_some(total)
        },
    )
    .await;
}
