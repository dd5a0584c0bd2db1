//! Simulated clients: each runs GETs and SETs of unique values on a few
//! keys, against the leader (following `NotLeader` as a client follows
//! `MOVED`), and records every operation in the history.
//!
//! The request path is the node's: a SET is proposed as polis-server's
//! [`Op::Command`](polis_server::machine::Op) and answered by what the
//! [`DataMachine`](polis_server::machine::DataMachine) replied; a GET waits
//! for a linearizable read, then runs on the leader's keyspace.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use polis_raft::{Group, ProposeError};
use polis_resp::Reply;
use polis_server::machine::{DataMachine, Op as LogOp};
use polis_types::NodeId;
use polis_verify::history::{Kind, Op};
use rand::rngs::StdRng;
use rand::Rng;

use crate::cluster::SimCluster;
use crate::history::Recorder;
use crate::machine::Observed;
use crate::trace::Trace;

/// How long a client keeps looking for a leader before it gives up on an
/// operation that certainly did not happen.
const LEADER_SEARCH_MAX: Duration = Duration::from_secs(5);
/// The most a client waits between operations.
const THINK_MS_MAX: u64 = 30;

/// Name of the violation an impossible reply reports.
pub const UNEXPECTED_REPLY: &str = "expected-reply";

/// What every client shares.
#[derive(Clone)]
pub struct Clients {
    pub cluster: SimCluster,
    pub recorder: Recorder,
    pub trace: Trace,
    pub keys: usize,
    /// The next value a SET writes: values are unique in a run.
    pub next_value: Arc<AtomicU64>,
    /// Clients start no operation after this.
    pub end: tokio::time::Instant,
    /// The proposal clock, for the reads' `now`.
    pub now_ms: Arc<dyn Fn() -> u64 + Send + Sync>,
}

/// How one request to one node ended.
enum Attempt {
    /// The operation happened; what it saw.
    Done(Op),
    /// Not on this node; try `Some(leader)` or anyone.
    Redirect(Option<NodeId>),
    /// The outcome is unknown (or, for a read, there is none).
    Unknown(String),
}

impl Clients {
    /// Runs client `id` until the end of the workload.
    pub async fn run(self, id: u64, mut rng: StdRng) {
        let mut process = id;
        let mut leader_hint: Option<NodeId> = None;
        while tokio::time::Instant::now() < self.end {
            let think = rng.random_range(0..=THINK_MS_MAX);
            tokio::time::sleep(Duration::from_millis(think)).await;
            let key = format!("k{}", rng.random_range(0..self.keys));
            let op = if rng.random_bool(0.5) {
                let value = self.next_value.fetch_add(1, Ordering::Relaxed);
                Op::Write { key, value }
            } else {
                Op::Read { key, value: None }
            };
            self.recorder
                .record(process, Kind::Invoke, op.clone(), None);
            let (kind, seen, error) = self.perform(&op, &mut leader_hint, &mut rng).await;
            self.recorder.record(process, kind, seen, error);
            if kind == Kind::Info {
                process = self.recorder.new_process();
            }
        }
    }

    /// Runs `op` to an outcome: `Ok` with what it saw, `Fail` when it
    /// certainly did not happen, `Info` when unknown.
    async fn perform(
        &self,
        op: &Op,
        leader_hint: &mut Option<NodeId>,
        rng: &mut StdRng,
    ) -> (Kind, Op, Option<String>) {
        let deadline = tokio::time::Instant::now() + LEADER_SEARCH_MAX;
        let mut target = *leader_hint;
        loop {
            if tokio::time::Instant::now() >= deadline {
                let error = "no leader accepted the request in time".to_owned();
                return (Kind::Fail, op.clone(), Some(error));
            }
            let node = match target {
                Some(node) => node,
                None => {
                    let running = self.cluster.nodes(true);
                    if running.is_empty() {
                        pause(rng).await;
                        continue;
                    }
                    running[rng.random_range(0..running.len())]
                }
            };
            let Some((group, incarnation)) = self.cluster.group(node) else {
                // Connection refused: nothing was sent.
                target = None;
                pause(rng).await;
                continue;
            };
            let attempt = self.attempt(&group, op).await;
            if !self.cluster.is_running(node, incarnation) {
                // The connection broke: whatever the node did is unknown.
                let error = format!("node {node} crashed during the request");
                return unknown(op, error);
            }
            match attempt {
                Attempt::Done(seen) => {
                    *leader_hint = Some(node);
                    return (Kind::Ok, seen, None);
                }
                Attempt::Redirect(leader) => {
                    target = leader.filter(|leader| *leader != node);
                    *leader_hint = target;
                    pause(rng).await;
                }
                Attempt::Unknown(error) => {
                    *leader_hint = None;
                    return unknown(op, error);
                }
            }
        }
    }

