//! XRANGE, XREVRANGE and XREAD, and the argument parsing XREAD shares
//! with XREADGROUP.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{Db, StreamId, StreamValue};

use super::id::{entry_reply, parse_range_end, parse_range_start, parse_strict_id};
use crate::access::stream_at;
use crate::args::{arg, command_name, int_arg, is};
use crate::command::{Protocol, ReadCommand, ReadContext};

/// `XRANGE key start end [COUNT count]` and `XREVRANGE key end start
/// [COUNT count]`.
#[derive(Debug, Clone, PartialEq)]
pub struct XRange {
    pub key: Bytes,
    pub start: StreamId,
    pub end: StreamId,
    /// None: no COUNT; Some(0) replies a null array, as Redis does.
    pub count: Option<u64>,
    pub rev: bool,
}

impl ReadCommand for XRange {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let rev = command_name(args) == "xrevrange";
        let (start_arg, end_arg) = if rev {
            (arg(args, 3)?, arg(args, 2)?)
        } else {
            (arg(args, 2)?, arg(args, 3)?)
        };
        let start = parse_range_start(start_arg)?;
        let end = parse_range_end(end_arg)?;
        let mut count = None;
        let mut index = 4;
        // Bounded by the arguments: every round consumes two.
        while index < args.len() {
            if is(&args[index], "count") && index + 1 < args.len() {
                let value = int_arg(&args[index + 1])?;
                count = Some(u64::try_from(value).unwrap_or(0));
                index += 2;
            } else {
                return Err(ReplyError::Syntax);
            }
        }
        Ok(Self {
            key,
            start,
            end,
            count,
            rev,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let stream = match stream_at(db, &self.key, ctx.now_ms) {
            Err(error) => return Reply::Error(error),
            Ok(None) => return Reply::Array(Vec::new()),
            Ok(Some(stream)) => stream,
        };
        if self.count == Some(0) {
            return Reply::NullArray;
        }
        let limit = self.count.map_or(usize::MAX, |count| {
            usize::try_from(count).unwrap_or(usize::MAX)
        });
        Reply::Array(range_entries(stream, self.start, self.end, limit, self.rev))
    }
}

/// Returns the entries from `start` to `end` (inclusive), at most
/// `limit`, in id order or reversed.
pub fn range_entries(
    stream: &StreamValue,
    start: StreamId,
    end: StreamId,
    limit: usize,
    rev: bool,
) -> Vec<Reply> {
    if start > end {
        return Vec::new();
    }
    let range = stream.entries().range(start..=end);
    let entries: Box<dyn Iterator<Item = _>> = if rev {
        Box::new(range.rev())
    } else {
        Box::new(range)
    };
    entries
        .take(limit)
        .map(|(id, fields)| entry_reply(*id, fields))
        .collect()
}

/// The arguments XREAD and XREADGROUP share.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadArgs {
    /// BLOCK in milliseconds: the node waits when nothing is served.
    pub block_ms: Option<u64>,
    /// COUNT; 0 means no limit.
    pub count: u64,
    pub group: Option<(Bytes, Bytes)>,
    pub no_ack: bool,
    pub keys: Vec<Bytes>,
    /// The id arguments as given (`$`, `>` and ids are resolved per key
    /// at execution, in Redis's order of checks).
    pub ids: Vec<Bytes>,
}

