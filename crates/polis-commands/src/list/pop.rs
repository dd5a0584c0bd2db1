//! LPOP, RPOP, LMPOP, LMOVE and RPOPLPUSH, and [`pop_first`], which the
//! node's blocking pops share.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db, ListValue};

use crate::access::{bulk, list_at, reply, update_list};
use crate::args::{arg, command_name, parse_i64, wrong_arity};
use crate::command::WriteCommand;
use crate::list::End;

/// Removes up to `count` elements from `end` of `list`, in pop order.
fn take(list: &mut ListValue, end: End, count: usize) -> Vec<Bytes> {
    let mut taken = Vec::with_capacity(count.min(list.len()));
    while taken.len() < count {
        let element = match end {
            End::Left => list.pop_front(),
            End::Right => list.pop_back(),
        };
        let Some(element) = element else { break };
        taken.push(element);
    }
    taken
}

/// Pops up to `count` elements (at least one) from `end` of the first
/// non-empty list among `keys`, and returns that key with the elements
/// in pop order; None when every key is missing. A list left empty is
/// deleted. This is LMPOP's core, and what the node runs to serve BLPOP
/// and BRPOP (count 1, reply `[key, element]`) and BLMPOP (reply `[key,
/// [elements]]`), so all of them record the same `lpop`/`rpop` (and the
/// `del` of a list they empty).
///
/// # Errors
/// WRONGTYPE when a key met before the first non-empty list holds
/// another type (keys after it are not looked at, as in Redis).
pub fn pop_first(
    db: &mut Db,
    keys: &[Bytes],
    end: End,
    count: usize,
    now_ms: u64,
) -> Result<Option<(Bytes, Vec<Bytes>)>, ReplyError> {
    let Some((key, taken)) = pop_quietly(db, keys, end, count, now_ms)? else {
        return Ok(None);
    };
    db.notify(event_class::LIST, end.pop_event(), &key);
    Ok(Some((key, taken)))
}

/// [`pop_first`] without the pop's event, for LMOVE, whose push event
/// comes first.
fn pop_quietly(
    db: &mut Db,
    keys: &[Bytes],
    end: End,
    count: usize,
    now_ms: u64,
) -> Result<Option<(Bytes, Vec<Bytes>)>, ReplyError> {
    for key in keys {
        match list_at(db, key, now_ms)? {
            Some(list) if !list.is_empty() => {}
            _ => continue,
        }
        let taken = db.update(key, now_ms, |value| {
            value
                .as_list_mut()
                .map(|list| take(list, end, count.max(1)))
        });
        let taken = taken.flatten().unwrap_or_default();
        return Ok(Some((key.clone(), taken)));
    }
    Ok(None)
}

/// Parses a count that must be at least 1, with Redis's `message` for
/// both a non-integer and a value out of range.
fn at_least_one(text: &[u8], message: &str) -> Result<usize, ReplyError> {
    parse_i64(text)
        .filter(|value| *value >= 1)
        .and_then(|value| usize::try_from(value).ok())
        .ok_or_else(|| ReplyError::err(message))
}

/// `LPOP|RPOP key [count]`: without a count one element (null when the
/// key is missing); with one an array of up to `count` elements (a null
/// array when the key is missing, an empty array for count 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Pop {
    pub key: Bytes,
    pub end: End,
    pub count: Option<usize>,
}

