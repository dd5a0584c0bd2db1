//! Merges on their way to one peer, sent together: a coordinator's writes
//! queue per peer, and one task per peer sends what queued while the
//! previous batch was in flight as one message, as Raft sends many
//! entries in one append. The peer merges the whole batch under one
//! durable write. A write waits for the acknowledgements it needs; what
//! a peer did not take leaves hints.
//!
//! ```text
//!  write ─> queue(peer) ─┐        ┌─> answer each write's waiter
//!  write ─> queue(peer) ─┼─ batch ┤
//!  write ─> queue(peer) ─┘        └─> refused or unanswered: hints for its keys
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use polis_eventual::hlc::Timestamp;
use polis_types::{NodeId, Slot};
use tokio::sync::{mpsc, oneshot};

use super::replica::WireStates;
use crate::node::Node;
use crate::rpc::{self, NodeAnswer, NodeRequest};

/// Writes queued for one peer at most; a write finding the queue full
/// counts as not taken (a hint).
const QUEUE_MAX: usize = 4096;
/// Writes in one message at most.
const BATCH_MAX: usize = 256;
/// Bytes of states in one message, about, at most.
const BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;

/// One write's merge for a peer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MergeItem {
    pub slot: u16,
    /// The coordinator's clock when it wrote.
    pub stamp: Timestamp,
    pub states: WireStates,
}

struct Pending {
    item: MergeItem,
    /// Told whether the peer took it (dropped when no one waits).
    done: oneshot::Sender<bool>,
}

/// The queues to every peer.
#[derive(Default)]
pub struct Outboxes {
    queues: Mutex<BTreeMap<NodeId, mpsc::Sender<Pending>>>,
}

impl Outboxes {
    /// Queues `item` for `peer`; the receiver learns whether the peer took
    /// it (false at once when the queue is full).
    pub(crate) fn send(
        &self,
        node: &Arc<Node>,
        peer: NodeId,
        item: MergeItem,
    ) -> oneshot::Receiver<bool> {
        let (done, taken) = oneshot::channel();
        let queue = {
            let mut queues = self
                .queues
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            queues
                .entry(peer)
                .or_insert_with(|| {
                    let (sender, receiver) = mpsc::channel(QUEUE_MAX);
                    tokio::spawn(run(Arc::downgrade(node), peer, receiver));
                    sender
                })
                .clone()
        };
        if let Err(error) = queue.try_send(Pending { item, done }) {
            let pending = match error {
                mpsc::error::TrySendError::Full(pending)
                | mpsc::error::TrySendError::Closed(pending) => pending,
            };
            let node = node.clone();
            tokio::spawn(async move {
                hint(&node, peer, &pending.item).await;
                let _ = pending.done.send(false);
            });
        }
        taken
    }
}

/// Sends the queue of `peer` batch by batch until the node goes.
async fn run(node: Weak<Node>, peer: NodeId, mut queue: mpsc::Receiver<Pending>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        let mut bytes = size(&batch[0].item);
        while batch.len() < BATCH_MAX && bytes < BATCH_BYTES_MAX {
            match queue.try_recv() {
                Ok(next) => {
                    bytes += size(&next.item);
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let Some(node) = node.upgrade() else {
            return;
        };
        let items: Vec<MergeItem> = batch.iter().map(|pending| pending.item.clone()).collect();
        let request = NodeRequest::EventualMergeMany { items };
        let taken: Vec<bool> = match node.peer_addr(peer) {
            Some(addr) => {
                match rpc::call_within(&node, &addr, &request, super::coordinator::QUORUM_WAIT)
                    .await
                {
                    Ok(NodeAnswer::EventualMergedMany(taken)) if taken.len() == batch.len() => {
                        taken
                    }
                    _ => vec![false; batch.len()],
                }
            }
            None => vec![false; batch.len()],
        };
        for (pending, taken) in batch.into_iter().zip(taken) {
            if !taken {
                hint(&node, peer, &pending.item).await;
            }
            let _ = pending.done.send(taken);
        }
    }
}

fn size(item: &MergeItem) -> usize {
    item.states
        .iter()
        .map(|(key, state)| key.len() + state.len())
        .sum()
}

async fn hint(node: &Node, peer: NodeId, item: &MergeItem) {
    let Some(slot) = Slot::new(item.slot) else {
        return;
    };
    let keys: Vec<Bytes> = item.states.iter().map(|(key, _)| key.clone()).collect();
    super::hints::record(node, peer, slot, &keys).await;
}
