//! BLPOP, BRPOP, BLMOVE, BRPOPLPUSH and BLMPOP, run once.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{Db, ListValue};

use super::check_timeout;
use crate::access::{bulk, list_at, update_list};
use crate::args::{arg, command_name, int_arg, is, wrong_arity};
use crate::command::WriteCommand;

/// Pops up to `count` elements from one end of the first of `keys` that
/// holds a list; returns its key and the elements, None when every key is
/// absent. WRONGTYPE for the first key that holds another type.
fn pop_first(
    db: &mut Db,
    keys: &[Bytes],
    left: bool,
    count: usize,
    now_ms: u64,
) -> Result<Option<(Bytes, Vec<Bytes>)>, ReplyError> {
    for key in keys {
        if list_at(db, key, now_ms)?.is_none() {
            continue;
        }
        let popped = db.update(key, now_ms, |value| {
            let Some(list) = value.as_list_mut() else {
                return Vec::new();
            };
            let mut popped = Vec::new();
            while popped.len() < count {
                let element = if left {
                    list.pop_front()
                } else {
                    list.pop_back()
                };
                match element {
                    Some(element) => popped.push(element),
                    None => break,
                }
            }
            popped
        });
        return Ok(popped.map(|popped| (key.clone(), popped)));
    }
    Ok(None)
}

/// `BLPOP key [key ...] timeout` and `BRPOP`: `[key, element]`, or the
/// null array when every list is empty.
#[derive(Debug, Clone, PartialEq)]
pub struct BPop {
    pub keys: Vec<Bytes>,
    pub left: bool,
}

impl WriteCommand for BPop {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        if args.len() < 3 {
            return Err(wrong_arity(args));
        }
        check_timeout(&args[args.len() - 1])?;
        Ok(Self {
            keys: args[1..args.len() - 1].to_vec(),
            left: command_name(args) == "blpop",
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        match pop_first(db, &self.keys, self.left, 1, now_ms) {
            Ok(Some((key, mut popped))) if !popped.is_empty() => {
                Reply::Array(vec![bulk(&key), Reply::Bulk(popped.remove(0))])
            }
            Ok(_) => Reply::NullArray,
            Err(error) => Reply::Error(error),
        }
    }
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout` and
/// `BRPOPLPUSH source destination timeout`: the element moved, or null.
#[derive(Debug, Clone, PartialEq)]
pub struct BLMove {
    pub source: Bytes,
    pub destination: Bytes,
    pub from_left: bool,
    pub to_left: bool,
}

fn side(arg: &[u8]) -> Result<bool, ReplyError> {
    if is(arg, "left") {
        Ok(true)
    } else if is(arg, "right") {
        Ok(false)
    } else {
        Err(ReplyError::Syntax)
    }
}

impl WriteCommand for BLMove {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let source = arg(args, 1)?.clone();
        let destination = arg(args, 2)?.clone();
        if command_name(args) == "brpoplpush" {
            if args.len() != 4 {
                return Err(wrong_arity(args));
            }
            check_timeout(&args[3])?;
            return Ok(Self {
                source,
                destination,
                from_left: false,
                to_left: true,
            });
        }
        if args.len() != 6 {
            return Err(wrong_arity(args));
        }
        let from_left = side(&args[3])?;
        let to_left = side(&args[4])?;
        check_timeout(&args[5])?;
        Ok(Self {
            source,
            destination,
            from_left,
            to_left,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        // Both types are checked before anything moves.
        if let Err(error) = list_at(db, &self.source, now_ms) {
            return Reply::Error(error);
        }
        if let Err(error) = list_at(db, &self.destination, now_ms) {
            return Reply::Error(error);
        }
        let popped = match pop_first(
            db,
            std::slice::from_ref(&self.source),
            self.from_left,
            1,
            now_ms,
        ) {
            Ok(Some((_, mut popped))) if !popped.is_empty() => popped.remove(0),
            Ok(_) => return Reply::Null,
            Err(error) => return Reply::Error(error),
        };
        let pushed = update_list(db, &self.destination, now_ms, |list: &mut ListValue| {
            if self.to_left {
                list.push_front(&popped);
            } else {
                list.push_back(&popped);
            }
        });
        match pushed {
            Ok(()) => Reply::Bulk(popped),
            Err(error) => Reply::Error(error),
        }
    }
}

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`:
/// `[key, [element ...]]`, or the null array.
#[derive(Debug, Clone, PartialEq)]
pub struct BLMPop {
    pub keys: Vec<Bytes>,
    pub left: bool,
    pub count: usize,
}

impl WriteCommand for BLMPop {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        check_timeout(arg(args, 1)?)?;
        let numkeys = int_arg(arg(args, 2)?)
            .ok()
            .filter(|numkeys| *numkeys > 0)
            .ok_or_else(|| ReplyError::err("numkeys should be greater than 0"))?;
        let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
        let first = 3usize;
        let Some(after_keys) = first.checked_add(numkeys).filter(|end| *end < args.len()) else {
            return Err(ReplyError::Syntax);
        };
        let left = side(arg(args, after_keys)?)?;
        let mut count = 1usize;
        let mut rest = args[after_keys + 1..].iter();
        let mut seen_count = false;
        while let Some(option) = rest.next() {
            if is(option, "count") && !seen_count {
                let value = rest.next().ok_or(ReplyError::Syntax)?;
                count = int_arg(value)
                    .ok()
                    .filter(|count| *count > 0)
                    .and_then(|count| usize::try_from(count).ok())
                    .ok_or_else(|| ReplyError::err("count should be greater than 0"))?;
                seen_count = true;
            } else {
                return Err(ReplyError::Syntax);
            }
        }
        Ok(Self {
            keys: args[first..after_keys].to_vec(),
            left,
            count,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        match pop_first(db, &self.keys, self.left, self.count, now_ms) {
            Ok(Some((key, popped))) if !popped.is_empty() => Reply::Array(vec![
                bulk(&key),
                Reply::Array(popped.into_iter().map(Reply::Bulk).collect()),
            ]),
            Ok(_) => Reply::NullArray,
            Err(error) => Reply::Error(error),
        }
    }
}
