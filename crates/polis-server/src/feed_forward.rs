//! The change feed's leader side (see [`crate::feed`]): each shard's
//! leader sends its outbox to the feed streams' shards, in order, and
//! then lets the outbox go; every leader brings its shards to the newest
//! feeds any replica on its node holds, so a CONFIG SET on one shard
//! reaches them all through the replicas they share.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use polis_cluster::version::{self, EntryFormat};
use polis_resp::ReplyError;
use polis_types::GroupId;

use crate::feed::{FeedEvent, Feeds};
use crate::machine::{Applied, Op};
use crate::migrate::propose;
use crate::node::{Node, ShardGroup};
use crate::rpc::{NodeAnswer, NodeRequest};

/// How often leaders look at their outboxes.
const TICK: Duration = Duration::from_millis(20);
/// Events sent per shard per round at most.
const BATCH_EVENTS_MAX: usize = 512;
/// How long one append to a feed stream's shard may take.
const APPEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the feed's leader side until aborted.
pub async fn run(node: Arc<Node>) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let newest = newest_feeds(&node);
        for group in node.shards().into_values() {
            if !group.is_leader() {
                continue;
            }
            if let Some(newest) = &newest {
                adopt(&node, &group, newest).await;
            }
            if let Err(error) = forward(&node, &group).await {
                tracing::debug!(shard = %group.id(), %error, "change feed events not forwarded yet");
            }
        }
    }
}

/// Returns the newest feeds a shard replica on this node holds, if any
/// were ever set.
pub fn newest_feeds(node: &Node) -> Option<Feeds> {
    node.shards()
        .into_values()
        .map(|group| group.state().read().app.feed.feeds.clone())
        .max_by_key(|feeds| feeds.version)
        .filter(|feeds| feeds.version > 0)
}

/// Proposes `newest` on `group` (led here) if it holds older feeds.
async fn adopt(node: &Node, group: &ShardGroup, newest: &Feeds) {
    let version = group.state().read().app.feed.feeds.version;
    if version >= newest.version || !format_enabled(node) {
        return;
    }
    if let Err(error) = propose(group, &Op::Feeds(newest.clone())).await {
        tracing::debug!(shard = %group.id(), %error, "newer change feeds not adopted yet");
    }
}

fn format_enabled(node: &Node) -> bool {
    node.view().is_some_and(|view| {
        version::check_enabled(EntryFormat::V5, view.map().cluster_version).is_ok()
    })
}

/// Sends the head of `group`'s outbox to the feed streams, then lets it
/// go from the outbox.
async fn forward(node: &Arc<Node>, group: &ShardGroup) -> Result<(), String> {
    let batch: Vec<FeedEvent> = {
        let state = group.state();
        let state = state.read();
        state
            .app
            .feed
            .outbox
            .iter()
            .take(BATCH_EVENTS_MAX)
            .cloned()
            .collect()
    };
    let Some(through) = batch.last().map(|event| event.position) else {
        return Ok(());
    };
    let mut by_stream: BTreeMap<Bytes, Vec<FeedEvent>> = BTreeMap::new();
    for event in batch {
        by_stream
            .entry(event.stream.clone())
            .or_default()
            .push(event);
    }
    for (stream, events) in by_stream {
        send(node, group.id(), &stream, events).await?;
    }
    match propose(group, &Op::FeedAcked { through }).await? {
        Applied::Reply(_) => Ok(()),
        other => Err(format!("outbox not trimmed: {other:?}")),
    }
}

/// Appends `events` (all of `stream`) on the shard that owns the stream,
/// through its leader.
async fn send(
    node: &Arc<Node>,
    source: GroupId,
    stream: &[u8],
    events: Vec<FeedEvent>,
) -> Result<(), String> {
    let view = node.view().ok_or("no cluster map yet")?;
    let slot = polis_types::key_hash_slot(stream);
    let shard = view.owner(slot).ok_or("the stream's slot has no owner")?.id;
    let leader = node
        .leaders()
        .get(&shard)
        .copied()
        .ok_or_else(|| format!("shard {shard} has no known leader"))?;
    let request = NodeRequest::FeedAppend {
        shard,
        source,
        events,
    };
    let answer = if leader == node.config.node_id {
        crate::rpc::answer(node, leader, request).await
    } else {
        let to = node
            .peer_addr(leader)
            .ok_or_else(|| format!("no address for node {leader}"))?;
        crate::rpc::call_within(node, &to, &request, APPEND_TIMEOUT).await?
    };
    match answer {
        NodeAnswer::Changed(_) => Ok(()),
        other => Err(format!("feed append: {other:?}")),
    }
}

