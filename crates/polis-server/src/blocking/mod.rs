//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
//! BZPOPMAX, BZMPOP, XREAD BLOCK, XREADGROUP BLOCK): waiters live on the
//! shard's leader, in arrival order per key.
//!
//! A blocking command is also an ordinary command: applied, it serves
//! itself at once from what is there, or answers null (the command layer
//! runs it so, as Redis does inside MULTI). Blocking is the node trying
//! it again each time its keys may have data:
//!
//! ```text
//!  BLPOP k 5 ─> register as a waiter on (shard, k) ─> propose BLPOP k ─> served? reply
//!                                                        │ null
//!            ┌──────────────── wait ─────────────────────┘
//!            ├─ a write to k committed here, and this waiter heads k's queue
//!            │     ─> propose BLPOP k again ─> served? reply (then wake the next)
//!            ├─ timeout / CLIENT UNBLOCK ─> null (or UNBLOCKED), nothing in flight
//!            └─ this node no longer leads the shard, or the slot moved ─> MOVED
//! ```
//!
//! A blocked XREADGROUP of new entries also tries again when a pending
//! entry of its group becomes due (its ack-wait or XNACK delay passed):
//! the leader's timer in [`due`].
//!
//! Nothing is lost and nothing taken twice: only the entry a waiter
//! proposed serves it, and its reply follows that entry's commit. A
//! waiter registers before its first try, so a write committed during
//! the try leaves it a wake-up permit. A retry whose proposal fails (the
//! leader changed with the entry in flight) closes the connection: the
//! outcome is unknown, and a reply could make the client pop twice. Every
//! data-changing proposal of a shard comes from its leader's node, which
//! is where the waiters are, so the node's own writes are what wake them.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use polis_cluster::Target;
use polis_resp::{Reply, ReplyError};
use polis_types::{GroupId, Slot};

pub(crate) mod dead_letters;
mod due;
mod registry;

use registry::Registration;
pub use registry::{Blocking, Touched, Unblock, Woken};

use crate::connection::Session;
use crate::dispatch;
use crate::machine::Logged;
use crate::node::Node;

/// How often a waiter checks that its node still leads its shard.
const LEADERSHIP_CHECK: Duration = Duration::from_millis(200);
/// What a blocking request waits with.
struct Request {
    /// How long it waits; None: for ever.
    timeout: Option<Duration>,
    /// It goes through the log (XREAD does not).
    write: bool,
}

/// Returns true when `args` may block: a blocking command, or XREAD /
/// XREADGROUP with BLOCK.
pub fn may_block(args: &[Bytes]) -> bool {
    let Some(name) = args.first() else {
        return false;
    };
    let name = name.to_ascii_lowercase();
    match name.as_slice() {
        b"blpop" | b"brpop" | b"blmove" | b"brpoplpush" | b"blmpop" | b"bzpopmin" | b"bzpopmax"
        | b"bzmpop" => true,
        b"xread" | b"xreadgroup" => block_option(args).is_some(),
        _ => false,
    }
}

/// Returns the argument after XREAD's BLOCK (before STREAMS).
fn block_option(args: &[Bytes]) -> Option<&Bytes> {
    let streams = args
        .iter()
        .position(|arg| arg.eq_ignore_ascii_case(b"streams"))
        .unwrap_or(args.len());
    args[..streams]
        .iter()
        .position(|arg| arg.eq_ignore_ascii_case(b"block"))
        .and_then(|at| args.get(at + 1))
}

