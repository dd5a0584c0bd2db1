//! Whole-keyspace commands: KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHALL and
//! FLUSHDB.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::Db;

use crate::access::bulk;
use crate::args::{arg, cursor_arg, int_arg, is};
use crate::command::{ReadCommand, ReadContext, WriteCommand};
use crate::glob::glob_match;

/// Returns true when `key` passes the optional MATCH pattern (a lone `*`
/// matches everything, even the empty key, as in Redis).
pub(crate) fn pattern_matches(pattern: Option<&Bytes>, key: &[u8]) -> bool {
    match pattern {
        None => true,
        Some(pattern) if pattern.as_ref() == b"*" => true,
        Some(pattern) => glob_match(pattern, key),
    }
}

/// `KEYS pattern`: every live key matching the pattern. O(n).
#[derive(Debug, Clone, PartialEq)]
pub struct Keys {
    pub pattern: Bytes,
}

impl ReadCommand for Keys {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            pattern: arg(args, 1)?.clone(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        Reply::Array(
            db.iter(ctx.now_ms)
                .filter(|(key, _)| pattern_matches(Some(&self.pattern), key))
                .map(|(key, _)| bulk(key))
                .collect(),
        )
    }
}

/// The options SCAN, HSCAN (and later SSCAN, ZSCAN) share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    pub cursor: u64,
    pub count: usize,
    pub pattern: Option<Bytes>,
    pub type_name: Option<Bytes>,
}

/// Parses `cursor [MATCH pattern] [COUNT count] [TYPE type]` from
/// `args[from..]`; TYPE only when `allow_type` (SCAN, not HSCAN).
pub(crate) fn parse_scan_options(
    args: &[Bytes],
    from: usize,
    allow_type: bool,
) -> Result<ScanOptions, ReplyError> {
    let cursor = cursor_arg(arg(args, from)?)?;
    let mut options = ScanOptions {
        cursor,
        count: 10,
        pattern: None,
        type_name: None,
    };
    let mut index = from + 1;
    // Bounded: index advances by two each round.
    while let Some(option) = args.get(index) {
        let value = args.get(index + 1);
        match value {
            Some(value) if is(option, "count") => {
                let count = int_arg(value)?;
                if count < 1 {
                    return Err(ReplyError::Syntax);
                }
                options.count = usize::try_from(count).unwrap_or(usize::MAX);
            }
            Some(value) if is(option, "match") => options.pattern = Some(value.clone()),
            Some(value) if allow_type && is(option, "type") => {
                options.type_name = Some(value.clone());
            }
            _ => return Err(ReplyError::Syntax),
        }
        index += 2;
    }
    Ok(options)
}

/// Returns the SCAN reply: the next cursor as a bulk string, then the page.
pub(crate) fn scan_reply(next_cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![
        Reply::bulk(next_cursor.to_string()),
        Reply::Array(items),
    ])
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
///
/// The cursor is the fixed hash of the next key to visit (see
/// `polis_store::HashOrderedMap::scan`): a key present for the whole
/// iteration is returned at least once, possibly more. COUNT bounds the
/// keys visited per call, before MATCH and TYPE filter them, as in Redis.
/// Each call costs O(log n + count).
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    pub options: ScanOptions,
}

impl ReadCommand for Scan {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            options: parse_scan_options(args, 1, true)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let options = &self.options;
        let page = db.scan(options.cursor, options.count, ctx.now_ms);
        let keys = page
            .entries
            .iter()
            .filter(|(key, _)| pattern_matches(options.pattern.as_ref(), key))
            .filter(|(_, entry)| {
                options
                    .type_name
                    .as_ref()
                    .is_none_or(|wanted| is(wanted, entry.value.type_name()))
            })
            .map(|(key, _)| bulk(key))
            .collect();
        scan_reply(page.next_cursor, keys)
    }
}

/// `RANDOMKEY`: a random live key, or null. O(n) (see `Db::random_key`).
#[derive(Debug, Clone, PartialEq)]
pub struct RandomKey;

impl ReadCommand for RandomKey {
    fn parse(_args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self)
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        db.random_key(ctx.seed, ctx.now_ms)
            .map_or(Reply::Null, bulk)
    }
}

/// `DBSIZE`: keys stored, counting expired ones not yet deleted, as Redis
/// does.
#[derive(Debug, Clone, PartialEq)]
pub struct DbSize;

impl ReadCommand for DbSize {
    fn parse(_args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self)
    }

    fn execute(&self, db: &Db, _ctx: &ReadContext) -> Reply {
        Reply::Integer(db.len() as i64)
    }
}

/// `FLUSHALL [ASYNC|SYNC]` and `FLUSHDB [ASYNC|SYNC]`: one keyspace per
/// shard, so both empty it; the mode changes nothing here.
#[derive(Debug, Clone, PartialEq)]
pub struct Flush;

impl WriteCommand for Flush {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        match args.get(1..).unwrap_or_default() {
            [] => Ok(Self),
            [mode] if is(mode, "async") || is(mode, "sync") => Ok(Self),
            _ => Err(ReplyError::Syntax),
        }
    }

    fn execute(&self, db: &mut Db, _now_ms: u64) -> Reply {
        db.clear();
        Reply::ok()
    }
}
