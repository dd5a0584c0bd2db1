//! LINSERT, LSET, LREM and LTRIM: edits inside an existing list (none of
//! them creates a key).

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db};

use crate::access::{list_at, reply};
use crate::args::{arg, int_arg, is};
use crate::command::WriteCommand;
use crate::list::{position, span};

/// `LINSERT key BEFORE|AFTER pivot element`: inserts next to the first
/// occurrence of `pivot`; replies the new length, -1 without a pivot, 0
/// without a key.
#[derive(Debug, Clone, PartialEq)]
pub struct LInsert {
    pub key: Bytes,
    pub after: bool,
    pub pivot: Bytes,
    pub element: Bytes,
}

impl WriteCommand for LInsert {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let place = arg(args, 2)?;
        let after = if is(place, "after") {
            true
        } else if is(place, "before") {
            false
        } else {
            return Err(ReplyError::Syntax);
        };
        Ok(Self {
            key: arg(args, 1)?.clone(),
            after,
            pivot: arg(args, 3)?.clone(),
            element: arg(args, 4)?.clone(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        reply(self.insert(db, now_ms))
    }
}

impl LInsert {
    fn insert(&self, db: &mut Db, now_ms: u64) -> Result<Reply, ReplyError> {
        let Some(list) = list_at(db, &self.key, now_ms)? else {
            return Ok(Reply::Integer(0));
        };
        let Some(pivot) = list.position(&self.pivot) else {
            return Ok(Reply::Integer(-1));
        };
        let at = if self.after { pivot + 1 } else { pivot };
        let len = db.update(&self.key, now_ms, |value| {
            value.as_list_mut().map(|list| {
                list.insert(at, &self.element);
                list.len()
            })
        });
        let len = len.flatten().ok_or(ReplyError::WrongType)?;
        db.notify(event_class::LIST, "linsert", &self.key);
        Ok(Reply::Integer(i64::try_from(len).unwrap_or(i64::MAX)))
    }
}

/// `LSET key index element`: replaces one element. As in Redis the key
/// is looked up before the index is parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct LSet {
    pub key: Bytes,
    pub index: Bytes,
    pub element: Bytes,
}

impl WriteCommand for LSet {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            index: arg(args, 2)?.clone(),
            element: arg(args, 3)?.clone(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        reply(self.set(db, now_ms))
    }
}

impl LSet {
    fn set(&self, db: &mut Db, now_ms: u64) -> Result<Reply, ReplyError> {
        let list = list_at(db, &self.key, now_ms)?.ok_or(ReplyError::NoSuchKey)?;
        let index = int_arg(&self.index)?;
        let at =
            position(index, list.len()).ok_or_else(|| ReplyError::err("index out of range"))?;
        db.update(&self.key, now_ms, |value| {
            value.as_list_mut().map(|list| list.set(at, &self.element))
        });
        db.notify(event_class::LIST, "lset", &self.key);
        Ok(Reply::ok())
    }
}

/// `LREM key count element`: removes up to `count` matches from the
/// head (negative: from the tail; 0: all); replies how many went.
#[derive(Debug, Clone, PartialEq)]
pub struct LRem {
    pub key: Bytes,
    pub count: i64,
    pub element: Bytes,
}

impl WriteCommand for LRem {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            count: int_arg(arg(args, 2)?)?,
            element: arg(args, 3)?.clone(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        reply(self.remove(db, now_ms))
    }
}

impl LRem {
    fn remove(&self, db: &mut Db, now_ms: u64) -> Result<Reply, ReplyError> {
        if list_at(db, &self.key, now_ms)?.is_none() {
            return Ok(Reply::Integer(0));
        }
        let limit = usize::try_from(self.count.unsigned_abs()).unwrap_or(usize::MAX);
        let removed = db
            .update(&self.key, now_ms, |value| {
                value.as_list_mut().map_or(0, |list| {
                    list.remove_matching(&self.element, limit, self.count < 0)
                })
            })
            .unwrap_or(0);
        if removed > 0 {
            db.notify(event_class::LIST, "lrem", &self.key);
        }
        Ok(Reply::Integer(i64::try_from(removed).unwrap_or(i64::MAX)))
    }
}

/// `LTRIM key start stop`: keeps only an inclusive range; the key goes
/// when nothing is left.
#[derive(Debug, Clone, PartialEq)]
pub struct LTrim {
    pub key: Bytes,
    pub start: i64,
    pub stop: i64,
}

impl WriteCommand for LTrim {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            start: int_arg(arg(args, 2)?)?,
            stop: int_arg(arg(args, 3)?)?,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        reply(self.trim(db, now_ms))
    }
}

impl LTrim {
    fn trim(&self, db: &mut Db, now_ms: u64) -> Result<Reply, ReplyError> {
        let Some(list) = list_at(db, &self.key, now_ms)? else {
            return Ok(Reply::ok());
        };
        let kept = span(self.start, self.stop, list.len());
        db.update(&self.key, now_ms, |value| {
            if let Some(list) = value.as_list_mut() {
                match kept {
                    Some((start, end)) => list.trim(start, end),
                    // start > end empties the list.
                    None => list.trim(1, 0),
                }
            }
        });
        // Redis records `ltrim` even when nothing was trimmed.
        db.notify(event_class::LIST, "ltrim", &self.key);
        Ok(Reply::ok())
    }
}
