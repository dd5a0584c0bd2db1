//! maxmemory on a real cluster: three nodes and one shard, so every node
//! holds a replica of every key and the shard's leader chooses what goes.
//! For each of Redis's eight policies the keyspace is filled past a small
//! limit (set with CONFIG SET on every node, as Redis's limit is per
//! node), and the test checks that the memory figure stays within the
//! limit, that the policy evicted what it should, that `evicted_keys`
//! counts them, and that every replica holds the same keys afterwards.
//!
//! The overshoot allowed while keys are written: a pipeline of writes is
//! admitted at once, and a write goes ahead while the node is at most
//! `maxmemory / 64` over and eviction is making progress (as Redis admits
//! commands while its eviction runs in the background); so the figure may
//! pass the limit by that slack plus one pipeline of keys. Once writes
//! stop, every node settles within the limit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{wait_for, Cluster, SHARD};
use redis::aio::MultiplexedConnection;
use redis::Value;

const LIMIT_BYTES: u64 = 1 << 20;
const VALUE_BYTES: usize = 1000;
/// Writes per pipeline.
const BATCH: usize = 50;
/// What one key of this test counts for, at most (its slot, key, value
/// and deadline).
const KEY_BYTES_MAX: u64 = 1_400;
const OVERSHOOT_BYTES: u64 = LIMIT_BYTES / 64 + BATCH as u64 * KEY_BYTES_MAX;
const SETTLE: Duration = Duration::from_secs(30);

fn key(group: &str, index: usize) -> String {
    // One hash tag: one slot, so MGET reads them all at once.
    format!("{{e}}{group}:{index:04}")
}

fn keys(group: &str, count: usize) -> Vec<String> {
    (0..count).map(|index| key(group, index)).collect()
}

/// A cluster and a connection to its shard's leader.
struct Bench {
    cluster: Cluster,
    leader: MultiplexedConnection,
    /// The largest figure the leader reported while keys were written.
    peak_bytes: u64,
}

async fn info_field(connection: &mut MultiplexedConnection, section: &str, field: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(connection)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
}

impl Bench {
    /// Empties the keyspace and sets `parameters` on every node.
    async fn prepare(&mut self, parameters: &[(&str, &str)]) {
        let _: () = redis::cmd("FLUSHALL")
            .query_async(&mut self.leader)
            .await
            .unwrap();
        for node in 1..=3 {
            let mut connection = self.cluster.connect(node).await;
            for (name, value) in parameters {
                let _: () = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg(*name)
                    .arg(*value)
                    .query_async(&mut connection)
                    .await
                    .unwrap();
            }
        }
    }

    async fn used_memory(&mut self) -> u64 {
        info_field(&mut self.leader, "memory", "used_memory").await
    }

    async fn evicted_keys(&mut self) -> u64 {
        info_field(&mut self.leader, "stats", "evicted_keys").await
    }

    /// Writes `keys` in pipelines (with a deadline `ttl_secs` away, if
    /// given), checking the leader's figure after each.
    async fn write(&mut self, keys: &[String], ttl_secs: impl Fn(usize) -> Option<u64>) {
        let value = "v".repeat(VALUE_BYTES);
        for (batch, chunk) in keys.chunks(BATCH).enumerate() {
            let mut pipe = redis::pipe();
            for (offset, key) in chunk.iter().enumerate() {
                let command = pipe.cmd("SET").arg(key).arg(&value);
                if let Some(ttl) = ttl_secs(batch * BATCH + offset) {
                    command.arg("EX").arg(ttl);
                }
            }
            let _: Vec<Value> = pipe.query_async(&mut self.leader).await.unwrap();
            let used = self.used_memory().await;
            self.peak_bytes = self.peak_bytes.max(used);
            assert!(
                used <= LIMIT_BYTES + OVERSHOOT_BYTES,
                "used_memory {used} past the limit {LIMIT_BYTES} and its slack"
            );
        }
    }

