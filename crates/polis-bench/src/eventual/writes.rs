//! The writes made on both sides of the partition: which keys each side
//! writes, and the paced writers that write them.
//!
//! ```text
//!  keys 0 .. K:  [ minority only | majority only | shared ]
//!                  node 3          nodes 1 and 2   both sides, each its own value
//! ```
//!
//! Each side's keys are shuffled (seeded) and dealt to its writers; writer
//! `w` of a side sends its `i`-th SET at `start + span * i / n` (or as soon
//! as it can when behind), so the writes spread over the partition, and
//! stops at `deadline` with the rest left unwritten.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::driver::resp;
use crate::histogram::ERROR_SAMPLES_MAX;
use crate::limits::REQUEST_TIMEOUT;

/// The prefix of the partition's keys (an eventual namespace).
pub const PREFIX: &str = "part:";

/// Returns the name of key number `n`.
pub fn key_name(n: u64) -> String {
    format!("{PREFIX}{n}")
}

/// Which keys each side writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPlan {
    /// Distinct keys, both sides together.
    pub keys: u64,
    /// Keys both sides write (the last ones).
    pub shared: u64,
    /// Keys only the minority writes (the first ones); the majority
    /// writes the ones between.
    pub minority_only: u64,
}

impl KeyPlan {
    /// Returns the plan of `keys` distinct keys, `shared_percent` of them
    /// written by both sides and the rest split in halves.
    pub fn new(keys: u64, shared_percent: u8) -> Self {
        let shared = keys * u64::from(shared_percent.min(100)) / 100;
        Self {
            keys,
            shared,
            minority_only: (keys - shared) / 2,
        }
    }

    /// Returns the keys the majority writes alone.
    pub fn majority_only(&self) -> u64 {
        self.keys - self.shared - self.minority_only
    }

    /// Returns the key numbers the minority writes.
    pub fn minority_keys(&self) -> Vec<u64> {
        (0..self.minority_only)
            .chain(self.keys - self.shared..self.keys)
            .collect()
    }

    /// Returns the key numbers the majority writes.
    pub fn majority_keys(&self) -> Vec<u64> {
        (self.minority_only..self.keys).collect()
    }
}

/// What one side's writes did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SideTally {
    /// SETs sent.
    pub writes: u64,
    /// SETs acknowledged.
    pub acknowledged: u64,
    /// SETs answered with an error or not in time.
    pub errors: u64,
    /// SETs never sent: the writes ran past their deadline.
    pub unwritten: u64,
    /// Key and value bytes of the acknowledged SETs.
    pub bytes: u64,
    pub error_samples: Vec<String>,
    /// From the first SET sent to the last answered.
    pub elapsed_s: f64,
}

impl SideTally {
    fn add(&mut self, other: &SideTally) {
        self.writes += other.writes;
        self.acknowledged += other.acknowledged;
        self.errors += other.errors;
        self.unwritten += other.unwritten;
        self.bytes += other.bytes;
        self.elapsed_s = self.elapsed_s.max(other.elapsed_s);
        for sample in &other.error_samples {
            if self.error_samples.len() < ERROR_SAMPLES_MAX && !self.error_samples.contains(sample)
            {
                self.error_samples.push(sample.clone());
            }
        }
    }
}

/// How one side writes.
#[derive(Debug, Clone)]
pub struct SidePlan {
    /// The side's nodes; writer `w` writes through `addrs[w % len]`.
    pub addrs: Vec<String>,
    pub keys: Vec<u64>,
    pub writers: usize,
    pub value: Arc<[u8]>,
    pub seed: u64,
    pub start: Instant,
    /// The time the writes are spread over.
    pub span: Duration,
    /// No SET is sent after this.
    pub deadline: Instant,
}

/// Writes one side's keys; returns the tally and the keys acknowledged.
/// `progress` counts every SET answered.
///
/// # Errors
/// Fails if a writer cannot connect to its node.
pub async fn write_side(
    plan: SidePlan,
    progress: Arc<AtomicU64>,
) -> anyhow::Result<(SideTally, BTreeSet<u64>)> {
    anyhow::ensure!(
        !plan.addrs.is_empty() && plan.writers > 0,
        "a side needs a node and a writer"
    );
    let mut keys = plan.keys;
    keys.shuffle(&mut StdRng::seed_from_u64(plan.seed));
    let mut writers = JoinSet::new();
    for writer in 0..plan.writers {
        let mine: Vec<u64> = keys
            .iter()
            .skip(writer)
            .step_by(plan.writers)
            .copied()
            .collect();
        let addr = plan.addrs[writer % plan.addrs.len()].clone();
        let connection = resp::open(&addr).await.map_err(|error| anyhow!(error))?;
        let paced = Paced {
            start: plan.start,
            span: plan.span,
            deadline: plan.deadline,
        };
        writers.spawn(write(
            connection,
            mine,
            plan.value.clone(),
            paced,
            progress.clone(),
        ));
    }
    let mut tally = SideTally::default();
    let mut acknowledged = BTreeSet::new();
    while let Some(joined) = writers.join_next().await {
        let (part, keys) = joined?;
        tally.add(&part);
        acknowledged.extend(keys);
    }
    Ok((tally, acknowledged))
}

