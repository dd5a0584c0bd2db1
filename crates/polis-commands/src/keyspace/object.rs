//! OBJECT (ENCODING, FREQ, IDLETIME, REFCOUNT, HELP) and MEMORY USAGE:
//! introspection of one key.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::Db;

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
    "    Access frequency (needs an LFU maxmemory policy; polis keeps none).",
    "IDLETIME <key>",
    "    Seconds since the last access (polis keeps no access times: 0).",
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
        let Some(value) = db.get(key, ctx.now_ms) else {
            return Reply::Null;
        };
        match self.query {
            ObjectQuery::Encoding => Reply::bulk(value.encoding(&db.encoding_limits())),
            ObjectQuery::RefCount => Reply::Integer(1),
            ObjectQuery::IdleTime => Reply::Integer(0),
            ObjectQuery::Freq => Reply::Error(ReplyError::err(
                "An LFU maxmemory policy is not selected, access frequency not tracked. \
                 Please note that when switching between policies at runtime LRU and LFU \
                 data will take some time to adjust.",
            )),
            ObjectQuery::Help => Reply::Null,
        }
    }
}

/// `MEMORY USAGE key [SAMPLES count]`: the estimated bytes of the key and
/// its value, or null. (The other MEMORY subcommands are the node's.)
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
        match db.get(&self.key, ctx.now_ms) {
            Some(value) => Reply::Integer(
                (self.key.len() + value.mem_bytes() + polis_store::value::ENTRY_OVERHEAD_BYTES)
                    as i64,
            ),
            None => Reply::Null,
        }
    }
}
