//! Eventual replicas beside the Raft groups: an eventual namespace
//! (`ev:`) whose keys live on the same shard replicas as the strong keys
//! but are written through any node with a write quorum of one, so they
//! stay writable through every partition and crash the nemesis makes.
//! Clients add to counters (INCRBY) and add unique members to sets
//! (SADD); after the heal every replica of each key must converge, and
//! the converged values must account for what the clients saw:
//!
//! - every replica of a key answers the same (they converged);
//! - a counter lies between the sum of its acknowledged increments and
//!   that sum plus the increments of unknown outcome;
//! - a set holds every acknowledged member, and nothing no client added.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use polis_cluster::{Consistency, MapChange, Namespace, Quorums};
use polis_resp::{Reply, ReplyError};
use polis_server::connection::Session;
use polis_server::rpc::{NodeAnswer, NodeRequest};
use polis_types::{key_hash_slot, NodeId};
use rand::rngs::StdRng;
use rand::Rng;

use crate::client::pause;
use crate::cluster::SimCluster;
use crate::trace::Trace;

/// Name of the violations the eventual keys report.
pub const EVENTUAL_CONVERGES: &str = "eventual-converges";

const PREFIX: &str = "ev:";
const COUNTERS: usize = 3;
const SETS: usize = 2;
/// The most a client waits between operations.
const THINK_MS_MAX: u64 = 40;
/// How long one operation looks for a node that takes it.
const NODE_SEARCH_MAX: Duration = Duration::from_secs(5);
/// How long after the heal the replicas have to converge (anti-entropy
/// runs every second).
const CONVERGE_MAX: Duration = Duration::from_secs(60);
/// Connection ids of eventual clients start after this.
pub const CLIENT_IDS: u64 = 2_000;

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Book {
    /// Per counter: the sum of acknowledged increments.
    pub counted: BTreeMap<String, i64>,
    /// Per counter: the sum of increments of unknown outcome.
    pub maybe_counted: BTreeMap<String, i64>,
    /// Per set: members whose SADD was acknowledged.
    pub added: BTreeMap<String, BTreeSet<u64>>,
    /// Per set: members whose SADD's outcome is unknown.
    pub maybe_added: BTreeMap<String, BTreeSet<u64>>,
    /// Operations acknowledged, and of unknown outcome.
    pub acknowledged: u64,
    pub unknown: u64,
}

/// What the eventual clients did, for the run's report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventualCounts {
    pub acknowledged: u64,
    pub unknown: u64,
    /// Virtual milliseconds from the check's start until every replica
    /// agreed (0 when they never did).
    pub converged_ms: u64,
}

/// What every eventual client shares.
#[derive(Clone)]
pub struct EventualClients {
    pub cluster: SimCluster,
    pub trace: Trace,
    pub next_value: Arc<std::sync::atomic::AtomicU64>,
    pub book: Arc<Mutex<Book>>,
    pub end: tokio::time::Instant,
}

enum Outcome {
    Replied(Reply),
    Unknown,
    NotDone,
}

fn command(parts: &[&str]) -> Vec<Bytes> {
    parts
        .iter()
        .map(|part| Bytes::copy_from_slice(part.as_bytes()))
        .collect()
}

