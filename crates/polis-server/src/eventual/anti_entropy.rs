//! Anti-entropy: replicas of eventual keys compare digests and exchange
//! what differs, so they converge even when hints and read repair miss a
//! write (a replica down past the hint window, a coordinator that
//! crashed before it sent).
//!
//! ```text
//!  every round, with each peer:
//!    A: digest per slot of the keys A holds that the peer replicates ─> B: the slots that differ
//!    for each differing slot, one after the other (at most SLOTS_PER_ROUND
//!    slots and ROUND_BYTES_MAX bytes of states taken), page by page:
//!      A: (key, hash) of its keys in a key range ─> B: its states A lacks or differs on
//!      A merges what B gave
//! ```
//!
//! A node only pulls: what it holds reaches each peer when that peer
//! pulls in its own round. Peers are taken one after the other, so states
//! a node took from its first peer are not taken again from the second
//! (after a partition, the majority's keys reach the minority once, not
//! once from each node of the majority).
//!
//! A slot's digest is the XOR of one hash per key and state, so it does
//! not depend on order and a node computes every peer's digests in one
//! pass over its keys (cached for half a round).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use polis_cluster::{Consistency, MapView};
use polis_raft::storage_eventual::split_eventual_key;
use polis_types::{NodeId, Slot};

use super::coordinator::replicas_of;
use super::merge_stored;
use super::replica::{from_wire, WireStates};
use crate::node::Node;
use crate::rpc::{self, NodeAnswer, NodeRequest};

/// Slots one round syncs with one peer at most, and bytes of states it
/// moves at most (received and sent; the slot that passes it ends the
/// round): the throttle. The rest wait for the next round.
const SLOTS_PER_ROUND: usize = 4096;
const ROUND_BYTES_MAX: usize = 32 * 1024 * 1024;
/// Dead keys are looked at every this many rounds (a pass decodes every
/// state of the clean slots).
const GC_EVERY_ROUNDS: u64 = 5;
/// Keys compared in one message.
const PAGE: usize = 512;
/// How long one exchange may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Per peer, per slot: the digest of the keys this node holds that the
/// peer replicates too.
pub type Digests = BTreeMap<NodeId, BTreeMap<u16, u64>>;

/// Returns the hash of one key and its stored state.
pub(crate) fn entry_hash(key: &[u8], state: &[u8]) -> u64 {
    // FNV-1a over the key's length, the key and the state.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let length = (key.len() as u64).to_le_bytes();
    for byte in length.iter().chain(key).chain(state) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Returns the nodes that replicate `key` of `slot` besides this one, or
/// None when this node is not one of them (or the key is no longer
/// eventual).
pub(crate) fn peers_of(view: &MapView, me: NodeId, slot: Slot, key: &[u8]) -> Option<Vec<NodeId>> {
    let namespace = view.map().namespaces.lookup(key)?;
    if namespace.consistency != Consistency::Eventual {
        return None;
    }
    let quorums = namespace.quorums?;
    let replicas = replicas_of(view, slot, quorums.replicas);
    replicas
        .contains(&me)
        .then(|| replicas.into_iter().filter(|node| *node != me).collect())
}

/// Computes every peer's digests in one pass over this node's keys.
fn compute(node: &Node, view: &MapView) -> io::Result<Digests> {
    let me = node.config.node_id;
    let storage = node.host.storage();
    let mut digests = Digests::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = storage.eventual_page(after.as_deref(), PAGE)?;
        for (stored, state) in &page {
            let Some((slot, key)) = split_eventual_key(stored) else {
                continue;
            };
            let Some(slot) = Slot::new(slot) else {
                continue;
            };
            let Some(peers) = peers_of(view, me, slot, key) else {
                continue;
            };
            let hash = entry_hash(key, state);
            for peer in peers {
                *digests
                    .entry(peer)
                    .or_default()
                    .entry(slot.get())
                    .or_default() ^= hash;
            }
        }
        match page.last() {
            Some((stored, _)) if page.len() == PAGE => after = Some(stored.clone()),
            _ => break,
        }
    }
    Ok(digests)
}

