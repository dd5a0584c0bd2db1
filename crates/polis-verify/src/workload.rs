//! The workloads: what each client does, and how a reply becomes an
//! event.
//!
//! - register: GET, SET and compare-and-set (`SET key new IFEQ old`) on a
//!   few keys, every written value unique, so a read names the write it saw;
//! - set: every client adds unique elements (one key per element, all in
//!   one hash slot), read back whole at the end;
//! - queue: a stream as a work queue for one consumer group
//!   ([`queue`]), in Redis's way (XAUTOCLAIM) or with polis's group
//!   options (ack-wait redelivery, a dead-letter stream, XNACK);
//! - pop: lists as work queues, taken from by BLMOVE and BLPOP ([`pop`]);
//! - append: transactions of list appends and reads (see [`append`]);
//! - lock: locks with short leases guarding lists written through FENCED,
//!   holders stalling past their leases ([`lock`]);
//! - changefeed: APPENDs to keys a change feed takes, then the feed read
//!   back whole ([`changefeed`]);
//! - eventual: registers, counters, sets and deleted keys in an eventual
//!   namespace, written on any node, then every key read from every node
//!   once they converged ([`eventual`], [`eventual_final`]).

pub mod append;
pub mod changefeed;
pub mod eventual;
pub mod eventual_final;
pub mod lock;
pub mod pop;
pub mod queue;
pub mod step;

pub use queue::QueueMode;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polis_client::resp::{Client, Outcome};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;
use tokio::time::Instant;

use crate::history::{Kind, Op};
use crate::recorder::Recorder;

/// The hash tag that keeps every set element in one slot.
pub const SET_PREFIX: &str = "{verify-set}:";

/// What the clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Reads, writes and (when `cas`) compare-and-sets on `keys` registers.
    Register { keys: u32, cas: bool },
    /// Unique adds, then one read of the whole set.
    Set,
    /// XADD, XREADGROUP, XACK and XAUTOCLAIM (or, in the redeliver mode,
    /// XNACK and the group's redelivery) on one stream, then a drain.
    Queue { mode: QueueMode },
    /// RPUSH, BLMOVE (then LREM) and BLPOP on lists, then a read of each.
    Pop,
    /// MULTI/EXEC transactions of RPUSH and LRANGE on `keys` lists at a
    /// time, then a read of every list.
    Append { keys: u32 },
    /// LOCK ACQUIRE, FENCED RPUSH, LOCK REFRESH and RELEASE on a few
    /// locks, then a read of each guarded list.
    Lock,
    /// APPENDs of unique tokens to `keys` string keys at a time under a
    /// change feed's prefix, then a read of every key and of the feed.
    Changefeed { keys: u32 },
    /// SETs to `keys` registers, INCRBYs to `keys` counters, SADDs and
    /// SREMs to `keys` sets, SET then DEL of keys each client owns, in an
    /// eventual namespace (N=3, `write_quorum`, `read_quorum`); then every
    /// key read from every node once they converged.
    Eventual {
        keys: u32,
        write_quorum: u8,
        read_quorum: u8,
    },
}

/// Returns the key of register `index`.
pub fn register_key(index: u32) -> String {
    format!("verify:r{index}")
}

/// How one client runs.
pub struct ClientPlan {
    /// Client number, from 0; its process numbers are `client + n * clients`.
    pub client: u64,
    pub clients: u64,
    pub addrs: Vec<String>,
    pub timeout: Duration,
    /// Time between two operations of this client.
    pub interval: Duration,
    pub deadline: Instant,
    pub seed: u64,
}

/// Runs one client until the deadline. `values` hands out unique values
/// across clients.
pub async fn run_client(
    plan: ClientPlan,
    workload: Workload,
    recorder: Recorder,
    values: Arc<AtomicU64>,
) {
    match workload {
        Workload::Queue { mode } => queue::run_client(plan, mode, recorder, &values).await,
        Workload::Pop => pop::run_client(plan, recorder, &values).await,
        Workload::Append { keys } => append::run_client(plan, keys, recorder, values).await,
        Workload::Lock => lock::run_client(plan, recorder, &values).await,
        Workload::Changefeed { keys } => {
            changefeed::run_client(plan, keys, recorder, values).await;
        }
        Workload::Eventual { keys, .. } => {
            eventual::run_client(plan, keys, recorder, values).await;
        }
        Workload::Register { .. } | Workload::Set => {
            run_keyed_client(plan, workload, recorder, values).await;
        }
    }
}

