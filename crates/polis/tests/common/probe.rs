//! Writers that keep writing one key per shard and note when each write
//! was acknowledged: enough to measure a shard's gaps in service, and to
//! check afterwards that no acknowledged write was lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use polis_types::{key_hash_slot, Slot};

use super::client::FollowingClient;

/// One shard's key and what happened to its writes.
#[derive(Debug, Default, Clone)]
pub struct ShardLog {
    pub key: String,
    /// When each write was acknowledged.
    pub acked_at: Vec<Instant>,
    /// The highest value acknowledged, and the highest one attempted.
    pub acked_max: Option<u64>,
    pub attempted_max: u64,
}

impl ShardLog {
    /// Returns the longest time without an acknowledgement within
    /// `from..to` (from `from` to the first one, between two, from the
    /// last one to `to`).
    pub fn longest_gap(&self, from: Instant, to: Instant) -> Duration {
        let mut previous = from;
        let mut longest = Duration::ZERO;
        for at in self.acked_at.iter().filter(|at| **at >= from && **at <= to) {
            longest = longest.max(at.duration_since(previous));
            previous = *at;
        }
        longest.max(to.saturating_duration_since(previous))
    }
}

/// Returns a key whose slot lies in `start..=end`.
pub fn key_in(start: u16, end: u16, label: &str) -> String {
    (0u64..)
        .map(|n| format!("{label}:{n}"))
        .find(|key| {
            let slot: Slot = key_hash_slot(key.as_bytes());
            (start..=end).contains(&slot.get())
        })
        .expect("some key hashes into any range")
}

/// Writers over a set of shards.
pub struct Probe {
    pub logs: Arc<Mutex<BTreeMap<u64, ShardLog>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Probe {
    /// Starts `writers` tasks writing, round-robin, the key of every shard
    /// in `keys` (shard id -> key) through any of `addrs`.
    pub fn start(addrs: Vec<String>, keys: BTreeMap<u64, String>, writers: usize) -> Self {
        let logs: BTreeMap<u64, ShardLog> = keys
            .into_iter()
            .map(|(shard, key)| {
                let log = ShardLog {
                    key,
                    ..ShardLog::default()
                };
                (shard, log)
            })
            .collect();
        let shards: Vec<u64> = logs.keys().copied().collect();
        let logs = Arc::new(Mutex::new(logs));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for writer in 0..writers {
            let mine: Vec<u64> = shards
                .iter()
                .copied()
                .skip(writer)
                .step_by(writers)
                .collect();
            let logs = logs.clone();
            let stop = stop.clone();
            let mut client = FollowingClient::new(addrs.clone(), writer);
            tasks.push(tokio::spawn(async move {
                for value in 1u64..10_000_000 {
                    for shard in &mine {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let key = {
                            let mut logs = logs.lock().unwrap();
                            let log = logs.get_mut(shard).unwrap();
                            log.attempted_max = value;
                            log.key.clone()
                        };
                        let outcome = client
                            .query(redis::cmd("SET").arg(&key).arg(value), 3)
                            .await;
                        if outcome.is_ok() {
                            let mut logs = logs.lock().unwrap();
                            let log = logs.get_mut(shard).unwrap();
                            log.acked_at.push(Instant::now());
                            log.acked_max = Some(value);
                        }
                    }
                }
            }));
        }
        Self { logs, stop, tasks }
    }

    /// Stops the writers and returns what they saw.
    pub async fn stop(self) -> BTreeMap<u64, ShardLog> {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            let _ = task.await;
        }
        self.logs.lock().unwrap().clone()
    }

    /// Returns a copy of the logs so far.
    pub fn snapshot(&self) -> BTreeMap<u64, ShardLog> {
        self.logs.lock().unwrap().clone()
    }

    /// Waits until every shard acknowledged a write of value `at_least` or
    /// more (each shard's values count up from 0); panics after 30 s.
    pub async fn wait_acked(&self, at_least: u64) {
        super::wait_for(
            "an acknowledged write on every shard",
            Duration::from_secs(30),
            || async {
                self.snapshot()
                    .values()
                    .all(|log| log.acked_max.is_some_and(|acked| acked >= at_least))
                    .then_some(())
            },
        )
        .await;
    }
}

/// Checks that each shard's key holds its last acknowledged value or a
/// later attempted one: no acknowledged write was lost.
pub async fn assert_nothing_lost(addrs: Vec<String>, logs: &BTreeMap<u64, ShardLog>) {
    let mut client = FollowingClient::new(addrs, 0);
    for (shard, log) in logs {
        let Some(acked) = log.acked_max else {
            continue;
        };
        let value: redis::Value = client
            .query_idempotent(redis::cmd("GET").arg(&log.key), Duration::from_secs(30))
            .await;
        let value: u64 = match value {
            redis::Value::BulkString(bytes) => String::from_utf8(bytes).unwrap().parse().unwrap(),
            other => panic!("shard {shard}: GET {} answered {other:?}", log.key),
        };
        assert!(
            value >= acked && value <= log.attempted_max,
            "shard {shard}: {} holds {value}; acknowledged up to {acked}, attempted up to {}",
            log.key,
            log.attempted_max
        );
    }
}