/// Returns this node's digests, computed at most half a round ago.
/// Drops the cached digests: the next call computes them afresh.
fn forget_digests(node: &Node) {
    *node
        .eventual
        .digests
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
}

fn digests(node: &Node, view: &MapView) -> io::Result<Arc<Digests>> {
    let fresh_for = Duration::from_millis(interval_ms(node).max(200) / 2);
    let mut cached = node
        .eventual
        .digests
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((at, version, digests)) = cached.as_ref() {
        if at.elapsed() < fresh_for && *version == view.version() {
            return Ok(digests.clone());
        }
    }
    let computed = Arc::new(compute(node, view)?);
    *cached = Some((
        tokio::time::Instant::now(),
        view.version(),
        computed.clone(),
    ));
    Ok(computed)
}

fn interval_ms(node: &Node) -> u64 {
    u64::try_from(node.settings.integer("eventual-anti-entropy-ms")).unwrap_or(0)
}

/// Answers a peer's digests with the slots whose digests differ here.
pub(crate) fn differing(node: &Arc<Node>, from: NodeId, theirs: &[(u16, u64)]) -> NodeAnswer {
    let Some(view) = node.view() else {
        return NodeAnswer::Refused("no cluster map yet".into());
    };
    let mine = match digests(node, &view) {
        Ok(digests) => digests,
        Err(error) => return NodeAnswer::Refused(format!("storage: {error}")),
    };
    let empty = BTreeMap::new();
    let mine = mine.get(&from).unwrap_or(&empty);
    let theirs: BTreeMap<u16, u64> = theirs.iter().copied().collect();
    let slots: BTreeSet<u16> = theirs.keys().chain(mine.keys()).copied().collect();
    let differ = slots
        .into_iter()
        .filter(|slot| {
            theirs.get(slot).copied().unwrap_or(0) != mine.get(slot).copied().unwrap_or(0)
        })
        .collect::<Vec<u16>>();
    count_sent(node, differ.len() * 2);
    NodeAnswer::EventualDiffer(differ)
}

/// Counts `bytes` this node sends for anti-entropy (digests, slot
/// numbers, key hashes, states): summed over the nodes, the bytes on the
/// wire, message framing aside.
fn count_sent(node: &Node, bytes: usize) {
    node.eventual
        .stats
        .anti_entropy_bytes
        .fetch_add(bytes as u64, Ordering::Relaxed);
}

/// This node's keys of `slot` in `[from, to)` that `peer` replicates,
/// with their stored states.
fn keys_in(
    node: &Node,
    view: &MapView,
    peer: NodeId,
    slot: Slot,
    from: &[u8],
    to: Option<&[u8]>,
    limit: usize,
) -> io::Result<Vec<(Bytes, Vec<u8>)>> {
    let me = node.config.node_id;
    let storage = node.host.storage();
    let mut found = Vec::new();
    let mut start = from.to_vec();
    let mut after = false;
    'pages: loop {
        let page = storage.eventual_scan(slot.get(), &start, after, PAGE)?;
        for (stored, state) in &page {
            let Some((_, key)) = split_eventual_key(stored) else {
                continue;
            };
            if to.is_some_and(|to| key >= to) || found.len() >= limit {
                break 'pages;
            }
            if peers_of(view, me, slot, key).is_some_and(|peers| peers.contains(&peer)) {
                found.push((Bytes::copy_from_slice(key), state.clone()));
            }
        }
        match page.last() {
            Some((stored, _)) if page.len() == PAGE => {
                start = stored[2..].to_vec();
                after = true;
            }
            _ => break,
        }
    }
    Ok(found)
}

