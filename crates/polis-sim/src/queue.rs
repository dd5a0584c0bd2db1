//! Queue clients: each either pushes a unique value onto one list in a
//! transaction that also counts the push (`MULTI`, `RPUSH`, `INCR`,
//! `EXEC`), or pops with `BLPOP`, waiting on the shard's leader while the
//! nemesis moves leaders, crashes nodes and cuts links. After the heal the
//! list and the counter are read back, and the book of what the clients
//! saw must agree with them:
//!
//! - no value is popped twice, nor popped and still in the list;
//! - no value is popped or listed that no client pushed;
//! - every acknowledged push is popped or still listed, unless a pop with
//!   an unknown outcome may have taken it;
//! - the counter counts the pushes that applied, no more and no fewer
//!   (the transaction applied whole or not at all).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_server::connection::Session;
use polis_types::NodeId;
use rand::rngs::StdRng;
use rand::Rng;

use crate::client::{pause, redirect};
use crate::cluster::SimCluster;
use crate::trace::Trace;

/// Name of the violations the queue's book reports.
pub const QUEUE_AGREES: &str = "queue-agrees";

/// The list the clients push to and pop from, and the push counter (one
/// slot, for the transaction).
const LIST: &str = "{queue}jobs";
const COUNTER: &str = "{queue}pushes";
/// How long a pop blocks, in seconds.
const POP_TIMEOUT: &str = "0.3";
/// How long a client looks for a leader before giving up on an operation
/// that certainly did not happen.
const LEADER_SEARCH_MAX: Duration = Duration::from_secs(5);
/// The most a client waits between operations.
const THINK_MS_MAX: u64 = 40;
/// How long the final read may look for the leader after the heal.
const FINAL_READ_MAX: Duration = Duration::from_secs(30);

/// What the queue clients saw.
#[derive(Debug, Default)]
pub struct Book {
    /// Pushes acknowledged.
    pub pushed: BTreeSet<u64>,
    /// Pushes whose outcome is unknown.
    pub maybe_pushed: BTreeSet<u64>,
    /// Values acknowledged as popped, with how many times.
    pub popped: BTreeMap<u64, u32>,
    /// Pops whose outcome is unknown (each may have taken one value).
    pub unknown_pops: u64,
}

/// What the queue clients did, for the run's report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub pushed: u64,
    pub maybe_pushed: u64,
    pub popped: u64,
    pub unknown_pops: u64,
    /// Values left in the list at the end.
    pub left: u64,
}

/// What every queue client shares.
#[derive(Clone)]
pub struct QueueClients {
    pub cluster: SimCluster,
    pub trace: Trace,
    pub next_value: Arc<AtomicU64>,
    pub book: Arc<Mutex<Book>>,
    pub end: tokio::time::Instant,
}

/// How one request ended.
enum Outcome {
    /// A reply from the node that served it.
    Replied(Reply),
    /// The outcome is unknown.
    Unknown,
    /// Nothing was done: no node served it in time.
    NotDone,
}

impl QueueClients {
    /// Runs queue client `id` until the end of the workload.
    pub async fn run(self, id: u64, mut rng: StdRng) {
        while tokio::time::Instant::now() < self.end {
            let think = rng.random_range(0..=THINK_MS_MAX);
            tokio::time::sleep(Duration::from_millis(think)).await;
            if rng.random_bool(0.5) {
                self.push(id, &mut rng).await;
            } else {
                self.pop(id, &mut rng).await;
            }
        }
    }

    async fn push(&self, id: u64, rng: &mut StdRng) {
        let value = self.next_value.fetch_add(1, Ordering::Relaxed);
        let requests = vec![
            command(&["MULTI"]),
            command(&["RPUSH", LIST, &value.to_string()]),
            command(&["INCR", COUNTER]),
            command(&["EXEC"]),
        ];
        let outcome = self.request(id, requests, rng).await;
        let mut book = self.lock();
        match outcome {
            Outcome::Replied(Reply::Array(replies))
                if matches!(replies.as_slice(), [Reply::Integer(_), Reply::Integer(_)]) =>
            {
                book.pushed.insert(value);
            }
            Outcome::Replied(other) => {
                drop(book);
                self.unexpected("MULTI RPUSH INCR EXEC", &other);
            }
            Outcome::Unknown => {
                book.maybe_pushed.insert(value);
            }
            Outcome::NotDone => {}
        }
    }

