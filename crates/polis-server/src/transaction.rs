//! MULTI, EXEC, DISCARD, WATCH and UNWATCH: a connection's transaction.
//!
//! Between MULTI and EXEC a connection's commands are checked (known
//! command, arity, one slot) and queued, each answered `QUEUED`. EXEC
//! proposes the data commands as one log entry ([`Op::Exec`]), so they
//! apply together with nothing in between, on every replica alike; the
//! node's own commands among them (PING, ECHO, ...) are answered here, in
//! their places. A command refused while queueing makes EXEC answer
//! `EXECABORT` and run nothing; a command that fails at apply answers its
//! error in its place and the others still apply, as in Redis.
//!
//! WATCH reads the versions of its keys on the slot's leader (a
//! linearizable read); the entry carries them, and apply runs nothing
//! (EXEC answers the null array) when any changed: a write, an expiry, a
//! deletion all give a key a new version or make it absent. Keys of one
//! transaction share a slot, as in Redis Cluster.
//!
//! ```text
//!  WATCH k ──> read version(k) on the leader ──> session.watched
//!  MULTI ──> queue: SET k v, INCR k, PING      (QUEUED each)
//!  EXEC  ──> propose Exec{slot, watched, [SET, INCR]} ──> apply: versions equal?
//!                                                         ├─ yes: run both, replies
//!                                                         └─ no:  null array
//! ```

use std::sync::Arc;

use bytes::Bytes;
use polis_cluster::Target;
use polis_resp::{Reply, ReplyError};
use polis_types::{key_hash_slot, limits, Slot};

use crate::connection::Session;
use crate::dispatch;
use crate::machine::{Op, Transaction};
use crate::node::Node;

/// A transaction being queued.
#[derive(Debug, Default)]
pub struct Queued {
    /// Every queued command, data and node commands alike, in order.
    commands: Vec<Queue>,
    /// The slot of the keys queued so far.
    slot: Option<Slot>,
    /// Bytes of the queued arguments.
    bytes: usize,
    /// A command was refused while queueing: EXEC runs nothing.
    failed: bool,
}

impl Queued {
    /// Marks the transaction refused: EXEC will answer EXECABORT.
    pub fn fail(&mut self) {
        self.failed = true;
    }
}

/// One queued command.
#[derive(Debug)]
enum Queue {
    /// A data command, applied in the transaction's entry.
    Data(Vec<Bytes>),
    /// A command the node answers itself, at EXEC.
    Node(Vec<Bytes>),
}

/// A watched key and the version WATCH read (None: absent).
#[derive(Debug, Clone)]
pub struct Watched {
    key: Bytes,
    slot: Slot,
    version: Option<u64>,
}

fn lower(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_lowercase()
}

fn error(text: &str) -> Reply {
    Reply::Error(ReplyError::err(text))
}

/// Returns true when `args` is one of the transaction commands (which
/// [`intercept`] answers even outside a transaction).
pub fn handles(args: &[Bytes]) -> bool {
    args.first().is_some_and(|name| {
        ["multi", "exec", "discard", "watch", "unwatch", "reset"]
            .iter()
            .any(|command| name.eq_ignore_ascii_case(command.as_bytes()))
    })
}

/// Answers `args` when it belongs to the transaction machinery: MULTI,
/// EXEC, DISCARD, WATCH, UNWATCH, or any command while a transaction is
/// being queued. None for everything else, which runs as usual.
pub async fn intercept(node: &Arc<Node>, session: &mut Session, args: &[Bytes]) -> Option<Reply> {
    let name = lower(args.first()?);
    let reply = match name.as_str() {
        "multi" if args.len() == 1 => match session.multi {
            Some(_) => error("MULTI calls can not be nested"),
            None => {
                session.multi = Some(Queued::default());
                Reply::ok()
            }
        },
        "exec" if args.len() == 1 => match session.multi.take() {
            None => error("EXEC without MULTI"),
            Some(queued) => {
                let watched = std::mem::take(&mut session.watched);
                if queued.failed {
                    Reply::Error(ReplyError::Other(
                        "EXECABORT Transaction discarded because of previous errors.".into(),
                    ))
                } else {
                    exec(node, session, queued, watched).await
                }
            }
        },
        "discard" if args.len() == 1 => match session.multi.take() {
            None => error("DISCARD without MULTI"),
            Some(_) => {
                session.watched.clear();
                Reply::ok()
            }
        },
        "watch" if args.len() >= 2 => match session.multi {
            Some(_) => {
                // Refused, and the transaction still runs (as in Redis).
                error("WATCH inside MULTI is not allowed")
            }
            None => watch(node, session, &args[1..]).await,
        },
        "unwatch" if args.len() == 1 && session.multi.is_none() => {
            session.watched.clear();
            Reply::ok()
        }
        "reset" => {
            session.multi = None;
            session.watched.clear();
            return None;
        }
        _ => {
            let queued = session.multi.as_mut()?;
            queue(node, queued, args)
        }
    };
    Some(reply)
}