/// Answers a peer's keys and hashes of a range of `slot`: the states this
/// node has that the peer lacks or differs on, and the keys it wants.
pub(crate) fn sync_answer(
    node: &Arc<Node>,
    from: NodeId,
    slot: u16,
    range: (Bytes, Option<Bytes>),
    entries: &[(Bytes, u64)],
) -> NodeAnswer {
    let (Some(view), Some(slot)) = (node.view(), Slot::new(slot)) else {
        return NodeAnswer::Refused("no cluster map yet, or no such slot".into());
    };
    let mine = match keys_in(
        node,
        &view,
        from,
        slot,
        &range.0,
        range.1.as_deref(),
        usize::MAX,
    ) {
        Ok(mine) => mine,
        Err(error) => return NodeAnswer::Refused(format!("storage: {error}")),
    };
    // An entry's hash covers its key and state: what the asker holds is
    // told by the hashes alone (it sends no keys; an older one did).
    let theirs: BTreeSet<u64> = entries.iter().map(|(_, hash)| *hash).collect();
    let mut give = WireStates::new();
    for (key, state) in mine {
        if !theirs.contains(&entry_hash(&key, &state)) {
            give.push((key, state));
        }
    }
    let bytes: usize = give
        .iter()
        .map(|(key, state)| key.len() + state.len())
        .sum();
    count_sent(node, bytes);
    // Nothing is pushed: the asker's peers pull what it holds in their
    // own rounds (an older asker would send the keys wanted).
    NodeAnswer::EventualSynced {
        give,
        want: Vec::new(),
    }
}

/// Returns how many eventual keys this node stores (tombstones included)
/// and one digest of them all: equal on two nodes when they hold the same
/// states (what a convergence check compares).
///
/// # Errors
/// Returns an error if the storage cannot be read.
pub fn whole_digest(node: &Node) -> io::Result<(u64, u64)> {
    let storage = node.host.storage();
    let (mut keys, mut digest) = (0u64, 0u64);
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = storage.eventual_page(after.as_deref(), PAGE)?;
        for (stored, state) in &page {
            let Some((slot, key)) = split_eventual_key(stored) else {
                continue;
            };
            if Slot::new(slot).is_none() {
                // Hints, after every slot: not keys.
                return Ok((keys, digest));
            }
            keys += 1;
            digest ^= entry_hash(key, state);
        }
        match page.last() {
            Some((stored, _)) if page.len() == PAGE => after = Some(stored.clone()),
            _ => return Ok((keys, digest)),
        }
    }
}

/// Runs anti-entropy rounds until the node stops.
pub async fn run(node: Arc<Node>) {
    loop {
        let interval = interval_ms(&node);
        tokio::time::sleep(Duration::from_millis(if interval == 0 {
            1000
        } else {
            interval
        }))
        .await;
        // Turned off while this round waited: no round.
        if interval_ms(&node) == 0 {
            continue;
        }
        let Some(view) = node.view() else {
            continue;
        };
        if view
            .map()
            .namespaces
            .iter()
            .all(|ns| ns.consistency != Consistency::Eventual)
        {
            continue;
        }
        if let Err(error) = round(&node, &view).await {
            tracing::warn!(%error, "an anti-entropy round failed");
        }
    }
}

/// One round with every peer that shares a shard with this node.
pub(crate) async fn round(node: &Arc<Node>, view: &MapView) -> io::Result<()> {
    let me = node.config.node_id;
    let peers: BTreeSet<NodeId> = view
        .map()
        .replicas_on(me)
        .iter()
        .flat_map(|(shard, _)| shard.replicas.iter().map(|replica| replica.node))
        .filter(|peer| *peer != me)
        .collect();
    let mut digests = digests(node, view)?;
    // Slots where some peer's digest differed (or the peer did not
    // answer): the rest are clean, the same on every replica.
    let mut unclean: BTreeSet<u16> = BTreeSet::new();
    let mut took = false;
    for peer in peers {
        if took {
            // What was taken from the peer before changed the digests:
            // the next peer compares with them as they are now.
            forget_digests(node);
            digests = self::digests(node, view)?;
        }
        let mine: Vec<(u16, u64)> = digests
            .get(&peer)
            .map(|slots| {
                slots
                    .iter()
                    .map(|(slot, digest)| (*slot, *digest))
                    .collect()
            })
            .unwrap_or_default();
        let shared: Vec<u16> = mine.iter().map(|(slot, _)| *slot).collect();
        match with_peer(node, view, peer, mine).await {
            Ok((differ, moved)) => {
                took = moved > 0;
                unclean.extend(differ);
            }
            Err(error) => {
                unclean.extend(shared);
                tracing::debug!(peer = %peer, %error, "anti-entropy with a peer stopped");
            }
        }
    }
    let rounds = node
        .eventual
        .stats
        .anti_entropy_rounds
        .fetch_add(1, Ordering::Relaxed);
    if rounds.is_multiple_of(GC_EVERY_ROUNDS) {
        let clean: BTreeSet<u16> = digests
            .values()
            .flat_map(|slots| slots.keys().copied())
            .filter(|slot| !unclean.contains(slot))
            .collect();
        super::gc::collect(node, view, &clean).await?;
    }
    Ok(())
}

