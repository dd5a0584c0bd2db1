//! Coordinating an eventual command: on a replica of the slot's shard
//! (any of them; the others forward to one), with the namespace's
//! quorums.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use polis_cluster::{MapView, Quorums};
use polis_commands::Classified;
use polis_eventual::command::{self, Ctx, States};
use polis_eventual::merge::Merge;
use polis_eventual::value::KeyState;
use polis_resp::{Reply, ReplyError};
use polis_types::{NodeId, Slot};
use tokio::sync::mpsc;

use super::replica::{from_wire, to_wire};
use super::{load, merge_stored, store, Eventual};
use crate::node::Node;
use crate::rpc::{self, NodeAnswer, NodeRequest};

/// How long a write waits for W acknowledgements, and a read for R
/// answers.
pub const QUORUM_WAIT: Duration = Duration::from_secs(1);

/// Returns the replicas of `slot`'s eventual keys: `replicas` nodes of the
/// shard owning it, in node order from a place the slot picks (so slots
/// spread over the nodes when N is below the shard's replica count).
pub fn replicas_of(view: &MapView, slot: Slot, replicas: u8) -> Vec<NodeId> {
    let Some(shard) = view.owner(slot) else {
        return Vec::new();
    };
    let mut nodes: Vec<NodeId> = shard.replicas.iter().map(|replica| replica.node).collect();
    nodes.sort();
    if nodes.is_empty() {
        return nodes;
    }
    let start = usize::from(slot.get()) % nodes.len();
    nodes.rotate_left(start);
    nodes.truncate(usize::from(replicas));
    nodes
}

fn storage_error(error: &std::io::Error) -> Reply {
    tracing::error!(%error, "eventual storage failed");
    Reply::Error(ReplyError::err(format!(
        "this node could not read or write its eventual keys ({error}); try another node"
    )))
}

/// Runs an eventual request routed to `slot` with `quorums`. `forwarded`
/// marks a request another node sent here: it is not forwarded again.
pub async fn execute(
    node: &Arc<Node>,
    class: &Classified,
    args: Vec<Bytes>,
    slot: Slot,
    quorums: Quorums,
    forwarded: bool,
) -> Reply {
    let Some(view) = node.view() else {
        return crate::dispatch::no_map();
    };
    let name = class.governing.name;
    let Some(write) = command::offered(name) else {
        let keys = polis_commands::spec::command_keys(class.spec, &args);
        let prefix = keys
            .first()
            .and_then(|key| view.map().namespaces.lookup(key))
            .map(|namespace| namespace.prefix.clone())
            .unwrap_or_default();
        return Reply::Error(command::not_offered(name, &prefix));
    };
    let replicas = replicas_of(&view, slot, quorums.replicas);
    let me = node.config.node_id;
    if !replicas.contains(&me) {
        if forwarded {
            return Reply::Error(ReplyError::TryAgain(format!(
                "node {me} holds no replica of slot {slot}'s eventual keys in its map; the map \
                 is changing"
            )));
        }
        return forward(node, &replicas, args, write).await;
    }
    let keys = polis_commands::spec::command_keys(class.spec, &args);
    let others: Vec<NodeId> = replicas.into_iter().filter(|other| *other != me).collect();
    if write {
        node.eventual.stats.writes.fetch_add(1, Ordering::Relaxed);
        coordinate_write(node, &args, &keys, slot, quorums, &others).await
    } else {
        node.eventual.stats.reads.fetch_add(1, Ordering::Relaxed);
        coordinate_read(node, &args, &keys, slot, quorums, &others).await
    }
}

fn ctx(eventual: &Eventual) -> Option<Ctx> {
    Some(Ctx {
        actor: eventual.actor()?,
        version: eventual.hlc.now(),
        now_ms: polis_eventual::hlc::Clock::now_ms(eventual.clock.as_ref()),
    })
}

