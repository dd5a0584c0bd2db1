//! HGET, HMGET, HEXISTS, HSTRLEN, HLEN, and HGETALL/HKEYS/HVALS.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{Db, HashValue};

use crate::access::{bulk_copy, bulk_copy_or_null, hash_at};
use crate::args::{arg, command_name};
use crate::command::{ReadCommand, ReadContext};

/// Runs `read` on the hash at `key` (None when absent), or replies
/// WRONGTYPE.
fn with_hash(
    db: &Db,
    key: &[u8],
    ctx: &ReadContext,
    read: impl FnOnce(Option<&HashValue>) -> Reply,
) -> Reply {
    match hash_at(db, key, ctx.now_ms) {
        Ok(hash) => read(hash),
        Err(error) => Reply::Error(error),
    }
}

/// A command that names a key and one field.
fn key_and_field(args: &[Bytes]) -> Result<(Bytes, Bytes), ReplyError> {
    Ok((arg(args, 1)?.clone(), arg(args, 2)?.clone()))
}

/// `HGET key field`
#[derive(Debug, Clone, PartialEq)]
pub struct HGet {
    pub key: Bytes,
    pub field: Bytes,
}

impl ReadCommand for HGet {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let (key, field) = key_and_field(args)?;
        Ok(Self { key, field })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        with_hash(db, &self.key, ctx, |hash| {
            bulk_copy_or_null(hash.and_then(|hash| hash.get(&self.field)))
        })
    }
}

/// `HMGET key field [field ...]`
#[derive(Debug, Clone, PartialEq)]
pub struct HMGet {
    pub key: Bytes,
    pub fields: Vec<Bytes>,
}

impl ReadCommand for HMGet {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        arg(args, 2)?;
        Ok(Self {
            key,
            fields: args[2..].to_vec(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        with_hash(db, &self.key, ctx, |hash| {
            Reply::Array(
                self.fields
                    .iter()
                    .map(|field| bulk_copy_or_null(hash.and_then(|hash| hash.get(field))))
                    .collect(),
            )
        })
    }
}

/// `HEXISTS key field`
#[derive(Debug, Clone, PartialEq)]
pub struct HExists {
    pub key: Bytes,
    pub field: Bytes,
}

impl ReadCommand for HExists {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let (key, field) = key_and_field(args)?;
        Ok(Self { key, field })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        with_hash(db, &self.key, ctx, |hash| {
            Reply::Integer(i64::from(
                hash.is_some_and(|hash| hash.contains(&self.field)),
            ))
        })
    }
}

/// `HSTRLEN key field`
#[derive(Debug, Clone, PartialEq)]
pub struct HStrLen {
    pub key: Bytes,
    pub field: Bytes,
}

impl ReadCommand for HStrLen {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let (key, field) = key_and_field(args)?;
        Ok(Self { key, field })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        with_hash(db, &self.key, ctx, |hash| {
            let len = hash
                .and_then(|hash| hash.get(&self.field))
                .map_or(0, |value| value.len());
            Reply::Integer(len as i64)
        })
    }
}

/// `HLEN key`
#[derive(Debug, Clone, PartialEq)]
pub struct HLen {
    pub key: Bytes,
}

impl ReadCommand for HLen {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        with_hash(db, &self.key, ctx, |hash| {
            Reply::Integer(hash.map_or(0, |hash| hash.len()) as i64)
        })
    }
}

/// What HGETALL, HKEYS and HVALS return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashPart {
    /// HGETALL: a map of fields to values.
    All,
    /// HKEYS: the fields.
    Keys,
    /// HVALS: the values.
    Values,
}

/// `HGETALL key`, `HKEYS key`, `HVALS key`.
#[derive(Debug, Clone, PartialEq)]
pub struct HGetAll {
    pub key: Bytes,
    pub part: HashPart,
}

impl ReadCommand for HGetAll {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let part = match command_name(args).as_str() {
            "hkeys" => HashPart::Keys,
            "hvals" => HashPart::Values,
            _ => HashPart::All,
        };
        Ok(Self {
            key: arg(args, 1)?.clone(),
            part,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        with_hash(db, &self.key, ctx, |hash| {
            let pairs = hash.into_iter().flat_map(|hash| hash.iter());
            match self.part {
                HashPart::All => Reply::Map(
                    pairs
                        .map(|(field, value)| (bulk_copy(field), bulk_copy(value)))
                        .collect(),
                ),
                HashPart::Keys => Reply::Array(pairs.map(|(field, _)| bulk_copy(field)).collect()),
                HashPart::Values => {
                    Reply::Array(pairs.map(|(_, value)| bulk_copy(value)).collect())
                }
            }
        })
    }
}
