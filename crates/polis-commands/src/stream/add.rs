//! XADD, XTRIM, XDEL, XSETID and XLEN (Redis's `t_stream.c`).
//!
//! Ids from `*` and `<ms>-*` come from `now_ms`, the leader's time in the
//! log entry, and the stream's last id, so every replica derives the same
//! ones. Approximate trims (`~`) remove whole nodes as Redis does; the
//! node boundaries are part of the stream value (see
//! `polis_store::stream`), so they too are the same on every replica.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::stream::{NodeLimits, Trim, TrimStrategy, STREAM_LISTPACK_MAX_BYTES};
use polis_store::{event_class, Db, StreamId};

use super::id::{id_reply, node_limits, parse_id_full, parse_strict_id, ParsedId};
use crate::access::{stream_at, update_stream};
use crate::args::{arg, int_arg, is, wrong_arity};
use crate::command::{ReadCommand, ReadContext, WriteCommand};

/// A trim as parsed: the strategy, `~`, and LIMIT when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrimArgs {
    pub strategy: TrimStrategy,
    pub approx: bool,
    pub limit: Option<u64>,
}

impl TrimArgs {
    /// Returns the trim to run: an approximate trim without LIMIT may
    /// delete up to 100 nodes' worth of entries, as in Redis.
    fn resolve(&self, limits: NodeLimits) -> Trim {
        let limit = match self.limit {
            Some(limit) => limit,
            None if self.approx => match limits.max_entries.saturating_mul(100) {
                0 => 10_000,
                limit => limit.min(1_000_000),
            },
            None => 0,
        };
        Trim {
            strategy: self.strategy,
            approx: self.approx,
            limit,
        }
    }
}

/// What XADD and XTRIM parse before the id (Redis's
/// `streamParseAddOrTrimArgsOrReply`).
#[derive(Debug, Clone, PartialEq)]
struct Options {
    trim: Option<TrimArgs>,
    no_mkstream: bool,
    /// The explicit id (XADD), None for `*`.
    id: Option<ParsedId>,
    /// Position of the id argument (XADD).
    id_at: usize,
}

