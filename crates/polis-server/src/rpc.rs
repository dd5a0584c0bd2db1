//! Messages between nodes above Raft: fetching the cluster map,
//! registering a node that starts with empty storage, and moving a shard's
//! leadership. They travel on the peer connection (polis-raft's
//! [`AppHandler`]), postcard-encoded.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use polis_cluster::{ClusterMap, MapChange, NodeAddrs};
use polis_raft::{AppHandler, PeerAddr};
use polis_store::Value;
use polis_types::{GroupId, NodeId, SlotSet};
use serde::{Deserialize, Serialize};

use crate::controller::Registration;
use crate::machine::Op;
use crate::migrating::ShippedKey;
use crate::node::Node;

/// A request from one node to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NodeRequest {
    /// What map do you have (and who leads the meta group)?
    GetMap,
    /// Register me: I started with empty storage. Sent to the meta leader.
    /// A node saves its `token` before it first asks, so asking again after
    /// a lost answer is the same registration.
    Register {
        node: NodeId,
        entry_format_max: u32,
        token: u64,
    },
    /// Hand the leadership of `shard` to your peer on `to`, if it is
    /// caught up. Sent by the meta leader to the shard's leader.
    MoveLeader { shard: GroupId, to: NodeId },
    /// Add me to the cluster: I am not in the map (`--join`). Sent to the
    /// meta leader, with a token as for [`NodeRequest::Register`].
    Join {
        node: NodeId,
        addrs: NodeAddrs,
        entry_format_max: u32,
        token: u64,
    },
    /// Drain node `node` out of the cluster (`polis cluster remove-node`).
    /// Sent to the meta leader.
    RemoveNode { node: NodeId },
    /// Commit these map changes as they are. Sent to the meta leader.
    ChangeMap { changes: Vec<MapChange> },
    /// Stage keys of migration `migration` on shard `shard`, which you
    /// lead. Sent by the source's leader; answered once committed.
    Stage {
        shard: GroupId,
        migration: u64,
        slots: SlotSet,
        reset: bool,
        /// The source's log index the keys were read at (at most).
        read_at: u64,
        keys: Vec<ShippedKey>,
    },
    /// Run a scheduler pass now (`polis cluster rebalance`). Sent to the
    /// meta leader.
    Rebalance,
    /// Split shard `shard` now. Sent to the meta leader.
    Split { shard: GroupId },
    /// Merge shard `from` into shard `into` now. Sent to the meta leader.
    Merge { from: GroupId, into: GroupId },
    /// Cancel every migration that has not switched. Sent to the meta
    /// leader, whose map is the newest.
    CancelMigrations,
    /// Add later parts of large collections to keys migration `migration`
    /// staged on shard `shard`, which you lead, from the read at
    /// `read_at`. Sent by the source's leader; answered once committed.
    StageParts {
        shard: GroupId,
        migration: u64,
        slots: SlotSet,
        read_at: u64,
        parts: Vec<(Bytes, Value)>,
    },
    /// Deliver these pub/sub messages, published on the sender, to your
    /// subscribers. Answered once delivered; the sender does not wait.
    Publish {
        messages: Vec<crate::fanout::Published>,
    },
    /// Set these cluster-wide CONFIG parameters here too (set on the
    /// sender by a client's CONFIG SET).
    SetConfig { pairs: Vec<(String, String)> },
    /// Append these change feed events of shard `source` on shard
    /// `shard`, which you lead (see `crate::feed`).
    FeedAppend {
        shard: GroupId,
        source: GroupId,
        events: Vec<crate::feed::FeedEvent>,
    },
    /// Set these change feeds on shard `shard`, which you lead.
    SetFeeds {
        shard: GroupId,
        feeds: crate::feed::Feeds,
    },
    /// Merge these states of eventual keys of `slot` into yours, durably;
    /// `stamp` is the sender's clock (refused when too far ahead).
    EventualMerge {
        slot: u16,
        stamp: polis_eventual::hlc::Timestamp,
        states: crate::eventual::WireStates,
    },
    /// Merge the states of these writes into yours, durably (one batch of
    /// a coordinator's queue to you).
    EventualMergeMany {
        items: Vec<crate::eventual::MergeItem>,
    },
    /// Send your states of these eventual keys of `slot`.
    EventualRead { slot: u16, keys: Vec<Bytes> },
    /// Coordinate this eventual request: the sender holds no replica of
    /// its slot.
    EventualCommand { args: Vec<Bytes> },
    /// Here are my anti-entropy digests of the slots we share: which
    /// differ from yours?
    EventualDigests { slots: Vec<(u16, u64)> },
    /// The hashes (each of a key and its state) of my keys of `slot`
    /// from `from` up to `to` (the slot's end when none): send the states
    /// whose hashes I lack. Keys are sent empty (older nodes sent them,
    /// and named in `want` what the answerer lacked; nothing pushes now).
    EventualSync {
        slot: u16,
        from: Bytes,
        to: Option<Bytes>,
        entries: Vec<(Bytes, u64)>,
    },
    /// Purge these dead eventual keys of `slot` if you still hold exactly
    /// the state each hash names (every replica held it).
    EventualPurge { slot: u16, keys: Vec<(Bytes, u64)> },
    /// How many keys under `prefix` do you hold whose consistency differs
    /// between these namespaces?
    KeysChanging {
        prefix: Bytes,
        before: polis_cluster::Namespaces,
        after: polis_cluster::Namespaces,
    },
}

