//! Hinted handoff: a write a replica did not acknowledge leaves a durable
//! hint here, and the hint is delivered (the key's current state sent)
//! once the replica answers again, within the hint window. A hint older
//! than the window is dropped: anti-entropy brings such a replica back.
//!
//! ```text
//!   hint: 0xFFFF | node (u64 BE) | slot (u16 BE) | key  ->  when written (ms, u64 BE)
//! ```
//!
//! Hints share the eventual keyspace, after every slot's keys (slots end
//! at 0x3FFF), so scans of slots never meet them.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use polis_raft::storage_eventual::EventualWrite;
use polis_types::{NodeId, Slot};

use super::load;
use super::replica::to_wire;
use crate::node::Node;
use crate::rpc::{self, NodeAnswer, NodeRequest};

const HINTS: [u8; 2] = [0xff, 0xff];
/// Hinted keys delivered to one node in one message.
const BATCH: usize = 256;
/// How often hints are tried.
const EVERY: Duration = Duration::from_secs(1);
/// How long one delivery may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

fn node_prefix(node: NodeId) -> Vec<u8> {
    let mut prefix = HINTS.to_vec();
    prefix.extend_from_slice(&node.get().to_be_bytes());
    prefix
}

fn hint_key(node: NodeId, slot: Slot, key: &[u8]) -> Vec<u8> {
    let mut stored = node_prefix(node);
    stored.extend_from_slice(&slot.get().to_be_bytes());
    stored.extend_from_slice(key);
    stored
}

/// Splits a hint's stored key into its node, slot and key.
fn split(stored: &[u8]) -> Option<(NodeId, Slot, &[u8])> {
    let rest = stored.strip_prefix(&HINTS[..])?;
    let (node, rest) = rest.split_first_chunk::<8>()?;
    let (slot, key) = rest.split_first_chunk::<2>()?;
    Some((
        NodeId(u64::from_be_bytes(*node)),
        Slot::new(u16::from_be_bytes(*slot))?,
        key,
    ))
}

/// Records, durably, that `node` missed the writes of `keys` in `slot`.
pub(crate) async fn record(node: &Node, to: NodeId, slot: Slot, keys: &[Bytes]) {
    if !node.settings.flag("eventual-hints") {
        return;
    }
    let at = node.eventual.hlc.wall_ms().to_be_bytes().to_vec();
    let writes: Vec<EventualWrite> = keys
        .iter()
        .map(|key| (hint_key(to, slot, key), Some(at.clone())))
        .collect();
    match node.host.storage().eventual_put(writes).await {
        Ok(()) => {
            node.eventual
                .stats
                .hints_written
                .fetch_add(keys.len() as u64, Ordering::Relaxed);
        }
        Err(error) => tracing::warn!(%error, "a hint was not stored"),
    }
}

/// Returns how many hints wait here.
pub(crate) fn pending(node: &Node) -> io::Result<u64> {
    let storage = node.host.storage();
    let mut count = 0u64;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = storage.eventual_prefix(&HINTS, after.as_deref(), 4096)?;
        count += page.len() as u64;
        match page.last() {
            Some((stored, _)) if page.len() == 4096 => after = Some(stored.clone()),
            _ => return Ok(count),
        }
    }
}

/// Delivers hints until the node stops.
pub async fn run(node: Arc<Node>) {
    loop {
        tokio::time::sleep(EVERY).await;
        if let Err(error) = deliver(&node).await {
            tracing::warn!(%error, "hint delivery failed");
        }
    }
}

/// Delivers (or drops, past the window) one batch of hints per node.
async fn deliver(node: &Arc<Node>) -> io::Result<()> {
    let storage = node.host.storage();
    let window = u64::try_from(node.settings.integer("eventual-hint-window-ms")).unwrap_or(0);
    let now = node.eventual.hlc.wall_ms();
    let mut after: Option<Vec<u8>> = None;
    loop {
        // The first hint after `after` names the next node with hints.
        let Some((first, _)) = storage
            .eventual_prefix(&HINTS, after.as_deref(), 1)?
            .into_iter()
            .next()
        else {
            return Ok(());
        };
        let Some((to, _, _)) = split(&first) else {
            return Ok(());
        };
        let prefix = node_prefix(to);
        let batch = storage.eventual_prefix(&prefix, None, BATCH)?;
        let mut expired: Vec<EventualWrite> = Vec::new();
        let mut due: BTreeMap<Slot, Vec<(Vec<u8>, Bytes)>> = BTreeMap::new();
        for (stored, value) in &batch {
            let written = value
                .as_slice()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            match split(stored) {
                Some((_, slot, key)) if now.saturating_sub(written) <= window => due
                    .entry(slot)
                    .or_default()
                    .push((stored.clone(), Bytes::copy_from_slice(key))),
                _ => expired.push((stored.clone(), None)),
            }
        }
        if !expired.is_empty() {
            node.eventual
                .stats
                .hints_expired
                .fetch_add(expired.len() as u64, Ordering::Relaxed);
            storage.eventual_put(expired).await?;
        }
        for (slot, hinted) in due {
            let keys: Vec<Bytes> = hinted.iter().map(|(_, key)| key.clone()).collect();
            if !send(node, to, slot, &keys).await? {
                break;
            }
            let done: Vec<EventualWrite> = hinted
                .into_iter()
                .map(|(stored, _)| (stored, None))
                .collect();
            node.eventual
                .stats
                .hints_delivered
                .fetch_add(done.len() as u64, Ordering::Relaxed);
            storage.eventual_put(done).await?;
        }
        // Past this node's hints, to the next node's.
        // (A slot starts with a byte below 0x40: 0xFF sorts after them.)
        let mut next = prefix;
        next.push(0xff);
        after = Some(next);
    }
}

/// Sends `to` the current states of `keys`; returns whether it took them.
async fn send(node: &Arc<Node>, to: NodeId, slot: Slot, keys: &[Bytes]) -> io::Result<bool> {
    let Some(addr) = node.peer_addr(to) else {
        return Ok(false);
    };
    let states = load(node.host.storage(), slot, keys)?;
    let request = NodeRequest::EventualMerge {
        slot: slot.get(),
        stamp: node.eventual.hlc.now().time,
        states: to_wire(&states)?,
    };
    Ok(matches!(
        rpc::call_within(node, &addr, &request, CALL_TIMEOUT).await,
        Ok(NodeAnswer::EventualMerged)
    ))
}
