//! Every acknowledged write survives SIGKILL of the leader, and clients
//! that follow MOVED carry on with the new leader.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::client::FollowingClient;
use common::{wait_for, Cluster};

#[derive(Default)]
struct History {
    /// key -> value of every acknowledged unique-key write.
    acked: BTreeMap<String, String>,
    /// register key -> highest acknowledged value.
    register_acked: BTreeMap<String, u64>,
    /// register key -> highest attempted value.
    register_attempted: BTreeMap<String, u64>,
    indeterminate: usize,
    first_ack_after_kill: Option<Instant>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_of_the_leader() {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let addrs: Vec<String> = cluster.nodes.iter().map(|node| node.resp.clone()).collect();
    let history = Arc::new(Mutex::new(History::default()));
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));

    let mut writers = Vec::new();
    for writer in 0..8usize {
        let history = history.clone();
        let killed_at = killed_at.clone();
        let stop = stop.clone();
        let mut client = FollowingClient::new(addrs.clone(), writer % addrs.len());
        writers.push(tokio::spawn(async move {
            let register = format!("register:{writer}");
            for seq in 0u64..100_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let key = format!("w:{writer}:{seq}");
                let issued_after_kill = killed_at.lock().unwrap().is_some();
                let outcome = client.query(redis::cmd("SET").arg(&key).arg(seq), 10).await;
                let register_outcome = client
                    .query(redis::cmd("SET").arg(&register).arg(seq), 10)
                    .await;
                let mut history = history.lock().unwrap();
                history.register_attempted.insert(register.clone(), seq);
                match outcome {
                    Ok(_) => {
                        history.acked.insert(key, seq.to_string());
                        if issued_after_kill && history.first_ack_after_kill.is_none() {
                            history.first_ack_after_kill = Some(Instant::now());
                        }
                    }
                    Err(_) => history.indeterminate += 1,
                }
                match register_outcome {
                    Ok(_) => {
                        history.register_acked.insert(register.clone(), seq);
                    }
                    Err(_) => history.indeterminate += 1,
                }
            }
        }));
    }

    // Let writes flow, then kill the leader with SIGKILL.
    wait_for(
        "writes before the kill",
        Duration::from_secs(30),
        || async { (history.lock().unwrap().acked.len() >= 200).then_some(()) },
    )
    .await;
    cluster.kill9(leader);
    let kill_time = Instant::now();
    *killed_at.lock().unwrap() = Some(kill_time);

    // A new leader is elected, and writes resume on it.
    let new_leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let elected = kill_time.elapsed();
    assert_ne!(new_leader, leader);
    let resumed = wait_for(
        "a write acknowledged after the kill",
        Duration::from_secs(30),
        || async { history.lock().unwrap().first_ack_after_kill },
    )
    .await;
    let failover = resumed.duration_since(kill_time);
    println!(
        "failover: SIGKILL of leader {leader}; node {new_leader} leads {elected:?} later; first write issued after the kill acknowledged after {failover:?}"
    );
    let acked_at_resume = history.lock().unwrap().acked.len();
    wait_for(
        "more writes on the new leader",
        Duration::from_secs(30),
        || async { (history.lock().unwrap().acked.len() >= acked_at_resume + 200).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }

    // Every acknowledged write is readable with its value.
    let history = std::mem::take(&mut *history.lock().unwrap());
    let mut reader = FollowingClient::new(addrs.clone(), (new_leader - 1) as usize);
    let mut checked = 0;
    for (key, value) in &history.acked {
        let got: redis::Value = reader.query(redis::cmd("GET").arg(key), 10).await.unwrap();
        assert_eq!(
            got,
            redis::Value::BulkString(value.clone().into_bytes()),
            "acknowledged write {key} lost"
        );
        checked += 1;
    }
    // Each register holds its last acknowledged value or a later attempt.
    for (register, acked) in &history.register_acked {
        let got: redis::Value = reader
            .query(redis::cmd("GET").arg(register), 10)
            .await
            .unwrap();
        let redis::Value::BulkString(bytes) = got else {
            panic!("register {register} missing")
        };
        let value: u64 = String::from_utf8(bytes).unwrap().parse().unwrap();
        let attempted = history.register_attempted[register];
        assert!(
            value >= *acked && value <= attempted,
            "{register}: {value} not in [{acked}, {attempted}]"
        );
    }
    println!(
        "checked {checked} acknowledged writes and {} registers; {} writes had unknown outcome",
        history.register_acked.len(),
        history.indeterminate
    );
    assert!(checked >= 400);
}