fn parse_options(args: &[Bytes], xadd: bool) -> Result<Options, ReplyError> {
    let mut strategy: Option<TrimStrategy> = None;
    let mut approx = false;
    let mut limit: Option<i64> = None;
    let mut no_mkstream = false;
    let mut id = None;
    let mut index = 2;
    let conflict = || {
        ReplyError::err(
            "syntax error, MAXLEN and MINID options at the same time are not compatible",
        )
    };
    // Bounded by the arguments: every round consumes at least one.
    while index < args.len() {
        let more = args.len() - 1 - index;
        let option = &args[index];
        if xadd && option.as_ref() == b"*" {
            break;
        }
        let is_maxlen = is(option, "maxlen");
        if (is_maxlen || is(option, "minid")) && more > 0 {
            if strategy.is_some() {
                return Err(conflict());
            }
            approx = false;
            let next = &args[index + 1];
            if more >= 2 && next.as_ref() == b"~" {
                approx = true;
                index += 1;
            } else if more >= 2 && next.as_ref() == b"=" {
                index += 1;
            }
            let value = arg(args, index + 1)?;
            strategy = Some(if is_maxlen {
                let max_len = int_arg(value)?;
                let max_len = u64::try_from(max_len)
                    .map_err(|_| ReplyError::err("The MAXLEN argument must be >= 0."))?;
                TrimStrategy::MaxLen(max_len)
            } else {
                TrimStrategy::MinId(parse_strict_id(value)?)
            });
            index += 2;
        } else if is(option, "limit") && more > 0 {
            let value = int_arg(&args[index + 1])?;
            if value < 0 {
                return Err(ReplyError::err("The LIMIT argument must be >= 0."));
            }
            limit = Some(value);
            index += 2;
        } else if xadd && is(option, "nomkstream") {
            no_mkstream = true;
            index += 1;
        } else if xadd {
            id = Some(parse_id_full(option, 0, true, true)?);
            break;
        } else {
            return Err(ReplyError::Syntax);
        }
    }
    if limit.is_some_and(|limit| limit != 0) && strategy.is_none() {
        return Err(ReplyError::err(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && strategy.is_none() {
        return Err(ReplyError::err(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit.is_some() && !approx {
        return Err(ReplyError::err(
            "syntax error, LIMIT cannot be used without the special ~ option",
        ));
    }
    Ok(Options {
        trim: strategy.map(|strategy| TrimArgs {
            strategy,
            approx,
            limit: limit.and_then(|limit| u64::try_from(limit).ok()),
        }),
        no_mkstream,
        id,
        id_at: index,
    })
}

/// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]]
/// *|id field value [field value ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct XAdd {
    pub key: Bytes,
    pub no_mkstream: bool,
    pub trim: Option<TrimArgs>,
    /// The explicit id, None for `*`.
    pub id: Option<ParsedId>,
    /// Fields and values, alternating.
    pub fields: Vec<Bytes>,
}

impl WriteCommand for XAdd {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let options = parse_options(args, true)?;
        let fields = args.get(options.id_at + 1..).unwrap_or_default();
        if fields.len() < 2 || !fields.len().is_multiple_of(2) {
            return Err(wrong_arity(args));
        }
        if let Some(id) = options.id {
            if id.seq_given && id.id.is_zero() {
                return Err(ReplyError::err(
                    "The ID specified in XADD must be greater than 0-0",
                ));
            }
        }
        Ok(Self {
            key,
            no_mkstream: options.no_mkstream,
            trim: options.trim,
            id: options.id,
            fields: fields.to_vec(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let too_small = || {
            ReplyError::err(
                "The ID specified in XADD is equal or smaller than the target stream top item",
            )
        };
        let last_id = match stream_at(db, &self.key, now_ms) {
            Err(error) => return Reply::Error(error),
            Ok(None) if self.no_mkstream => return Reply::Null,
            Ok(None) => StreamId::MIN,
            Ok(Some(stream)) => stream.last_id,
        };
        if last_id == StreamId::MAX {
            return Reply::Error(ReplyError::err(
                "The stream has exhausted the last possible ID, unable to add more items",
            ));
        }
        let id = match self.id {
            Some(ParsedId {
                id,
                seq_given: true,
            }) => id,
            Some(ParsedId { id, .. }) if id.ms == last_id.ms => match last_id.next() {
                Some(next) if last_id.seq != u64::MAX => next,
                _ => return Reply::Error(too_small()),
            },
            Some(ParsedId { id, .. }) => id,
            None if now_ms > last_id.ms => StreamId::new(now_ms, 0),
            None => match last_id.next() {
                Some(next) => next,
                None => return Reply::Error(too_small()),
            },
        };
        if id <= last_id {
            return Reply::Error(too_small());
        }
        let raw_len: usize = self.fields.iter().map(Bytes::len).sum();
        if raw_len > STREAM_LISTPACK_MAX_BYTES {
            return Reply::Error(ReplyError::err("Elements are too large to be stored"));
        }
        let limits = node_limits(db);
        let trimmed = update_stream(db, &self.key, now_ms, |stream| {
            stream.append(id, self.fields.clone(), limits);
            self.trim
                .as_ref()
                .map_or(0, |trim| stream.trim(trim.resolve(limits)))
        });
        match trimmed {
            Ok(trimmed) => {
                db.notify(event_class::STREAM, "xadd", &self.key);
                if trimmed > 0 {
                    db.notify(event_class::STREAM, "xtrim", &self.key);
                }
                id_reply(id)
            }
            Err(error) => Reply::Error(error),
        }
    }
}

/// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`.
#[derive(Debug, Clone, PartialEq)]
pub struct XTrim {
    pub key: Bytes,
    pub trim: TrimArgs,
}

impl WriteCommand for XTrim {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let options = parse_options(args, false)?;
        let trim = options.trim.ok_or(ReplyError::Syntax)?;
        Ok(Self { key, trim })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        match stream_at(db, &self.key, now_ms) {
            Err(error) => return Reply::Error(error),
            Ok(None) => return Reply::Integer(0),
            Ok(Some(_)) => {}
        }
        let trim = self.trim.resolve(node_limits(db));
        match update_stream(db, &self.key, now_ms, |stream| stream.trim(trim)) {
            Ok(deleted) => {
                if deleted > 0 {
                    db.notify(event_class::STREAM, "xtrim", &self.key);
                }
                Reply::Integer(i64::try_from(deleted).unwrap_or(i64::MAX))
            }
            Err(error) => Reply::Error(error),
        }
    }
}

/// `XDEL key id [id ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct XDel {
    pub key: Bytes,
    /// The ids, or the error of the first malformed one (Redis reports it
    /// only once the key is found to be a stream).
    pub ids: Result<Vec<StreamId>, ReplyError>,
}

impl WriteCommand for XDel {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        arg(args, 2)?;
        let ids = args[2..].iter().map(|id| parse_strict_id(id)).collect();
        Ok(Self { key, ids })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        match stream_at(db, &self.key, now_ms) {
            Err(error) => return Reply::Error(error),
            Ok(None) => return Reply::Integer(0),
            Ok(Some(_)) => {}
        }
        let ids = match &self.ids {
            Ok(ids) => ids,
            Err(error) => return Reply::Error(error.clone()),
        };
        match update_stream(db, &self.key, now_ms, |stream| stream.delete(ids)) {
            Ok(deleted) => {
                if deleted > 0 {
                    db.notify(event_class::STREAM, "xdel", &self.key);
                }
                Reply::Integer(i64::try_from(deleted).unwrap_or(i64::MAX))
            }
            Err(error) => Reply::Error(error),
        }
    }
}

/// `XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID
/// max-deleted-id]`.
#[derive(Debug, Clone, PartialEq)]
pub struct XSetId {
    pub key: Bytes,
    pub last_id: StreamId,
    pub entries_added: Option<u64>,
    pub max_deleted_id: StreamId,
}

impl WriteCommand for XSetId {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let last_id = parse_strict_id(arg(args, 2)?)?;
        let mut entries_added = None;
        let mut max_deleted_id = StreamId::MIN;
        let mut index = 3;
        // Bounded by the arguments: every round consumes two.
        while index < args.len() {
            let more = args.len() - 1 - index;
            let option = &args[index];
            if is(option, "entriesadded") && more > 0 {
                let value = int_arg(&args[index + 1])?;
                let value = u64::try_from(value)
                    .map_err(|_| ReplyError::err("entries_added must be positive"))?;
                entries_added = Some(value);
            } else if is(option, "maxdeletedid") && more > 0 {
                max_deleted_id = parse_strict_id(&args[index + 1])?;
                if last_id < max_deleted_id {
                    return Err(ReplyError::err(
                        "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                    ));
                }
            } else {
                return Err(ReplyError::Syntax);
            }
            index += 2;
        }
        Ok(Self {
            key,
            last_id,
            entries_added,
            max_deleted_id,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let stream = match stream_at(db, &self.key, now_ms) {
            Err(error) => return Reply::Error(error),
            Ok(None) => return Reply::Error(ReplyError::NoSuchKey),
            Ok(Some(stream)) => stream,
        };
        if let Some(top) = stream.last_entry_id() {
            if self.last_id < top {
                return Reply::Error(ReplyError::err(
                    "The ID specified in XSETID is smaller than the target stream top item",
                ));
            }
            if self
                .entries_added
                .is_some_and(|added| (stream.len() as u64) > added)
            {
                return Reply::Error(ReplyError::err(
                    "The entries_added specified in XSETID is smaller than the target stream length",
                ));
            }
        }
        let result = update_stream(db, &self.key, now_ms, |stream| {
            stream.last_id = self.last_id;
            if let Some(added) = self.entries_added {
                stream.entries_added = added;
            }
            if !self.max_deleted_id.is_zero() {
                stream.max_deleted_id = self.max_deleted_id;
            }
        });
        match result {
            Ok(()) => {
                db.notify(event_class::STREAM, "xsetid", &self.key);
                Reply::ok()
            }
            Err(error) => Reply::Error(error),
        }
    }
}

/// `XLEN key`.
#[derive(Debug, Clone, PartialEq)]
pub struct XLen {
    pub key: Bytes,
}

impl ReadCommand for XLen {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        match stream_at(db, &self.key, ctx.now_ms) {
            Ok(stream) => Reply::Integer(stream.map_or(0, |stream| stream.len() as i64)),
            Err(error) => Reply::Error(error),
        }
    }
}