/// Parses XREAD or XREADGROUP (Redis's `xreadCommand` option loop).
pub fn parse_read_args(args: &[Bytes], xreadgroup: bool) -> Result<ReadArgs, ReplyError> {
    let mut block_ms = None;
    let mut count = 0;
    let mut group = None;
    let mut no_ack = false;
    let mut streams_at = None;
    let mut index = 1;
    // Bounded by the arguments: every round consumes at least one.
    while index < args.len() {
        let more = args.len() - 1 - index;
        let option = &args[index];
        if is(option, "block") && more > 0 {
            let timeout = crate::args::parse_i64(&args[index + 1])
                .ok_or_else(|| ReplyError::err("timeout is not an integer or out of range"))?;
            let timeout =
                u64::try_from(timeout).map_err(|_| ReplyError::err("timeout is negative"))?;
            block_ms = Some(timeout);
            index += 2;
        } else if is(option, "count") && more > 0 {
            count = u64::try_from(int_arg(&args[index + 1])?).unwrap_or(0);
            index += 2;
        } else if is(option, "streams") && more > 0 {
            streams_at = Some(index + 1);
            if !(args.len() - index - 1).is_multiple_of(2) {
                return Err(ReplyError::err(
                    "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            break;
        } else if is(option, "group") && more >= 2 {
            if !xreadgroup {
                return Err(ReplyError::err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            group = Some((args[index + 1].clone(), args[index + 2].clone()));
            index += 3;
        } else if is(option, "noack") {
            if !xreadgroup {
                return Err(ReplyError::err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            no_ack = true;
            index += 1;
        } else {
            return Err(ReplyError::Syntax);
        }
    }
    let streams_at = streams_at.ok_or(ReplyError::Syntax)?;
    if xreadgroup && group.is_none() {
        return Err(ReplyError::err("Missing GROUP option for XREADGROUP"));
    }
    let rest = args.get(streams_at..).unwrap_or_default();
    let half = rest.len() / 2;
    Ok(ReadArgs {
        block_ms,
        count,
        group,
        no_ack,
        keys: rest[..half].to_vec(),
        ids: rest[half..].to_vec(),
    })
}

/// Returns the reply of a served read: per stream, `[key, entries]` in
/// RESP2, a map of key to entries in RESP3; a null array when nothing
/// was served.
pub fn streams_reply(served: Vec<(Bytes, Vec<Reply>)>, protocol: Protocol) -> Reply {
    if served.is_empty() {
        return Reply::NullArray;
    }
    match protocol {
        Protocol::Resp3 => Reply::Map(
            served
                .into_iter()
                .map(|(key, entries)| (Reply::Bulk(key), Reply::Array(entries)))
                .collect(),
        ),
        Protocol::Resp2 => Reply::Array(
            served
                .into_iter()
                .map(|(key, entries)| Reply::Array(vec![Reply::Bulk(key), Reply::Array(entries)]))
                .collect(),
        ),
    }
}

/// Returns a served read's RESP2 reply (`[[key, entries], ...]`, as a
/// write computes it at apply) in RESP3's shape, a map of key to entries;
/// any other reply (null, an error) as it is.
pub fn streams_reply_resp3(reply: Reply) -> Reply {
    let served_shape = |stream: &Reply| matches!(stream, Reply::Array(pair) if pair.len() == 2);
    match reply {
        Reply::Array(streams) if streams.iter().all(served_shape) => Reply::Map(
            streams
                .into_iter()
                .filter_map(|stream| match stream {
                    Reply::Array(mut pair) => {
                        let entries = pair.pop()?;
                        let key = pair.pop()?;
                        Some((key, entries))
                    }
                    _ => None,
                })
                .collect(),
        ),
        other => other,
    }
}

/// Returns the COUNT limit as an iterator bound.
pub fn count_limit(count: u64) -> usize {
    if count == 0 {
        usize::MAX
    } else {
        usize::try_from(count).unwrap_or(usize::MAX)
    }
}

/// `XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id
/// [id ...]`. BLOCK is parsed but not waited on here: when nothing is
/// served, the reply is a null array and the node does the waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct XRead {
    pub args: ReadArgs,
}

impl ReadCommand for XRead {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            args: parse_read_args(args, false)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let mut after = Vec::with_capacity(self.args.keys.len());
        for (key, id) in self.args.keys.iter().zip(&self.args.ids) {
            let stream = match stream_at(db, key, ctx.now_ms) {
                Ok(stream) => stream,
                Err(error) => return Reply::Error(error),
            };
            let id = match id.as_ref() {
                b"$" => stream.map_or(StreamId::MIN, |stream| stream.last_id),
                b">" => {
                    return Reply::Error(ReplyError::err(
                        "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                    ))
                }
                id => match parse_strict_id(id) {
                    Ok(id) => id,
                    Err(error) => return Reply::Error(error),
                },
            };
            after.push(id);
        }
        let mut served = Vec::new();
        for (key, after) in self.args.keys.iter().zip(after) {
            let Ok(Some(stream)) = stream_at(db, key, ctx.now_ms) else {
                continue;
            };
            let has_newer = stream.last_entry_id().is_some_and(|last| last > after);
            let Some(start) = after.next().filter(|_| has_newer) else {
                continue;
            };
            let entries = range_entries(
                stream,
                start,
                StreamId::MAX,
                count_limit(self.args.count),
                false,
            );
            served.push((key.clone(), entries));
        }
        streams_reply(served, ctx.protocol)
    }
}