    /// Waits until every node is within the limit and every replica has
    /// applied what the leader has; returns which of `keys` the leader
    /// holds, after checking each follower holds the same.
    async fn settle(&mut self, keys: &[String]) -> Vec<bool> {
        for node in 1..=3 {
            let connection = self.cluster.connect(node).await;
            wait_for(&format!("node {node} within maxmemory"), SETTLE, || {
                let mut connection = connection.clone();
                async move {
                    let used = info_field(&mut connection, "memory", "used_memory").await;
                    (used <= LIMIT_BYTES).then_some(())
                }
            })
            .await;
        }
        let cluster = &self.cluster;
        wait_for(
            "every replica to apply the same entries",
            SETTLE,
            || async {
                let mut applied = BTreeSet::new();
                let mut items = BTreeSet::new();
                for node in 1..=3 {
                    let status = cluster.replica_status(node, SHARD).await?;
                    applied.insert(status["applied"].as_u64()?);
                    items.insert(status["items"].as_u64()?);
                }
                (applied.len() == 1 && items.len() == 1).then_some(())
            },
        )
        .await;
        let mut held = Vec::new();
        for node in 1..=3 {
            held.push(present_on(&self.cluster, node, keys).await);
        }
        assert!(
            held.iter().all(|copy| *copy == held[0]),
            "the replicas hold different keys"
        );
        held.remove(0)
    }
}

/// Returns which of `keys` node `node`'s own replica holds (READONLY).
async fn present_on(cluster: &Cluster, node: u64, keys: &[String]) -> Vec<bool> {
    let mut connection = cluster.connect(node).await;
    let _: () = redis::cmd("READONLY")
        .query_async(&mut connection)
        .await
        .unwrap();
    let values: Vec<Value> = redis::cmd("MGET")
        .arg(keys)
        .query_async(&mut connection)
        .await
        .unwrap();
    values
        .iter()
        .map(|value| !matches!(value, Value::Nil))
        .collect()
}

fn survival(held: &[bool], range: std::ops::Range<usize>) -> f64 {
    let len = range.len();
    held[range].iter().filter(|held| **held).count() as f64 / len as f64
}

/// allkeys-lru and allkeys-lfu: 500 keys, the first 100 of them read
/// (LFU: five times, with lfu-log-factor 0 so every read counts), then
/// more keys: 500 (LRU: about a third of the keys not read go) or 900
/// (LFU: the keys not read and the new ones share the evictions).
async fn recent_and_frequent_keys_survive(bench: &mut Bench, policy: &str) {
    bench
        .prepare(&[("maxmemory-policy", policy), ("lfu-log-factor", "0")])
        .await;
    let evicted_before = bench.evicted_keys().await;
    let first = keys("a", 500);
    bench.write(&first, |_| None).await;
    if policy == "allkeys-lru" {
        // The LRU clock must move on, so that reads stand out.
        let last = first[499].clone();
        let leader = bench.leader.clone();
        wait_for("the first keys to be idle a second", SETTLE, || {
            let (mut leader, last) = (leader.clone(), last.clone());
            async move {
                let idle: i64 = redis::cmd("OBJECT")
                    .arg("IDLETIME")
                    .arg(&last)
                    .query_async(&mut leader)
                    .await
                    .ok()?;
                (idle >= 1).then_some(())
            }
        })
        .await;
    }
    let reads = if policy == "allkeys-lfu" { 5 } else { 1 };
    for _ in 0..reads {
        let _: Vec<Value> = redis::cmd("MGET")
            .arg(&first[..100])
            .query_async(&mut bench.leader)
            .await
            .unwrap();
    }
    let lfu = policy == "allkeys-lfu";
    let later = keys("f", if lfu { 900 } else { 500 });
    bench.write(&later, |_| None).await;
    let mut all = first.clone();
    all.extend(later);
    let held = bench.settle(&all).await;
    let present = held.iter().filter(|held| **held).count();
    let evicted = bench.evicted_keys().await - evicted_before;
    assert_eq!(
        evicted,
        (all.len() - present) as u64,
        "{policy}: evicted_keys"
    );
    assert!(evicted > 50, "{policy} evicted only {evicted} keys");
    let read = survival(&held, 0..100);
    // LRU: the keys not read are the oldest; LFU: they and the new keys
    // share the lowest counter.
    let unread = if lfu {
        survival(&held, 100..all.len())
    } else {
        survival(&held, 100..500)
    };
    println!("{policy}: {evicted} evicted; survived: read {read:.2}, not read {unread:.2}");
    // Five samples per key evicted make an approximation: when neither the
    // samples nor the pool hold a key of the oldest group, a younger one
    // goes; with the keys not read four in ten of the keyspace, that is
    // rare.
    assert!(
        read >= 0.9,
        "{policy}: only {read:.2} of the keys read survived"
    );
    assert!(
        read - unread >= 0.2,
        "{policy}: keys read survived {read:.2}, keys not read {unread:.2}"
    );
}

