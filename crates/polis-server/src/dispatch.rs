//! Routing and executing one request, classified once
//! (`polis_cluster::classify`): the node's own commands, node-wide data
//! commands over the shards this node leads, and keyed commands on the
//! shard that owns their slot.
//!
//! ```text
//!  keyed write ─> shard replica here? ─ no ──> MOVED to the shard's leader (or CLUSTERDOWN)
//!                        │ yes
//!                        └─> propose Op::Command ─> NotLeader ─> MOVED
//!                                                ─> applied: reply, or NotOwned ─> MOVED/retry
//!  keyed read  ─> ReadIndex (or READONLY: local) ─> owns the slot? ─> execute the parsed command
//! ```
//!
//! Cross-cutting policy lives here once, not in every handler.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use polis_cluster::version;
use polis_cluster::{MapView, Routed, Target};
use polis_commands::{Command, ReadContext};
use polis_raft::ProposeError;
use polis_resp::{Reply, ReplyError};
use polis_store::Db;
use polis_types::{GroupId, Slot};

use crate::blocking::Touched;
use crate::connection::Session;
use crate::machine::{Applied, Logged, Op};
use crate::node::{now_ms, Node, ShardGroup};
use crate::server_commands;
use crate::stats::Stats;

#[path = "dispatch_frozen.rs"]
mod frozen;

use frozen::{frozen, frozen_write, wait_out_freeze};

#[path = "dispatch_read.rs"]
mod read_path;

use read_path::read;
pub use read_path::{read_with, Freshness};

/// How long a request waits for the map or a shard's ownership to catch
/// up before the client is told to try again.
const CATCH_UP_MAX: Duration = Duration::from_secs(2);
/// Attempts of a write its shard did not yet own at apply (nothing was
/// applied, so it is safe to propose again).
const WRITE_ATTEMPTS_MAX: usize = 3;

/// A request, classified.
pub enum Prepared {
    /// A write to one shard that can be proposed as it is (and batched).
    PlainWrite { shard: GroupId, logged: Logged },
    /// Anything else, with its routing.
    Other { routed: Routed, args: Vec<Bytes> },
    /// The request's error reply.
    Failed(Reply),
}

pub fn no_map() -> Reply {
    Reply::Error(ReplyError::ClusterDown(
        "The cluster is down: this node has no cluster map yet (it is starting)".into(),
    ))
}

/// Classifies `args` against the node's map.
pub fn prepare(node: &Node, args: Vec<Bytes>) -> Prepared {
    let routed = match node.view() {
        Some(view) => polis_cluster::classify(&args, &view),
        None => polis_commands::classify(&args).map(|class| Routed {
            target: match class.scope {
                polis_commands::Scope::Node => Target::Node,
                _ => Target::Keyless,
            },
            class,
        }),
    };
    let routed = match routed {
        Ok(routed) => routed,
        Err(error) => return Prepared::Failed(Reply::Error(error)),
    };
    match routed.target {
        // A lock grant is proposed alone: a log entry grants at most one
        // lock (its token comes from the entry's index), and a batch of
        // pipelined grants would refuse all but the first.
        Target::Shard { shard, slot }
            if routed.class.write && !polis_commands::lock::grants_lock(routed.class.governing) =>
        {
            Prepared::PlainWrite {
                shard,
                logged: Logged {
                    slot: Some(slot),
                    args,
                },
            }
        }
        _ => Prepared::Other { routed, args },
    }
}

/// Executes one request (`args[0]` is the command name).
pub async fn execute(node: &Arc<Node>, session: &mut Session, args: Vec<Bytes>) -> Reply {
    // A request of its own: no round confirmed anything since it came.
    session.confirmed.clear();
    match prepare(node, args) {
        Prepared::PlainWrite { shard, logged } => write(node, shard, logged).await,
        Prepared::Other { routed, args } => execute_routed(node, session, routed, args).await,
        Prepared::Failed(reply) => reply,
    }
}

