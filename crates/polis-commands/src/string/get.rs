//! GET, MGET, STRLEN, GETRANGE (and its old name SUBSTR).

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{Db, Value};

use crate::access::{bulk, bulk_or_null, reply, string_at};
use crate::args::{arg, int_arg};
use crate::command::{ReadCommand, ReadContext};

/// `GET key`
#[derive(Debug, Clone, PartialEq)]
pub struct Get {
    pub key: Bytes,
}

impl ReadCommand for Get {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        reply(string_at(db, &self.key, ctx.now_ms).map(bulk_or_null))
    }
}

/// `MGET key [key ...]`: a value of another type reads as null.
#[derive(Debug, Clone, PartialEq)]
pub struct MGet {
    pub keys: Vec<Bytes>,
}

impl ReadCommand for MGet {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        arg(args, 1)?;
        Ok(Self {
            keys: args[1..].to_vec(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        Reply::Array(
            self.keys
                .iter()
                .map(|key| match db.get(key, ctx.now_ms) {
                    Some(Value::String(bytes)) => bulk(bytes),
                    _ => Reply::Null,
                })
                .collect(),
        )
    }
}

/// `STRLEN key`
#[derive(Debug, Clone, PartialEq)]
pub struct Strlen {
    pub key: Bytes,
}

impl ReadCommand for Strlen {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        reply(
            string_at(db, &self.key, ctx.now_ms)
                .map(|value| Reply::Integer(value.map_or(0, |bytes| bytes.len() as i64))),
        )
    }
}

/// `GETRANGE key start end` (also `SUBSTR`): inclusive byte range,
/// negative offsets from the end.
#[derive(Debug, Clone, PartialEq)]
pub struct GetRange {
    pub key: Bytes,
    pub start: i64,
    pub end: i64,
}

impl ReadCommand for GetRange {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            start: int_arg(arg(args, 2)?)?,
            end: int_arg(arg(args, 3)?)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let value = match string_at(db, &self.key, ctx.now_ms) {
            Ok(Some(value)) => value,
            Ok(None) => return Reply::Bulk(Bytes::new()),
            Err(error) => return Reply::Error(error),
        };
        match byte_range(value.len(), self.start, self.end) {
            Some((start, end)) => Reply::Bulk(value.slice(start..=end)),
            None => Reply::Bulk(Bytes::new()),
        }
    }
}

/// Resolves Redis's inclusive `start..=end` over a string of `len` bytes
/// (negative offsets count from the end, out-of-range ends are clamped);
/// None when the range is empty.
pub(crate) fn byte_range(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let len = i64::try_from(len).ok()?;
    let mut start = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        len.saturating_add(end)
    } else {
        end
    };
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((usize::try_from(start).ok()?, usize::try_from(end).ok()?))
}
