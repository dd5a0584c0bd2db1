//! Publishing across the cluster: a message published on one node is
//! forwarded to the other nodes, which deliver it to their own
//! subscribers ([`crate::pubsub`]).
//!
//! ```text
//!  PUBLISH ─> local delivery ─> Fanout::forward ─> per-peer bounded queue ─> forwarder task
//!                                  (never waits;        (full: dropped,        one NodeRequest::Publish
//!                                   drops when full)     counted)              per batch, in order
//! ```
//!
//! Fire and forget, off the client's path: the publisher only queues.
//! Each peer has its own queue, bounded in messages and bytes, and one
//! task that sends what is queued in batches, one batch at a time, so a
//! peer receives one node's messages in the order they were published. A
//! slow or unreachable peer fills its own queue and loses messages (each
//! counted in INFO as `pubsub_forwards_dropped`); it never slows the
//! publisher, the other peers, or grows memory past the bounds in
//! [`polis_types::limits`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use polis_types::{limits, NodeId};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::node::Node;
use crate::rpc::{NodeAnswer, NodeRequest};
use crate::stats::Stats;

/// How long one forward may take before its messages count as lost.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// One message forwarded to a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub channel: Bytes,
    pub message: Bytes,
    /// SPUBLISH: for the shard channel's subscribers, not the channel's.
    pub sharded: bool,
}

impl Published {
    fn len(&self) -> usize {
        self.channel.len() + self.message.len()
    }
}

/// The queue to one peer.
struct Peer {
    sender: mpsc::Sender<Published>,
    /// Bytes queued and not yet taken by the forwarder.
    queued_bytes: Arc<AtomicUsize>,
}

/// The node's queues to its peers, one per peer, made on first use.
#[derive(Default)]
pub struct Fanout {
    peers: Mutex<HashMap<NodeId, Peer>>,
}

impl Fanout {
    /// Queues `published` for each of `peers`, never waiting: a peer whose
    /// queue is full misses it (counted in `stats`).
    pub fn forward(&self, node: &Arc<Node>, published: &Published, peers: &[NodeId]) {
        let mut queues = self
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for &peer in peers {
            let queue = queues
                .entry(peer)
                .or_insert_with(|| start(Arc::downgrade(node), peer));
            let len = published.len();
            let queued = queue.queued_bytes.load(Ordering::Relaxed);
            // A message bigger than the whole budget still goes when
            // nothing else waits: memory stays within the budget plus one
            // message, which the publisher's request held anyway.
            if queued > 0 && queued + len > limits::PUBSUB_FORWARD_BYTES_MAX {
                Stats::bump(&node.stats.pubsub_forwards_dropped);
                continue;
            }
            queue.queued_bytes.fetch_add(len, Ordering::Relaxed);
            if queue.sender.try_send(published.clone()).is_err() {
                queue.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                Stats::bump(&node.stats.pubsub_forwards_dropped);
            }
        }
    }
}

/// Starts the forwarder to `peer`; it ends when the node is dropped.
fn start(node: Weak<Node>, peer: NodeId) -> Peer {
    let (sender, receiver) = mpsc::channel(limits::PUBSUB_FORWARD_QUEUE_MAX);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    tokio::spawn(forward_to(node, peer, receiver, queued_bytes.clone()));
    Peer {
        sender,
        queued_bytes,
    }
}

/// Sends what is queued for `peer`, a batch at a time.
async fn forward_to(
    node: Weak<Node>,
    peer: NodeId,
    mut receiver: mpsc::Receiver<Published>,
    queued_bytes: Arc<AtomicUsize>,
) {
    while let Some(first) = receiver.recv().await {
        let mut bytes = first.len();
        let mut batch = vec![first];
        while batch.len() < limits::PUBSUB_FORWARD_BATCH_MAX
            && bytes < limits::PUBSUB_FORWARD_BATCH_BYTES_MAX
        {
            match receiver.try_recv() {
                Ok(published) => {
                    bytes += published.len();
                    batch.push(published);
                }
                Err(_) => break,
            }
        }
        queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        let Some(node) = node.upgrade() else {
            return;
        };
        let count = batch.len() as u64;
        let delivered = match node.peer_addr(peer) {
            Some(to) => {
                let request = NodeRequest::Publish { messages: batch };
                matches!(
                    crate::rpc::call_within(&node, &to, &request, FORWARD_TIMEOUT).await,
                    Ok(NodeAnswer::Delivered)
                )
            }
            None => false,
        };
        let counter = if delivered {
            &node.stats.pubsub_forwarded
        } else {
            tracing::debug!(%peer, count, "pub/sub messages to a peer lost");
            &node.stats.pubsub_forwards_dropped
        };
        counter.fetch_add(count, Ordering::Relaxed);
    }
}

/// Publishes `message` on `channel` to this node's subscribers and queues
/// it for every other node; returns the receivers on this node.
pub fn publish_cluster(node: &Arc<Node>, channel: &Bytes, message: &Bytes) -> usize {
    let receivers = node.pubsub.publish(channel, message);
    if let Some(view) = node.view() {
        let me = node.config.node_id;
        let peers: Vec<NodeId> = view
            .map()
            .nodes
            .values()
            .filter(|record| record.id != me && record.started() && !record.removed())
            .map(|record| record.id)
            .collect();
        let published = Published {
            channel: channel.clone(),
            message: message.clone(),
            sharded: false,
        };
        node.fanout.forward(node, &published, &peers);
    }
    receivers
}

/// Delivers messages a peer forwarded to this node's subscribers.
pub fn deliver(node: &Node, messages: &[Published]) {
    for published in messages {
        if published.sharded {
            node.pubsub.spublish(&published.channel, &published.message);
        } else {
            node.pubsub.publish(&published.channel, &published.message);
        }
    }
}