async fn coordinate_write(
    node: &Arc<Node>,
    args: &[Bytes],
    keys: &[Bytes],
    slot: Slot,
    quorums: Quorums,
    others: &[NodeId],
) -> Reply {
    let eventual = &node.eventual;
    let storage = node.host.storage();
    let (reply, changed, stamp) = {
        let _locked = eventual.lock(keys).await;
        let mut states = match load(storage, slot, keys) {
            Ok(states) => states,
            Err(error) => return storage_error(&error),
        };
        let before = states.clone();
        // The write must be newer than everything it saw, whatever this
        // node's clock says.
        if let Some(newest) = states.values().filter_map(KeyState::max_version).max() {
            eventual.hlc.witness(newest.time);
        }
        let Some(ctx) = ctx(eventual) else {
            return crate::dispatch::no_map();
        };
        let reply = command::execute(args, &ctx, &mut states);
        let changed: States = states
            .into_iter()
            .filter(|(key, state)| match before.get(key) {
                Some(old) => old != state,
                None => !state.is_untouched(),
            })
            .collect();
        if !changed.is_empty() {
            if let Err(error) = store(storage, slot, &changed).await {
                return storage_error(&error);
            }
        }
        (reply, changed, ctx.version.time)
    };
    if changed.is_empty() {
        return reply;
    }
    let wire = match to_wire(&changed) {
        Ok(wire) => wire,
        Err(error) => return storage_error(&error),
    };
    let item = super::MergeItem {
        slot: slot.get(),
        stamp,
        states: wire,
    };
    let mut waiting: FuturesUnordered<_> = others
        .iter()
        .map(|peer| eventual.outboxes.send(node, *peer, item.clone()))
        .collect();
    let mut acknowledged = 1;
    let deadline = tokio::time::Instant::now() + QUORUM_WAIT;
    while acknowledged < usize::from(quorums.write) {
        match tokio::time::timeout_at(deadline, waiting.next()).await {
            Ok(Some(Ok(true))) => acknowledged += 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    if acknowledged >= usize::from(quorums.write) {
        return reply;
    }
    eventual
        .stats
        .outcome_unknown
        .fetch_add(1, Ordering::Relaxed);
    Reply::Error(ReplyError::Other(format!(
        "OUTCOMEUNKNOWN the write reached {acknowledged} of the {} replicas its write quorum \
         needs within {} ms: it was not acknowledged, yet it may still take effect (it is \
         kept and spreads when replicas meet); read the key to learn",
        quorums.write,
        QUORUM_WAIT.as_millis()
    )))
}

/// Sends a read to every node of `to` and returns the answers of the
/// first `needed` that answer well (or all that did by the deadline).
async fn gather(
    node: &Arc<Node>,
    to: &[NodeId],
    request: NodeRequest,
    needed: usize,
) -> Vec<(NodeId, NodeAnswer)> {
    if needed == 0 {
        return Vec::new();
    }
    let (answered, mut answers) = mpsc::channel(to.len().max(1));
    for peer in to {
        let node = node.clone();
        let request = request.clone();
        let answered = answered.clone();
        let peer = *peer;
        tokio::spawn(async move {
            let answer = match node.peer_addr(peer) {
                Some(addr) => rpc::call_within(&node, &addr, &request, QUORUM_WAIT).await,
                None => Err(format!("node {peer} has no address")),
            };
            let _ = answered.send((peer, answer)).await;
        });
    }
    drop(answered);
    let mut good = Vec::new();
    let deadline = tokio::time::Instant::now() + QUORUM_WAIT;
    while good.len() < needed {
        match tokio::time::timeout_at(deadline, answers.recv()).await {
            Ok(Some((peer, Ok(answer)))) => match answer {
                NodeAnswer::EventualMerged | NodeAnswer::EventualStates(_) => {
                    good.push((peer, answer));
                }
                other => tracing::debug!(peer = %peer, answer = ?other, "eventual request refused"),
            },
            Ok(Some((peer, Err(error)))) => {
                tracing::debug!(peer = %peer, %error, "eventual request failed");
            }
            Ok(None) | Err(_) => break,
        }
    }
    good
}

async fn coordinate_read(
    node: &Arc<Node>,
    args: &[Bytes],
    keys: &[Bytes],
    slot: Slot,
    quorums: Quorums,
    others: &[NodeId],
) -> Reply {
    let eventual = &node.eventual;
    let storage = node.host.storage();
    let local = match load(storage, slot, keys) {
        Ok(states) => states,
        Err(error) => return storage_error(&error),
    };
    let needed = usize::from(quorums.read).saturating_sub(1);
    let request = NodeRequest::EventualRead {
        slot: slot.get(),
        keys: keys.to_vec(),
    };
    let answers = gather(node, others, request, needed).await;
    if answers.len() < needed {
        eventual.stats.reads_short.fetch_add(1, Ordering::Relaxed);
        return Reply::Error(ReplyError::TryAgain(format!(
            "the read reached {} of the {} replicas its read quorum needs within {} ms",
            answers.len() + 1,
            quorums.read,
            QUORUM_WAIT.as_millis()
        )));
    }
    let mut seen: Vec<(NodeId, States)> = Vec::with_capacity(answers.len());
    for (peer, answer) in answers {
        if let NodeAnswer::EventualStates(wire) = answer {
            match from_wire(&wire) {
                Ok(states) => seen.push((peer, states)),
                Err(error) => tracing::warn!(peer = %peer, %error, "undecodable eventual states"),
            }
        }
    }
    let mut merged = local.clone();
    for (_, states) in &seen {
        for (key, state) in states {
            merged.entry(key.clone()).or_default().merge(state);
        }
    }
    if node.settings.flag("eventual-read-repair") {
        repair(node, slot, &merged, &local, &seen).await;
    }
    let Some(ctx) = ctx(eventual) else {
        return crate::dispatch::no_map();
    };
    command::execute(args, &ctx, &mut merged)
}

/// Sends the merged states to the replicas (this node included) that
/// answered with less.
async fn repair(
    node: &Arc<Node>,
    slot: Slot,
    merged: &States,
    local: &States,
    seen: &[(NodeId, States)],
) {
    let behind = |states: &States| -> States {
        merged
            .iter()
            .filter(|(key, state)| states.get(*key) != Some(*state))
            .map(|(key, state)| (key.clone(), state.clone()))
            .collect()
    };
    let mine = behind(local);
    if !mine.is_empty() {
        node.eventual
            .stats
            .read_repairs
            .fetch_add(1, Ordering::Relaxed);
        if let Err(error) = merge_stored(&node.eventual, node.host.storage(), slot, mine).await {
            tracing::warn!(%error, "read repair here failed");
        }
    }
    for (peer, states) in seen {
        let theirs = behind(states);
        if theirs.is_empty() {
            continue;
        }
        let (Ok(wire), Some(addr)) = (to_wire(&theirs), node.peer_addr(*peer)) else {
            continue;
        };
        node.eventual
            .stats
            .read_repairs
            .fetch_add(1, Ordering::Relaxed);
        let request = NodeRequest::EventualMerge {
            slot: slot.get(),
            stamp: node.eventual.hlc.now().time,
            states: wire,
        };
        let node = node.clone();
        tokio::spawn(async move {
            let _ = rpc::call_within(&node, &addr, &request, QUORUM_WAIT).await;
        });
    }
}

/// Sends the request to a replica of its slot, which coordinates it:
/// those this node hears beating first. A read goes on to the next
/// replica after any failure; a write only after one that certainly did
/// not reach the replica (it must not run twice), and a write that may
/// have reached one is answered OUTCOMEUNKNOWN.
async fn forward(node: &Arc<Node>, replicas: &[NodeId], args: Vec<Bytes>, write: bool) -> Reply {
    node.eventual
        .stats
        .forwarded
        .fetch_add(1, Ordering::Relaxed);
    let beats = node.host.beats();
    let mut order: Vec<NodeId> = replicas.to_vec();
    order.sort_by_key(|replica| !beats.is_alive(*replica));
    let request = NodeRequest::EventualCommand { args };
    for replica in order {
        let Some(addr) = node.peer_addr(replica) else {
            continue;
        };
        match rpc::call_checked(node, &addr, &request, QUORUM_WAIT * 2).await {
            Ok(NodeAnswer::EventualReply(bytes)) => {
                return postcard::from_bytes(&bytes).unwrap_or_else(|error| {
                    Reply::Error(ReplyError::err(format!("undecodable reply: {error}")))
                });
            }
            Ok(other) => tracing::debug!(replica = %replica, answer = ?other, "forward refused"),
            Err(rpc::CallFailure::Unknown(error)) if write => {
                node.eventual
                    .stats
                    .outcome_unknown
                    .fetch_add(1, Ordering::Relaxed);
                return Reply::Error(ReplyError::Other(format!(
                    "OUTCOMEUNKNOWN the write was forwarded to node {replica}, a replica of its \
                     slot, which did not answer in time ({error}): it may or may not take \
                     effect; read the key to learn"
                )));
            }
            Err(error) => tracing::debug!(replica = %replica, ?error, "forward failed"),
        }
    }
    Reply::Error(ReplyError::ClusterDown(
        "no replica of these eventual keys could be reached from this node: connect to one of \
         them"
            .into(),
    ))
}

/// Runs a request another node forwarded here.
pub(crate) async fn run_forwarded(node: &Arc<Node>, args: Vec<Bytes>) -> NodeAnswer {
    let reply = match node.view() {
        None => crate::dispatch::no_map(),
        Some(view) => match polis_cluster::classify(&args, &view) {
            Err(error) => Reply::Error(error),
            Ok(routed) => match routed.target {
                polis_cluster::Target::Eventual { slot, quorums, .. } => {
                    execute(node, &routed.class, args, slot, quorums, true).await
                }
                _ => Reply::Error(ReplyError::TryAgain(
                    "these keys are not eventual in this node's map; the map is changing".into(),
                )),
            },
        },
    };
    match postcard::to_stdvec(&reply) {
        Ok(bytes) => NodeAnswer::EventualReply(bytes),
        Err(error) => NodeAnswer::Refused(error.to_string()),
    }
}