/// allkeys-random: keys of both groups go.
async fn random_keys_go(bench: &mut Bench) {
    bench
        .prepare(&[("maxmemory-policy", "allkeys-random")])
        .await;
    let evicted_before = bench.evicted_keys().await;
    let all = keys("r", 1_000);
    bench.write(&all, |_| None).await;
    let held = bench.settle(&all).await;
    let present = held.iter().filter(|held| **held).count();
    let evicted = bench.evicted_keys().await - evicted_before;
    assert_eq!(evicted, (all.len() - present) as u64, "allkeys-random");
    assert!(evicted > 50, "allkeys-random evicted only {evicted} keys");
    let (early, late) = (survival(&held, 0..500), survival(&held, 500..1_000));
    println!("allkeys-random: {evicted} evicted; survived: early {early:.2}, late {late:.2}");
    assert!(early < 1.0 && late < 1.0, "random keys of both halves go");
}

/// The volatile policies: 400 keys with deadlines among 600 without;
/// only keys with deadlines go, volatile-ttl's nearest first. Then
/// writes until nothing may go: -OOM.
async fn only_keys_with_deadlines_go(bench: &mut Bench, policy: &str) {
    bench
        .prepare(&[("maxmemory-policy", policy), ("lfu-log-factor", "10")])
        .await;
    let evicted_before = bench.evicted_keys().await;
    let volatile = keys("v", 400);
    // Deadlines an hour or more away, in no order of the keys.
    let ttl = |index: usize| 3_600 + ((index * 7_919) % 400) as u64 * 10;
    bench.write(&volatile, |index| Some(ttl(index))).await;
    let plain = keys("p", 600);
    bench.write(&plain, |_| None).await;
    let mut all = volatile.clone();
    all.extend(plain.iter().cloned());
    let held = bench.settle(&all).await;
    let present = held.iter().filter(|held| **held).count();
    let evicted = bench.evicted_keys().await - evicted_before;
    assert_eq!(
        evicted,
        (all.len() - present) as u64,
        "{policy}: evicted_keys"
    );
    assert!(evicted > 50, "{policy} evicted only {evicted} keys");
    assert_eq!(
        survival(&held, 400..1_000),
        1.0,
        "{policy} evicted keys without a deadline"
    );
    if policy == "volatile-ttl" {
        let gone = (0..400).filter(|index| !held[*index]).map(ttl).max();
        let kept = (0..400).filter(|index| held[*index]).map(ttl).min();
        println!("volatile-ttl: farthest deadline evicted {gone:?}, nearest kept {kept:?}");
        assert!(
            gone < kept,
            "volatile-ttl left a nearer deadline than one it took"
        );
    }
    // Past the keys with deadlines, nothing may go: writes get -OOM, and
    // every key without a deadline is still there.
    let more = keys("q", 600);
    let mut refused = None;
    for key in &more {
        let reply: redis::RedisResult<()> = redis::cmd("SET")
            .arg(key)
            .arg("v".repeat(VALUE_BYTES))
            .query_async(&mut bench.leader)
            .await;
        if let Err(error) = reply {
            refused = Some(error);
            break;
        }
    }
    let error = refused.unwrap_or_else(|| panic!("{policy}: no -OOM once nothing may go"));
    assert_eq!(error.code(), Some("OOM"), "{policy}: {error}");
    let held = present_on(&bench.cluster, 1, &plain).await;
    assert!(held.iter().all(|held| *held), "{policy}: a plain key went");
    let left = present_on(&bench.cluster, 1, &volatile).await;
    assert!(
        left.iter().all(|held| !*held),
        "{policy}: -OOM while keys with deadlines were left"
    );
    println!("{policy}: {evicted} evicted, then -OOM once no key with a deadline was left");
}

