//! ZRANGE and its older forms (ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE,
//! ZRANGEBYLEX, ZREVRANGEBYLEX), ZRANGESTORE, and ZREMRANGEBYRANK,
//! ZREMRANGEBYSCORE, ZREMRANGEBYLEX: one range query as Redis's
//! `zrangeGenericCommand` parses it.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db, Value, ZSetValue};

use crate::access::{bulk, pairs_reply, update_zset, zset_at};
use crate::args::{arg, command_name, int_arg, is};
use crate::command::{ReadCommand, ReadContext, WriteCommand};
use crate::zset::range_spec::{score_reply, LexRange, ScoreRange, Scored};

/// How a range selects members.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeBy {
    /// By 0-based rank; negative ranks count from the end.
    Rank { start: i64, end: i64 },
    /// By score.
    Score(ScoreRange),
    /// By member, among members of one score.
    Lex(LexRange),
}

/// A parsed range: what to select, in which direction, and which part.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    pub by: RangeBy,
    pub reverse: bool,
    pub with_scores: bool,
    /// LIMIT offset (BYSCORE and BYLEX only).
    pub offset: i64,
    /// LIMIT count; negative means no limit.
    pub limit: i64,
}

/// The range type and direction a command fixes (None: chosen by the
/// options, as for ZRANGE and ZRANGESTORE).
#[derive(Debug, Clone, Copy)]
struct Fixed {
    by: Option<Kind>,
    reverse: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rank,
    Score,
    Lex,
}

