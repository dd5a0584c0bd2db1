//! SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs, PUBLISH,
//! SPUBLISH and PUBSUB: publish/subscribe over the node's registry
//! ([`crate::pubsub`]), forwarded to the other nodes ([`crate::fanout`]).
//!
//! As in Redis Cluster, what a node answers is its own view: PUBLISH
//! counts the receivers on the node it was sent to (its peers' are
//! reached too, but not counted), and PUBSUB CHANNELS/NUMSUB/NUMPAT list
//! the node's own subscribers. A shard channel belongs to its slot's
//! shard: SSUBSCRIBE and SPUBLISH are served by the nodes with a replica
//! of that shard, others answer MOVED.

use std::sync::Arc;

use bytes::Bytes;
use polis_resp::{ProtocolVersion, Reply, ReplyError};
use polis_types::{GroupId, NodeId};

use super::lower;
use crate::connection::Session;
use crate::fanout::Published;
use crate::node::Node;
use crate::pubsub::Kind;

/// The commands a RESP2 client may send while subscribed, as Redis
/// allows them.
const ALLOWED_WHILE_SUBSCRIBED: &[&str] = &[
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "ping",
    "quit",
    "reset",
];

/// The commands that answer with pushes.
pub const SUBSCRIPTION_COMMANDS: &[&str] = &[
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
];

/// Returns Redis's refusal of `args` from a RESP2 client that is
/// subscribed, or None when the command may run. Unknown commands and
/// wrong arities get their own errors first, as in Redis.
pub fn refused_in_subscribed_mode(session: &Session, args: &[Bytes]) -> Option<Reply> {
    if !session.subscribed || session.protocol != ProtocolVersion::Resp2 {
        return None;
    }
    let spec = polis_commands::lookup(args.first()?)?;
    if polis_commands::check_arity(spec, args).is_err()
        || ALLOWED_WHILE_SUBSCRIBED.contains(&spec.name)
    {
        return None;
    }
    let name = polis_commands::resolve(spec, args).name;
    Some(Reply::Error(ReplyError::err(format!(
        "Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))))
}

/// SUBSCRIBE / PSUBSCRIBE channels or patterns.
pub fn subscribe(node: &Node, session: &mut Session, kind: Kind, args: &[Bytes]) -> Reply {
    let changed = node.pubsub.subscribe(&session.mailbox, kind, &args[1..]);
    session.subscribed = changed.total > 0;
    changed.reply()
}

/// UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE names, or all of their kind.
pub fn unsubscribe(node: &Node, session: &mut Session, kind: Kind, args: &[Bytes]) -> Reply {
    let changed = node.pubsub.unsubscribe(session.client_id, kind, &args[1..]);
    session.subscribed = changed.total > 0;
    changed.reply()
}

/// SSUBSCRIBE shard channels, all of one slot, on a node with a replica
/// of that slot's shard.
pub fn ssubscribe(node: &Node, session: &mut Session, args: &[Bytes]) -> Reply {
    if let Err(reply) = shard_here(node, &args[1..]) {
        return reply;
    }
    subscribe(node, session, Kind::Shard, args)
}

/// SUNSUBSCRIBE: routed like SSUBSCRIBE when it names channels.
pub fn sunsubscribe(node: &Node, session: &mut Session, args: &[Bytes]) -> Reply {
    if args.len() > 1 {
        if let Err(reply) = shard_here(node, &args[1..]) {
            return reply;
        }
    }
    unsubscribe(node, session, Kind::Shard, args)
}

/// PUBLISH channel message: delivered here and forwarded to every other
/// node of the cluster; answers the receivers on this node.
///
/// Requests of its subscribers that reached this node before it are
/// executed first, as in Redis (see `pubsub/input.rs`).
pub async fn publish(node: &Arc<Node>, session: &Session, args: &[Bytes]) -> Reply {
    node.pubsub
        .after_receivers_requests(&args[1], false, session.client_id)
        .await;
    let receivers = crate::fanout::publish_cluster(node, &args[1], &args[2]);
    Reply::Integer(receivers as i64)
}

/// SPUBLISH shardchannel message: delivered here and forwarded to the
/// other nodes with a replica of the channel's shard.
pub async fn spublish(node: &Arc<Node>, session: &Session, args: &[Bytes]) -> Reply {
    let (channel, message) = (&args[1], &args[2]);
    let shard = match shard_here(node, std::slice::from_ref(channel)) {
        Ok(shard) => shard,
        Err(reply) => return reply,
    };
    node.pubsub
        .after_receivers_requests(channel, true, session.client_id)
        .await;
    let receivers = node.pubsub.spublish(channel, message);
    let me = node.config.node_id;
    let peers: Vec<NodeId> = node
        .view()
        .and_then(|view| {
            let record = view.map().shards.get(&shard)?;
            Some(
                record
                    .replicas
                    .iter()
                    .map(|replica| replica.node)
                    .filter(|node| *node != me)
                    .collect(),
            )
        })
        .unwrap_or_default();
    let published = Published {
        channel: channel.clone(),
        message: message.clone(),
        sharded: true,
    };
    node.fanout.forward(node, &published, &peers);
    Reply::Integer(receivers as i64)
}

/// Returns the shard of `channels`' one slot when this node has a replica
/// of it; else the reply: CROSSSLOT, MOVED (to the shard's leader) or
/// CLUSTERDOWN.
fn shard_here(node: &Node, channels: &[Bytes]) -> Result<GroupId, Reply> {
    let slot = polis_commands::single_slot(channels)
        .map_err(Reply::Error)?
        .ok_or_else(|| Reply::Error(ReplyError::err("no shard channel given")))?;
    let Some(view) = node.view() else {
        return Err(crate::dispatch::no_map());
    };
    let Some(owner) = view.owner(slot) else {
        return Err(Reply::Error(ReplyError::ClusterDown(format!(
            "Hash slot {slot} not served"
        ))));
    };
    if node.shard(owner.id).is_some() {
        Ok(owner.id)
    } else {
        Err(crate::dispatch::to_leader(node, &view, owner.id, slot))
    }
}

/// PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB / HELP,
/// answered for this node's subscribers.
pub fn pubsub(node: &Node, args: &[Bytes]) -> Result<Reply, ReplyError> {
    let names = |names: Vec<Bytes>| Reply::Array(names.into_iter().map(Reply::Bulk).collect());
    let numsub = |counts: Vec<(Bytes, usize)>| {
        Reply::Array(
            counts
                .into_iter()
                .flat_map(|(name, count)| [Reply::Bulk(name), Reply::Integer(count as i64)])
                .collect(),
        )
    };
    match (lower(&args[1]).as_str(), args.len()) {
        ("channels", 2 | 3) => Ok(names(
            node.pubsub
                .channels(Kind::Channel, args.get(2).map(|pattern| &pattern[..])),
        )),
        ("shardchannels", 2 | 3) => Ok(names(
            node.pubsub
                .channels(Kind::Shard, args.get(2).map(|pattern| &pattern[..])),
        )),
        ("numsub", _) => Ok(numsub(node.pubsub.numsub(Kind::Channel, &args[2..]))),
        ("shardnumsub", _) => Ok(numsub(node.pubsub.numsub(Kind::Shard, &args[2..]))),
        ("numpat", 2) => Ok(Reply::Integer(node.pubsub.numpat() as i64)),
        ("help", 2) => Ok(Reply::Array(
            [
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|line| Reply::Simple((*line).into()))
            .collect(),
        )),
        _ => Err(ReplyError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    }
}