    async fn attempt(&self, group: &Group<Observed>, op: &Op) -> Attempt {
        match op {
            Op::Write { key, value } => self.set(group, key, *value).await,
            Op::Read { key, .. } => self.get(group, key).await,
            other => Attempt::Unknown(format!("the simulation does not run {other:?}")),
        }
    }

    async fn set(&self, group: &Group<Observed>, key: &str, value: u64) -> Attempt {
        let args = vec![
            Bytes::from_static(b"SET"),
            Bytes::from(key.to_owned()),
            Bytes::from(value.to_string()),
        ];
        let payload = match LogOp::Command(args).encode() {
            Ok(payload) => payload,
            Err(error) => return Attempt::Unknown(format!("cannot encode SET: {error}")),
        };
        match group.propose(payload).await {
            Ok(reply) => match DataMachine::decode_reply(&reply) {
                Reply::Simple(status) if status == "OK" => Attempt::Done(Op::Write {
                    key: key.to_owned(),
                    value,
                }),
                other => {
                    let detail = format!("SET {key} {value} replied {other:?}");
                    self.trace.violation(UNEXPECTED_REPLY, detail.clone());
                    Attempt::Unknown(detail)
                }
            },
            Err(error) => refused(error),
        }
    }

    async fn get(&self, group: &Group<Observed>, key: &str) -> Attempt {
        if let Err(error) = group.linearizable_read().await {
            return refused(error);
        }
        let args = [Bytes::from_static(b"GET"), Bytes::from(key.to_owned())];
        let reply = {
            let state = group.state().read();
            polis_commands::execute_read(&state.app.data.db, &args, (self.now_ms)())
        };
        let value = match reply {
            Reply::Null => None,
            Reply::Bulk(bytes) => match std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
            {
                Some(value) => Some(value),
                None => return self.unexpected(key, &Reply::Bulk(bytes)),
            },
            other => return self.unexpected(key, &other),
        };
        Attempt::Done(Op::Read {
            key: key.to_owned(),
            value,
        })
    }

    fn unexpected(&self, key: &str, reply: &Reply) -> Attempt {
        let detail = format!("GET {key} replied {reply:?}");
        self.trace.violation(UNEXPECTED_REPLY, detail.clone());
        Attempt::Unknown(detail)
    }
}

fn refused(error: ProposeError) -> Attempt {
    match error {
        ProposeError::NotLeader { leader } => {
            Attempt::Redirect(leader.map(|(_, node)| node.node_id))
        }
        ProposeError::Unavailable(reason) => Attempt::Unknown(reason),
    }
}

/// A write whose outcome is unknown is `info`; a read that returned
/// nothing changed nothing, so it simply failed.
fn unknown(op: &Op, error: String) -> (Kind, Op, Option<String>) {
    let kind = match op {
        Op::Read { .. } => Kind::Fail,
        _ => Kind::Info,
    };
    (kind, op.clone(), Some(error))
}

/// Waits a little before trying again, so a retry loop always lets
/// virtual time advance.
async fn pause(rng: &mut StdRng) {
    let pause_ms = rng.random_range(2..=40);
    tokio::time::sleep(Duration::from_millis(pause_ms)).await;
}
