//! Typed access to values: the WRONGTYPE checks and reply shapes every
//! command family shares.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{Db, HashValue, ListValue, SetValue, StreamValue, Value, ZSetValue};

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
        Some(value) => value.as_hash().map(Some).ok_or(ReplyError::WrongType),
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
        db.insert(key.clone(), Value::hash(HashValue::new()), None, now_ms);
    }
    let mut update = Some(update);
    let result = db.update(key, now_ms, |value| {
        value
            .as_hash_mut()
            .and_then(|hash| update.take().map(|update| update(hash)))
    });
    result.flatten().ok_or(ReplyError::WrongType)
}

/// Returns the live value of one type at `key` (`get` picks the type),
/// None when absent, or WRONGTYPE.
pub fn typed_at<'a, T: ?Sized>(
    db: &'a Db,
    key: &[u8],
    now_ms: u64,
    get: fn(&Value) -> Option<&T>,
) -> Result<Option<&'a T>, ReplyError> {
    match db.get(key, now_ms) {
        None => Ok(None),
        Some(value) => get(value).map(Some).ok_or(ReplyError::WrongType),
    }
}

/// Returns the live list at `key`, None when absent, or WRONGTYPE.
pub fn list_at<'a>(
    db: &'a Db,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'a ListValue>, ReplyError> {
    typed_at(db, key, now_ms, Value::as_list)
}

/// Returns the live set at `key`, None when absent, or WRONGTYPE.
pub fn set_at<'a>(db: &'a Db, key: &[u8], now_ms: u64) -> Result<Option<&'a SetValue>, ReplyError> {
    typed_at(db, key, now_ms, Value::as_set)
}

/// Returns the live sorted set at `key`, None when absent, or WRONGTYPE.
pub fn zset_at<'a>(
    db: &'a Db,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'a ZSetValue>, ReplyError> {
    typed_at(db, key, now_ms, Value::as_zset)
}

/// Returns the live stream at `key`, None when absent, or WRONGTYPE.
pub fn stream_at<'a>(
    db: &'a Db,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'a StreamValue>, ReplyError> {
    typed_at(db, key, now_ms, Value::as_stream)
}

/// Runs `update` on the value of one type at `key` (`get_mut` picks the
/// type), creating it with `create` first when the key is absent; an
/// aggregate left empty is deleted. WRONGTYPE when the key holds another
/// type (nothing is created then).
pub fn update_typed<T, R>(
    db: &mut Db,
    key: &Bytes,
    now_ms: u64,
    create: fn() -> Value,
    get_mut: fn(&mut Value) -> Option<&mut T>,
    update: impl FnOnce(&mut T) -> R,
) -> Result<R, ReplyError> {
    match db.get(key, now_ms) {
        None => db.insert(key.clone(), create(), None, now_ms),
        Some(value) if value.type_name() != create().type_name() => {
            return Err(ReplyError::WrongType)
        }
        Some(_) => {}
    }
    let mut update = Some(update);
    let result = db.update(key, now_ms, |value| {
        get_mut(value).and_then(|inner| update.take().map(|update| update(inner)))
    });
    result.flatten().ok_or(ReplyError::WrongType)
}

/// Runs `update` on the list at `key`, created empty when absent.
pub fn update_list<R>(
    db: &mut Db,
    key: &Bytes,
    now_ms: u64,
    update: impl FnOnce(&mut ListValue) -> R,
) -> Result<R, ReplyError> {
    update_typed(
        db,
        key,
        now_ms,
        || Value::list(ListValue::new()),
        Value::as_list_mut,
        update,
    )
}

/// Runs `update` on the set at `key`, created empty when absent.
pub fn update_set<R>(
    db: &mut Db,
    key: &Bytes,
    now_ms: u64,
    update: impl FnOnce(&mut SetValue) -> R,
) -> Result<R, ReplyError> {
    update_typed(
        db,
        key,
        now_ms,
        || Value::set(SetValue::new()),
        Value::as_set_mut,
        update,
    )
}

/// Runs `update` on the sorted set at `key`, created empty when absent.
pub fn update_zset<R>(
    db: &mut Db,
    key: &Bytes,
    now_ms: u64,
    update: impl FnOnce(&mut ZSetValue) -> R,
) -> Result<R, ReplyError> {
    update_typed(
        db,
        key,
        now_ms,
        || Value::zset(ZSetValue::new()),
        Value::as_zset_mut,
        update,
    )
}

/// Runs `update` on the stream at `key`, created empty when absent.
pub fn update_stream<R>(
    db: &mut Db,
    key: &Bytes,
    now_ms: u64,
    update: impl FnOnce(&mut StreamValue) -> R,
) -> Result<R, ReplyError> {
    update_typed(
        db,
        key,
        now_ms,
        || Value::stream(StreamValue::new()),
        Value::as_stream_mut,
        update,
    )
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

/// Returns a bulk reply with a copy of `bytes`, for what the store keeps
/// in a larger allocation (the fields and values of a hash).
pub fn bulk_copy(bytes: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(bytes))
}

/// Returns the [`bulk_copy`] of `value`, or the null reply.
pub fn bulk_copy_or_null(value: Option<&[u8]>) -> Reply {
    value.map_or(Reply::Null, bulk_copy)
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
