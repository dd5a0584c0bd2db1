//! Eventual keys follow their slot: when the map moves a slot to another
//! shard (a migration) or a replica to another node, a node holding keys
//! it no longer replicates sends them (tombstones too) to the slot's
//! replicas now, and forgets them once every one of those took them.
//!
//! ```text
//!  map changed ─> pass over the stored keys ─> not a replica of this key any more?
//!     ─> merge into each current replica ─> all took it ─> removed here (if unchanged since)
//! ```
//!
//! Until the pass runs (within a second of the map change), a read on the
//! new replicas may miss a key they are about to receive: a stale read,
//! as eventual reads may be, never a lost write.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use polis_cluster::{Consistency, MapView};
use polis_eventual::command::States;
use polis_raft::storage_eventual::split_eventual_key;
use polis_types::{NodeId, Slot};

use super::anti_entropy::entry_hash;
use super::coordinator::replicas_of;
use super::decode;
use super::gc::purge;
use super::replica::to_wire;
use crate::node::Node;
use crate::rpc::{self, NodeAnswer, NodeRequest};

/// Keys leaving, by slot and the replicas they go to: each with its
/// stored state.
type Leaving = BTreeMap<(Slot, Vec<NodeId>), Vec<(Bytes, Vec<u8>)>>;

/// Keys read, and sent, at once.
const PAGE: usize = 512;
const EVERY: Duration = Duration::from_secs(1);

/// Runs hand-off passes after map changes until the node stops.
pub async fn run(node: Arc<Node>) {
    let settled = AtomicU64::new(0);
    loop {
        tokio::time::sleep(EVERY).await;
        let Some(view) = node.view() else {
            continue;
        };
        if settled.load(Ordering::Relaxed) == view.version() {
            continue;
        }
        match pass(&node, &view).await {
            Ok(true) => settled.store(view.version(), Ordering::Relaxed),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "an eventual hand-off pass failed"),
        }
    }
}

/// Where one stored key goes: its slot, and the replicas it belongs on
/// (none when no namespace makes it eventual any more).
fn destination(view: &MapView, slot: Slot, key: &[u8]) -> Vec<NodeId> {
    view.map()
        .namespaces
        .lookup(key)
        .filter(|namespace| namespace.consistency == Consistency::Eventual)
        .and_then(|namespace| namespace.quorums)
        .map(|quorums| replicas_of(view, slot, quorums.replicas))
        .unwrap_or_default()
}

/// One pass; returns true when nothing was left to hand off.
async fn pass(node: &Arc<Node>, view: &MapView) -> io::Result<bool> {
    let me = node.config.node_id;
    let storage = node.host.storage();
    let mut done = true;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = storage.eventual_page(after.as_deref(), PAGE)?;
        // (slot, replicas) -> keys with their states and hashes.
        let mut leaving = Leaving::new();
        for (stored, bytes) in &page {
            let Some((slot, key)) = split_eventual_key(stored) else {
                continue;
            };
            let Some(slot) = Slot::new(slot) else {
                // Hints: after every slot.
                break;
            };
            let replicas = destination(view, slot, key);
            if replicas.contains(&me) {
                continue;
            }
            if replicas.is_empty() {
                // No eventual namespace holds it any more: a dead key is
                // forgotten, a live one kept (its namespace was removed
                // while a write raced the check) for an operator to see.
                let now = polis_eventual::hlc::Clock::now_ms(node.eventual.clock.as_ref());
                if decode(bytes)?.live_kind(now).is_some() {
                    continue;
                }
            }
            leaving
                .entry((slot, replicas))
                .or_default()
                .push((Bytes::copy_from_slice(key), bytes.clone()));
        }
        for ((slot, replicas), keys) in leaving {
            done &= hand_off(node, slot, &replicas, &keys).await?;
        }
        match page.last() {
            Some((stored, _)) if page.len() == PAGE => after = Some(stored.clone()),
            _ => return Ok(done),
        }
    }
}

/// Sends `keys` of `slot` to every node of `replicas`; once all took
/// them, removes them here. Returns whether they were removed.
async fn hand_off(
    node: &Arc<Node>,
    slot: Slot,
    replicas: &[NodeId],
    keys: &[(Bytes, Vec<u8>)],
) -> io::Result<bool> {
    let mut states = States::new();
    for (key, bytes) in keys {
        states.insert(key.clone(), decode(bytes)?);
    }
    let request = NodeRequest::EventualMerge {
        slot: slot.get(),
        stamp: node.eventual.hlc.now().time,
        states: to_wire(&states)?,
    };
    for replica in replicas {
        let taken = match node.peer_addr(*replica) {
            Some(addr) => matches!(
                rpc::call_within(node, &addr, &request, Duration::from_secs(5)).await,
                Ok(NodeAnswer::EventualMerged)
            ),
            None => false,
        };
        if !taken {
            tracing::debug!(replica = %replica, slot = %slot, "eventual keys not handed off yet");
            return Ok(false);
        }
    }
    let hashed: Vec<(Bytes, u64)> = keys
        .iter()
        .map(|(key, bytes)| (key.clone(), entry_hash(key, bytes)))
        .collect();
    let removed = purge(node, slot.get(), &hashed).await?;
    node.eventual
        .stats
        .handed_off
        .fetch_add(removed, Ordering::Relaxed);
    Ok(removed == hashed.len() as u64)
}