/// Answers [`NodeRequest::FeedAppend`]: appends on `shard`, which this
/// node should lead.
pub(crate) async fn append(
    node: &Node,
    shard: GroupId,
    source: GroupId,
    events: Vec<FeedEvent>,
) -> NodeAnswer {
    let Some(group) = node.shard(shard).filter(|group| group.is_leader()) else {
        return NodeAnswer::Retry(format!("this node does not lead shard {shard}"));
    };
    match propose(&group, &Op::FeedAppend { source, events }).await {
        Ok(Applied::Reply(_)) => NodeAnswer::Changed(node.map.version()),
        Ok(other) => NodeAnswer::Retry(format!("not appended here: {other:?}")),
        Err(error) => NodeAnswer::Retry(error),
    }
}

/// CONFIG SET changefeeds: proposes the new feeds on a shard this node
/// leads (or the first shard's leader); the others adopt them from the
/// replicas they share. Returns the feeds set, with their version.
///
/// # Errors
/// Redis-style errors for a bad value, a cluster not upgraded yet, or no
/// shard reachable.
pub async fn configure(node: &Arc<Node>, text: &str) -> Result<Feeds, ReplyError> {
    let previous = newest_feeds(node).map_or(0, |feeds| feeds.version);
    let version = previous.max(crate::node::now_ms()) + 1;
    let feeds = Feeds::parse(text, version).map_err(|reason| {
        ReplyError::err(format!(
            "CONFIG SET failed (possibly related to argument 'changefeeds') - {reason}"
        ))
    })?;
    let view = node.view().ok_or_else(|| {
        ReplyError::ClusterDown("The cluster is down: this node has no cluster map yet".into())
    })?;
    version::check_enabled(EntryFormat::V5, view.map().cluster_version)
        .map_err(|error| ReplyError::err(error.to_string()))?;
    if let Some(group) = node.led_shards().into_iter().next() {
        return match propose(&group, &Op::Feeds(feeds.clone())).await {
            Ok(_) => Ok(feeds),
            Err(error) => Err(ReplyError::TryAgain(format!(
                "change feeds not set: {error}"
            ))),
        };
    }
    let shard = *view
        .map()
        .shards
        .keys()
        .next()
        .ok_or_else(|| ReplyError::ClusterDown("no shard".into()))?;
    let leader = node
        .leaders()
        .get(&shard)
        .copied()
        .ok_or_else(|| ReplyError::TryAgain(format!("shard {shard} has no known leader")))?;
    let to = node
        .peer_addr(leader)
        .ok_or_else(|| ReplyError::TryAgain(format!("no address for node {leader}")))?;
    let request = NodeRequest::SetFeeds {
        shard,
        feeds: feeds.clone(),
    };
    match crate::rpc::call(node, &to, &request).await {
        Ok(NodeAnswer::Changed(_)) => Ok(feeds),
        Ok(other) => Err(ReplyError::TryAgain(format!(
            "change feeds not set: {other:?}"
        ))),
        Err(error) => Err(ReplyError::TryAgain(format!(
            "change feeds not set: {error}"
        ))),
    }
}

/// Answers [`NodeRequest::SetFeeds`] on the leader of `shard`.
pub(crate) async fn set_feeds(node: &Node, shard: GroupId, feeds: Feeds) -> NodeAnswer {
    let Some(group) = node.shard(shard).filter(|group| group.is_leader()) else {
        return NodeAnswer::Retry(format!("this node does not lead shard {shard}"));
    };
    match propose(&group, &Op::Feeds(feeds)).await {
        Ok(_) => NodeAnswer::Changed(node.map.version()),
        Err(error) => NodeAnswer::Retry(error),
    }
}
