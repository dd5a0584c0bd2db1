//! Simulated clients: each runs GETs and SETs of unique values on a few
//! keys (spread over the shards by their slots) against any node,
//! following `MOVED` as a cluster client does, and records every operation
//! in the history.
//!
//! The request path is the node's own: each request goes through
//! `polis_server::pipeline::execute`, the code a connection runs
//! (classification, routing, batching, proposal, ownership at apply).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_server::connection::Session;
use polis_types::NodeId;
use polis_verify::history::{Kind, Op};
use rand::rngs::StdRng;
use rand::Rng;

use crate::cluster::{node_of_address, SimCluster};
use crate::history::Recorder;
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
}

/// How one request to one node ended.
enum Attempt {
    /// The operation happened; what it saw.
    Done(Op),
    /// It did not happen here; try `Some(node)` or anyone.
    Redirect(Option<NodeId>),
    /// The outcome is unknown (or, for a read, there is none).
    Unknown(String),
}

impl Clients {
    /// Runs client `id` until the end of the workload.
    pub async fn run(self, id: u64, mut rng: StdRng) {
        let mut process = id;
        let mut hints: BTreeMap<String, NodeId> = BTreeMap::new();
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
            let (kind, seen, error) = self.perform(id, &op, &mut hints, &mut rng).await;
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
        client: u64,
        op: &Op,
        hints: &mut BTreeMap<String, NodeId>,
        rng: &mut StdRng,
    ) -> (Kind, Op, Option<String>) {
        let key = match op {
            Op::Write { key, .. } | Op::Read { key, .. } => key.clone(),
            other => {
                let error = format!("the simulation does not run {other:?}");
                return (Kind::Fail, op.clone(), Some(error));
            }
        };
        let deadline = tokio::time::Instant::now() + LEADER_SEARCH_MAX;
        let mut target = hints.get(&key).copied();
        loop {
            if tokio::time::Instant::now() >= deadline {
                let error = "no node served the request in time".to_owned();
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
            let Some((server, incarnation)) = self.cluster.node(node) else {
                // Connection refused: nothing was sent.
                target = None;
                pause(rng).await;
                continue;
            };
            let mut session = Session::new(client);
            let request = match op {
                Op::Write { key, value } => vec![
                    Bytes::from_static(b"SET"),
                    Bytes::from(key.clone()),
                    Bytes::from(value.to_string()),
                ],
                _ => vec![Bytes::from_static(b"GET"), Bytes::from(key.clone())],
            };
            let reply = polis_server::pipeline::execute(&server, &mut session, vec![request])
                .await
                .pop()
                .unwrap_or(Reply::Null);
            if !self.cluster.is_running(node, incarnation) {
                // The connection broke: whatever the node did is unknown.
                let error = format!("node {node} crashed during the request");
                return unknown(op, error);
            }
            match self.judge(op, reply) {
                Attempt::Done(seen) => {
                    hints.insert(key, node);
                    return (Kind::Ok, seen, None);
                }
                Attempt::Redirect(next) => {
                    target = next;
                    match next {
                        Some(next) => hints.insert(key.clone(), next),
                        None => hints.remove(&key),
                    };
                    pause(rng).await;
                }
                Attempt::Unknown(error) => {
                    hints.remove(&key);
                    return unknown(op, error);
                }
            }
        }
    }

    /// Reads what one reply says of the operation.
    fn judge(&self, op: &Op, reply: Reply) -> Attempt {
        if let Some(next) = redirect(&reply) {
            return Attempt::Redirect(next);
        }
        match (op, reply) {
            (Op::Write { key, value }, Reply::Simple(status)) if status == "OK" => {
                Attempt::Done(Op::Write {
                    key: key.clone(),
                    value: *value,
                })
            }
            (Op::Read { key, .. }, Reply::Null) => Attempt::Done(Op::Read {
                key: key.clone(),
                value: None,
            }),
            (Op::Read { key, .. }, Reply::Bulk(bytes)) => match std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
            {
                Some(value) => Attempt::Done(Op::Read {
                    key: key.clone(),
                    value: Some(value),
                }),
                None => self.unexpected(op, &Reply::Bulk(bytes)),
            },
            // The proposal may have been committed: unknown.
            (_, Reply::Error(ReplyError::ClusterDown(reason))) => Attempt::Unknown(reason),
            (_, other) => self.unexpected(op, &other),
        }
    }

    fn unexpected(&self, op: &Op, reply: &Reply) -> Attempt {
        let detail = format!("{op:?} replied {reply:?}");
        self.trace.violation(UNEXPECTED_REPLY, detail.clone());
        Attempt::Unknown(detail)
    }
}

/// Returns where to send a request again when `reply` says nothing was
/// proposed: `Some(Some(node))` after MOVED, `Some(None)` (anyone) when the
/// shard has no leader, the node no map, or the shard is taking its
/// slots; `None` for any other reply.
pub fn redirect(reply: &Reply) -> Option<Option<NodeId>> {
    match reply {
        Reply::Error(ReplyError::Moved { addr, .. }) => Some(node_of_address(addr)),
        Reply::Error(ReplyError::ClusterDown(reason))
            if reason.contains("no leader is known") || reason.contains("no cluster map yet") =>
        {
            Some(None)
        }
        Reply::Error(ReplyError::TryAgain(_)) => Some(None),
        _ => None,
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
pub async fn pause(rng: &mut StdRng) {
    let pause_ms = rng.random_range(2..=40);
    tokio::time::sleep(Duration::from_millis(pause_ms)).await;
}