/// Checks `args` and queues it; answers `QUEUED` or the error that makes
/// EXEC abort.
fn queue(node: &Node, queued: &mut Queued, args: &[Bytes]) -> Reply {
    let refused = |queued: &mut Queued, reply: ReplyError| {
        queued.failed = true;
        Reply::Error(reply)
    };
    let bytes: usize = args.iter().map(Bytes::len).sum();
    if queued.commands.len() >= limits::TRANSACTION_COMMANDS_MAX
        || queued.bytes + bytes > limits::TRANSACTION_BYTES_MAX
    {
        return refused(
            queued,
            ReplyError::err(format!(
                "a transaction holds at most {} commands and {} bytes of arguments",
                limits::TRANSACTION_COMMANDS_MAX,
                limits::TRANSACTION_BYTES_MAX
            )),
        );
    }
    queued.bytes += bytes;
    let Some(view) = node.view() else {
        return refused(
            queued,
            ReplyError::ClusterDown("The cluster is down: this node has no cluster map yet".into()),
        );
    };
    let routed = match polis_cluster::classify(args, &view) {
        Ok(routed) => routed,
        Err(reply) => return refused(queued, reply),
    };
    if routed.class.spec.has(polis_commands::spec::NO_MULTI) {
        return refused(
            queued,
            ReplyError::err(format!(
                "Command not allowed inside a transaction: {}",
                routed.class.spec.name
            )),
        );
    }
    if crate::server_commands::pubsub::SUBSCRIPTION_COMMANDS.contains(&routed.class.spec.name) {
        // Their answers are pushes, which cannot sit inside EXEC's array.
        return refused(
            queued,
            ReplyError::err(format!(
                "Command not allowed inside a transaction: {}",
                routed.class.spec.name
            )),
        );
    }
    // Queued commands take memory too: over the limit, Redis refuses any
    // (and EXEC aborts). The node judges what it would execute: the
    // shard's leader, or itself for the rest.
    let judged_here = match routed.target {
        Target::Shard { shard, .. } => node.shard(shard).is_some_and(|group| group.is_leader()),
        _ => true,
    };
    if judged_here && crate::eviction::refusing_writes(node) {
        queued.failed = true;
        return crate::eviction::oom();
    }
    if judged_here && crate::eviction::denies_oom(args) {
        if let Some(reply) = crate::cache_namespaces::refusing(node, args) {
            queued.failed = true;
            return reply;
        }
    }
    let item = match routed.target {
        Target::Node => Queue::Node(args.to_vec()),
        Target::Shard { slot, .. } => {
            if queued.slot.is_some_and(|queued_slot| queued_slot != slot) {
                return refused(queued, ReplyError::CrossSlot);
            }
            queued.slot = Some(slot);
            Queue::Data(args.to_vec())
        }
        Target::Keyless | Target::NodeShards => Queue::Data(args.to_vec()),
        Target::Eventual { .. } => {
            return refused(
                queued,
                ReplyError::err(
                    "keys of eventual namespaces cannot be used in MULTI: a transaction needs \
                     one order of writes (use a strong namespace)",
                ),
            );
        }
    };
    queued.commands.push(item);
    Reply::Simple("QUEUED".into())
}

