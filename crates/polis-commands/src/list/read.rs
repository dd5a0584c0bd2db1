//! LLEN, LRANGE, LINDEX and LPOS.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::Db;

use crate::access::{list_at, reply};
use crate::args::{arg, int_arg, is, parse_i64};
use crate::command::{ReadCommand, ReadContext};
use crate::list::{position, span};

/// `LLEN key`: the number of elements, 0 for a missing key.
#[derive(Debug, Clone, PartialEq)]
pub struct LLen {
    pub key: Bytes,
}

impl ReadCommand for LLen {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        reply(list_at(db, &self.key, ctx.now_ms).map(|list| {
            Reply::Integer(list.map_or(0, |list| i64::try_from(list.len()).unwrap_or(i64::MAX)))
        }))
    }
}

/// `LRANGE key start stop`: the elements of an inclusive range; negative
/// indexes count from the tail.
#[derive(Debug, Clone, PartialEq)]
pub struct LRange {
    pub key: Bytes,
    pub start: i64,
    pub stop: i64,
}

impl ReadCommand for LRange {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            start: int_arg(arg(args, 2)?)?,
            stop: int_arg(arg(args, 3)?)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        reply(list_at(db, &self.key, ctx.now_ms).map(|list| {
            let Some(list) = list else {
                return Reply::Array(Vec::new());
            };
            match span(self.start, self.stop, list.len()) {
                Some((start, end)) => {
                    Reply::Array(list.range(start, end).map(Reply::bulk).collect())
                }
                None => Reply::Array(Vec::new()),
            }
        }))
    }
}

/// `LINDEX key index`: one element, null when out of range. As in Redis
/// the key's type is checked before the index is parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct LIndex {
    pub key: Bytes,
    pub index: Bytes,
}

impl ReadCommand for LIndex {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            index: arg(args, 2)?.clone(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        reply(self.element(db, ctx.now_ms))
    }
}

impl LIndex {
    fn element(&self, db: &Db, now_ms: u64) -> Result<Reply, ReplyError> {
        let Some(list) = list_at(db, &self.key, now_ms)? else {
            return Ok(Reply::Null);
        };
        let index = int_arg(&self.index)?;
        Ok(position(index, list.len())
            .and_then(|position| list.get(position))
            .map_or(Reply::Null, Reply::bulk))
    }
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`: the
/// positions of matching elements.
#[derive(Debug, Clone, PartialEq)]
pub struct LPos {
    pub key: Bytes,
    pub element: Bytes,
    /// Which match to start from: 1 is the first from the head, -1 the
    /// first from the tail; never 0.
    pub rank: i64,
    /// None without COUNT (reply one position or null); Some(0) for
    /// every match.
    pub count: Option<u64>,
    /// How many elements to compare at most; 0 for all.
    pub max_len: u64,
}

/// Parses a non-negative option value with Redis's message for both a
/// non-integer and a negative value.
fn non_negative(text: &[u8], message: &str) -> Result<u64, ReplyError> {
    parse_i64(text)
        .and_then(|value| u64::try_from(value).ok())
        .ok_or_else(|| ReplyError::err(message))
}

impl ReadCommand for LPos {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let mut command = Self {
            key: arg(args, 1)?.clone(),
            element: arg(args, 2)?.clone(),
            rank: 1,
            count: None,
            max_len: 0,
        };
        let mut index = 3;
        while let Some(option) = args.get(index) {
            let value = args.get(index + 1).ok_or(ReplyError::Syntax)?;
            if is(option, "rank") {
                command.rank = int_arg(value)?;
                if command.rank == 0 {
                    return Err(ReplyError::err(
                        "RANK can't be zero: use 1 to start from the first match, 2 from the \
                         second ... or use negative to start from the end of the list",
                    ));
                }
            } else if is(option, "count") {
                command.count = Some(non_negative(value, "COUNT can't be negative")?);
            } else if is(option, "maxlen") {
                command.max_len = non_negative(value, "MAXLEN can't be negative")?;
            } else {
                return Err(ReplyError::Syntax);
            }
            index += 2;
        }
        Ok(command)
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        reply(self.positions(db, ctx.now_ms))
    }
}

impl LPos {
    fn positions(&self, db: &Db, now_ms: u64) -> Result<Reply, ReplyError> {
        let Some(list) = list_at(db, &self.key, now_ms)? else {
            return Ok(match self.count {
                Some(_) => Reply::Array(Vec::new()),
                None => Reply::Null,
            });
        };
        let len = list.len();
        let scan_len = match usize::try_from(self.max_len) {
            Ok(0) | Err(_) => len,
            Ok(max_len) => max_len.min(len),
        };
        let skip = self.rank.unsigned_abs().saturating_sub(1);
        let wanted = match self.count {
            None => 1,
            Some(0) => u64::MAX,
            Some(count) => count,
        };
        let from_tail = self.rank < 0;
        let scanned: Box<dyn Iterator<Item = (usize, &[u8])>> = if from_tail {
            Box::new(list.iter().enumerate().rev().take(scan_len))
        } else {
            Box::new(list.iter().enumerate().take(scan_len))
        };
        let mut found = Vec::new();
        let mut matches: u64 = 0;
        for (position, element) in scanned {
            if element != self.element.as_ref() {
                continue;
            }
            matches += 1;
            if matches <= skip {
                continue;
            }
            found.push(Reply::Integer(i64::try_from(position).unwrap_or(i64::MAX)));
            if found.len() as u64 >= wanted {
                break;
            }
        }
        Ok(match self.count {
            Some(_) => Reply::Array(found),
            None => found.pop().unwrap_or(Reply::Null),
        })
    }
}
