//! Cache limits per namespace on a real cluster of three nodes and one
//! shard (every node holds every key). `cache:` is kept within 256 KiB by
//! allkeys-lru and `fixed:` within 64 KiB by noeviction, set through
//! `polis namespace set`; other keys have no limit. Writing far past both
//! limits, the test checks that each namespace settles within its limit
//! on every node (GET /namespaces shows each node's figure), that the
//! recently written keys of `cache:` stayed, that no key outside it was
//! evicted, and that `fixed:` refuses writes with an -OOM naming it, in
//! MULTI too, until keys are deleted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::time::Duration;

use common::eventual::namespace;
use common::{wait_for, Cluster};
use redis::aio::MultiplexedConnection;
use redis::Value;

const CACHE_LIMIT: u64 = 256 << 10;
const FIXED_LIMIT: u64 = 64 << 10;
const VALUE_BYTES: usize = 1000;
const KEYS: usize = 1_000;
const BATCH: usize = 50;
const SETTLE: Duration = Duration::from_secs(30);

/// Returns node `id`'s figure for the namespace of `prefix` (GET
/// /namespaces `used_bytes`).
async fn used_bytes(cluster: &Cluster, id: u64, prefix: &str) -> Option<u64> {
    let (code, body) = polis_client::admin::get(
        &cluster.node(id).admin,
        "/namespaces",
        Duration::from_secs(5),
    )
    .await
    .ok()?;
    if code != 200 {
        return None;
    }
    let namespaces: Vec<serde_json::Value> = serde_json::from_slice(&body).ok()?;
    namespaces
        .iter()
        .find(|namespace| namespace["prefix"] == prefix)
        .and_then(|namespace| namespace["used_bytes"].as_u64())
}

async fn present(connection: &mut MultiplexedConnection, keys: &[String]) -> Vec<bool> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(BATCH) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.cmd("EXISTS").arg(key);
        }
        let answers: Vec<i64> = pipe.query_async(connection).await.unwrap();
        found.extend(answers.into_iter().map(|count| count == 1));
    }
    found
}

async fn write(connection: &mut MultiplexedConnection, keys: &[String]) -> Vec<Value> {
    let value = "v".repeat(VALUE_BYTES);
    let mut answers = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(BATCH) {
        let mut pipe = redis::pipe();
        for key in chunk {
            pipe.cmd("SET").arg(key).arg(&value);
        }
        let replies: Vec<Value> = pipe.query_async(connection).await.unwrap();
        answers.extend(replies);
    }
    answers
}

fn keys(prefix: &str) -> Vec<String> {
    (0..KEYS)
        .map(|index| format!("{prefix}{index:04}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_namespaces_keep_within_their_own_limits() {
    let _turn = common::one_at_a_time().await;
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(60)).await;
    let mut connection = cluster.connect(leader).await;
    let cache_limit = CACHE_LIMIT.to_string();
    namespace(
        &cluster,
        &[
            "set",
            "cache:",
            "--consistency",
            "strong",
            "--maxmemory",
            &format!("{}kb", CACHE_LIMIT >> 10),
            "--maxmemory-policy",
            "allkeys-lru",
        ],
    );
    namespace(
        &cluster,
        &[
            "set",
            "fixed:",
            "--consistency",
            "strong",
            "--maxmemory",
            &format!("{}kb", FIXED_LIMIT >> 10),
        ],
    );
    let listed = namespace(&cluster, &["list"]);
    assert!(
        listed.contains(&format!("maxmemory={cache_limit} allkeys-lru")),
        "{listed}"
    );
    assert!(listed.contains("noeviction"), "{listed}");
    // Limits for an eventual namespace are refused, saying why.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_polis"))
        .args(["namespace", "set", "stock:", "--consistency", "eventual"])
        .args([
            "--replicas",
            "3",
            "--write-quorum",
            "1",
            "--read-quorum",
            "1",
        ])
        .args(["--maxmemory", "1mb", "--node", &cluster.node(1).admin])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("cache limits are for strong namespaces"),
        "{said}"
    );

    // Four times the limit of `cache:` and as many keys without a limit.
    let cache_keys = keys("cache:");
    let plain_keys = keys("plain:");
    for (cached, plain) in cache_keys.chunks(BATCH).zip(plain_keys.chunks(BATCH)) {
        for answer in write(&mut connection, cached).await {
            assert_eq!(answer, Value::Okay, "a write to an evicting namespace");
        }
        write(&mut connection, plain).await;
    }
    for id in 1..=3 {
        wait_for(
            &format!("node {id} within the limit of cache:"),
            SETTLE,
            || async {
                let used = used_bytes(&cluster, id, "cache:").await?;
                (used > 0 && used <= CACHE_LIMIT).then_some(used)
            },
        )
        .await;
    }
    let kept = present(&mut connection, &cache_keys).await;
    let kept_count = kept.iter().filter(|kept| **kept).count();
    let recent_kept = kept[KEYS - BATCH..].iter().filter(|kept| **kept).count();
    println!("cache: kept {kept_count} of {KEYS} keys, {recent_kept} of the last {BATCH}");
    assert!(
        kept_count < KEYS / 2,
        "kept {kept_count}: nothing was evicted"
    );
    assert!(
        recent_kept >= BATCH * 4 / 5,
        "LRU evicted the newest keys: {recent_kept} of {BATCH} kept"
    );
    assert!(
        present(&mut connection, &plain_keys)
            .await
            .iter()
            .all(|kept| *kept),
        "a key outside the cache namespace was evicted"
    );

    // noeviction: writes are refused once the namespace is over.
    let fixed_keys = keys("fixed:");
    let value = "v".repeat(VALUE_BYTES);
    let mut refusal = None;
    for (index, key) in fixed_keys[..200].iter().enumerate() {
        let answer: redis::RedisResult<Value> = redis::cmd("SET")
            .arg(key)
            .arg(&value)
            .query_async(&mut connection)
            .await;
        if let Err(error) = answer {
            refusal = Some((index, error));
            break;
        }
    }
    let (refused, error) = refusal.expect("a namespace past its noeviction limit refused no write");
    let text = format!("{error:?}");
    assert!(text.contains("OOM") && text.contains("'fixed:'"), "{text}");
    assert!(refused > 10, "refused too early, at write {refused}");
    let mut multi = redis::pipe();
    multi.atomic().cmd("SET").arg("fixed:in-multi").arg("v");
    let error = multi
        .query_async::<Value>(&mut connection)
        .await
        .expect_err("a queued write over the limit");
    // The queued SET is refused (-OOM), so EXEC aborts; the client
    // reports the first error.
    let text = format!("{error:?}");
    assert!(text.contains("OOM") && text.contains("'fixed:'"), "{text}");
    let _: Value = redis::cmd("SET")
        .arg("plain:after")
        .arg("v")
        .query_async(&mut connection)
        .await
        .unwrap();
    // Deleting makes room again.
    let mut deletes = redis::pipe();
    for key in &fixed_keys[..refused] {
        deletes.cmd("DEL").arg(key);
    }
    let counts: Vec<i64> = deletes.query_async(&mut connection).await.unwrap();
    let deleted: i64 = counts.iter().sum();
    assert_eq!(deleted, refused as i64);
    wait_for("a write to fixed: after deletes", SETTLE, || async {
        let mut connection = cluster.connect(leader).await;
        let answer: redis::RedisResult<Value> = redis::cmd("SET")
            .arg("fixed:again")
            .arg("v")
            .query_async(&mut connection)
            .await;
        answer.ok()
    })
    .await;
}