/// Executes a classified request that is not a plain write.
pub async fn execute_routed(
    node: &Arc<Node>,
    session: &mut Session,
    routed: Routed,
    args: Vec<Bytes>,
) -> Reply {
    let Routed { class, target } = routed;
    match target {
        Target::Node => server_commands::execute(node, session, class.spec, &args).await,
        Target::Keyless => match class.command {
            Some(command) if node.view().is_some() => {
                command.execute_read(&Db::default(), &context(session))
            }
            Some(_) => no_map(),
            None => Reply::Error(ReplyError::err("unclassified command")),
        },
        Target::NodeShards => match class.command {
            Some(command) => node_shards(node, session, &command, class.write, args).await,
            None => Reply::Error(ReplyError::err("unclassified command")),
        },
        Target::Eventual { slot, quorums, .. } => {
            crate::eventual::execute(node, &class, args, slot, quorums, false).await
        }
        Target::Shard { shard, slot } => match class.command {
            Some(_) if class.write => {
                write(
                    node,
                    shard,
                    Logged {
                        slot: Some(slot),
                        args,
                    },
                )
                .await
            }
            Some(command) => read(node, session, shard, slot, &command).await,
            None => Reply::Error(ReplyError::err("unclassified command")),
        },
    }
}

pub fn context(session: &Session) -> ReadContext {
    ReadContext::new(now_ms()).with_protocol(session.protocol)
}

/// Returns the reply that sends the client to `shard`'s leader for
/// `slot`: `MOVED` when a leader is known, else `CLUSTERDOWN`.
pub fn to_leader(node: &Node, view: &MapView, shard: GroupId, slot: Slot) -> Reply {
    let leader = node.leader_of(shard);
    if leader == Some(node.config.node_id) {
        // This node's replica is the one others name, yet it refused: a
        // redirect would point the client back here.
        return Reply::Error(ReplyError::TryAgain(format!(
            "shard {shard} (slot {slot}) is changing leaders here; try again"
        )));
    }
    Stats::bump(&node.stats.redirects);
    match leader.and_then(|leader| view.map().resp_addr(leader)) {
        Some(addr) => Reply::Error(ReplyError::Moved {
            slot,
            addr: addr.to_owned(),
        }),
        None => Reply::Error(ReplyError::ClusterDown(format!(
            "The cluster is down: no leader is known for shard {shard} (slot {slot}; election in progress?)"
        ))),
    }
}

/// Returns the reply to a proposal or read that failed.
fn refused(node: &Node, shard: GroupId, slot: Option<Slot>, error: ProposeError) -> Reply {
    match error {
        ProposeError::NotLeader { leader } => {
            Stats::bump(&node.stats.redirects);
            let view = node.view();
            let addr = leader.and_then(|(_, peer)| {
                view.as_ref()
                    .and_then(|view| view.map().resp_addr(peer.node_id).map(str::to_owned))
            });
            match (slot, addr) {
                (Some(slot), Some(addr)) => Reply::Error(ReplyError::Moved { slot, addr }),
                (Some(slot), None) => match view {
                    Some(view) => to_leader(node, &view, shard, slot),
                    None => no_map(),
                },
                (None, _) => Reply::Error(ReplyError::Other(
                    "READONLY You can't write against a read only replica.".into(),
                )),
            }
        }
        ProposeError::Unavailable(reason) => {
            Stats::bump(&node.stats.raft_failed);
            Reply::Error(ReplyError::ClusterDown(format!(
                "The cluster is down: shard {shard}: {reason}"
            )))
        }
    }
}

/// Where a command the shard did not own goes: waits until the node's map
/// is at the version the shard's ownership came from, then redirects to
/// the slot's owner. `None` when the map says this very shard owns the
/// slot (its ownership entry is not applied yet) and the shard caught up:
/// the caller may try again.
async fn not_owned(node: &Node, group: &ShardGroup, slot: Slot, version: u64) -> Option<Reply> {
    node.map.wait_for(version, CATCH_UP_MAX).await;
    let Some(view) = node.view() else {
        return Some(no_map());
    };
    let Some(owner) = view.owner(slot) else {
        return Some(Reply::Error(ReplyError::ClusterDown(format!(
            "Hash slot {slot} not served"
        ))));
    };
    if owner.id != group.id() {
        return Some(to_leader(node, &view, owner.id, slot));
    }
    let wanted = owner.slots_version;
    let caught_up = wait_until(CATCH_UP_MAX, || {
        group.state().read().app.ownership.version >= wanted
    })
    .await;
    if caught_up {
        None
    } else {
        Some(Reply::Error(ReplyError::TryAgain(format!(
            "shard {} is taking over slot {slot}; try again",
            group.id()
        ))))
    }
}