/// Reads the timeout of a request the command layer already accepted
/// (so its syntax is valid).
fn request(args: &[Bytes]) -> Result<Request, ReplyError> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let seconds = |arg: &Bytes| -> Result<Option<Duration>, ReplyError> {
        let text = std::str::from_utf8(arg).map_err(|_| timeout_error())?;
        let seconds: f64 = text.trim().parse().map_err(|_| timeout_error())?;
        if !seconds.is_finite() {
            return Err(timeout_error());
        }
        if seconds < 0.0 {
            return Err(ReplyError::err("timeout is negative"));
        }
        Ok((seconds > 0.0).then(|| Duration::from_secs_f64(seconds.min(1e9))))
    };
    let last = || args.last().ok_or_else(timeout_error);
    Ok(match name.as_str() {
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" | "blmove" | "brpoplpush" => Request {
            timeout: seconds(last()?)?,
            write: true,
        },
        "blmpop" | "bzmpop" => Request {
            timeout: seconds(args.get(1).ok_or_else(timeout_error)?)?,
            write: true,
        },
        _ => {
            let block = block_option(args).ok_or_else(timeout_error)?;
            let millis: i64 = std::str::from_utf8(block)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| ReplyError::err("timeout is not an integer or out of range"))?;
            if millis < 0 {
                return Err(ReplyError::err("timeout is negative"));
            }
            Request {
                timeout: (millis > 0).then(|| Duration::from_millis(millis as u64)),
                write: name == "xreadgroup",
            }
        }
    })
}

fn timeout_error() -> ReplyError {
    ReplyError::err("timeout is not a float or out of range")
}

/// Returns true when `reply` served nothing (the waiter keeps waiting).
fn is_empty_reply(reply: &Reply) -> bool {
    matches!(reply, Reply::Null | Reply::NullArray)
}

/// The reply to a wait that ended without data: a null of the command's
/// shape.
fn timed_out(args: &[Bytes]) -> Reply {
    let name = args[0].to_ascii_lowercase();
    match name.as_slice() {
        b"blmove" | b"brpoplpush" => Reply::Null,
        _ => Reply::NullArray,
    }
}

/// Runs a request that may block, for a connection not in a transaction.
pub async fn execute(node: &Arc<Node>, session: &mut Session, args: Vec<Bytes>) -> Reply {
    let routed = match node.view() {
        Some(view) => polis_cluster::classify(&args, &view),
        None => return dispatch::no_map(),
    };
    let routed = match routed {
        Ok(routed) => routed,
        Err(error) => return Reply::Error(error),
    };
    let Target::Shard { shard, slot } = routed.target else {
        return dispatch::execute_routed(node, session, routed, args).await;
    };
    let request = match request(&args) {
        Ok(request) => request,
        Err(error) => return Reply::Error(error),
    };
    let args = match resolve_last_ids(node, shard, slot, args).await {
        Ok(args) => args,
        Err(reply) => return reply,
    };
    let keys = source_keys(&args);
    let group_read = due::group_read(&args);
    // Entries due after this are the timer's; earlier ones the first try's.
    let mut due_checked_ms = crate::node::now_ms();
    // Registered before the first try: a write committed meanwhile leaves
    // a permit, so no wake-up is lost.
    let registration = node.blocking.register(session.client_id, shard, keys);
    // Arrival order: behind earlier waiters, it tries when its turn comes
    // (the waiter ahead of it leaves, or data arrives with it first).
    if node.blocking.is_first(&registration) {
        registration.waiter.trying.store(true, Ordering::Release);
        let first = attempt(node, session, &request, &registration, slot, &args).await;
        registration.waiter.trying.store(false, Ordering::Release);
        if !is_empty_reply(&first) {
            return first;
        }
    }
    node.blocking.blocked(&registration.waiter);
    let deadline = request
        .timeout
        .map(|timeout| tokio::time::Instant::now() + timeout);
    loop {
        let due_ms = group_read
            .as_ref()
            .and_then(|read| due::next_due_ms(node, shard, read, due_checked_ms));
        let woken = tokio::select! {
            () = registration.waiter.notify.notified() => true,
            () = sleep_until(deadline) => return timed_out(&args),
            () = tokio::time::sleep(LEADERSHIP_CHECK) => false,
            () = sleep_until_ms(due_ms) => {
                due_checked_ms = crate::node::now_ms();
                true
            }
        };
        let unblocked = registration
            .waiter
            .unblock
            .lock()
            .ok()
            .and_then(|mut unblock| unblock.take());
        match unblocked {
            Some(Unblock::Timeout) => return timed_out(&args),
            Some(Unblock::Error) => {
                return Reply::Error(ReplyError::Other(
                    "UNBLOCKED client unblocked via CLIENT UNBLOCK".into(),
                ))
            }
            None => {}
        }
        if let Some(moved) = lost_the_slot(node, shard, slot) {
            return moved;
        }
        if !woken {
            continue;
        }
        let waiter = &registration.waiter;
        waiter.trying.store(true, Ordering::Release);
        let reply = attempt(node, session, &request, &registration, slot, &args).await;
        waiter.trying.store(false, Ordering::Release);
        waiter.tries.fetch_add(1, Ordering::AcqRel);
        waiter.tried.notify_waiters();
        if request.write && is_refusal(&reply) {
            // The retry's entry may have been appended before the leader
            // changed: whether it applied is unknown, and answering could
            // make the client pop twice.
            session.abort = true;
            return reply;
        }
        if is_empty_reply(&reply) {
            continue;
        }
        if let Reply::Error(error) = &reply {
            if args[0].eq_ignore_ascii_case(b"xreadgroup") {
                return group_read_ended(node, shard, slot, &args, reply).await;
            }
            if matches!(error, ReplyError::WrongType)
                && (args[0].eq_ignore_ascii_case(b"xread")
                    || !source_has_data(node, shard, slot, &args).await)
            {
                // Redis 7.0 serves a waiter only from a key of its type:
                // a source that now holds another type wakes nobody. An
                // error with data in a source is the destination's.
                continue;
            }
        }
        return reply;
    }
}

