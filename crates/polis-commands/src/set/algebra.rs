//! SINTER, SUNION, SDIFF, their STORE forms, and SINTERCARD.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db, SetValue, Value};

use crate::access::{bulk, set_at};
use crate::args::{arg, command_name, is, parse_i64, wrong_arity};
use crate::command::{ReadCommand, ReadContext, WriteCommand};

/// The operation of SINTER, SUNION or SDIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    Inter,
    Union,
    Diff,
}

impl SetOp {
    /// Returns the operation a command name (with or without `store`)
    /// stands for.
    fn of(name: &str) -> SetOp {
        match name.trim_end_matches("store") {
            "sinter" => SetOp::Inter,
            "sunion" => SetOp::Union,
            _ => SetOp::Diff,
        }
    }

    /// Returns Redis's key event for storing the result.
    fn store_event(self) -> &'static str {
        match self {
            SetOp::Inter => "sinterstore",
            SetOp::Union => "sunionstore",
            SetOp::Diff => "sdiffstore",
        }
    }
}

/// Returns the sets at `keys` (None for an absent key), or WRONGTYPE when
/// any key holds another type (checked for every key, as Redis does,
/// even after an absent one).
fn sets_at<'a>(
    db: &'a Db,
    keys: &[Bytes],
    now_ms: u64,
) -> Result<Vec<Option<&'a SetValue>>, ReplyError> {
    keys.iter().map(|key| set_at(db, key, now_ms)).collect()
}

/// Returns the members of the intersection of `sets`, in the order of the
/// smallest set, stopping after `limit` members when it is not 0.
fn intersection<'a>(sets: &[Option<&'a SetValue>], limit: usize) -> Vec<&'a Bytes> {
    let Some(mut present) = sets.iter().copied().collect::<Option<Vec<&SetValue>>>() else {
        // An absent key is an empty set.
        return Vec::new();
    };
    present.sort_by_key(|set| set.len());
    let Some((smallest, others)) = present.split_first() else {
        return Vec::new();
    };
    let mut members = Vec::new();
    for member in smallest.iter() {
        if others.iter().all(|set| set.contains(member)) {
            members.push(member);
            if limit != 0 && members.len() >= limit {
                break;
            }
        }
    }
    members
}

/// Returns the result of `op` over `sets` as a new set.
fn combine(op: SetOp, sets: &[Option<&SetValue>]) -> SetValue {
    match op {
        SetOp::Inter => intersection(sets, 0).into_iter().cloned().collect(),
        SetOp::Union => {
            let mut union = SetValue::new();
            for set in sets.iter().flatten() {
                for member in set.iter() {
                    union.insert(member);
                }
            }
            union
        }
        SetOp::Diff => {
            let Some((Some(first), others)) = sets.split_first() else {
                return SetValue::new();
            };
            first
                .iter()
                .filter(|member| !others.iter().flatten().any(|set| set.contains(member)))
                .cloned()
                .collect()
        }
    }
}

/// `SINTER key [key ...]`, `SUNION key [key ...]`, `SDIFF key [key ...]`:
/// the members of the result (a set reply in RESP3); an absent key is an
/// empty set.
#[derive(Debug, Clone, PartialEq)]
pub struct SetAlgebra {
    pub op: SetOp,
    pub keys: Vec<Bytes>,
}

impl ReadCommand for SetAlgebra {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        match args.get(1..) {
            Some(keys) if !keys.is_empty() => Ok(Self {
                op: SetOp::of(&command_name(args)),
                keys: keys.to_vec(),
            }),
            _ => Err(wrong_arity(args)),
        }
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let sets = match sets_at(db, &self.keys, ctx.now_ms) {
            Ok(sets) => sets,
            Err(error) => return Reply::Error(error),
        };
        match self.op {
            // The intersection needs no new set: its members are borrowed.
            SetOp::Inter => Reply::Set(intersection(&sets, 0).into_iter().map(bulk).collect()),
            op => Reply::Set(combine(op, &sets).iter().map(bulk).collect()),
        }
    }
}

/// `SINTERSTORE`, `SUNIONSTORE`, `SDIFFSTORE destination key [key ...]`:
/// stores the result at `destination` (replacing any value and deadline;
/// an empty result deletes it) and replies its size.
#[derive(Debug, Clone, PartialEq)]
pub struct SetAlgebraStore {
    pub op: SetOp,
    pub destination: Bytes,
    pub keys: Vec<Bytes>,
}

impl WriteCommand for SetAlgebraStore {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let destination = arg(args, 1)?.clone();
        match args.get(2..) {
            Some(keys) if !keys.is_empty() => Ok(Self {
                op: SetOp::of(&command_name(args)),
                destination,
                keys: keys.to_vec(),
            }),
            _ => Err(wrong_arity(args)),
        }
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let result = match sets_at(db, &self.keys, now_ms) {
            Ok(sets) => combine(self.op, &sets),
            Err(error) => return Reply::Error(error),
        };
        if result.is_empty() {
            if db.remove(&self.destination, now_ms).is_some() {
                db.notify(event_class::GENERIC, "del", &self.destination);
            }
            return Reply::Integer(0);
        }
        let len = result.len();
        db.insert(self.destination.clone(), Value::set(result), None, now_ms);
        db.notify(event_class::SET, self.op.store_event(), &self.destination);
        Reply::Integer(len as i64)
    }
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`: the size of the
/// intersection, counting no further than `limit` (0: no limit).
#[derive(Debug, Clone, PartialEq)]
pub struct SInterCard {
    pub keys: Vec<Bytes>,
    pub limit: usize,
}

impl ReadCommand for SInterCard {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let numkeys = parse_i64(arg(args, 1)?)
            .filter(|numkeys| *numkeys >= 1)
            .ok_or_else(|| ReplyError::err("numkeys should be greater than 0"))?;
        let rest = args.get(2..).unwrap_or_default();
        let numkeys = usize::try_from(numkeys)
            .ok()
            .filter(|numkeys| *numkeys <= rest.len())
            .ok_or_else(|| {
                ReplyError::err("Number of keys can't be greater than number of args")
            })?;
        let (keys, mut options) = rest.split_at(numkeys);
        let mut limit = 0;
        // Bounded: each round consumes two arguments.
        while let Some((option, tail)) = options.split_first() {
            match tail.split_first() {
                Some((value, tail)) if is(option, "limit") => {
                    let value = parse_i64(value)
                        .and_then(|value| usize::try_from(value).ok())
                        .ok_or_else(|| ReplyError::err("LIMIT can't be negative"))?;
                    limit = value;
                    options = tail;
                }
                _ => return Err(ReplyError::Syntax),
            }
        }
        Ok(Self {
            keys: keys.to_vec(),
            limit,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        match sets_at(db, &self.keys, ctx.now_ms) {
            Ok(sets) => Reply::Integer(intersection(&sets, self.limit).len() as i64),
            Err(error) => Reply::Error(error),
        }
    }
}