/// Polls `done` every 10 ms until it holds or `timeout` passes.
async fn wait_until(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn encode(op: &Op) -> Result<Bytes, Reply> {
    op.encode()
        .map_err(|error| Reply::Error(ReplyError::err(format!("cannot encode command: {error}"))))
}

/// Proposes one write to `shard` and returns its reply.
pub async fn write(node: &Arc<Node>, shard: GroupId, logged: Logged) -> Reply {
    let slot = logged.slot;
    write_op(node, shard, slot, Op::Command(logged)).await
}

/// Proposes a try of blocked client `waiter` and returns its reply. A
/// try that served the client wakes the waiters of its keys but not
/// `waiter` itself; an empty one (which changed nothing) wakes nobody.
pub async fn write_as_waiter(
    node: &Arc<Node>,
    shard: GroupId,
    logged: Logged,
    waiter: u64,
) -> Reply {
    let slot = logged.slot;
    propose_op(node, shard, slot, Op::Command(logged), Some(waiter)).await
}

/// Proposes `op`, a client's write to `slot` of `shard` (a command or a
/// transaction), and returns its reply: redirected when the shard did not
/// own the slot at apply, held while the slot is frozen.
pub async fn write_op(node: &Arc<Node>, shard: GroupId, slot: Option<Slot>, op: Op) -> Reply {
    propose_op(node, shard, slot, op, None).await
}

/// [`write_op`], waking the blocked clients of the keys written except
/// `waiter` (the blocked client whose retry this is).
async fn propose_op(
    node: &Arc<Node>,
    shard: GroupId,
    slot: Option<Slot>,
    op: Op,
    waiter: Option<u64>,
) -> Reply {
    let Some(view) = node.view() else {
        return no_map();
    };
    let Some(group) = node.shard(shard) else {
        return match slot {
            Some(slot) => to_leader(node, &view, shard, slot),
            None => Reply::Error(ReplyError::err("no replica of this shard here")),
        };
    };
    if let Err(error) = version::check_enabled(op.format(), view.map().cluster_version) {
        return Reply::Error(ReplyError::err(error.to_string()));
    }
    // A blocked client's retry was admitted when it first came (Redis
    // does not refuse a blocked client it serves); a replica that does
    // not lead redirects rather than judge memory it does not evict.
    let payload = match encode(&op) {
        Ok(payload) => payload,
        Err(reply) => return reply,
    };
    // Held until the write is applied: it counts against maxmemory
    // meanwhile.
    let mut _admitted = None;
    if waiter.is_none() && group.is_leader() && crate::eviction::op_denies_oom(&op) {
        match crate::admission::admit(node, payload.len() as u64).await {
            Ok(admitted) => _admitted = Some(admitted),
            Err(reply) => return reply,
        }
        if let Err(reply) = crate::cache_namespaces::admit_op(node, &op).await {
            return reply;
        }
    }
    for _ in 0..WRITE_ATTEMPTS_MAX {
        Stats::bump(&node.stats.writes_proposed);
        // A group read may append to dead-letter streams it does not name.
        let dead_letters_before = if node.blocking.is_empty() {
            Vec::new()
        } else {
            crate::blocking::dead_letters::tops(&group, &op)
        };
        let answer = match group.propose(payload.clone()).await {
            Ok(answer) => Applied::decode(&answer),
            Err(error) => return refused(node, shard, slot, error),
        };
        match answer {
            Applied::Reply(reply) => {
                // A blocked client's empty retry changed nothing of its
                // keys: it wakes nobody there (two waiters moving between
                // each other's lists would otherwise wake each other for
                // ever). A dead-letter stream it appended to is woken.
                let changed = waiter.is_none() || !matches!(reply, Reply::Null | Reply::NullArray);
                let mut touched = if changed {
                    op_keys(&op)
                } else {
                    Touched::Keys(Vec::new())
                };
                if let Touched::Keys(keys) = &mut touched {
                    keys.extend(crate::blocking::dead_letters::grown(
                        &group,
                        dead_letters_before,
                    ));
                }
                let touches = !matches!(&touched, Touched::Keys(keys) if keys.is_empty());
                if touches && !node.blocking.is_empty() {
                    // As in Redis, the waiters this write can serve are
                    // served before its reply.
                    node.blocking
                        .readied(shard, &touched, waiter)
                        .served()
                        .await;
                }
                return reply;
            }
            Applied::NotOwned { slot, version } => {
                if let Some(reply) = not_owned(node, &group, slot, version).await {
                    return reply;
                }
            }
            Applied::Frozen { slot: Some(slot) } => return frozen_write(node, &group, slot).await,
            Applied::Frozen { slot: None } => return frozen(None),
            Applied::Batch(_) => {
                return Reply::Error(ReplyError::err("a command answered as a batch"))
            }
        }
    }
    Reply::Error(ReplyError::TryAgain(
        "the shard's slots kept changing; try again".into(),
    ))
}

/// Returns the keys `op`'s commands may have changed, for the blocked
/// clients they may serve.
fn op_keys(op: &Op) -> Touched {
    match op {
        Op::Command(logged) => touched([logged.args.as_slice()]),
        Op::Batch(batch) => touched(batch.iter().map(|logged| logged.args.as_slice())),
        Op::Exec(transaction) => touched(transaction.commands.iter().map(Vec::as_slice)),
        _ => Touched::Keys(Vec::new()),
    }
}

/// Returns the keys `commands` may change: every key of the shard when
/// one is a write that names none (FLUSHALL, FLUSHDB).
fn touched<'a>(commands: impl IntoIterator<Item = &'a [Bytes]>) -> Touched {
    let mut keys = Vec::new();
    for args in commands {
        let Some(spec) = args.first().and_then(|name| polis_commands::lookup(name)) else {
            continue;
        };
        let named = polis_commands::command_keys(spec, args);
        if named.is_empty() && polis_commands::spec::is_write(spec) {
            return Touched::All;
        }
        keys.extend(named);
    }
    Touched::Keys(keys)
}