/// When a writer's SETs are due.
#[derive(Debug, Clone, Copy)]
struct Paced {
    start: Instant,
    span: Duration,
    deadline: Instant,
}

impl Paced {
    /// Returns when SET `index` of `count` is due.
    fn due(&self, index: usize, count: usize) -> Instant {
        self.start + self.span.mul_f64(index as f64 / count.max(1) as f64)
    }
}

/// One writer: SETs its keys at their due times, one at a time.
async fn write(
    mut connection: redis::aio::MultiplexedConnection,
    keys: Vec<u64>,
    value: Arc<[u8]>,
    paced: Paced,
    progress: Arc<AtomicU64>,
) -> (SideTally, Vec<u64>) {
    let mut tally = SideTally::default();
    let mut acknowledged = Vec::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        if Instant::now() >= paced.deadline {
            tally.unwritten = (keys.len() - index) as u64;
            break;
        }
        tokio::time::sleep_until(paced.due(index, keys.len()).into()).await;
        let name = key_name(*key);
        let mut set = redis::cmd("SET");
        set.arg(&name).arg(&*value);
        tally.writes += 1;
        let outcome = tokio::time::timeout(
            REQUEST_TIMEOUT,
            set.query_async::<redis::Value>(&mut connection),
        )
        .await;
        progress.fetch_add(1, Ordering::Relaxed);
        let error = match outcome {
            Ok(Ok(_)) => {
                tally.acknowledged += 1;
                tally.bytes += (name.len() + value.len()) as u64;
                acknowledged.push(*key);
                None
            }
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some(format!("no reply within {REQUEST_TIMEOUT:?}")),
        };
        if let Some(error) = error {
            tally.errors += 1;
            if tally.error_samples.len() < ERROR_SAMPLES_MAX
                && !tally.error_samples.contains(&error)
            {
                tally.error_samples.push(error);
            }
        }
    }
    tally.elapsed_s = paced.start.elapsed().as_secs_f64();
    (tally, acknowledged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_covers_every_key_once_per_writing_side() {
        for (keys, shared_percent) in [(100_000, 10), (7, 50), (1, 0), (10, 100), (0, 10)] {
            let plan = KeyPlan::new(keys, shared_percent);
            let minority: BTreeSet<u64> = plan.minority_keys().into_iter().collect();
            let majority: BTreeSet<u64> = plan.majority_keys().into_iter().collect();
            assert_eq!(minority.len() as u64, plan.minority_only + plan.shared);
            assert_eq!(majority.len() as u64, plan.majority_only() + plan.shared);
            let both: BTreeSet<u64> = minority.intersection(&majority).copied().collect();
            assert_eq!(both.len() as u64, plan.shared, "{plan:?}");
            let union: BTreeSet<u64> = minority.union(&majority).copied().collect();
            assert_eq!(union, (0..keys).collect(), "{plan:?}");
        }
        let plan = KeyPlan::new(100_000, 10);
        assert_eq!(
            (plan.shared, plan.minority_only, plan.majority_only()),
            (10_000, 45_000, 45_000)
        );
    }

    #[test]
    fn writes_are_spread_over_the_span() {
        let start = Instant::now();
        let paced = Paced {
            start,
            span: Duration::from_secs(10),
            deadline: start + Duration::from_secs(20),
        };
        assert_eq!(paced.due(0, 4), start);
        assert_eq!(paced.due(2, 4), start + Duration::from_secs(5));
        assert!(paced.due(3, 4) < start + paced.span);
        assert_eq!(paced.due(0, 0), start);
    }

    #[test]
    fn tallies_add_up_and_keep_a_few_distinct_errors() {
        let part = |errors: u64, sample: &str| SideTally {
            writes: 10,
            acknowledged: 10 - errors,
            errors,
            bytes: 100,
            error_samples: vec![sample.to_owned()],
            elapsed_s: errors as f64,
            ..SideTally::default()
        };
        let mut total = SideTally::default();
        total.add(&part(1, "a"));
        total.add(&part(2, "a"));
        total.add(&part(0, "b"));
        assert_eq!(
            (total.writes, total.acknowledged, total.errors),
            (30, 27, 3)
        );
        assert_eq!(total.bytes, 300);
        assert_eq!(total.error_samples, ["a", "b"]);
        assert_eq!(total.elapsed_s, 2.0);
    }
}