/// Runs a client of the register or set workload.
async fn run_keyed_client(
    plan: ClientPlan,
    workload: Workload,
    recorder: Recorder,
    values: Arc<AtomicU64>,
) {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ plan.client.wrapping_mul(0x9e37_79b9));
    let mut client = Client::new(plan.addrs.clone(), plan.client as usize, plan.timeout);
    let mut process = plan.client;
    let mut known: HashMap<String, u64> = HashMap::new();
    let mut ticker = tokio::time::interval(plan.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < plan.deadline && !recorder.is_full() {
        ticker.tick().await;
        let Some(op) = next_op(workload, &mut rng, &values, &known) else {
            return;
        };
        let Some(cmd) = command(&op) else { continue };
        recorder.record(process, Kind::Invoke, invocation(&op), None);
        let outcome = client.call(&cmd).await;
        let (kind, completed, error) = complete(&op, outcome);
        match (&completed, kind) {
            (
                Op::Read {
                    key,
                    value: Some(value),
                },
                Kind::Ok,
            )
            | (Op::Write { key, value }, Kind::Ok)
            | (Op::Cas { key, to: value, .. }, Kind::Ok) => {
                known.insert(key.clone(), *value);
            }
            _ => {}
        }
        recorder.record(process, kind, completed, error);
        if kind == Kind::Info {
            // The operation stays open forever; this client goes on as a
            // new process, as a real client would with a new connection.
            process += plan.clients;
        }
    }
}

fn next_op(
    workload: Workload,
    rng: &mut StdRng,
    values: &AtomicU64,
    known: &HashMap<String, u64>,
) -> Option<Op> {
    let op = match workload {
        Workload::Set => Op::Add {
            element: values.fetch_add(1, Ordering::Relaxed),
        },
        // Their clients run in their own modules.
        Workload::Queue { .. }
        | Workload::Pop
        | Workload::Append { .. }
        | Workload::Lock
        | Workload::Changefeed { .. }
        | Workload::Eventual { .. } => return None,
        Workload::Register { keys, cas } => {
            let key = register_key(rng.random_range(0..keys.max(1)));
            let roll = rng.random_range(0..10);
            let value = || values.fetch_add(1, Ordering::Relaxed);
            match (roll, known.get(&key)) {
                (0..=3, _) => Op::Read { key, value: None },
                (8..=9, Some(from)) if cas => Op::Cas {
                    key,
                    from: *from,
                    to: value(),
                },
                _ => Op::Write {
                    key,
                    value: value(),
                },
            }
        }
    };
    Some(op)
}

fn command(op: &Op) -> Option<redis::Cmd> {
    let mut cmd;
    match op {
        Op::Read { key, .. } => {
            cmd = redis::cmd("GET");
            cmd.arg(key);
        }
        Op::Write { key, value } => {
            cmd = redis::cmd("SET");
            cmd.arg(key).arg(value.to_string());
        }
        Op::Cas { key, from, to } => {
            cmd = redis::cmd("SET");
            cmd.arg(key)
                .arg(to.to_string())
                .arg("IFEQ")
                .arg(from.to_string());
        }
        Op::Add { element } => {
            cmd = redis::cmd("SET");
            cmd.arg(format!("{SET_PREFIX}{element}")).arg("1");
        }
        // Final reads, the nemesis, and the other workloads' operations.
        _ => return None,
    }
    Some(cmd)
}

/// The op as invoked: reads carry no value yet.
fn invocation(op: &Op) -> Op {
    match op {
        Op::Read { key, .. } => Op::Read {
            key: key.clone(),
            value: None,
        },
        other => other.clone(),
    }
}

fn complete(op: &Op, outcome: Outcome) -> (Kind, Op, Option<String>) {
    match outcome {
        Outcome::Fail(error) => (Kind::Fail, op.clone(), Some(error)),
        Outcome::Unknown(error) => (Kind::Info, op.clone(), Some(error)),
        Outcome::Ok(reply) => match (op, reply) {
            (Op::Read { key, .. }, Value::Nil) => (
                Kind::Ok,
                Op::Read {
                    key: key.clone(),
                    value: None,
                },
                None,
            ),
            (Op::Read { key, .. }, Value::BulkString(bytes)) => {
                match std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.parse().ok())
                {
                    Some(value) => (
                        Kind::Ok,
                        Op::Read {
                            key: key.clone(),
                            value: Some(value),
                        },
                        None,
                    ),
                    None => (
                        Kind::Info,
                        op.clone(),
                        Some(format!("read a value no client wrote: {bytes:?}")),
                    ),
                }
            }
            // IFEQ did not match: the register held something else.
            (Op::Cas { .. }, Value::Nil) => {
                (Kind::Fail, op.clone(), Some("value did not match".into()))
            }
            (_, Value::Okay) => (Kind::Ok, op.clone(), None),
            (_, Value::SimpleString(text)) if text == "OK" => (Kind::Ok, op.clone(), None),
            (_, other) => (
                Kind::Info,
                op.clone(),
                Some(format!("unexpected reply {other:?}")),
            ),
        },
    }
}