/// Reads the versions of `keys` on their slot's leader and adds them to
/// the watched keys.
async fn watch(node: &Arc<Node>, session: &mut Session, keys: &[Bytes]) -> Reply {
    let slot = key_hash_slot(&keys[0]);
    let earlier = session.watched.first().map(|watched| watched.slot);
    if keys.iter().any(|key| key_hash_slot(key) != slot)
        || earlier.is_some_and(|earlier| earlier != slot)
    {
        return Reply::Error(ReplyError::CrossSlot);
    }
    if session.watched.len() + keys.len() > limits::TRANSACTION_COMMANDS_MAX {
        return error("too many watched keys");
    }
    let Some(view) = node.view() else {
        return dispatch::no_map();
    };
    let Some(owner) = view.owner(slot) else {
        return Reply::Error(ReplyError::ClusterDown(format!(
            "Hash slot {slot} not served"
        )));
    };
    let now = crate::node::now_ms();
    let versions = std::sync::Mutex::new(Vec::new());
    let reply = dispatch::read_with(
        node,
        dispatch::Freshness::Linearizable,
        owner.id,
        slot,
        |db| {
            let read: Vec<Option<u64>> = keys.iter().map(|key| db.version_of(key, now)).collect();
            if let Ok(mut versions) = versions.lock() {
                *versions = read;
            }
            Reply::ok()
        },
    )
    .await;
    if reply.is_error() {
        return reply;
    }
    let versions = versions.into_inner().unwrap_or_default();
    for (key, version) in keys.iter().zip(versions) {
        session.watched.push(Watched {
            key: key.clone(),
            slot,
            version,
        });
    }
    Reply::ok()
}

/// Runs a queued transaction: its data commands as one entry, its node
/// commands here; the replies in the order the commands were queued.
async fn exec(
    node: &Arc<Node>,
    session: &mut Session,
    queued: Queued,
    watched: Vec<Watched>,
) -> Reply {
    let watched_slot = watched.first().map(|watched| watched.slot);
    let slot = match (queued.slot, watched_slot) {
        (Some(slot), Some(watched)) if slot != watched => {
            return Reply::Error(ReplyError::CrossSlot);
        }
        (slot, watched) => slot.or(watched),
    };
    let data: Vec<Vec<Bytes>> = queued
        .commands
        .iter()
        .filter_map(|item| match item {
            Queue::Data(args) => Some(args.clone()),
            Queue::Node(_) => None,
        })
        .collect();
    let data_replies = if data.is_empty() && watched.is_empty() {
        Vec::new()
    } else {
        let shard = match slot {
            Some(slot) => match node.view().and_then(|view| view.owner(slot).map(|owner| owner.id)) {
                Some(shard) => shard,
                None => {
                    return Reply::Error(ReplyError::ClusterDown(format!("Hash slot {slot} not served")))
                }
            },
            None => match node.led_shards().first() {
                Some(group) => group.id(),
                None => {
                    return error("a keyless transaction runs on a shard this node leads, and it leads none: send it to a shard's leader")
                }
            },
        };
        let transaction = Transaction {
            slot,
            watched: watched
                .into_iter()
                .map(|watched| (watched.key, watched.version))
                .collect(),
            commands: data,
        };
        match dispatch::write_op(node, shard, slot, Op::Exec(transaction)).await {
            Reply::Array(replies) => replies,
            Reply::NullArray => return Reply::NullArray,
            refused if refused == crate::eviction::oom() => return crate::eviction::exec_oom(),
            other => return other,
        }
    };
    let mut data_replies = data_replies.into_iter();
    let mut replies = Vec::with_capacity(queued.commands.len());
    for item in queued.commands {
        match item {
            Queue::Data(_) => replies.push(data_replies.next().unwrap_or(Reply::Null)),
            Queue::Node(args) => {
                let reply = match polis_commands::lookup(&args[0]) {
                    Some(spec) if spec.name == "monitor" => {
                        crate::server_commands::slowlog::monitor_in_transaction()
                    }
                    Some(spec) => crate::server_commands::execute(node, session, spec, &args).await,
                    None => Reply::Error(polis_commands::unknown_command(&args)),
                };
                replies.push(reply);
            }
        }
    }
    Reply::Array(replies)
}
