//! Locks with fencing tokens on a real cluster: a holder whose lease
//! lapsed is fenced off once another owner holds the lock, so the data
//! holds only the new holder's writes; tokens keep increasing across a
//! leader change and a slot move; pipelined grants each get a token.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::time::Duration;

use common::client::FollowingClient;
use common::probe::key_in;
use common::{wait_for, Cluster};
use redis::Value;

/// Sends `cmd` once (a FENCED refusal is an answer, not a reason to retry).
async fn once(client: &mut FollowingClient, cmd: &redis::Cmd) -> Result<Value, String> {
    client.query(cmd, 1).await
}

/// Acquires `lock` for `owner`, retrying while the cluster cannot take
/// it (the same owner's retry is safe); returns the token, or None when
/// another owner holds it.
async fn acquire(
    client: &mut FollowingClient,
    lock: &str,
    owner: &str,
    lease_ms: u64,
) -> Option<i64> {
    let cmd = redis::cmd("LOCK")
        .arg("ACQUIRE")
        .arg(lock)
        .arg(owner)
        .arg(lease_ms)
        .clone();
    match client.query_idempotent(&cmd, Duration::from_secs(30)).await {
        Value::Int(token) => Some(token),
        Value::Nil => None,
        other => panic!("ACQUIRE answered {other:?}"),
    }
}

fn fenced(lock: &str, token: i64, command: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("FENCED");
    cmd.arg(lock).arg(token);
    for arg in command {
        cmd.arg(*arg);
    }
    cmd
}

async fn lrange(client: &mut FollowingClient, key: &str) -> Vec<String> {
    let cmd = redis::cmd("LRANGE").arg(key).arg(0).arg(-1).clone();
    match client.query_idempotent(&cmd, Duration::from_secs(30)).await {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::BulkString(bytes) => String::from_utf8(bytes).unwrap(),
                other => panic!("an element {other:?}"),
            })
            .collect(),
        other => panic!("LRANGE answered {other:?}"),
    }
}