/// Returns true when one of the keys a blocked pop takes from holds a
/// value of the type it pops (the first key only for BLMOVE and
/// BRPOPLPUSH, whose second key is where the element goes).
async fn source_has_data(node: &Arc<Node>, shard: GroupId, slot: Slot, args: &[Bytes]) -> bool {
    let name = args[0].to_ascii_lowercase();
    let keys = source_keys(args);
    let wanted = if name.starts_with(b"bz") {
        "zset"
    } else {
        "list"
    };
    let now = crate::node::now_ms();
    let found = dispatch::read_with(node, dispatch::Freshness::Linearizable, shard, slot, |db| {
        let found = keys.iter().any(|key| {
            db.get(key, now)
                .is_some_and(|value| value.type_name() == wanted)
        });
        Reply::Integer(i64::from(found))
    })
    .await;
    found == Reply::Integer(1)
}

/// Returns the keys a blocking request takes from, which it waits on:
/// every key but BLMOVE's and BRPOPLPUSH's destination.
fn source_keys(args: &[Bytes]) -> Vec<Bytes> {
    let mut keys = polis_commands::lookup(&args[0])
        .map(|spec| polis_commands::command_keys(spec, args))
        .unwrap_or_default();
    if args[0].eq_ignore_ascii_case(b"blmove") || args[0].eq_ignore_ascii_case(b"brpoplpush") {
        keys.truncate(1);
    }
    keys
}

/// The reply of a blocked XREADGROUP whose retry failed: Redis's
/// `UNBLOCKED` when one of its streams is gone (deleted, flushed, or now
/// another type), else the command's own error (NOGROUP when the group
/// was destroyed).
async fn group_read_ended(
    node: &Arc<Node>,
    shard: GroupId,
    slot: Slot,
    args: &[Bytes],
    failed: Reply,
) -> Reply {
    let keys = polis_commands::lookup(&args[0])
        .map(|spec| polis_commands::command_keys(spec, args))
        .unwrap_or_default();
    let now = crate::node::now_ms();
    let gone = dispatch::read_with(node, dispatch::Freshness::Linearizable, shard, slot, |db| {
        let gone = keys.iter().any(|key| {
            db.get(key, now)
                .and_then(|value| value.as_stream())
                .is_none()
        });
        Reply::Integer(i64::from(gone))
    })
    .await;
    if gone == Reply::Integer(1) {
        return Reply::Error(ReplyError::Other(
            "UNBLOCKED the stream key no longer exists".into(),
        ));
    }
    failed
}

