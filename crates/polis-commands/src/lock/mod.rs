//! Locks with leases and fencing tokens (polis only): `LOCK ACQUIRE`,
//! `REFRESH`, `RELEASE`, `INFO`, and `FENCED`, which applies a command
//! only while a token still holds its lock.
//!
//! A lease alone cannot make a lock safe: a holder that pauses past its
//! lease (a GC pause, a stalled VM, a slow network) wakes up believing it
//! still holds the lock while another client holds it. So every grant
//! comes with a token that strictly increases per lock, and a guarded
//! write carries its token to where it applies: `FENCED` checks, at
//! apply, in log order with the lock's own changes, that the token is
//! the lock's current one and its lease runs. A stale holder's write is
//! refused, whenever it arrives (Kleppmann, "How to do distributed
//! locking", 2016).
//!
//! ```text
//!   A: LOCK ACQUIRE {o}lock A 1000  -> 33        (pauses past its lease)
//!   B: LOCK ACQUIRE {o}lock B 1000  -> 34        (A's lease ended)
//!   B: FENCED {o}lock 34 SET {o}:status paid     -> OK
//!   A: FENCED {o}lock 33 SET {o}:status open     -> FENCED ... (held by 'B' with token 34)
//! ```
//!
//! Time is the log entry's, as for expiry; tokens come from the entry and
//! the shard's epoch (see [`polis_store::fencing`]).

mod fenced;
mod manage;

use bytes::Bytes;
use polis_resp::ReplyError;
use polis_store::{Db, Fence, LockValue, Value};
use polis_types::limits::LOCK_LEASE_MS_MAX;

use crate::access::typed_at;
use crate::args::parse_i64;
use crate::spec::CommandSpec;

pub use fenced::Fenced;
pub use manage::{Lock, LockAction};

/// Returns true for a command that grants a lock (LOCK ACQUIRE): the node
/// proposes it in a log entry of its own, since an entry grants at most
/// one lock.
pub fn grants_lock(governing: &CommandSpec) -> bool {
    governing.name == "lock|acquire"
}

/// Returns the live lock at `key`, None when absent, or WRONGTYPE.
fn lock_at<'a>(db: &'a Db, key: &[u8], now_ms: u64) -> Result<Option<&'a LockValue>, ReplyError> {
    typed_at(db, key, now_ms, Value::as_lock)
}

/// Returns a fencing token argument: a non-negative integer.
fn token_arg(text: &[u8]) -> Result<u64, ReplyError> {
    parse_i64(text)
        .and_then(|token| u64::try_from(token).ok())
        .ok_or_else(|| {
            ReplyError::err("invalid fencing token: give the integer LOCK ACQUIRE answered")
        })
}

/// Returns a lease argument: milliseconds from 1 to
/// [`LOCK_LEASE_MS_MAX`].
fn lease_arg(text: &[u8]) -> Result<u64, ReplyError> {
    parse_i64(text)
        .and_then(|lease| u64::try_from(lease).ok())
        .filter(|lease| (1..=LOCK_LEASE_MS_MAX).contains(lease))
        .ok_or_else(|| {
            ReplyError::err(format!(
                "invalid lease: give milliseconds from 1 to {LOCK_LEASE_MS_MAX}"
            ))
        })
}

/// Returns `bytes` quoted for an error line: at most 128 bytes, no line
/// breaks (they would end the protocol line).
fn quoted(bytes: &[u8]) -> String {
    crate::spec::truncate_lossy(bytes, 128).replace(['\r', '\n'], " ")
}

/// Returns the error of `token` refused by lock `name`.
fn fenced(name: &[u8], token: u64, fence: &Fence<'_>) -> ReplyError {
    let why = match fence {
        Fence::NobodyHolds => "nobody holds it".to_owned(),
        Fence::LeaseEnded => "its lease ended".to_owned(),
        Fence::HeldBy(holder) => format!(
            "held by '{}' with token {}",
            quoted(&holder.owner),
            holder.token
        ),
    };
    ReplyError::Fenced(format!(
        "token {token} is not the current token of lock '{}' ({why})",
        quoted(name)
    ))
}

/// Checks that `token` holds lock `name` at `now_ms`.
///
/// # Errors
/// WRONGTYPE when `name` holds another type; FENCED when the token does
/// not hold the lock.
fn check_token(db: &Db, name: &Bytes, token: u64, now_ms: u64) -> Result<(), ReplyError> {
    match lock_at(db, name, now_ms)? {
        None => Err(fenced(name, token, &Fence::NobodyHolds)),
        Some(lock) => lock
            .check(token, now_ms)
            .map(|_| ())
            .map_err(|fence| fenced(name, token, &fence)),
    }
}

/// Returns a token as a RESP integer (tokens stay below `i64::MAX`; see
/// [`polis_store::fencing`]).
fn token_reply(token: u64) -> polis_resp::Reply {
    polis_resp::Reply::Integer(i64::try_from(token).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod fenced_test;
#[cfg(test)]
mod lock_test;