impl WriteCommand for Pop {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        if args.len() > 3 {
            return Err(wrong_arity(args));
        }
        let count = match args.get(2) {
            None => None,
            Some(text) => Some(
                parse_i64(text)
                    .and_then(|value| usize::try_from(value).ok())
                    .ok_or_else(|| ReplyError::err("value is out of range, must be positive"))?,
            ),
        };
        Ok(Self {
            key: arg(args, 1)?.clone(),
            end: if command_name(args) == "lpop" {
                End::Left
            } else {
                End::Right
            },
            count,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        reply(self.pop(db, now_ms))
    }
}

impl Pop {
    fn pop(&self, db: &mut Db, now_ms: u64) -> Result<Reply, ReplyError> {
        if list_at(db, &self.key, now_ms)?.is_none() {
            return Ok(match self.count {
                Some(_) => Reply::NullArray,
                None => Reply::Null,
            });
        }
        if self.count == Some(0) {
            return Ok(Reply::Array(Vec::new()));
        }
        let popped = pop_first(
            db,
            std::slice::from_ref(&self.key),
            self.end,
            self.count.unwrap_or(1),
            now_ms,
        )?;
        let elements = popped.map(|(_, elements)| elements).unwrap_or_default();
        Ok(match self.count {
            Some(_) => Reply::Array(elements.iter().map(bulk).collect()),
            None => elements.first().map_or(Reply::Null, bulk),
        })
    }
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`: pops from the
/// first non-empty list; replies `[key, [elements]]`, or a null array.
#[derive(Debug, Clone, PartialEq)]
pub struct LMPop {
    pub keys: Vec<Bytes>,
    pub end: End,
    pub count: usize,
}

impl LMPop {
    /// Parses the arguments from the key count at `numkeys_at` on: 1 for
    /// LMPOP, 2 for BLMPOP (after its timeout).
    ///
    /// # Errors
    /// Redis's errors for a bad key count, end, or COUNT.
    pub fn parse_from(args: &[Bytes], numkeys_at: usize) -> Result<Self, ReplyError> {
        let numkeys = at_least_one(arg(args, numkeys_at)?, "numkeys should be greater than 0")?;
        let end_at = numkeys_at
            .checked_add(numkeys)
            .and_then(|at| at.checked_add(1))
            .filter(|at| *at < args.len())
            .ok_or(ReplyError::Syntax)?;
        let end = End::parse(&args[end_at])?;
        let mut count = None;
        let mut index = end_at + 1;
        while let Some(option) = args.get(index) {
            let value = args.get(index + 1);
            match value {
                Some(value) if count.is_none() && option.eq_ignore_ascii_case(b"count") => {
                    count = Some(at_least_one(value, "count should be greater than 0")?);
                }
                _ => return Err(ReplyError::Syntax),
            }
            index += 2;
        }
        Ok(Self {
            keys: args[numkeys_at + 1..end_at].to_vec(),
            end,
            count: count.unwrap_or(1),
        })
    }
}

impl WriteCommand for LMPop {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Self::parse_from(args, 1)
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        reply(
            pop_first(db, &self.keys, self.end, self.count, now_ms).map(|popped| match popped {
                Some((key, elements)) => Reply::Array(vec![
                    bulk(&key),
                    Reply::Array(elements.iter().map(bulk).collect()),
                ]),
                None => Reply::NullArray,
            }),
        )
    }
}

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT` and `RPOPLPUSH
/// source destination`: pops one element from `source` and pushes it
/// onto `destination`; replies the element, or null when `source` is
/// missing. The node serves BLMOVE and BRPOPLPUSH by running this.
#[derive(Debug, Clone, PartialEq)]
pub struct LMove {
    pub source: Bytes,
    pub destination: Bytes,
    pub from: End,
    pub to: End,
}

impl WriteCommand for LMove {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let source = arg(args, 1)?.clone();
        let destination = arg(args, 2)?.clone();
        let (from, to) = if command_name(args) == "rpoplpush" {
            (End::Right, End::Left)
        } else {
            (End::parse(arg(args, 3)?)?, End::parse(arg(args, 4)?)?)
        };
        Ok(Self {
            source,
            destination,
            from,
            to,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        reply(self.move_one(db, now_ms))
    }
}

impl LMove {
    fn move_one(&self, db: &mut Db, now_ms: u64) -> Result<Reply, ReplyError> {
        match list_at(db, &self.source, now_ms)? {
            Some(list) if !list.is_empty() => {}
            _ => return Ok(Reply::Null),
        }
        list_at(db, &self.destination, now_ms)?;
        let push = |list: &mut ListValue, element: &Bytes| match self.to {
            End::Left => list.push_front(element),
            End::Right => list.push_back(element),
        };
        if self.source == self.destination {
            // One list: rotate in place, so the key (and its TTL) never
            // goes away in between.
            let moved = db.update(&self.source, now_ms, |value| {
                value.as_list_mut().and_then(|list| {
                    let element = take(list, self.from, 1).pop()?;
                    push(list, &element);
                    Some(element)
                })
            });
            let Some(element) = moved.flatten() else {
                return Ok(Reply::Null);
            };
            self.notify(db);
            return Ok(bulk(&element));
        }
        let Some((_, mut taken)) =
            pop_quietly(db, std::slice::from_ref(&self.source), self.from, 1, now_ms)?
        else {
            return Ok(Reply::Null);
        };
        let Some(element) = taken.pop() else {
            return Ok(Reply::Null);
        };
        update_list(db, &self.destination, now_ms, |list| push(list, &element))?;
        self.notify(db);
        Ok(bulk(&element))
    }

    /// Records Redis's events of a move: the push on the destination,
    /// then the pop on the source (a source left empty gets its `del`
    /// after both).
    fn notify(&self, db: &mut Db) {
        db.notify(event_class::LIST, self.to.push_event(), &self.destination);
        db.notify(event_class::LIST, self.from.pop_event(), &self.source);
    }
}
