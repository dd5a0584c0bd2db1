//! The list-append workload (Elle's): each client runs transactions of
//! one to four micro-ops, `RPUSH key v` (every `v` unique in the run) and
//! `LRANGE key 0 -1`, through MULTI/EXEC on a few keys of one hash slot.
//! After healing, a final read of every key appended to.
//!
//! Keys rotate so that lists stay short: the values are handed out in
//! generations of `keys * APPENDS_PER_KEY` and each generation has its
//! own `keys` keys, so a read returns a few hundred values at most.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polis_client::resp::{Client, Outcome};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;
use tokio::time::Instant;

use super::ClientPlan;
use crate::history::{Kind, MicroOp, Op};
use crate::recorder::Recorder;

/// Every key of the workload starts with this; `{la}` puts them in one
/// hash slot, so one transaction may touch any of them.
pub const APPEND_PREFIX: &str = "verify:{la}k";

/// Appends one key receives on average before the clients move on to
/// fresh keys.
const APPENDS_PER_KEY: u64 = 32;

/// Micro-ops in one transaction, at most.
const MICRO_OPS_MAX: usize = 4;

/// Keys read by one transaction of the final read.
const FINAL_READ_BATCH: usize = 32;

/// Attempts at each final read before the run gives up on it.
const FINAL_ATTEMPTS_MAX: usize = 20;

/// Returns the key of list `id`.
pub fn append_key(id: u64) -> String {
    format!("{APPEND_PREFIX}{id}")
}

/// Draws a transaction: 1 to 4 micro-ops on the keys of the current
/// generation, each an append (with a fresh value) or a read.
fn next_txn(rng: &mut StdRng, keys: u32, values: &AtomicU64) -> Vec<MicroOp> {
    let keys = u64::from(keys.max(1));
    let count = rng.random_range(1..=MICRO_OPS_MAX);
    (0..count)
        .map(|_| {
            let generation = values.load(Ordering::Relaxed) / (keys * APPENDS_PER_KEY);
            let key = append_key(generation * keys + rng.random_range(0..keys));
            if rng.random_bool(0.5) {
                MicroOp::Append {
                    key,
                    value: values.fetch_add(1, Ordering::Relaxed),
                }
            } else {
                MicroOp::Read { key, value: None }
            }
        })
        .collect()
}

/// Runs one client of the list-append workload until the deadline.
pub async fn run_client(plan: ClientPlan, keys: u32, recorder: Recorder, values: Arc<AtomicU64>) {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ plan.client.wrapping_mul(0x9e37_79b9));
    let mut client = Client::new(plan.addrs.clone(), plan.client as usize, plan.timeout);
    let mut process = plan.client;
    let mut ticker = tokio::time::interval(plan.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < plan.deadline && !recorder.is_full() {
        ticker.tick().await;
        let mops = next_txn(&mut rng, keys, &values);
        recorder.record(process, Kind::Invoke, Op::Txn { mops: mops.clone() }, None);
        let (kind, completed, error) = complete(&mops, exec(&mut client, &mops).await);
        recorder.record(process, kind, Op::Txn { mops: completed }, error);
        if kind == Kind::Info {
            // The transaction stays open forever; this client goes on as
            // a new process, as a real client would with a new connection.
            process += plan.clients;
        }
    }
}

