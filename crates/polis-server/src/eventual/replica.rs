//! What a replica does for a coordinator: merge the states it sends (once
//! its clock is within the bound of ours) and answer the states it asks.

use std::sync::Arc;

use bytes::Bytes;
use polis_eventual::command::States;
use polis_eventual::hlc::Timestamp;
use polis_types::{NodeId, Slot};

use super::{decode, encode, load, merge_stored};
use crate::node::Node;
use crate::rpc::NodeAnswer;

/// Encoded states, as they travel between nodes.
pub type WireStates = Vec<(Bytes, Vec<u8>)>;

/// Returns `states` encoded for the wire.
pub(crate) fn to_wire(states: &States) -> std::io::Result<WireStates> {
    states
        .iter()
        .map(|(key, state)| Ok((key.clone(), encode(state)?)))
        .collect()
}

/// Returns the states `wire` holds.
pub(crate) fn from_wire(wire: &WireStates) -> std::io::Result<States> {
    wire.iter()
        .map(|(key, bytes)| Ok((key.clone(), decode(bytes)?)))
        .collect()
}

/// Returns whether this node hosts a replica of the shard owning `slot`,
/// as its map says.
pub(crate) fn holds(node: &Node, slot: Slot) -> bool {
    node.view().is_some_and(|view| {
        view.owner(slot)
            .is_some_and(|shard| shard.replica_on(node.config.node_id).is_some())
    })
}

/// Returns the slot, or the refusal of a slot that does not exist.
fn slot_of(slot: u16) -> Result<Slot, Box<NodeAnswer>> {
    Slot::new(slot)
        .ok_or_else(|| Box::new(NodeAnswer::Refused(format!("slot {slot} does not exist"))))
}

/// Merges states node `from` sent for `slot` into this node's, durably.
pub(crate) async fn merge_here(
    node: &Arc<Node>,
    from: NodeId,
    slot: u16,
    stamp: Timestamp,
    wire: WireStates,
) -> NodeAnswer {
    let slot = match slot_of(slot) {
        Ok(slot) => slot,
        Err(refused) => return *refused,
    };
    let now = node.eventual.hlc.wall_ms();
    let stale_ms = super::gc::STALE_AFTER.as_millis() as u64;
    if stamp.physical_ms.saturating_add(stale_ms) < now {
        node.eventual
            .stats
            .stale_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return NodeAnswer::Refused(format!(
            "node {} refused a merge stamped {} ms ago (at most {stale_ms} ms: deleted keys may \
             have been purged since)",
            node.config.node_id,
            now - stamp.physical_ms
        ));
    }
    if let Err(too_far) = node.eventual.hlc.observe(stamp) {
        tracing::warn!(from = %from, %too_far, "eventual write refused: the sender's clock is ahead");
        return NodeAnswer::Refused(format!("node {} refused: {too_far}", node.config.node_id));
    }
    if !holds(node, slot) {
        return NodeAnswer::Refused(format!(
            "node {} holds no replica of slot {slot}",
            node.config.node_id
        ));
    }
    let states = match from_wire(&wire) {
        Ok(states) => states,
        Err(error) => return NodeAnswer::Refused(error.to_string()),
    };
    match merge_stored(&node.eventual, node.host.storage(), slot, states).await {
        Ok(_) => NodeAnswer::EventualMerged,
        Err(error) => {
            tracing::warn!(from = %from, %error, "eventual states refused");
            NodeAnswer::Refused(format!("node {} refused: {error}", node.config.node_id))
        }
    }
}

/// Answers this node's states of `keys` in `slot`.
pub(crate) fn read_here(node: &Arc<Node>, slot: u16, keys: &[Bytes]) -> NodeAnswer {
    let slot = match slot_of(slot) {
        Ok(slot) => slot,
        Err(refused) => return *refused,
    };
    if !holds(node, slot) {
        return NodeAnswer::Refused(format!(
            "node {} holds no replica of slot {slot}",
            node.config.node_id
        ));
    }
    match load(node.host.storage(), slot, keys).and_then(|states| to_wire(&states)) {
        Ok(wire) => NodeAnswer::EventualStates(wire),
        Err(error) => NodeAnswer::Refused(format!("storage: {error}")),
    }
}

/// Why one write of a batch is refused, if it is.
fn refusal(node: &Node, from: NodeId, item: &super::MergeItem) -> Option<String> {
    let now = node.eventual.hlc.wall_ms();
    let stale_ms = super::gc::STALE_AFTER.as_millis() as u64;
    if item.stamp.physical_ms.saturating_add(stale_ms) < now {
        node.eventual
            .stats
            .stale_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Some("stale".into());
    }
    if let Err(too_far) = node.eventual.hlc.observe(item.stamp) {
        tracing::warn!(from = %from, %too_far, "eventual write refused: the sender's clock is ahead");
        return Some(too_far.to_string());
    }
    let slot = Slot::new(item.slot)?;
    if !holds(node, slot) {
        return Some(format!("no replica of slot {slot}"));
    }
    None
}

/// Merges a batch of writes node `from` sent; answers which it took.
pub(crate) async fn merge_many_here(
    node: &Arc<Node>,
    from: NodeId,
    items: Vec<super::MergeItem>,
) -> NodeAnswer {
    let mut taken = vec![false; items.len()];
    let mut accepted: Vec<(Slot, States)> = Vec::with_capacity(items.len());
    let mut positions = Vec::with_capacity(items.len());
    for (position, item) in items.iter().enumerate() {
        if refusal(node, from, item).is_some() {
            continue;
        }
        let (Some(slot), Ok(states)) = (Slot::new(item.slot), from_wire(&item.states)) else {
            continue;
        };
        let newest = states
            .values()
            .filter_map(polis_eventual::value::KeyState::max_version)
            .max();
        if let Some(newest) = newest {
            if let Err(too_far) = node.eventual.hlc.observe(newest.time) {
                tracing::warn!(from = %from, %too_far, "eventual states refused");
                continue;
            }
        }
        accepted.push((slot, states));
        positions.push(position);
    }
    match super::merge_many(&node.eventual, node.host.storage(), accepted).await {
        Ok(()) => {
            for position in positions {
                taken[position] = true;
            }
        }
        Err(error) => tracing::warn!(%error, "an eventual batch was not stored"),
    }
    NodeAnswer::EventualMergedMany(taken)
}
