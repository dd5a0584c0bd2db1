//! Pipelined requests of one connection: replies in order; consecutive
//! plain writes wait and go to Raft as one log entry per shard, the
//! shards' entries proposed concurrently. Any other command first flushes
//! the waiting writes, so commands still take effect in the order the
//! client sent them: two writes to one key always share a shard and keep
//! their order inside its entry.
//!
//! Reads share a ReadIndex round per shard: every request of the
//! pipeline was sent before the first round run for it began, so that
//! round confirms leadership for each of them (`dispatch::Freshness`).
//!
//! The connection (and the simulation's clients) hand a pipeline here;
//! nothing in it knows about sockets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use polis_resp::Reply;
use polis_types::{limits, GroupId};

use crate::connection::Session;
use crate::dispatch::{self, Prepared};
use crate::machine::Logged;
use crate::node::Node;
use crate::stats::Stats;

/// Plain writes waiting to be proposed, by shard, with their places in
/// the pipeline.
#[derive(Default)]
struct Waiting {
    by_shard: BTreeMap<GroupId, Vec<(usize, Logged)>>,
    count: usize,
    bytes: usize,
}

fn len_bytes(logged: &Logged) -> usize {
    logged.args.iter().map(Bytes::len).sum()
}

impl Waiting {
    /// Returns true if `logged` may join within the batch limits.
    fn fits(&self, logged: &Logged) -> bool {
        self.count < limits::WRITE_BATCH_COMMANDS_MAX
            && (self.count == 0 || self.bytes + len_bytes(logged) <= limits::WRITE_BATCH_BYTES_MAX)
    }

    fn push(&mut self, index: usize, shard: GroupId, logged: Logged) {
        self.count += 1;
        self.bytes += len_bytes(&logged);
        self.by_shard
            .entry(shard)
            .or_default()
            .push((index, logged));
    }

    /// Proposes the waiting writes, one entry per shard, all shards at
    /// once, and puts each reply in its place.
    async fn flush(&mut self, node: &Arc<Node>, replies: &mut [Option<Reply>]) {
        if self.count == 0 {
            return;
        }
        self.count = 0;
        self.bytes = 0;
        let mut batches = std::mem::take(&mut self.by_shard);
        // Held until the batches are applied: they count against
        // maxmemory meanwhile.
        let _admitted = refuse_over_maxmemory(node, &mut batches, replies).await;
        let proposals = batches.into_iter().map(|(shard, writes)| {
            let (places, logged): (Vec<usize>, Vec<Logged>) = writes.into_iter().unzip();
            async move { (places, dispatch::write_batch(node, shard, logged).await) }
        });
        for (places, answers) in futures::future::join_all(proposals).await {
            for (place, reply) in places.into_iter().zip(answers) {
                if let Some(slot) = replies.get_mut(place) {
                    *slot = Some(reply);
                }
            }
        }
    }
}

/// Takes the DENYOOM writes out of `batches`, answered -OOM, when the
/// node has no room within `maxmemory` for what they bring together and
/// eviction cannot make it (judged once for the whole flush), or when
/// the cache namespace of a write's key is over its limit and cannot
/// make room (checked per write). Returns the reservation of the writes
/// kept.
async fn refuse_over_maxmemory<'a>(
    node: &'a Arc<Node>,
    batches: &mut BTreeMap<GroupId, Vec<(usize, Logged)>>,
    replies: &mut [Option<Reply>],
) -> Option<crate::admission::Admitted<'a>> {
    let grows = |logged: &Logged| crate::eviction::denies_oom(&logged.args);
    // Only the leader that proposes judges: a replica that does not lead
    // redirects the write.
    let leads = |shard: &GroupId| node.shard(*shard).is_some_and(|group| group.is_leader());
    let judged = |shard: &GroupId, writes: &Vec<(usize, Logged)>| {
        leads(shard) && writes.iter().any(|(_, logged)| grows(logged))
    };
    if !batches.iter().any(|(shard, writes)| judged(shard, writes)) {
        return None;
    }
    let bytes: u64 = batches
        .iter()
        .filter(|(shard, _)| leads(shard))
        .flat_map(|(_, writes)| writes)
        .filter(|(_, logged)| grows(logged))
        .map(|(_, logged)| crate::admission::estimate(&logged.args))
        .sum();
    let admitted = crate::admission::admit(node, bytes).await.ok();
    let node_admitted = admitted.is_some();
    if node_admitted && node.eviction.caches.table().is_none() {
        return admitted;
    }
    for (shard, writes) in batches.iter_mut() {
        if !leads(shard) {
            continue;
        }
        let mut kept = Vec::with_capacity(writes.len());
        for (place, logged) in writes.drain(..) {
            let refusal = if !grows(&logged) {
                None
            } else if !node_admitted {
                Some(crate::eviction::oom())
            } else {
                crate::cache_namespaces::admit(node, &logged.args)
                    .await
                    .err()
            };
            match refusal {
                Some(reply) => {
                    if let Some(slot) = replies.get_mut(place) {
                        *slot = Some(reply);
                    }
                }
                None => kept.push((place, logged)),
            }
        }
        *writes = kept;
    }
    batches.retain(|_, writes| !writes.is_empty());
    admitted
}

