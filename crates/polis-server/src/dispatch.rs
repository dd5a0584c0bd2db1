//! Routing of one command: spec lookup, arity, slot checks, then the
//! node-level handler, the write path (propose to Raft) or the read path
//! (linearizable or, after READONLY, local).
//!
//! Cross-cutting policy lives here once, not in every handler.

use std::sync::Arc;

use bytes::Bytes;
use polis_commands::ReadContext;
use polis_raft::ProposeError;
use polis_resp::{Reply, ReplyError};
use polis_types::{key_hash_slot, Slot};

use crate::connection::Session;
use crate::machine::{DataMachine, Op};
use crate::node::{now_ms, Node};
use crate::server_commands;
use crate::stats::Stats;

/// Executes one request (`args[0]` is the command name) and returns its
/// reply.
pub async fn execute(node: &Arc<Node>, session: &mut Session, args: Vec<Bytes>) -> Reply {
    match route(node, session, args).await {
        Ok(reply) | Err(reply) => reply,
    }
}

/// Returns the one slot all `keys` hash to, if any.
fn single_slot(keys: &[Bytes]) -> Result<Option<Slot>, Reply> {
    let mut slot = None;
    for key in keys {
        let this = key_hash_slot(key);
        match slot {
            None => slot = Some(this),
            Some(other) if other != this => return Err(Reply::Error(ReplyError::CrossSlot)),
            Some(_) => {}
        }
    }
    Ok(slot)
}

async fn route(node: &Arc<Node>, session: &mut Session, args: Vec<Bytes>) -> Result<Reply, Reply> {
    let Some(spec) = polis_commands::lookup(&args[0]) else {
        return Err(Reply::Error(polis_commands::unknown_command(&args)));
    };
    polis_commands::check_arity(spec, &args).map_err(Reply::Error)?;
    let governing = polis_commands::resolve(spec, &args);
    if polis_commands::is_node(governing) || polis_commands::is_node(spec) {
        return Ok(server_commands::execute(node, session, spec, &args).await);
    }
    let keys = polis_commands::command_keys(spec, &args);
    let slot = single_slot(&keys)?;
    // Syntax errors never enter the log.
    polis_commands::parse(&args).map_err(Reply::Error)?;
    if polis_commands::is_write(governing) {
        write(node, slot, args).await
    } else {
        read(node, session, slot, &args).await
    }
}

fn redirect(node: &Node, slot: Option<Slot>, error: ProposeError) -> Reply {
    Stats::bump(&node.stats.redirects);
    match error {
        ProposeError::NotLeader {
            leader: Some((_, leader)),
        } => match slot {
            Some(slot) => Reply::Error(ReplyError::Moved {
                slot,
                addr: leader.resp_addr,
            }),
            None => Reply::Error(ReplyError::Other(
                "READONLY You can't write against a read only replica.".into(),
            )),
        },
        ProposeError::NotLeader { leader: None } => Reply::Error(ReplyError::ClusterDown(
            "The cluster is down: no leader is known (election in progress?)".into(),
        )),
        ProposeError::Unavailable(reason) => Reply::Error(ReplyError::ClusterDown(format!(
            "The cluster is down: {reason}"
        ))),
    }
}

/// A write command that passed every routing check and can be proposed
/// as it is.
pub struct PlainWrite {
    slot: Option<Slot>,
    args: Vec<Bytes>,
}

impl PlainWrite {
    /// Returns the bytes of the command's arguments.
    pub fn len_bytes(&self) -> usize {
        self.args.iter().map(Bytes::len).sum()
    }
}

/// Returns `args` as a [`PlainWrite`] if it is a data write that routing
/// would propose unchanged; otherwise gives `args` back, for
/// [`execute`] to handle (and to produce its error, if any).
///
/// # Errors
/// Returns `args` when the command is not a plain write.
pub fn plain_write(args: Vec<Bytes>) -> Result<PlainWrite, Vec<Bytes>> {
    let Some(spec) = polis_commands::lookup(&args[0]) else {
        return Err(args);
    };
    if polis_commands::check_arity(spec, &args).is_err() {
        return Err(args);
    }
    let governing = polis_commands::resolve(spec, &args);
    if polis_commands::is_node(governing)
        || polis_commands::is_node(spec)
        || !polis_commands::is_write(governing)
    {
        return Err(args);
    }
    let keys = polis_commands::command_keys(spec, &args);
    let Ok(slot) = single_slot(&keys) else {
        return Err(args);
    };
    if polis_commands::parse(&args).is_err() {
        return Err(args);
    }
    Ok(PlainWrite { slot, args })
}

/// Proposes pipelined writes of one connection as one log entry, applied
/// in order with nothing in between; returns one reply per write. One
/// entry instead of many is what makes pipelined writes cheap: one
/// append, one fsync, one replication round for all of them.
pub async fn write_batch(node: &Arc<Node>, writes: Vec<PlainWrite>) -> Vec<Reply> {
    if writes.len() == 1 {
        let mut writes = writes;
        let PlainWrite { slot, args } = writes.remove(0);
        return vec![match write(node, slot, args).await {
            Ok(reply) | Err(reply) => reply,
        }];
    }
    let count = writes.len();
    let slots: Vec<Option<Slot>> = writes.iter().map(|write| write.slot).collect();
    let commands = writes.into_iter().map(|write| write.args).collect();
    let payload = match Op::Batch(commands).encode() {
        Ok(payload) => payload,
        Err(error) => {
            let reply = Reply::Error(ReplyError::err(format!("cannot encode command: {error}")));
            return vec![reply; count];
        }
    };
    node.stats
        .writes_proposed
        .fetch_add(count as u64, std::sync::atomic::Ordering::Relaxed);
    match node.group.propose(payload).await {
        Ok(reply) => DataMachine::decode_replies(&reply, count),
        Err(error) => slots
            .into_iter()
            .map(|slot| redirect(node, slot, error.clone()))
            .collect(),
    }
}

async fn write(node: &Arc<Node>, slot: Option<Slot>, args: Vec<Bytes>) -> Result<Reply, Reply> {
    let payload = Op::Command(args).encode().map_err(|error| {
        Reply::Error(ReplyError::err(format!("cannot encode command: {error}")))
    })?;
    Stats::bump(&node.stats.writes_proposed);
    match node.group.propose(payload).await {
        Ok(reply) => Ok(DataMachine::decode_reply(&reply)),
        Err(error) => Err(redirect(node, slot, error)),
    }
}

async fn read(
    node: &Arc<Node>,
    session: &Session,
    slot: Option<Slot>,
    args: &[Bytes],
) -> Result<Reply, Reply> {
    // A keyless read (DBSIZE, KEYS, SCAN, RANDOMKEY) is about this node's
    // copy, as on a Redis Cluster replica; keyed reads are linearizable
    // unless the connection opted into stale reads with READONLY.
    let local_ok = (session.readonly || slot.is_none()) && !node.group.is_leader();
    if local_ok {
        Stats::bump(&node.stats.follower_reads);
    } else {
        if let Err(error) = node.group.linearizable_read().await {
            return Err(redirect(node, slot, error));
        }
        Stats::bump(&node.stats.linearizable_reads);
    }
    let context = ReadContext::new(now_ms()).with_protocol(session.protocol);
    let state = node.group.state().read();
    Ok(polis_commands::execute_read_with(
        &state.app.db,
        args,
        &context,
    ))
}