/// The answer to a [`NodeRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeAnswer {
    Map {
        map: Option<ClusterMap>,
        /// The answering node holds data already (it is no fresh node).
        has_data: bool,
        /// The node that leads the meta group, as the answerer knows.
        meta_leader: Option<NodeId>,
        /// The token of the answerer's data directory: a creator registers
        /// the members that answer empty with it.
        token: u64,
        /// The newest log entry format the answerer's binary understands.
        entry_format_max: u32,
    },
    /// Registered; the map after the registration.
    Registered(ClusterMap),
    /// Not the meta leader; try `leader`.
    NotMetaLeader { leader: Option<NodeId> },
    /// The leadership move was started.
    Moving,
    /// The request was refused, and why.
    Refused(String),
    /// Not now (the meta group is busy or unavailable): ask again.
    Retry(String),
    /// The map changed as asked; its version after the change.
    Changed(u64),
    /// These migrations were cancelled.
    Cancelled(Vec<u64>),
    /// The pub/sub messages were delivered to this node's subscribers.
    Delivered,
    /// The eventual states were merged, durably.
    EventualMerged,
    /// Which of the writes of an `EventualMergeMany` were merged, in
    /// order.
    EventualMergedMany(Vec<bool>),
    /// This node's states of the eventual keys asked (keys it never saw
    /// are left out).
    EventualStates(crate::eventual::WireStates),
    /// The reply to a forwarded eventual request (a postcard `Reply`).
    EventualReply(Vec<u8>),
    /// The slots whose anti-entropy digests differ.
    EventualDiffer(Vec<u16>),
    /// The states the asker lacks or differs on, and the keys the
    /// answerer wants.
    EventualSynced {
        give: crate::eventual::WireStates,
        want: Vec<Bytes>,
    },
    /// The keys that would change consistency, and one of them.
    KeysChanging { count: u64, example: Option<Bytes> },
}

/// How long a node message may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `request` to `to` and decodes the answer.
///
/// # Errors
/// A message when the peer cannot be reached or answered garbage.
pub async fn call(node: &Node, to: &PeerAddr, request: &NodeRequest) -> Result<NodeAnswer, String> {
    call_within(node, to, request, CALL_TIMEOUT).await
}

/// Sends `request` to `to` and decodes the answer, if it comes within
/// `timeout`.
///
/// # Errors
/// A message when the peer cannot be reached, is late or answered garbage.
pub async fn call_within(
    node: &Node,
    to: &PeerAddr,
    request: &NodeRequest,
    timeout: Duration,
) -> Result<NodeAnswer, String> {
    let payload = postcard::to_stdvec(request).map_err(|error| error.to_string())?;
    let answer = node
        .host
        .call_app(to, payload, timeout)
        .await
        .map_err(|error| error.to_string())?;
    postcard::from_bytes(&answer).map_err(|error| format!("undecodable answer: {error}"))
}

/// Why a call got no answer: whether the request may have reached the
/// peer (and run there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// It was not delivered, or the peer refused it before running it.
    NotDelivered(String),
    /// No answer in time, or one that does not decode: it may have run.
    Unknown(String),
}

/// Sends `request` to `to`, as [`call_within`] does, saying whether a
/// failed call may have run on the peer.
///
/// # Errors
/// A [`CallFailure`].
pub async fn call_checked(
    node: &Node,
    to: &PeerAddr,
    request: &NodeRequest,
    timeout: Duration,
) -> Result<NodeAnswer, CallFailure> {
    let payload = postcard::to_stdvec(request)
        .map_err(|error| CallFailure::NotDelivered(error.to_string()))?;
    let answer = match node.host.call_app(to, payload, timeout).await {
        Ok(answer) => answer,
        Err(error @ polis_raft::CallError::Timeout(_)) => {
            return Err(CallFailure::Unknown(error.to_string()))
        }
        Err(error) => return Err(CallFailure::NotDelivered(error.to_string())),
    };
    postcard::from_bytes(&answer)
        .map_err(|error| CallFailure::Unknown(format!("undecodable answer: {error}")))
}

/// Serves [`NodeRequest`]s for a node (held weakly: the node owns the host
/// that owns this handler).
pub struct Handler {
    pub node: Weak<Node>,
}

