//! Purging tombstones (and keys whose deadline passed) from storage, only
//! once every replica holds the same state for them, never on a timer
//! alone, so a deleted key never comes back.
//!
//! ```text
//!  anti-entropy round: slots whose digests matched with every peer are "clean":
//!    every replica of their keys holds the same states
//!  a dead key (tombstone or expired) of a clean slot is a candidate, with its state's hash
//!  a candidate still dead with the same hash in a clean slot QUIET later:
//!    every replica is told to purge it if it still holds exactly that state; this node too
//! ```
//!
//! Why wait QUIET between the two sightings: a message written before the
//! delete could still be on its way (a coordinator's merge that was
//! slow). A replica refuses merges stamped more than QUIET ago
//! ([`STALE_AFTER`]), so after QUIET no such message can bring back an
//! add or a value the tombstone covered. A replica that misses the purge
//! keeps the tombstone, which anti-entropy may copy back: a tombstone,
//! never the value.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use polis_cluster::MapView;
use polis_raft::storage_eventual::{eventual_key, split_eventual_key, EventualWrite};
use polis_types::{NodeId, Slot};

use super::anti_entropy::{entry_hash, peers_of};
use super::decode;
use crate::node::Node;
use crate::rpc::{self, NodeAnswer, NodeRequest};

/// How long a dead key must stay the same on every replica before it is
/// purged.
pub const QUIET: Duration = Duration::from_secs(10);
/// A merge stamped this long ago is refused (see the module
/// documentation): it is at most [`QUIET`].
pub const STALE_AFTER: Duration = QUIET;
/// Keys named in one purge message.
const BATCH: usize = 512;

/// Dead keys seen in clean slots: stored key -> (hash, first seen).
#[derive(Default)]
pub struct Candidates(Mutex<BTreeMap<Vec<u8>, (u64, Instant)>>);

impl Candidates {
    /// Returns how many dead keys wait.
    pub fn len(&self) -> usize {
        self.0.lock().map_or(0, |candidates| candidates.len())
    }
}

/// Looks at the dead keys of `clean` slots and purges those seen dead
/// and unchanged for [`QUIET`].
pub(crate) async fn collect(
    node: &Arc<Node>,
    view: &MapView,
    clean: &BTreeSet<u16>,
) -> io::Result<()> {
    let me = node.config.node_id;
    let storage = node.host.storage();
    let now_ms = polis_eventual::hlc::Clock::now_ms(node.eventual.clock.as_ref());
    let mut due: BTreeMap<NodeId, BTreeMap<u16, Vec<(Bytes, u64)>>> = BTreeMap::new();
    let mut local: BTreeMap<u16, Vec<(Bytes, u64)>> = BTreeMap::new();
    let mut seen: BTreeMap<Vec<u8>, (u64, Instant)> = BTreeMap::new();
    let previous = std::mem::take(
        &mut *node
            .eventual
            .candidates
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    for slot in clean.iter().filter_map(|slot| Slot::new(*slot)) {
        let mut from: Vec<u8> = Vec::new();
        let mut after = false;
        loop {
            let page = storage.eventual_scan(slot.get(), &from, after, BATCH)?;
            for (stored, bytes) in &page {
                let Some((_, key)) = split_eventual_key(stored) else {
                    continue;
                };
                let state = decode(bytes)?;
                if state.live_kind(now_ms).is_some() {
                    continue;
                }
                let Some(peers) = peers_of(view, me, slot, key) else {
                    continue;
                };
                let hash = entry_hash(key, bytes);
                let first = match previous.get(stored) {
                    Some((before, at)) if *before == hash => *at,
                    _ => Instant::now(),
                };
                if first.elapsed() >= QUIET {
                    let key = Bytes::copy_from_slice(key);
                    for peer in peers {
                        due.entry(peer)
                            .or_default()
                            .entry(slot.get())
                            .or_default()
                            .push((key.clone(), hash));
                    }
                    local.entry(slot.get()).or_default().push((key, hash));
                } else {
                    seen.insert(stored.clone(), (hash, first));
                }
            }
            match page.last() {
                Some((stored, _)) if page.len() == BATCH => {
                    from = stored[2..].to_vec();
                    after = true;
                }
                _ => break,
            }
        }
    }
    *node
        .eventual
        .candidates
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = seen;
    for (peer, slots) in due {
        let Some(addr) = node.peer_addr(peer) else {
            continue;
        };
        for (slot, keys) in slots {
            for chunk in keys.chunks(BATCH) {
                let request = NodeRequest::EventualPurge {
                    slot,
                    keys: chunk.to_vec(),
                };
                if let Err(error) =
                    rpc::call_within(node, &addr, &request, Duration::from_secs(5)).await
                {
                    tracing::debug!(peer = %peer, %error, "a purge was not delivered");
                }
            }
        }
    }
    for (slot, keys) in local {
        let removed = purge(node, slot, &keys).await?;
        node.eventual
            .stats
            .tombstones_purged
            .fetch_add(removed, Ordering::Relaxed);
    }
    Ok(())
}

/// Removes the keys of `slot` whose stored state still hashes as given;
/// returns how many it removed.
pub(crate) async fn purge(node: &Node, slot: u16, keys: &[(Bytes, u64)]) -> io::Result<u64> {
    let storage = node.host.storage();
    let names: Vec<Bytes> = keys.iter().map(|(key, _)| key.clone()).collect();
    let _locked = node.eventual.lock(&names).await;
    let mut removals: Vec<EventualWrite> = Vec::new();
    for (key, hash) in keys {
        let stored = eventual_key(slot, key);
        if let Some(bytes) = storage.eventual_get(&stored)? {
            if entry_hash(key, &bytes) == *hash {
                removals.push((stored, None));
            }
        }
    }
    let removed = removals.len() as u64;
    if removed > 0 {
        // This node's contributions to these keys may live on elsewhere:
        // a later write to them must not start from nothing as the same
        // actor.
        node.eventual.next_epoch(storage).await?;
        storage.eventual_put(removals).await?;
    }
    Ok(removed)
}

/// Answers a peer's purge.
pub(crate) async fn purge_here(node: &Arc<Node>, slot: u16, keys: &[(Bytes, u64)]) -> NodeAnswer {
    match purge(node, slot, keys).await {
        Ok(removed) => {
            node.eventual
                .stats
                .tombstones_purged
                .fetch_add(removed, Ordering::Relaxed);
            NodeAnswer::Changed(removed)
        }
        Err(error) => NodeAnswer::Refused(format!("storage: {error}")),
    }
}
