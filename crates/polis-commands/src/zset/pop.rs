//! ZPOPMIN, ZPOPMAX and ZMPOP, and what the node needs to serve their
//! blocking forms (BZPOPMIN, BZPOPMAX, BZMPOP) by running ZMPOP.
//!
//! A blocking pop is a non-blocking pop that found nothing: the node
//! parses the blocking request with [`BlockingPop::parse`], proposes
//! [`BlockingPop::zmpop_args`] (a ZMPOP over the same keys, side and
//! count) whenever one of the keys may hold members, and replies with
//! [`BlockingPop::reply`] of ZMPOP's reply. ZMPOP replies `NullArray` when
//! every key is empty or absent: the client then keeps waiting.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db};

use crate::access::{bulk, update_zset, zset_at};
use crate::args::{arg, command_name, is, parse_i64};
use crate::command::WriteCommand;
use crate::zset::range_spec::score_reply;

/// Which end of the sorted set a pop takes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopSide {
    /// Lowest scores first (ZPOPMIN, MIN).
    Min,
    /// Highest scores first (ZPOPMAX, MAX).
    Max,
}

impl PopSide {
    fn word(self) -> &'static str {
        match self {
            PopSide::Min => "MIN",
            PopSide::Max => "MAX",
        }
    }

    /// Returns Redis's key event for a pop from this side.
    fn event(self) -> &'static str {
        match self {
            PopSide::Min => "zpopmin",
            PopSide::Max => "zpopmax",
        }
    }
}

/// Removes up to `count` members from one end of the sorted set at `key`
/// and returns them with their scores, or None when the key is absent.
/// ZPOPMIN, ZPOPMAX and ZMPOP (and the blocking pops ZMPOP serves) share
/// it, so all record `zpopmin`/`zpopmax` (and the `del` of a set they
/// empty).
///
/// # Errors
/// WRONGTYPE when `key` holds another type.
fn pop_members(
    db: &mut Db,
    key: &Bytes,
    side: PopSide,
    count: usize,
    now_ms: u64,
) -> Result<Option<Vec<(Bytes, f64)>>, ReplyError> {
    if zset_at(db, key, now_ms)?.is_none() {
        return Ok(None);
    }
    if count == 0 {
        // Nothing to pop: the key stays untouched (its version too).
        return Ok(Some(Vec::new()));
    }
    let popped = update_zset(db, key, now_ms, |zset| {
        let chosen: Vec<(Bytes, f64)> = match side {
            PopSide::Min => zset
                .iter()
                .take(count)
                .map(|(member, score)| (member.clone(), score))
                .collect(),
            PopSide::Max => zset
                .iter()
                .rev()
                .take(count)
                .map(|(member, score)| (member.clone(), score))
                .collect(),
        };
        for (member, _) in &chosen {
            zset.remove(member);
        }
        chosen
    })?;
    if !popped.is_empty() {
        db.notify(event_class::ZSET, side.event(), key);
    }
    Ok(Some(popped))
}

/// Parses a count as Redis's `getRangeLongFromObjectOrReply` with one
/// message for every failure.
fn count_arg(text: &[u8], min: i64, message: &str) -> Result<i64, ReplyError> {
    parse_i64(text)
        .filter(|count| *count >= min)
        .ok_or_else(|| ReplyError::err(message))
}

/// `ZPOPMIN key [count]` and `ZPOPMAX key [count]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ZPop {
    pub key: Bytes,
    pub side: PopSide,
    /// None: one member, replied flat; Some: replied as pairs (nested
    /// for RESP3).
    pub count: Option<i64>,
}