impl AppHandler for Handler {
    fn handle(
        &self,
        from: NodeId,
        payload: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let node = self.node.upgrade();
        Box::pin(async move {
            let node = node.ok_or("the node is stopping")?;
            let request: NodeRequest =
                postcard::from_bytes(&payload).map_err(|error| format!("undecodable: {error}"))?;
            let answer = answer(&node, from, request).await;
            postcard::to_stdvec(&answer).map_err(|error| error.to_string())
        })
    }
}

/// Answers `request` from node `from`. A removed node is told so, and
/// refused anything but the map (in which it reads that it was removed).
pub(crate) async fn answer(node: &Arc<Node>, from: NodeId, request: NodeRequest) -> NodeAnswer {
    let removed = node
        .view()
        .and_then(|view| view.map().node(from).map(|record| record.removed()))
        .unwrap_or(false);
    if removed && request != NodeRequest::GetMap {
        return NodeAnswer::Refused(format!("node {from} was removed from the cluster"));
    }
    match request {
        NodeRequest::GetMap => NodeAnswer::Map {
            map: node.map.current().map(|view| view.map().clone()),
            has_data: node.has_data(),
            meta_leader: node.meta_leader(),
            token: node.token(),
            entry_format_max: node.config.entry_format_max,
        },
        NodeRequest::Register {
            node: registering,
            entry_format_max,
            token,
        } => {
            if registering != from {
                return NodeAnswer::Refused(format!(
                    "node {from} cannot register node {registering}"
                ));
            }
            let registration = Registration {
                node: registering,
                addrs: None,
                entry_format_max,
                token,
            };
            crate::controller::register(node, registration).await
        }
        NodeRequest::Join {
            node: joining,
            addrs,
            entry_format_max,
            token,
        } => {
            if joining != from {
                return NodeAnswer::Refused(format!("node {from} cannot add node {joining}"));
            }
            let registration = Registration {
                node: joining,
                addrs: Some(addrs),
                entry_format_max,
                token,
            };
            crate::controller::register(node, registration).await
        }
        NodeRequest::MoveLeader { shard, to } => crate::balance::move_leader(node, shard, to).await,
        NodeRequest::RemoveNode { node: leaving } => {
            crate::controller::remove_node(node, leaving).await
        }
        NodeRequest::ChangeMap { changes } => crate::controller::apply_changes(node, changes).await,
        NodeRequest::Stage {
            shard,
            migration,
            slots,
            reset,
            read_at,
            keys,
        } => {
            let op = Op::Stage {
                migration,
                slots,
                reset,
                read_at,
                keys,
            };
            crate::shipping::stage(node, shard, migration, op).await
        }
        NodeRequest::StageParts {
            shard,
            migration,
            slots,
            read_at,
            parts,
        } => {
            let op = Op::StageParts {
                migration,
                slots,
                read_at,
                parts,
            };
            crate::shipping::stage(node, shard, migration, op).await
        }
        NodeRequest::Rebalance => crate::schedule::ask(node),
        NodeRequest::Split { shard } => crate::schedule::split(node, shard).await,
        NodeRequest::Merge { from, into } => crate::schedule::merge(node, from, into).await,
        NodeRequest::CancelMigrations => crate::controller::cancel_copying(node).await,
        NodeRequest::Publish { messages } => {
            crate::fanout::deliver(node, &messages);
            NodeAnswer::Delivered
        }
        NodeRequest::FeedAppend {
            shard,
            source,
            events,
        } => crate::feed_forward::append(node, shard, source, events).await,
        NodeRequest::SetFeeds { shard, feeds } => {
            crate::feed_forward::set_feeds(node, shard, feeds).await
        }
        NodeRequest::EventualMerge {
            slot,
            stamp,
            states,
        } => crate::eventual::merge_here(node, from, slot, stamp, states).await,
        NodeRequest::EventualMergeMany { items } => {
            crate::eventual::merge_many_here(node, from, items).await
        }
        NodeRequest::EventualRead { slot, keys } => crate::eventual::read_here(node, slot, &keys),
        NodeRequest::EventualCommand { args } => crate::eventual::run_forwarded(node, args).await,
        NodeRequest::EventualDigests { slots } => crate::eventual::differing(node, from, &slots),
        NodeRequest::EventualSync {
            slot,
            from: start,
            to,
            entries,
        } => crate::eventual::sync_answer(node, from, slot, (start, to), &entries),
        NodeRequest::EventualPurge { slot, keys } => {
            crate::eventual::purge_here(node, slot, &keys).await
        }
        NodeRequest::KeysChanging {
            prefix,
            before,
            after,
        } => crate::admin_namespaces::keys_changing(node, &prefix, &before, &after),
        NodeRequest::SetConfig { pairs } => {
            match crate::server_commands::config::set_here(node, &pairs) {
                Ok(()) => NodeAnswer::Changed(0),
                Err(error) => NodeAnswer::Refused(error.to_string()),
            }
        }
    }
}
