//! OBJECT (ENCODING, FREQ, IDLETIME, REFCOUNT, HELP) and MEMORY USAGE:
//! introspection of one key.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{Db, Tracking};

use crate::args::{arg, int_arg, is};
use crate::command::{ReadCommand, ReadContext};

/// The OBJECT subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectQuery {
    Encoding,
    Freq,
    IdleTime,
    RefCount,
    Help,
}

/// `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key`, `OBJECT HELP`.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub query: ObjectQuery,
    pub key: Option<Bytes>,
}

/// Lines of OBJECT HELP.
const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    The internal encoding Redis would use for the value at <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the key <key>.",
    "IDLETIME <key>",
    "    Return the idle time of the key <key>.",
    "REFCOUNT <key>",
    "    References to the value (always 1 in polis).",
    "HELP",
    "    Print this help.",
];

impl ReadCommand for Object {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let sub = arg(args, 1)?;
        let query = if is(sub, "encoding") {
            ObjectQuery::Encoding
        } else if is(sub, "freq") {
            ObjectQuery::Freq
        } else if is(sub, "idletime") {
            ObjectQuery::IdleTime
        } else if is(sub, "refcount") {
            ObjectQuery::RefCount
        } else if is(sub, "help") {
            ObjectQuery::Help
        } else {
            return Err(ReplyError::err(format!(
                "unknown subcommand '{}'. Try OBJECT HELP.",
                crate::spec::truncate_lossy(sub, 128)
            )));
        };
        let key = match query {
            ObjectQuery::Help => None,
            _ => Some(arg(args, 2)?.clone()),
        };
        Ok(Self { query, key })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let Some(key) = &self.key else {
            return Reply::Array(
                OBJECT_HELP
                    .iter()
                    .map(|line| Reply::Simple((*line).to_owned()))
                    .collect(),
            );
        };
        // Looking is no use of the key (Redis's LOOKUP_NOTOUCH).
        let Some(entry) = db.peek(key, ctx.now_ms) else {
            return Reply::Null;
        };
        match (self.query, db.tracking()) {
            (ObjectQuery::Encoding, _) => Reply::bulk(entry.value.encoding(&db.encoding_limits())),
            (ObjectQuery::RefCount, _) => Reply::Integer(1),
            (ObjectQuery::IdleTime, Tracking::Lru) => {
                Reply::Integer((entry.access().idle_ms(ctx.now_ms) / 1000) as i64)
            }
            (ObjectQuery::IdleTime, Tracking::Lfu { .. }) => Reply::Error(ReplyError::err(
                "An LFU maxmemory policy is selected, idle time not tracked. \
                 Please note that when switching between policies at runtime LRU and LFU \
                 data will take some time to adjust.",
            )),
            (ObjectQuery::Freq, Tracking::Lfu { decay_minutes, .. }) => Reply::Integer(i64::from(
                entry.access().frequency(ctx.now_ms, decay_minutes),
            )),
            (ObjectQuery::Freq, Tracking::Lru) => Reply::Error(ReplyError::err(
                "An LFU maxmemory policy is not selected, access frequency not tracked. \
                 Please note that when switching between policies at runtime LRU and LFU \
                 data will take some time to adjust.",
            )),
            (ObjectQuery::Help, _) => Reply::Null,
        }
    }
}

/// `MEMORY USAGE key [SAMPLES count]`: the bytes of the key and its
/// value, as the keyspace counts them against `maxmemory`, or null. (The
/// other MEMORY subcommands are the node's.)
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryUsage {
    pub key: Bytes,
}

impl ReadCommand for MemoryUsage {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let sub = arg(args, 1)?;
        if !is(sub, "usage") {
            return Err(ReplyError::err(format!(
                "unknown subcommand '{}'. Try MEMORY HELP.",
                crate::spec::truncate_lossy(sub, 128)
            )));
        }
        let key = arg(args, 2)?.clone();
        match args.get(3..).unwrap_or_default() {
            [] => {}
            [option, samples] if is(option, "samples") => {
                int_arg(samples)?;
            }
            _ => return Err(ReplyError::Syntax),
        }
        Ok(Self { key })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        match db.key_footprint(&self.key, ctx.now_ms) {
            Some(bytes) => Reply::Integer(bytes as i64),
            None => Reply::Null,
        }
    }
}