impl WriteCommand for ZPop {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        if args.len() > 3 {
            return Err(ReplyError::Syntax);
        }
        let count = match args.get(2) {
            Some(text) => Some(count_arg(
                text,
                0,
                "value is out of range, must be positive",
            )?),
            None => None,
        };
        let side = if command_name(args) == "zpopmax" {
            PopSide::Max
        } else {
            PopSide::Min
        };
        Ok(Self { key, side, count })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let take = self
            .count
            .map_or(1, |count| usize::try_from(count).unwrap_or(usize::MAX));
        let popped = match pop_members(db, &self.key, self.side, take, now_ms) {
            Ok(popped) => popped.unwrap_or_default(),
            Err(error) => return Reply::Error(error),
        };
        let pairs = popped
            .iter()
            .map(|(member, score)| (bulk(member), score_reply(*score)));
        match self.count {
            // ZPOPMIN key: flat in every protocol.
            None => Reply::Array(pairs.flat_map(|(member, score)| [member, score]).collect()),
            Some(_) => Reply::Pairs(pairs.collect()),
        }
    }
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`: pops from the
/// first non-empty key; replies `[key, [[member, score], ...]]`, or a null
/// array when every key is empty.
#[derive(Debug, Clone, PartialEq)]
pub struct ZMPop {
    pub keys: Vec<Bytes>,
    pub side: PopSide,
    pub count: i64,
}

impl ZMPop {
    /// Parses from `args[numkeys_index..]` (ZMPOP: 1, BZMPOP: 2).
    fn parse_at(args: &[Bytes], numkeys_index: usize) -> Result<Self, ReplyError> {
        let numkeys = count_arg(
            arg(args, numkeys_index)?,
            1,
            "numkeys should be greater than 0",
        )?;
        let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
        let side_index = numkeys_index.saturating_add(numkeys).saturating_add(1);
        let side = match args.get(side_index) {
            Some(word) if is(word, "min") => PopSide::Min,
            Some(word) if is(word, "max") => PopSide::Max,
            _ => return Err(ReplyError::Syntax),
        };
        let keys = args
            .get(numkeys_index + 1..side_index)
            .unwrap_or_default()
            .to_vec();
        let mut count = None;
        let mut index = side_index + 1;
        // Bounded: index grows every round.
        while let Some(option) = args.get(index) {
            match args.get(index + 1) {
                Some(value) if count.is_none() && is(option, "count") => {
                    count = Some(count_arg(value, 1, "count should be greater than 0")?);
                    index += 2;
                }
                _ => return Err(ReplyError::Syntax),
            }
        }
        Ok(Self {
            keys,
            side,
            count: count.unwrap_or(1),
        })
    }
}

impl WriteCommand for ZMPop {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Self::parse_at(args, 1)
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let count = usize::try_from(self.count).unwrap_or(usize::MAX);
        for key in &self.keys {
            match pop_members(db, key, self.side, count, now_ms) {
                Ok(Some(popped)) => {
                    let pairs = popped
                        .iter()
                        .map(|(member, score)| {
                            Reply::Array(vec![bulk(member), score_reply(*score)])
                        })
                        .collect();
                    return Reply::Array(vec![bulk(key), Reply::Array(pairs)]);
                }
                Ok(None) => {}
                Err(error) => return Reply::Error(error),
            }
        }
        Reply::NullArray
    }
}

/// A blocking sorted set pop (BZPOPMIN, BZPOPMAX, BZMPOP), parsed for the
/// node: the keys it waits on, its timeout argument (unparsed: the node
/// owns timeouts and their errors), and the ZMPOP that serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockingPop {
    pub timeout: Bytes,
    pub pop: ZMPop,
    /// BZPOPMIN/BZPOPMAX reply `[key, member, score]` instead of ZMPOP's
    /// nested shape.
    pub flat: bool,
}

impl BlockingPop {
    /// Parses `BZPOPMIN key [key ...] timeout`, `BZPOPMAX ...` or
    /// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]`.
    ///
    /// # Errors
    /// ZMPOP's errors for BZMPOP; wrong arity; a command not listed above.
    pub fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let name = command_name(args);
        match name.as_str() {
            "bzpopmin" | "bzpopmax" => {
                let (timeout, keys) = match args.get(1..) {
                    Some([keys @ .., timeout]) if !keys.is_empty() => (timeout, keys),
                    _ => return Err(ReplyError::WrongArity(name)),
                };
                let side = if name == "bzpopmax" {
                    PopSide::Max
                } else {
                    PopSide::Min
                };
                Ok(Self {
                    timeout: timeout.clone(),
                    pop: ZMPop {
                        keys: keys.to_vec(),
                        side,
                        count: 1,
                    },
                    flat: true,
                })
            }
            "bzmpop" => Ok(Self {
                timeout: arg(args, 1)?.clone(),
                pop: ZMPop::parse_at(args, 2)?,
                flat: false,
            }),
            _ => Err(ReplyError::err(format!(
                "'{name}' is not a blocking sorted set pop"
            ))),
        }
    }

    /// Returns the ZMPOP request that serves this pop (the node proposes
    /// it like any write).
    pub fn zmpop_args(&self) -> Vec<Bytes> {
        let mut args = Vec::with_capacity(self.pop.keys.len() + 5);
        args.push(Bytes::from_static(b"ZMPOP"));
        args.push(Bytes::from(self.pop.keys.len().to_string()));
        args.extend(self.pop.keys.iter().cloned());
        args.push(Bytes::from_static(self.pop.side.word().as_bytes()));
        args.push(Bytes::from_static(b"COUNT"));
        args.push(Bytes::from(self.pop.count.to_string()));
        args
    }

    /// Returns the blocking command's reply from ZMPOP's: the same for
    /// BZMPOP; `[key, member, score]` for BZPOPMIN/BZPOPMAX. A null array
    /// (nothing popped: keep waiting) and errors pass through.
    pub fn reply(&self, zmpop_reply: Reply) -> Reply {
        if !self.flat {
            return zmpop_reply;
        }
        match zmpop_reply {
            Reply::Array(mut parts) if parts.len() == 2 => {
                let popped = parts.pop();
                let key = parts.pop();
                match (key, popped) {
                    (Some(key), Some(Reply::Array(mut pairs))) if !pairs.is_empty() => {
                        match pairs.swap_remove(0) {
                            Reply::Array(pair) => {
                                let mut flat = vec![key];
                                flat.extend(pair);
                                Reply::Array(flat)
                            }
                            other => other,
                        }
                    }
                    _ => Reply::NullArray,
                }
            }
            other => other,
        }
    }
}