/// Notes a command in the node's counters and the client's info.
fn note_command(node: &Node, session: &Session, args: &[Bytes]) {
    Stats::bump(&node.stats.commands_processed);
    let Some(name) = args.first() else {
        return;
    };
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    node.clients.update(session.client_id, |info| {
        info.last_command_at = Instant::now();
        info.last_command.clone_from(&name);
    });
}

/// Executes a pipeline of requests and returns their replies, in order.
/// Stops after a request that closes the connection (QUIT); the replies
/// then end with its own.
pub async fn execute(
    node: &Arc<Node>,
    session: &mut Session,
    requests: Vec<Vec<Bytes>>,
) -> Vec<Reply> {
    let mut replies: Vec<Option<Reply>> = vec![None; requests.len()];
    let mut silenced = vec![false; requests.len()];
    // XREADGROUP's reply is shaped at apply, where the client's protocol
    // is not known: RESP2's, made RESP3's here for a RESP3 client.
    let group_reads: Vec<bool> = requests
        .iter()
        .map(|args| {
            session.protocol == polis_resp::ProtocolVersion::Resp3
                && args
                    .first()
                    .is_some_and(|name| name.eq_ignore_ascii_case(b"xreadgroup"))
        })
        .collect();
    // Every request here arrived before any round run from now on began.
    session.confirmed.clear();
    let mut waiting = Waiting::default();
    let mut last = requests.len();
    for (index, args) in requests.into_iter().enumerate() {
        note_command(node, session, &args);
        // CLIENT REPLY OFF / SKIP silence every reply but pushes; CLIENT
        // REPLY itself answers (or not) on its own.
        let skip = std::mem::take(&mut session.reply_skip_next);
        silenced[index] = (session.reply_off || skip) && !is_client_reply(&args);
        if let Some(refusal) = crate::acl::gate(node, session, &args) {
            // A refused command inside MULTI makes EXEC abort, as Redis.
            if let Some(queued) = session.multi.as_mut() {
                queued.fail();
            }
            replies[index] = Some(refusal);
            continue;
        }
        if session.subscribed && node.pubsub.total(session.client_id) == 0 {
            // Unsubscribed by the node (a shard channel's slot left it).
            session.subscribed = false;
        }
        if let Some(refusal) =
            crate::server_commands::pubsub::refused_in_subscribed_mode(session, &args)
        {
            replies[index] = Some(refusal);
            continue;
        }
        if session.monitor {
            let spec = args.first().and_then(|name| polis_commands::lookup(name));
            let refusal = spec.and_then(|spec| {
                crate::monitor::refused_in_monitor_mode(polis_commands::resolve(spec, &args))
            });
            if let Some(refusal) = refusal {
                replies[index] = Some(refusal);
                continue;
            }
        }
        if session.multi.is_some() || crate::transaction::handles(&args) {
            waiting.flush(node, &mut replies).await;
            if let Some(reply) = crate::transaction::intercept(node, session, &args).await {
                replies[index] = Some(reply);
                continue;
            }
        }
        if crate::blocking::may_block(&args) {
            waiting.flush(node, &mut replies).await;
            replies[index] = Some(crate::blocking::execute(node, session, args).await);
            // It may have waited: later reads take rounds of their own.
            session.confirmed.clear();
            if session.abort {
                last = index;
                break;
            }
            continue;
        }
        match dispatch::prepare(node, args) {
            Prepared::PlainWrite { shard, logged } => {
                if !waiting.fits(&logged) {
                    waiting.flush(node, &mut replies).await;
                }
                waiting.push(index, shard, logged);
            }
            Prepared::Other { routed, args } => {
                waiting.flush(node, &mut replies).await;
                replies[index] = Some(dispatch::execute_routed(node, session, routed, args).await);
            }
            Prepared::Failed(reply) => replies[index] = Some(reply),
        }
        if session.closing {
            last = index + 1;
            break;
        }
    }
    waiting.flush(node, &mut replies).await;
    replies
        .into_iter()
        .zip(silenced)
        .zip(group_reads)
        .take(last)
        .map(
            |((reply, silenced), group_read)| match reply.unwrap_or(Reply::Null) {
                reply if silenced && !reply.is_push() => Reply::Frames(Vec::new()),
                reply if group_read => polis_commands::stream::streams_reply_resp3(reply),
                reply => reply,
            },
        )
        .collect()
}

/// Returns true for CLIENT REPLY and RESET, which answer whatever CLIENT
/// REPLY said before (they change it).
fn is_client_reply(args: &[Bytes]) -> bool {
    match args {
        [reset] => reset.eq_ignore_ascii_case(b"reset"),
        [client, reply, ..] => {
            client.eq_ignore_ascii_case(b"client") && reply.eq_ignore_ascii_case(b"reply")
        }
        _ => false,
    }
}