/// Returns true when `reply` says the request reached no leader or lost it.
fn is_refusal(reply: &Reply) -> bool {
    matches!(
        reply,
        Reply::Error(
            ReplyError::Moved { .. } | ReplyError::ClusterDown(_) | ReplyError::TryAgain(_)
        )
    )
}

/// Sleeps until the node's clock reads `at_ms` (for ever when None).
async fn sleep_until_ms(at_ms: Option<u64>) {
    match at_ms {
        Some(at_ms) => {
            let wait_ms = at_ms.saturating_sub(crate::node::now_ms());
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Tries the request once: proposed for a write, read linearizably for
/// XREAD.
async fn attempt(
    node: &Arc<Node>,
    session: &Session,
    request: &Request,
    registration: &Registration<'_>,
    slot: Slot,
    args: &[Bytes],
) -> Reply {
    let shard = registration.waiter.shard;
    if request.write {
        let logged = Logged {
            slot: Some(slot),
            args: args.to_vec(),
        };
        return dispatch::write_as_waiter(node, shard, logged, registration.id).await;
    }
    let command = match polis_commands::parse(args) {
        Ok(command) => command,
        Err(error) => return Reply::Error(error),
    };
    let ctx = dispatch::context(session);
    let freshness = if session.readonly {
        dispatch::Freshness::Local
    } else {
        dispatch::Freshness::Linearizable
    };
    dispatch::read_with(node, freshness, shard, slot, |db| {
        command.execute_read(db, &ctx)
    })
    .await
}

/// Returns the redirect for a waiter whose node no longer leads its
/// shard, or whose shard no longer owns its slot.
fn lost_the_slot(node: &Node, shard: GroupId, slot: Slot) -> Option<Reply> {
    let view = node.view()?;
    let owner = view.owner(slot).map(|owner| owner.id);
    let leads = node.shard(shard).is_some_and(|group| group.is_leader());
    if owner == Some(shard) && leads {
        return None;
    }
    let target = owner.unwrap_or(shard);
    Some(dispatch::to_leader(node, &view, target, slot))
}

/// XREAD's `$` means "after the last entry when the command blocked":
/// replaced by each stream's last id before the first try, so later tries
/// read what arrived since.
async fn resolve_last_ids(
    node: &Arc<Node>,
    shard: GroupId,
    slot: Slot,
    mut args: Vec<Bytes>,
) -> Result<Vec<Bytes>, Reply> {
    if !args[0].eq_ignore_ascii_case(b"xread") || !args.iter().any(|arg| arg.as_ref() == b"$") {
        return Ok(args);
    }
    let Some(streams) = args
        .iter()
        .position(|arg| arg.eq_ignore_ascii_case(b"streams"))
    else {
        return Ok(args);
    };
    let count = (args.len() - streams - 1) / 2;
    let keys: Vec<Bytes> = args[streams + 1..streams + 1 + count].to_vec();
    let now = crate::node::now_ms();
    let ids = Mutex::new(Vec::new());
    let reply = dispatch::read_with(node, dispatch::Freshness::Linearizable, shard, slot, |db| {
        let last: Vec<String> = keys
            .iter()
            .map(|key| {
                db.get(key, now)
                    .and_then(|value| value.as_stream())
                    .map_or_else(|| "0-0".to_owned(), |stream| stream.last_id.to_string())
            })
            .collect();
        if let Ok(mut ids) = ids.lock() {
            *ids = last;
        }
        Reply::ok()
    })
    .await;
    if reply.is_error() {
        return Err(reply);
    }
    let ids = ids.into_inner().unwrap_or_default();
    for (offset, id) in ids.into_iter().enumerate() {
        let at = streams + 1 + count + offset;
        if args.get(at).is_some_and(|arg| arg.as_ref() == b"$") {
            args[at] = Bytes::from(id);
        }
    }
    Ok(args)
}
