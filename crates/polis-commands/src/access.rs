//! Typed access to values: the WRONGTYPE checks and reply shapes every
//! command family shares.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{Db, HashValue, Value};

use crate::command::Protocol;

/// Returns the live string at `key`, None when absent, or WRONGTYPE.
pub fn string_at<'a>(db: &'a Db, key: &[u8], now_ms: u64) -> Result<Option<&'a Bytes>, ReplyError> {
    match db.get(key, now_ms) {
        None => Ok(None),
        Some(Value::String(bytes)) => Ok(Some(bytes)),
        Some(_) => Err(ReplyError::WrongType),
    }
}

/// Returns the live hash at `key`, None when absent, or WRONGTYPE.
pub fn hash_at<'a>(
    db: &'a Db,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'a HashValue>, ReplyError> {
    match db.get(key, now_ms) {
        None => Ok(None),
        Some(Value::Hash(hash)) => Ok(Some(hash)),
        Some(_) => Err(ReplyError::WrongType),
    }
}

/// Runs `update` on the hash at `key`, creating an empty one first when
/// the key is absent; a hash left empty is deleted. Returns WRONGTYPE when
/// the key holds another type.
pub fn update_hash<R>(
    db: &mut Db,
    key: &Bytes,
    now_ms: u64,
    update: impl FnOnce(&mut HashValue) -> R,
) -> Result<R, ReplyError> {
    hash_at(db, key, now_ms)?;
    if !db.contains(key, now_ms) {
        db.insert(key.clone(), Value::Hash(Box::default()), None, now_ms);
    }
    let mut update = Some(update);
    let result = db.update(key, now_ms, |value| match value {
        Value::Hash(hash) => update.take().map(|update| update(hash)),
        _ => None,
    });
    result.flatten().ok_or(ReplyError::WrongType)
}

/// Returns a bulk reply with the contents of `bytes`.
pub fn bulk(bytes: &Bytes) -> Reply {
    // A clone would give a stored value a shared header for good.
    Reply::Bulk(polis_store::detached(bytes))
}

/// Returns the bulk of `value`, or the null reply.
pub fn bulk_or_null(value: Option<&Bytes>) -> Reply {
    value.map_or(Reply::Null, bulk)
}

/// Returns pairs as Redis replies them outside maps: an array of
/// two-element arrays for RESP3, one flat array for RESP2 (HRANDFIELD
/// WITHVALUES).
pub fn pairs_reply(pairs: Vec<(Reply, Reply)>, protocol: Protocol) -> Reply {
    match protocol {
        Protocol::Resp3 => Reply::Array(
            pairs
                .into_iter()
                .map(|(first, second)| Reply::Array(vec![first, second]))
                .collect(),
        ),
        Protocol::Resp2 => Reply::Array(
            pairs
                .into_iter()
                .flat_map(|(first, second)| [first, second])
                .collect(),
        ),
    }
}

/// Unwraps `Result<Reply, ReplyError>` into a reply.
pub fn reply(result: Result<Reply, ReplyError>) -> Reply {
    result.unwrap_or_else(Reply::Error)
}