/// noeviction: writes get -OOM at the limit; reads and deletes go on,
/// and a delete makes room again.
async fn noeviction_refuses_writes(bench: &mut Bench) {
    bench.prepare(&[("maxmemory-policy", "noeviction")]).await;
    let evicted_before = bench.evicted_keys().await;
    let mut written = Vec::new();
    let mut refused = None;
    for index in 0..2_000 {
        let key = key("n", index);
        let reply: redis::RedisResult<()> = redis::cmd("SET")
            .arg(&key)
            .arg("v".repeat(VALUE_BYTES))
            .query_async(&mut bench.leader)
            .await;
        match reply {
            Ok(()) => written.push(key),
            Err(error) => {
                refused = Some(error);
                break;
            }
        }
    }
    let error = refused.expect("noeviction: no -OOM past the limit");
    assert_eq!(error.code(), Some("OOM"), "{error}");
    assert_eq!(
        error.detail(),
        Some("command not allowed when used memory > 'maxmemory'.")
    );
    assert!(bench.used_memory().await > LIMIT_BYTES);
    let value: Option<String> = redis::cmd("GET")
        .arg(&written[0])
        .query_async(&mut bench.leader)
        .await
        .unwrap();
    assert_eq!(value.map(|value| value.len()), Some(VALUE_BYTES));
    let deleted: u64 = redis::cmd("DEL")
        .arg(&written[..20])
        .query_async(&mut bench.leader)
        .await
        .unwrap();
    assert_eq!(deleted, 20);
    let _: () = redis::cmd("SET")
        .arg(key("n", 9_999))
        .arg("small")
        .query_async(&mut bench.leader)
        .await
        .unwrap();
    assert_eq!(
        bench.evicted_keys().await,
        evicted_before,
        "noeviction evicted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_policy_keeps_the_nodes_within_maxmemory() {
    let _turn = common::one_at_a_time().await;
    let limit = LIMIT_BYTES.to_string();
    let cluster = Cluster::start(3, &["--maxmemory", &limit, "--maxmemory-samples", "5"]);
    let leader = cluster.wait_for_leader(Duration::from_secs(60)).await;
    let connection = cluster.connect(leader).await;
    let mut bench = Bench {
        cluster,
        leader: connection,
        peak_bytes: 0,
    };
    for policy in ["allkeys-lru", "allkeys-lfu"] {
        recent_and_frequent_keys_survive(&mut bench, policy).await;
    }
    random_keys_go(&mut bench).await;
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        only_keys_with_deadlines_go(&mut bench, policy).await;
    }
    noeviction_refuses_writes(&mut bench).await;
    println!(
        "largest figure while writing: {} bytes, {} over the limit of {LIMIT_BYTES} (allowed {OVERSHOOT_BYTES})",
        bench.peak_bytes,
        bench.peak_bytes.saturating_sub(LIMIT_BYTES)
    );
}