impl RangeQuery {
    /// Parses `<min> <max> [options]` at `args[from..]`; `store` refuses
    /// WITHSCORES (ZRANGESTORE).
    fn parse(args: &[Bytes], from: usize, store: bool, fixed: Fixed) -> Result<Self, ReplyError> {
        let mut kind = fixed.by;
        let mut reverse = fixed.reverse;
        let mut with_scores = false;
        let mut offset = 0;
        let mut limit = -1;
        let mut index = from + 2;
        // Bounded: index grows every round.
        while let Some(option) = args.get(index) {
            let left = args.len() - index - 1;
            if !store && is(option, "withscores") {
                with_scores = true;
            } else if is(option, "limit") && left >= 2 {
                offset = int_arg(arg(args, index + 1)?)?;
                limit = int_arg(arg(args, index + 2)?)?;
                index += 2;
            } else if fixed.reverse.is_none() && is(option, "rev") {
                reverse = Some(true);
            } else if fixed.by.is_none() && kind.is_none() && is(option, "bylex") {
                kind = Some(Kind::Lex);
            } else if fixed.by.is_none() && kind.is_none() && is(option, "byscore") {
                kind = Some(Kind::Score);
            } else {
                return Err(ReplyError::Syntax);
            }
            index += 1;
        }
        let kind = kind.unwrap_or(Kind::Rank);
        let reverse = reverse.unwrap_or(false);
        if limit != -1 && kind == Kind::Rank {
            return Err(ReplyError::err(
                "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        if with_scores && kind == Kind::Lex {
            return Err(ReplyError::err(
                "syntax error, WITHSCORES not supported in combination with BYLEX",
            ));
        }
        let (mut min, mut max) = (arg(args, from)?, arg(args, from + 1)?);
        if reverse && kind != Kind::Rank {
            // Given as max, min.
            std::mem::swap(&mut min, &mut max);
        }
        let by = match kind {
            Kind::Rank => RangeBy::Rank {
                start: int_arg(min)?,
                end: int_arg(max)?,
            },
            Kind::Score => RangeBy::Score(ScoreRange::parse(min, max)?),
            Kind::Lex => RangeBy::Lex(LexRange::parse(min, max)?),
        };
        Ok(Self {
            by,
            reverse,
            with_scores,
            offset,
            limit,
        })
    }

    /// Returns the selected members in reply order.
    pub fn select<'a>(&'a self, zset: &'a ZSetValue) -> Vec<Scored<'a>> {
        let len = zset.len() as i64;
        let members = match &self.by {
            RangeBy::Rank { start, end } => {
                let Some((start, count)) = rank_span(*start, *end, len) else {
                    return Vec::new();
                };
                return if self.reverse {
                    zset.iter().rev().skip(start).take(count).collect()
                } else {
                    zset.iter().skip(start).take(count).collect()
                };
            }
            RangeBy::Score(range) => range.members(zset, self.reverse),
            RangeBy::Lex(range) => range.members(zset, self.reverse),
        };
        // Redis skips `offset` members then takes `limit`; a negative
        // offset skips everything, a negative limit takes everything.
        if self.offset < 0 || (self.offset > 0 && self.offset >= len) {
            return Vec::new();
        }
        let skip = usize::try_from(self.offset).unwrap_or(usize::MAX);
        let take = usize::try_from(self.limit).unwrap_or(usize::MAX);
        members.skip(skip).take(take).collect()
    }
}

/// Turns a rank range into `(first index, count)` over `len` members as
/// Redis sanitizes it, or None when empty.
pub(crate) fn rank_span(start: i64, end: i64, len: i64) -> Option<(usize, usize)> {
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    start = start.max(0);
    if start > end || start >= len {
        return None;
    }
    end = end.min(len - 1);
    let first = usize::try_from(start).ok()?;
    let count = usize::try_from(end - start + 1).ok()?;
    Some((first, count))
}

/// Returns the range reply: members, or member-score pairs.
fn range_reply(items: &[Scored<'_>], with_scores: bool, ctx: &ReadContext) -> Reply {
    if with_scores {
        let pairs = items
            .iter()
            .map(|(member, score)| (bulk(member), score_reply(*score)))
            .collect();
        pairs_reply(pairs, ctx.protocol)
    } else {
        Reply::Array(items.iter().map(|(member, _)| bulk(member)).collect())
    }
}

/// `ZRANGE key min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
/// [WITHSCORES]`, and ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE,
/// ZRANGEBYLEX, ZREVRANGEBYLEX, which fix the type and direction.
#[derive(Debug, Clone, PartialEq)]
pub struct ZRange {
    pub key: Bytes,
    pub query: RangeQuery,
}

impl ReadCommand for ZRange {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let fixed = |by, reverse| Fixed {
            by: Some(by),
            reverse: Some(reverse),
        };
        let fixed = match command_name(args).as_str() {
            "zrevrange" => fixed(Kind::Rank, true),
            "zrangebyscore" => fixed(Kind::Score, false),
            "zrevrangebyscore" => fixed(Kind::Score, true),
            "zrangebylex" => fixed(Kind::Lex, false),
            "zrevrangebylex" => fixed(Kind::Lex, true),
            _ => Fixed {
                by: None,
                reverse: None,
            },
        };
        Ok(Self {
            key: arg(args, 1)?.clone(),
            query: RangeQuery::parse(args, 2, false, fixed)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        match zset_at(db, &self.key, ctx.now_ms) {
            Ok(Some(zset)) => range_reply(&self.query.select(zset), self.query.with_scores, ctx),
            Ok(None) => Reply::Array(Vec::new()),
            Err(error) => Reply::Error(error),
        }
    }
}

/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset
/// count]`: stores the range at `dst` (replacing any value and TTL), or
/// deletes `dst` when the range is empty.
#[derive(Debug, Clone, PartialEq)]
pub struct ZRangeStore {
    pub destination: Bytes,
    pub key: Bytes,
    pub query: RangeQuery,
}

impl WriteCommand for ZRangeStore {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let fixed = Fixed {
            by: None,
            reverse: None,
        };
        Ok(Self {
            destination: arg(args, 1)?.clone(),
            key: arg(args, 2)?.clone(),
            query: RangeQuery::parse(args, 3, true, fixed)?,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let items: Vec<(Bytes, f64)> = match zset_at(db, &self.key, now_ms) {
            Ok(Some(zset)) => self
                .query
                .select(zset)
                .into_iter()
                .map(|(member, score)| (member.clone(), score))
                .collect(),
            Ok(None) => Vec::new(),
            Err(error) => return Reply::Error(error),
        };
        let stored = store_members(db, &self.destination, items, "zrangestore", now_ms);
        Reply::Integer(stored as i64)
    }
}

/// Replaces `destination` with a sorted set of `items` (dropping its TTL)
/// and records `event` for it, or deletes it (recording `del` if it
/// existed) when `items` is empty; returns the stored length.
pub(crate) fn store_members(
    db: &mut Db,
    destination: &Bytes,
    items: Vec<(Bytes, f64)>,
    event: &'static str,
    now_ms: u64,
) -> usize {
    if items.is_empty() {
        if db.remove(destination, now_ms).is_some() {
            db.notify(event_class::GENERIC, "del", destination);
        }
        return 0;
    }
    let mut zset = ZSetValue::new();
    for (member, score) in &items {
        zset.insert(member, *score);
    }
    let len = zset.len();
    db.insert(destination.clone(), Value::zset(zset), None, now_ms);
    db.notify(event_class::ZSET, event, destination);
    len
}

/// `ZREMRANGEBYRANK key start stop`, `ZREMRANGEBYSCORE key min max`,
/// `ZREMRANGEBYLEX key min max`.
#[derive(Debug, Clone, PartialEq)]
pub struct ZRemRange {
    pub key: Bytes,
    pub by: RangeBy,
}

impl WriteCommand for ZRemRange {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let (min, max) = (arg(args, 2)?, arg(args, 3)?);
        let by = match command_name(args).as_str() {
            "zremrangebyscore" => RangeBy::Score(ScoreRange::parse(min, max)?),
            "zremrangebylex" => RangeBy::Lex(LexRange::parse(min, max)?),
            _ => RangeBy::Rank {
                start: int_arg(min)?,
                end: int_arg(max)?,
            },
        };
        Ok(Self { key, by })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let query = RangeQuery {
            by: self.by.clone(),
            reverse: false,
            with_scores: false,
            offset: 0,
            limit: -1,
        };
        let doomed: Vec<Bytes> = match zset_at(db, &self.key, now_ms) {
            Ok(Some(zset)) => query
                .select(zset)
                .into_iter()
                .map(|(member, _)| member.clone())
                .collect(),
            Ok(None) => return Reply::Integer(0),
            Err(error) => return Reply::Error(error),
        };
        if doomed.is_empty() {
            return Reply::Integer(0);
        }
        let removed = update_zset(db, &self.key, now_ms, |zset| {
            doomed
                .iter()
                .filter(|member| zset.remove(member).is_some())
                .count()
        });
        match removed {
            Ok(removed) => {
                if removed > 0 {
                    let event = match self.by {
                        RangeBy::Rank { .. } => "zremrangebyrank",
                        RangeBy::Score(_) => "zremrangebyscore",
                        RangeBy::Lex(_) => "zremrangebylex",
                    };
                    db.notify(event_class::ZSET, event, &self.key);
                }
                Reply::Integer(removed as i64)
            }
            Err(error) => Reply::Error(error),
        }
    }
}