/// Waits until nobody holds `lock` (its lease lapsed), by LOCK INFO.
async fn wait_until_free(addrs: &[String], lock: &str, timeout: Duration) {
    let info = redis::cmd("LOCK").arg("INFO").arg(lock).clone();
    wait_for("the lease to lapse", timeout, || {
        let (info, mut client) = (info.clone(), FollowingClient::new(addrs.to_vec(), 0));
        async move { (client.query(&info, 3).await == Ok(Value::Nil)).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_whose_lease_lapsed_cannot_write_once_another_holds_the_lock() {
    let _turn = common::one_at_a_time().await;
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let (lock, log) = ("{order:42}", "{order:42}:log");
    let mut a = FollowingClient::new(cluster.resp_addrs(), 0);
    let mut b = FollowingClient::new(cluster.resp_addrs(), 1);

    let token_a = acquire(&mut a, lock, "A", 1_000).await.unwrap();
    let write_a = format!("A:{token_a}");
    let pushed = once(&mut a, &fenced(lock, token_a, &["RPUSH", log, &write_a])).await;
    assert_eq!(pushed, Ok(Value::Int(1)));
    assert_eq!(
        acquire(&mut b, lock, "B", 10_000).await,
        None,
        "A's lease runs"
    );

    // A "pauses": its lease lapses, B acquires with a larger token.
    wait_until_free(&cluster.resp_addrs(), lock, Duration::from_secs(10)).await;
    let token_b = acquire(&mut b, lock, "B", 10_000).await.unwrap();
    assert!(token_b > token_a, "{token_b} after {token_a}");

    // A resumes and writes with its old token: refused, nothing applied.
    let late = once(&mut a, &fenced(lock, token_a, &["RPUSH", log, "A:late"])).await;
    let error = late.unwrap_err();
    assert!(
        error.contains(&format!(
            "token {token_a} is not the current token of lock '{lock}' (held by 'B' with token {token_b})"
        )),
        "{error}"
    );
    let write_b = format!("B:{token_b}");
    let pushed = once(&mut b, &fenced(lock, token_b, &["RPUSH", log, &write_b])).await;
    assert_eq!(pushed, Ok(Value::Int(2)));
    assert_eq!(lrange(&mut a, log).await, vec![write_a, write_b]);

    // Grants pipelined on one connection are proposed one entry each,
    // so each gets its own token.
    let mut connection = cluster.connect(leader).await;
    let (first, second): (i64, i64) = redis::pipe()
        .cmd("LOCK")
        .arg("ACQUIRE")
        .arg("{p}a")
        .arg("P")
        .arg(5_000)
        .cmd("LOCK")
        .arg("ACQUIRE")
        .arg("{p}b")
        .arg("P")
        .arg(5_000)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(second > first, "{second} after {first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_keep_increasing_across_a_leader_change() {
    let _turn = common::one_at_a_time().await;
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let (lock, register) = ("{job}", "{job}:owner");
    let mut client = FollowingClient::new(cluster.resp_addrs(), (leader - 1) as usize);
    let before = acquire(&mut client, lock, "first", 60_000).await.unwrap();
    once(
        &mut client,
        &fenced(lock, before, &["SET", register, "first"]),
    )
    .await
    .unwrap();
    let release = redis::cmd("LOCK")
        .arg("RELEASE")
        .arg(lock)
        .arg(before)
        .clone();
    assert_eq!(once(&mut client, &release).await, Ok(Value::Okay));

    cluster.kill9(leader);
    let new_leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    assert_ne!(new_leader, leader);
    let after = acquire(&mut client, lock, "second", 60_000).await.unwrap();
    assert!(
        after > before,
        "{after} after {before}, leader {leader} -> {new_leader}"
    );
    let stale = once(
        &mut client,
        &fenced(lock, before, &["SET", register, "stale"]),
    )
    .await;
    assert!(stale.unwrap_err().starts_with("FENCED"));
    once(
        &mut client,
        &fenced(lock, after, &["SET", register, "second"]),
    )
    .await
    .unwrap();

    // Deleting the lock's key does not take its tokens back.
    let del = redis::cmd("DEL").arg(lock).clone();
    client.query_idempotent(&del, Duration::from_secs(30)).await;
    let recreated = acquire(&mut client, lock, "third", 60_000).await.unwrap();
    assert!(recreated > after, "{recreated} after {after}");
    let get = redis::cmd("GET").arg(register).clone();
    assert_eq!(
        client.query_idempotent(&get, Duration::from_secs(30)).await,
        Value::BulkString(b"second".to_vec())
    );
}

/// Runs `polis cluster ARGS` against node 1.
fn polis_cluster(cluster: &Cluster, args: &[&str]) -> (bool, String) {
    let mut all = vec!["--node", cluster.node(1).admin.as_str()];
    all.extend_from_slice(args);
    common::polis_cluster(&all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_keep_increasing_when_the_lock_moves_to_a_shard_with_a_shorter_log() {
    let _turn = common::one_at_a_time().await;
    // Three shards: 0-5460, 5461-10922, 10923-16383.
    let cluster = Cluster::start(3, &["--shards", "3"]);
    cluster.wait_ready(Duration::from_secs(60)).await;
    let mut client = FollowingClient::new(cluster.resp_addrs(), 0);
    let tag = key_in(0, 99, "lock");
    let lock = format!("{{{tag}}}");
    // The source shard's log runs well ahead of the target's.
    for n in 0..300 {
        let set = redis::cmd("SET").arg(format!("{{{tag}}}:n")).arg(n).clone();
        client.query_idempotent(&set, Duration::from_secs(10)).await;
    }
    let before = acquire(&mut client, &lock, "source", 60_000).await.unwrap();

    let (moved, said) = polis_cluster(&cluster, &["migrate", "--slots", "0-99", "--to-shard", "2"]);
    assert!(moved, "{said}");
    // The lock moved with its holder: the holder's token still fences.
    let write = fenced(&lock, before, &["SET", &format!("{{{tag}}}:w"), "source"]);
    assert_eq!(
        client.query(&write, 10).await,
        Ok(Value::Okay),
        "the holder writes on the new shard"
    );
    let release = redis::cmd("LOCK")
        .arg("RELEASE")
        .arg(&lock)
        .arg(before)
        .clone();
    assert_eq!(client.query(&release, 10).await, Ok(Value::Okay));
    let after = acquire(&mut client, &lock, "target", 60_000).await.unwrap();
    assert!(after > before, "{after} after {before}");
    let del = redis::cmd("DEL").arg(&lock).clone();
    client.query_idempotent(&del, Duration::from_secs(30)).await;
    let recreated = acquire(&mut client, &lock, "again", 60_000).await.unwrap();
    assert!(recreated > after, "{recreated} after {after}");
    println!("tokens: {before} on the source, {after} and {recreated} on the target");
}