    async fn pop(&self, id: u64, rng: &mut StdRng) {
        let requests = vec![command(&["BLPOP", LIST, POP_TIMEOUT])];
        let outcome = self.request(id, requests, rng).await;
        let mut book = self.lock();
        match outcome {
            Outcome::Replied(Reply::NullArray | Reply::Null) => {}
            Outcome::Replied(Reply::Array(pair)) => match pair.as_slice() {
                [_, Reply::Bulk(value)] => match parse(value) {
                    Some(value) => *book.popped.entry(value).or_default() += 1,
                    None => {
                        drop(book);
                        self.unexpected("BLPOP", &Reply::Array(pair));
                    }
                },
                _ => {
                    drop(book);
                    self.unexpected("BLPOP", &Reply::Array(pair));
                }
            },
            Outcome::Replied(other) => {
                drop(book);
                self.unexpected("BLPOP", &other);
            }
            Outcome::Unknown => book.unknown_pops += 1,
            Outcome::NotDone => {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn unexpected(&self, what: &str, reply: &Reply) {
        self.trace
            .violation(QUEUE_AGREES, format!("{what} replied {reply:?}"));
    }

    /// Sends `requests` (one pipeline) to the shard's leader, following
    /// redirects; the outcome is the last reply.
    async fn request(&self, client: u64, requests: Vec<Vec<Bytes>>, rng: &mut StdRng) -> Outcome {
        let deadline = tokio::time::Instant::now() + LEADER_SEARCH_MAX;
        let mut target: Option<NodeId> = None;
        loop {
            if tokio::time::Instant::now() >= deadline {
                return Outcome::NotDone;
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
                target = None;
                pause(rng).await;
                continue;
            };
            let mut session = Session::new(client);
            let mut replies =
                polis_server::pipeline::execute(&server, &mut session, requests.clone()).await;
            // A command queued in a transaction on a node that cannot
            // serve its slot is refused there (EXEC then aborts): the
            // refusal says where to go.
            let refusal = replies.iter().position(|reply| {
                matches!(
                    reply,
                    Reply::Error(
                        ReplyError::Moved { .. }
                            | ReplyError::ClusterDown(_)
                            | ReplyError::TryAgain(_)
                    )
                )
            });
            let reply = match refusal {
                Some(at) => replies.swap_remove(at),
                None => replies.pop().unwrap_or(Reply::Null),
            };
            if !self.cluster.is_running(node, incarnation) || session.abort {
                // The connection broke or was closed: unknown.
                return Outcome::Unknown;
            }
            match redirect(&reply) {
                Some(next) => target = next,
                None if matches!(reply, Reply::Error(ReplyError::ClusterDown(_))) => {
                    // The proposal may have been committed.
                    return Outcome::Unknown;
                }
                None => return Outcome::Replied(reply),
            }
            pause(rng).await;
        }
    }

    /// Reads the list and the counter once the cluster healed, and
    /// checks the book against them; returns what the clients did.
    pub async fn check(&self, rng: &mut StdRng) -> QueueCounts {
        let deadline = tokio::time::Instant::now() + FINAL_READ_MAX;
        let read = vec![
            command(&["MULTI"]),
            command(&["LRANGE", LIST, "0", "-1"]),
            command(&["GET", COUNTER]),
            command(&["EXEC"]),
        ];
        let state = loop {
            match self.request(0, read.clone(), rng).await {
                Outcome::Replied(Reply::Array(replies)) => match final_state(&replies) {
                    Some(state) => break state,
                    None => {
                        self.unexpected("the final read", &Reply::Array(replies));
                        return self.counts(0);
                    }
                },
                Outcome::Replied(other) => {
                    self.unexpected("the final read", &other);
                    return self.counts(0);
                }
                Outcome::Unknown | Outcome::NotDone => {}
            }
            if tokio::time::Instant::now() >= deadline {
                self.trace.violation(
                    QUEUE_AGREES,
                    "no node served the final read of the queue".to_owned(),
                );
                return self.counts(0);
            }
            pause(rng).await;
        };
        for problem in audit(&self.lock(), &state.0, state.1) {
            self.trace.violation(QUEUE_AGREES, problem);
        }
        self.counts(state.0.len() as u64)
    }

    fn counts(&self, left: u64) -> QueueCounts {
        let book = self.lock();
        QueueCounts {
            pushed: book.pushed.len() as u64,
            maybe_pushed: book.maybe_pushed.len() as u64,
            popped: book.popped.values().map(|times| u64::from(*times)).sum(),
            unknown_pops: book.unknown_pops,
            left,
        }
    }
}

/// The list's values and the counter, from the final read's replies.
fn final_state(replies: &[Reply]) -> Option<(Vec<u64>, u64)> {
    let [Reply::Array(listed), counter] = replies else {
        return None;
    };
    let listed = listed
        .iter()
        .map(|reply| match reply {
            Reply::Bulk(value) => parse(value),
            _ => None,
        })
        .collect::<Option<Vec<u64>>>()?;
    let counter = match counter {
        Reply::Null => 0,
        Reply::Bulk(value) => parse(value)?,
        _ => return None,
    };
    Some((listed, counter))
}

/// Returns what is wrong in `book` given the final list and counter.
pub fn audit(book: &Book, listed: &[u64], counter: u64) -> Vec<String> {
    let mut problems = Vec::new();
    let listed_set: BTreeSet<u64> = listed.iter().copied().collect();
    if listed_set.len() != listed.len() {
        problems.push("a value is in the list twice".to_owned());
    }
    let known = |value: &u64| book.pushed.contains(value) || book.maybe_pushed.contains(value);
    for (value, times) in &book.popped {
        if *times > 1 {
            problems.push(format!("value {value} was popped {times} times"));
        }
        if listed_set.contains(value) {
            problems.push(format!("value {value} was popped and is still listed"));
        }
        if !known(value) {
            problems.push(format!("value {value} was popped but never pushed"));
        }
    }
    if let Some(value) = listed.iter().find(|value| !known(value)) {
        problems.push(format!("value {value} is listed but was never pushed"));
    }
    let lost: Vec<u64> = book
        .pushed
        .iter()
        .filter(|value| !listed_set.contains(value) && !book.popped.contains_key(value))
        .copied()
        .collect();
    if lost.len() as u64 > book.unknown_pops {
        problems.push(format!(
            "{} acknowledged pushes are neither popped nor listed (first {:?}), with only {} \
             pops of unknown outcome",
            lost.len(),
            lost.first(),
            book.unknown_pops
        ));
    }
    // Pushes that applied: the acknowledged ones and some unknown ones,
    // each counted once by its own transaction.
    let applied = (listed.len() + book.popped.len()) as u64;
    let pushed = book.pushed.len() as u64;
    let maybe = book.maybe_pushed.len() as u64;
    if counter < pushed || counter > pushed + maybe {
        problems.push(format!(
            "the counter says {counter} pushes applied; {pushed} were acknowledged and {maybe} \
             unknown"
        ));
    }
    if applied > counter || applied + book.unknown_pops < counter {
        problems.push(format!(
            "{applied} values are popped or listed, the counter says {counter} were pushed \
             ({} pops of unknown outcome)",
            book.unknown_pops
        ));
    }
    problems
}

fn command(parts: &[&str]) -> Vec<Bytes> {
    parts
        .iter()
        .map(|part| Bytes::copy_from_slice(part.as_bytes()))
        .collect()
}

fn parse(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
#[path = "queue_test.rs"]
mod tests;