/// Proposes pipelined writes of one connection to one shard as one log
/// entry, applied in order with nothing in between; returns one reply per
/// write. One entry instead of many is what makes pipelined writes cheap:
/// one append, one fsync, one replication round for all of them.
pub async fn write_batch(node: &Arc<Node>, shard: GroupId, writes: Vec<Logged>) -> Vec<Reply> {
    if writes.len() == 1 {
        let mut writes = writes;
        return vec![write(node, shard, writes.remove(0)).await];
    }
    let Some(view) = node.view() else {
        return vec![no_map(); writes.len()];
    };
    let Some(group) = node.shard(shard) else {
        return writes
            .iter()
            .map(|logged| match logged.slot {
                Some(slot) => to_leader(node, &view, shard, slot),
                None => Reply::Error(ReplyError::err("no replica of this shard here")),
            })
            .collect();
    };
    let count = writes.len();
    let slots: Vec<Option<Slot>> = writes.iter().map(|logged| logged.slot).collect();
    let batch = Op::Batch(writes.clone());
    if let Err(error) = version::check_enabled(batch.format(), view.map().cluster_version) {
        return vec![Reply::Error(ReplyError::err(error.to_string())); count];
    }
    let payload = match encode(&batch) {
        Ok(payload) => payload,
        Err(reply) => return vec![reply; count],
    };
    node.stats
        .writes_proposed
        .fetch_add(count as u64, std::sync::atomic::Ordering::Relaxed);
    let answers = match group.propose(payload).await {
        Ok(answer) => {
            if !node.blocking.is_empty() {
                let touched = touched(writes.iter().map(|logged| logged.args.as_slice()));
                node.blocking.readied(shard, &touched, None).served().await;
            }
            Applied::decode(&answer).into_batch(count)
        }
        Err(error) => {
            return slots
                .into_iter()
                .map(|slot| refused(node, shard, slot, error.clone()))
                .collect()
        }
    };
    let mut replies = Vec::with_capacity(count);
    for (answer, logged) in answers.into_iter().zip(writes) {
        replies.push(match answer {
            Applied::Reply(reply) => reply,
            // Not applied: redirect, or propose it alone once the shard
            // took ownership.
            Applied::NotOwned { slot, version } => {
                match not_owned(node, &group, slot, version).await {
                    Some(reply) => reply,
                    None => write(node, shard, logged).await,
                }
            }
            Applied::Frozen { slot } => frozen(slot),
            Applied::Batch(_) => Reply::Error(ReplyError::err("a command answered as a batch")),
        });
    }
    replies
}

/// Runs a node-wide data command over the shards this node leads, as a
/// Redis Cluster node answers for its own keyspace.
async fn node_shards(
    node: &Arc<Node>,
    session: &Session,
    command: &Command,
    write: bool,
    args: Vec<Bytes>,
) -> Reply {
    let Some(view) = node.view() else {
        return no_map();
    };
    let led = node.led_shards();
    if write {
        for group in &led {
            let logged = Logged {
                slot: None,
                args: args.clone(),
            };
            let reply = self::write(node, group.id(), logged).await;
            if reply.is_error() {
                return reply;
            }
        }
        return Reply::ok();
    }
    for group in &led {
        if let Err(error) = group.linearizable_read().await {
            return refused(node, group.id(), None, error);
        }
    }
    Stats::bump(&node.stats.linearizable_reads);
    crate::node_wide::combine(&view, &led, command, &context(session))
}