/// Reads every list some transaction appended to, a batch of keys per
/// transaction, through `addrs` (the leader first). The reads are
/// ordinary transactions in the history, run as processes numbered from
/// `process_base`.
///
/// # Errors
/// Returns an error if a batch is never read.
pub async fn final_read(
    addrs: Vec<String>,
    timeout: Duration,
    recorder: &Recorder,
    process_base: u64,
) -> anyhow::Result<()> {
    let keys: BTreeSet<(usize, String)> = recorder
        .events()
        .into_iter()
        .filter(|event| event.kind == Kind::Invoke)
        .filter_map(|event| match event.op {
            Op::Txn { mops } => Some(mops),
            _ => None,
        })
        .flatten()
        .filter_map(|mop| match mop {
            // Ordered by length first, so k9 comes before k10.
            MicroOp::Append { key, .. } => Some((key.len(), key)),
            MicroOp::Read { .. } => None,
        })
        .collect();
    let keys: Vec<String> = keys.into_iter().map(|(_, key)| key).collect();
    let mut client = Client::new(addrs, 0, timeout);
    for (batch, keys) in keys.chunks(FINAL_READ_BATCH).enumerate() {
        let mops: Vec<MicroOp> = keys
            .iter()
            .map(|key| MicroOp::Read {
                key: key.clone(),
                value: None,
            })
            .collect();
        let mut done = false;
        for attempt in 0..FINAL_ATTEMPTS_MAX {
            let process = process_base + batch as u64 + (attempt as u64) * (1 << 20);
            recorder.record(process, Kind::Invoke, Op::Txn { mops: mops.clone() }, None);
            let (kind, completed, error) = complete(&mops, exec(&mut client, &mops).await);
            recorder.record(process, kind, Op::Txn { mops: completed }, error);
            if kind == Kind::Ok {
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        anyhow::ensure!(
            done,
            "the final read of {} lists never succeeded",
            keys.len()
        );
    }
    Ok(())
}

/// Turns what became of a transaction into its completion: the kind, the
/// micro-ops with what the reads saw, and the error if any.
fn complete(mops: &[MicroOp], outcome: Outcome) -> (Kind, Vec<MicroOp>, Option<String>) {
    let replies = match outcome {
        Outcome::Fail(error) => return (Kind::Fail, mops.to_vec(), Some(error)),
        Outcome::Unknown(error) => return (Kind::Info, mops.to_vec(), Some(error)),
        Outcome::Ok(Value::Array(replies)) if replies.len() == mops.len() => replies,
        Outcome::Ok(other) => {
            let error = format!("EXEC answered {other:?}");
            return (Kind::Info, mops.to_vec(), Some(error));
        }
    };
    let mut completed = Vec::with_capacity(mops.len());
    for (mop, reply) in mops.iter().zip(replies) {
        match (mop, reply) {
            (MicroOp::Append { .. }, Value::Int(_)) => completed.push(mop.clone()),
            (MicroOp::Read { key, .. }, Value::Array(items)) => match parse_list(&items) {
                Some(list) => completed.push(MicroOp::Read {
                    key: key.clone(),
                    value: Some(list),
                }),
                None => {
                    let error = format!("read a value no client wrote in {key}: {items:?}");
                    return (Kind::Info, mops.to_vec(), Some(error));
                }
            },
            // One command failed at apply while the others applied.
            (_, reply) => {
                let error = format!("a command of the transaction answered {reply:?}");
                return (Kind::Info, mops.to_vec(), Some(error));
            }
        }
    }
    (Kind::Ok, completed, None)
}

fn parse_list(items: &[Value]) -> Option<Vec<u64>> {
    items
        .iter()
        .map(|item| match item {
            Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
            _ => None,
        })
        .collect()
}

/// Runs `mops` as one MULTI/EXEC; on success the EXEC reply.
async fn exec(client: &mut Client, mops: &[MicroOp]) -> Outcome {
    let mut pipe = redis::pipe();
    pipe.cmd("MULTI");
    for mop in mops {
        match mop {
            MicroOp::Append { key, value } => pipe.cmd("RPUSH").arg(key).arg(value.to_string()),
            MicroOp::Read { key, .. } => pipe.cmd("LRANGE").arg(key).arg(0).arg(-1),
        };
    }
    pipe.cmd("EXEC");
    client.transaction(&pipe, mops.len() + 2).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn bulk(value: u64) -> Value {
        Value::BulkString(value.to_string().into_bytes())
    }

    #[test]
    fn transactions_have_one_to_four_micro_ops_with_unique_values() {
        let mut rng = StdRng::seed_from_u64(7);
        let values = AtomicU64::new(1);
        let mut appended = BTreeSet::new();
        for _ in 0..1_000 {
            let mops = next_txn(&mut rng, 3, &values);
            assert!((1..=MICRO_OPS_MAX).contains(&mops.len()));
            for mop in mops {
                let (MicroOp::Append { key, .. } | MicroOp::Read { key, .. }) = &mop;
                assert!(key.starts_with(APPEND_PREFIX), "{key}");
                if let MicroOp::Append { value, .. } = mop {
                    assert!(appended.insert(value), "{value} twice");
                }
            }
        }
        assert!(appended.len() > 500);
    }

    #[test]
    fn keys_rotate_as_values_are_handed_out() {
        let mut rng = StdRng::seed_from_u64(1);
        let values = AtomicU64::new(10 * 2 * APPENDS_PER_KEY);
        for mop in next_txn(&mut rng, 2, &values) {
            let (MicroOp::Append { key, .. } | MicroOp::Read { key, .. }) = &mop;
            assert!(key == &append_key(20) || key == &append_key(21), "{key}");
        }
    }

    #[test]
    fn an_exec_reply_fills_in_the_reads() {
        let mops = [
            MicroOp::Append {
                key: "x".into(),
                value: 3,
            },
            MicroOp::Read {
                key: "x".into(),
                value: None,
            },
        ];
        let reply = Value::Array(vec![Value::Int(2), Value::Array(vec![bulk(1), bulk(3)])]);
        let (kind, completed, error) = complete(&mops, Outcome::Ok(reply));
        assert_eq!((kind, error), (Kind::Ok, None));
        assert_eq!(
            completed[1],
            MicroOp::Read {
                key: "x".into(),
                value: Some(vec![1, 3])
            }
        );
        let (kind, _, _) = complete(&mops, Outcome::Ok(Value::Array(vec![Value::Int(1)])));
        assert_eq!(kind, Kind::Info, "a short reply is no proof of anything");
        let (kind, _, _) = complete(&mops, Outcome::Fail("EXECABORT".into()));
        assert_eq!(kind, Kind::Fail);
        let (kind, _, _) = complete(&mops, Outcome::Unknown("timeout".into()));
        assert_eq!(kind, Kind::Info);
    }
}