impl EventualClients {
    /// Makes `ev:` an eventual namespace (N = the replicas a shard keeps,
    /// W = R = 1) through any node's meta leader; returns whether it did.
    pub async fn configure(&self, rng: &mut StdRng) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            let running = self.cluster.nodes(true);
            let Some(node) = running.first().and_then(|id| self.cluster.node(*id)) else {
                pause(rng).await;
                continue;
            };
            let (server, _) = node;
            let Some(replicas) = server.view().and_then(|view| {
                view.map()
                    .shards
                    .values()
                    .map(|shard| shard.replicas.len())
                    .min()
            }) else {
                pause(rng).await;
                continue;
            };
            let namespace = Namespace {
                prefix: Bytes::from_static(PREFIX.as_bytes()),
                consistency: Consistency::Eventual,
                quorums: Some(Quorums {
                    replicas: replicas as u8,
                    write: 1,
                    read: 1,
                }),
            };
            let request = NodeRequest::ChangeMap {
                changes: vec![MapChange::SetNamespace(namespace)],
            };
            if let NodeAnswer::Changed(_) =
                polis_server::meta_leader::ask_patiently(&server, request).await
            {
                return true;
            }
            pause(rng).await;
        }
        self.trace.violation(
            EVENTUAL_CONVERGES,
            "the eventual namespace could not be set".to_owned(),
        );
        false
    }

    /// Runs eventual client `id` until the end of the workload.
    pub async fn run(self, id: u64, mut rng: StdRng) {
        while tokio::time::Instant::now() < self.end {
            let think = rng.random_range(0..=THINK_MS_MAX);
            tokio::time::sleep(Duration::from_millis(think)).await;
            if rng.random_bool(0.6) {
                let key = format!("{PREFIX}c{}", rng.random_range(0..COUNTERS));
                let delta: i64 = rng.random_range(1..=5);
                let args = command(&["INCRBY", &key, &delta.to_string()]);
                let outcome = self.request(id, args, &mut rng).await;
                let mut book = self.lock();
                match outcome {
                    Outcome::Replied(Reply::Integer(_)) => {
                        book.acknowledged += 1;
                        *book.counted.entry(key).or_default() += delta;
                    }
                    Outcome::Replied(other) => {
                        drop(book);
                        self.unexpected("INCRBY", &other);
                    }
                    Outcome::Unknown => {
                        book.unknown += 1;
                        *book.maybe_counted.entry(key).or_default() += delta;
                    }
                    Outcome::NotDone => {}
                }
            } else {
                let key = format!("{PREFIX}s{}", rng.random_range(0..SETS));
                let member = self
                    .next_value
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let args = command(&["SADD", &key, &member.to_string()]);
                let outcome = self.request(id, args, &mut rng).await;
                let mut book = self.lock();
                match outcome {
                    Outcome::Replied(Reply::Integer(1)) => {
                        book.acknowledged += 1;
                        book.added.entry(key).or_default().insert(member);
                    }
                    Outcome::Replied(other) => {
                        drop(book);
                        self.unexpected("SADD", &other);
                    }
                    Outcome::Unknown => {
                        book.unknown += 1;
                        book.maybe_added.entry(key).or_default().insert(member);
                    }
                    Outcome::NotDone => {}
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn unexpected(&self, what: &str, reply: &Reply) {
        self.trace
            .violation(EVENTUAL_CONVERGES, format!("{what} replied {reply:?}"));
    }

    /// Sends `args` to a random running node that knows the namespace.
    async fn request(&self, client: u64, args: Vec<Bytes>, rng: &mut StdRng) -> Outcome {
        let deadline = tokio::time::Instant::now() + NODE_SEARCH_MAX;
        while tokio::time::Instant::now() < deadline {
            let running = self.cluster.nodes(true);
            if running.is_empty() {
                pause(rng).await;
                continue;
            }
            let node = running[rng.random_range(0..running.len())];
            let Some((server, incarnation)) = self.cluster.node(node) else {
                pause(rng).await;
                continue;
            };
            // A node that has not yet received the namespace would take
            // the key as strong.
            let knows = server.view().is_some_and(|view| {
                view.map().namespaces.consistency(&args[1]) == Consistency::Eventual
            });
            if !knows {
                pause(rng).await;
                continue;
            }
            let mut session = Session::new(client);
            let mut replies =
                polis_server::pipeline::execute(&server, &mut session, vec![args.clone()]).await;
            let reply = replies.pop().unwrap_or(Reply::Null);
            if !self.cluster.is_running(node, incarnation) || session.abort {
                return Outcome::Unknown;
            }
            match &reply {
                Reply::Error(ReplyError::Other(line)) if line.starts_with("OUTCOMEUNKNOWN") => {
                    return Outcome::Unknown;
                }
                // Nothing was done: no replica answered, or no map.
                Reply::Error(ReplyError::ClusterDown(_) | ReplyError::TryAgain(_)) => {}
                _ => return Outcome::Replied(reply),
            }
            pause(rng).await;
        }
        Outcome::NotDone
    }

    /// Each running replica's answer to `args` (a read of `key`), by node.
    async fn answers(&self, key: &str, args: &[Bytes]) -> BTreeMap<NodeId, Reply> {
        let mut answers = BTreeMap::new();
        for node in self.cluster.nodes(true) {
            let Some((server, _)) = self.cluster.node(node) else {
                continue;
            };
            let Some(view) = server.view() else {
                continue;
            };
            let Some(quorums) = view
                .map()
                .namespaces
                .lookup(key.as_bytes())
                .and_then(|ns| ns.quorums)
            else {
                continue;
            };
            let slot = key_hash_slot(key.as_bytes());
            if !polis_server::eventual::replicas_of(&view, slot, quorums.replicas).contains(&node) {
                continue;
            }
            let mut session = Session::new(CLIENT_IDS - 1);
            let mut replies =
                polis_server::pipeline::execute(&server, &mut session, vec![args.to_vec()]).await;
            answers.insert(node, replies.pop().unwrap_or(Reply::Null));
        }
        answers
    }

    /// Waits until every replica of every key agrees, then checks the
    /// book against the values; returns what the clients did.
    pub async fn check(&self, rng: &mut StdRng) -> EventualCounts {
        let start = tokio::time::Instant::now();
        let keys: Vec<(String, Vec<Bytes>)> = (0..COUNTERS)
            .map(|index| format!("{PREFIX}c{index}"))
            .map(|key| {
                let args = command(&["GET", &key]);
                (key, args)
            })
            .chain(
                (0..SETS)
                    .map(|index| format!("{PREFIX}s{index}"))
                    .map(|key| {
                        let args = command(&["SMEMBERS", &key]);
                        (key, args)
                    }),
            )
            .collect();
        let mut converged = None;
        while converged.is_none() && start.elapsed() < CONVERGE_MAX {
            let mut values = BTreeMap::new();
            let mut agree = true;
            for (key, args) in &keys {
                let answers = self.answers(key, args).await;
                let mut distinct = answers.values().map(sorted);
                let first = distinct.next();
                agree &= first.is_some() && distinct.all(|other| Some(&other) == first.as_ref());
                values.insert(key.clone(), first);
            }
            if agree {
                converged = Some(values);
            } else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                pause(rng).await;
            }
        }
        let book = self.lock();
        let (acknowledged, unknown) = (book.acknowledged, book.unknown);
        let Some(values) = converged else {
            self.trace.violation(
                EVENTUAL_CONVERGES,
                format!(
                    "the replicas still disagree {} s after the heal",
                    CONVERGE_MAX.as_secs()
                ),
            );
            return EventualCounts {
                acknowledged,
                unknown,
                converged_ms: 0,
            };
        };
        for problem in audit(&book, &values) {
            self.trace.violation(EVENTUAL_CONVERGES, problem);
        }
        EventualCounts {
            acknowledged,
            unknown,
            converged_ms: start.elapsed().as_millis() as u64,
        }
    }
}

/// A reply with a set's members in order, for comparison.
fn sorted(reply: &Reply) -> Reply {
    match reply {
        Reply::Set(members) | Reply::Array(members) => {
            let mut members = members.clone();
            members.sort_by_key(|member| format!("{member:?}"));
            Reply::Array(members)
        }
        other => other.clone(),
    }
}

fn number(reply: &Reply) -> Option<i64> {
    match reply {
        Reply::Null => Some(0),
        Reply::Bulk(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        _ => None,
    }
}

/// Returns what is wrong in `book` given the converged values.
pub fn audit(book: &Book, values: &BTreeMap<String, Option<Reply>>) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, value) in values {
        let Some(value) = value else {
            continue;
        };
        if key.starts_with(&format!("{PREFIX}c")) {
            let counted = book.counted.get(key).copied().unwrap_or(0);
            let maybe = book.maybe_counted.get(key).copied().unwrap_or(0);
            match number(value) {
                Some(total) if (counted..=counted + maybe).contains(&total) => {}
                _ => problems.push(format!(
                    "counter {key} is {value:?}; acknowledged increments sum to {counted}, \
                     unknown ones to {maybe}"
                )),
            }
        } else {
            let members: BTreeSet<u64> = match value {
                Reply::Array(members) => members
                    .iter()
                    .filter_map(|member| match member {
                        Reply::Bulk(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
                        _ => None,
                    })
                    .collect(),
                _ => {
                    problems.push(format!("set {key} read as {value:?}"));
                    continue;
                }
            };
            let none = BTreeSet::new();
            let added = book.added.get(key).unwrap_or(&none);
            let maybe = book.maybe_added.get(key).unwrap_or(&none);
            if let Some(lost) = added.iter().find(|member| !members.contains(member)) {
                problems.push(format!("set {key} lost acknowledged member {lost}"));
            }
            if let Some(invented) = members
                .iter()
                .find(|member| !added.contains(member) && !maybe.contains(member))
            {
                problems.push(format!("set {key} holds {invented}, which no client added"));
            }
        }
    }
    problems
}