async fn ask(node: &Arc<Node>, peer: NodeId, request: &NodeRequest) -> Result<NodeAnswer, String> {
    let addr = node
        .peer_addr(peer)
        .ok_or_else(|| format!("node {peer} has no address"))?;
    rpc::call_within(node, &addr, request, CALL_TIMEOUT).await
}

/// Takes from `peer` what differs in the slots whose digests differ;
/// returns them and the bytes of states taken.
async fn with_peer(
    node: &Arc<Node>,
    view: &MapView,
    peer: NodeId,
    mine: Vec<(u16, u64)>,
) -> Result<(Vec<u16>, usize), String> {
    count_sent(node, mine.len() * 10);
    let differ = match ask(node, peer, &NodeRequest::EventualDigests { slots: mine }).await? {
        NodeAnswer::EventualDiffer(slots) => slots,
        other => return Err(format!("answered {other:?}")),
    };
    let mut moved = 0;
    for slot in differ.iter().take(SLOTS_PER_ROUND) {
        let Some(slot) = Slot::new(*slot) else {
            continue;
        };
        moved += sync_slot(node, view, peer, slot).await?;
        if moved >= ROUND_BYTES_MAX {
            break;
        }
    }
    Ok((differ, moved))
}

/// Takes from `peer` the states of `slot` it holds that differ from this
/// node's, and merges them; returns their bytes.
async fn sync_slot(
    node: &Arc<Node>,
    view: &MapView,
    peer: NodeId,
    slot: Slot,
) -> Result<usize, String> {
    let storage_error = |error: io::Error| format!("storage: {error}");
    let mut from = Bytes::new();
    let mut moved = 0;
    loop {
        let page = keys_in(node, view, peer, slot, &from, None, PAGE + 1).map_err(storage_error)?;
        let next = page.get(PAGE).map(|(key, _)| key.clone());
        let page = &page[..page.len().min(PAGE)];
        // Hashes only: each covers the key and its state.
        let entries: Vec<(Bytes, u64)> = page
            .iter()
            .map(|(key, state)| (Bytes::new(), entry_hash(key, state)))
            .collect();
        let listed = entries.len() * 8;
        count_sent(
            node,
            listed + from.len() + next.as_ref().map_or(0, Bytes::len),
        );
        let request = NodeRequest::EventualSync {
            slot: slot.get(),
            from: from.clone(),
            to: next.clone(),
            entries,
        };
        let give = match ask(node, peer, &request).await? {
            NodeAnswer::EventualSynced { give, .. } => give,
            other => return Err(format!("answered {other:?}")),
        };
        // Counted by the peer, which sent them.
        moved += give
            .iter()
            .map(|(key, state)| key.len() + state.len())
            .sum::<usize>();
        if !give.is_empty() {
            let states = from_wire(&give).map_err(storage_error)?;
            merge_stored(&node.eventual, node.host.storage(), slot, states)
                .await
                .map_err(|error| {
                    tracing::warn!(peer = %peer, %error, "anti-entropy states refused");
                    error.to_string()
                })?;
        }
        match next {
            Some(next) => from = next,
            None => return Ok(moved),
        }
    }
}
