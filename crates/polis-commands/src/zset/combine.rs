//! ZUNION, ZINTER, ZDIFF, their STORE forms, and ZINTERCARD (Redis's
//! `zunionInterDiffGenericCommand`). Sets are accepted as inputs, each
//! member with score 1.

use std::collections::BTreeMap;

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{Db, SetValue, ZSetValue};

use crate::access::{bulk, pairs_reply};
use crate::args::{arg, command_name, int_arg, is, parse_f64, parse_i64};
use crate::command::{ReadCommand, ReadContext, WriteCommand};
use crate::zset::range::store_members;
use crate::zset::range_spec::score_reply;

/// Which combination of the inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    Union,
    Inter,
    Diff,
}

/// How the scores of a member found in several inputs combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, target: &mut f64, value: f64) {
        match self {
            Aggregate::Sum => {
                *target += value;
                // inf + -inf: Redis's convention is 0.
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => {
                if value < *target {
                    *target = value;
                }
            }
            Aggregate::Max => {
                if value > *target {
                    *target = value;
                }
            }
        }
    }
}

/// The inputs and options of a combination.
#[derive(Debug, Clone, PartialEq)]
pub struct Combination {
    pub op: SetOp,
    pub keys: Vec<Bytes>,
    /// One weight per key (1 by default).
    pub weights: Vec<f64>,
    pub aggregate: Aggregate,
    pub with_scores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    pub limit: u64,
}

/// What the parser accepts besides the keys.
#[derive(Clone, Copy)]
struct Accepts {
    store: bool,
    cardinality_only: bool,
}

impl Combination {
    /// Parses `numkeys key [key ...] [options]` at `args[numkeys_index..]`.
    fn parse(
        args: &[Bytes],
        numkeys_index: usize,
        op: SetOp,
        accepts: Accepts,
    ) -> Result<Self, ReplyError> {
        let numkeys = int_arg(arg(args, numkeys_index)?)?;
        if numkeys < 1 {
            return Err(ReplyError::err(format!(
                "at least 1 input key is needed for '{}' command",
                command_name(args)
            )));
        }
        let available = args.len().saturating_sub(numkeys_index + 1);
        let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
        if numkeys > available {
            return Err(ReplyError::Syntax);
        }
        let first_key = numkeys_index + 1;
        let keys = args
            .get(first_key..first_key + numkeys)
            .unwrap_or_default()
            .to_vec();
        let mut combination = Self {
            op,
            keys,
            weights: vec![1.0; numkeys],
            aggregate: Aggregate::Sum,
            with_scores: false,
            limit: 0,
        };
        let weighable = op != SetOp::Diff && !accepts.cardinality_only;
        let mut index = first_key + numkeys;
        // Bounded: index grows every round.
        while let Some(option) = args.get(index) {
            let remaining = args.len() - index;
            if weighable && remaining > numkeys && is(option, "weights") {
                for (slot, text) in combination
                    .weights
                    .iter_mut()
                    .zip(args.get(index + 1..).unwrap_or_default())
                {
                    *slot = parse_f64(text)
                        .ok_or_else(|| ReplyError::err("weight value is not a float"))?;
                }
                index += 1 + numkeys;
            } else if weighable && remaining >= 2 && is(option, "aggregate") {
                let word = arg(args, index + 1)?;
                combination.aggregate = if is(word, "sum") {
                    Aggregate::Sum
                } else if is(word, "min") {
                    Aggregate::Min
                } else if is(word, "max") {
                    Aggregate::Max
                } else {
                    return Err(ReplyError::Syntax);
                };
                index += 2;
            } else if !accepts.store && !accepts.cardinality_only && is(option, "withscores") {
                combination.with_scores = true;
                index += 1;
            } else if accepts.cardinality_only && remaining >= 2 && is(option, "limit") {
                let limit = parse_i64(arg(args, index + 1)?)
                    .and_then(|limit| u64::try_from(limit).ok())
                    .ok_or_else(|| ReplyError::err("LIMIT can't be negative"))?;
                combination.limit = limit;
                index += 2;
            } else {
                return Err(ReplyError::Syntax);
            }
        }
        Ok(combination)
    }

    /// Returns the inputs, in key order, or WRONGTYPE.
    fn sources<'a>(&self, db: &'a Db, now_ms: u64) -> Result<Vec<Source<'a>>, ReplyError> {
        self.keys
            .iter()
            .zip(&self.weights)
            .map(|(key, weight)| {
                let input = match db.get(key, now_ms) {
                    None => Input::Missing,
                    Some(value) => match (value.as_zset(), value.as_set()) {
                        (Some(zset), _) => Input::ZSet(zset),
                        (None, Some(set)) => Input::Set(set),
                        (None, None) => return Err(ReplyError::WrongType),
                    },
                };
                Ok(Source {
                    input,
                    weight: *weight,
                })
            })
            .collect()
    }

    /// Computes the combined members with their scores.
    fn compute(&self, db: &Db, now_ms: u64) -> Result<Vec<(Bytes, f64)>, ReplyError> {
        let mut sources = self.sources(db, now_ms)?;
        let mut result = Vec::new();
        match self.op {
            SetOp::Inter => {
                // Smallest first, as Redis orders them.
                sources.sort_by_key(|source| source.input.len());
                self.intersect(&sources, |member, score| {
                    result.push((member.clone(), score));
                    true
                });
            }
            SetOp::Union => {
                sources.sort_by_key(|source| source.input.len());
                let mut accumulator: BTreeMap<&Bytes, f64> = BTreeMap::new();
                for source in &sources {
                    for (member, score) in source.input.iter() {
                        let mut score = source.weight * score;
                        if score.is_nan() {
                            score = 0.0;
                        }
                        accumulator
                            .entry(member)
                            .and_modify(|total| self.aggregate.apply(total, score))
                            .or_insert(score);
                    }
                }
                result.extend(
                    accumulator
                        .into_iter()
                        .map(|(member, score)| (member.clone(), score)),
                );
            }
            SetOp::Diff => {
                if let Some((first, rest)) = sources.split_first() {
                    for (member, score) in first.input.iter() {
                        if rest.iter().all(|other| other.input.score(member).is_none()) {
                            result.push((member.clone(), score));
                        }
                    }
                }
            }
        }
        Ok(result)
    }

    /// Visits the members of every input (sources sorted smallest first)
    /// with their aggregated score until `visit` returns false.
    fn intersect(&self, sources: &[Source<'_>], mut visit: impl FnMut(&Bytes, f64) -> bool) {
        let Some((first, rest)) = sources.split_first() else {
            return;
        };
        'members: for (member, score) in first.input.iter() {
            let mut total = first.weight * score;
            if total.is_nan() {
                total = 0.0;
            }
            for other in rest {
                let Some(value) = other.input.score(member) else {
                    continue 'members;
                };
                self.aggregate.apply(&mut total, value * other.weight);
            }
            if !visit(member, total) {
                return;
            }
        }
    }
}

/// One input of a combination.
enum Input<'a> {
    Missing,
    ZSet(&'a ZSetValue),
    Set(&'a SetValue),
}

struct Source<'a> {
    input: Input<'a>,
    weight: f64,
}

impl<'a> Input<'a> {
    fn len(&self) -> usize {
        match self {
            Input::Missing => 0,
            Input::ZSet(zset) => zset.len(),
            Input::Set(set) => set.len(),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (&'a Bytes, f64)> + 'a> {
        match self {
            Input::Missing => Box::new(std::iter::empty()),
            Input::ZSet(zset) => Box::new(zset.iter()),
            Input::Set(set) => Box::new(set.iter().map(|member| (member, 1.0))),
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Input::Missing => None,
            Input::ZSet(zset) => zset.score(member),
            Input::Set(set) => set.contains(member).then_some(1.0),
        }
    }
}

fn op_of(args: &[Bytes]) -> SetOp {
    match command_name(args).trim_end_matches("store") {
        "zinter" => SetOp::Inter,
        "zdiff" => SetOp::Diff,
        _ => SetOp::Union,
    }
}

/// Returns `items` in sorted set order (score, then member).
fn sorted(items: Vec<(Bytes, f64)>) -> ZSetValue {
    let mut zset = ZSetValue::new();
    for (member, score) in &items {
        zset.insert(member, *score);
    }
    zset
}

/// `ZUNION|ZINTER|ZDIFF numkeys key [key ...] [WEIGHTS w ...]
/// [AGGREGATE SUM|MIN|MAX] [WITHSCORES]` (ZDIFF takes no WEIGHTS nor
/// AGGREGATE).
#[derive(Debug, Clone, PartialEq)]
pub struct ZCombine {
    pub combination: Combination,
}

impl ReadCommand for ZCombine {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let accepts = Accepts {
            store: false,
            cardinality_only: false,
        };
        Ok(Self {
            combination: Combination::parse(args, 1, op_of(args), accepts)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let items = match self.combination.compute(db, ctx.now_ms) {
            Ok(items) => items,
            Err(error) => return Reply::Error(error),
        };
        let zset = sorted(items);
        if self.combination.with_scores {
            let pairs = zset
                .iter()
                .map(|(member, score)| (bulk(member), score_reply(score)))
                .collect();
            pairs_reply(pairs, ctx.protocol)
        } else {
            Reply::Array(zset.iter().map(|(member, _)| bulk(member)).collect())
        }
    }
}

/// `ZUNIONSTORE|ZINTERSTORE|ZDIFFSTORE destination numkeys key [key ...]
/// [options]`: replaces `destination` with the result (deletes it when
/// empty) and replies with its length.
#[derive(Debug, Clone, PartialEq)]
pub struct ZCombineStore {
    pub destination: Bytes,
    pub combination: Combination,
}

impl WriteCommand for ZCombineStore {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let accepts = Accepts {
            store: true,
            cardinality_only: false,
        };
        Ok(Self {
            destination: arg(args, 1)?.clone(),
            combination: Combination::parse(args, 2, op_of(args), accepts)?,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        match self.combination.compute(db, now_ms) {
            Ok(items) => {
                let event = match self.combination.op {
                    SetOp::Union => "zunionstore",
                    SetOp::Inter => "zinterstore",
                    SetOp::Diff => "zdiffstore",
                };
                let stored = store_members(db, &self.destination, items, event, now_ms);
                Reply::Integer(stored as i64)
            }
            Err(error) => Reply::Error(error),
        }
    }
}

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`
#[derive(Debug, Clone, PartialEq)]
pub struct ZInterCard {
    pub combination: Combination,
}

impl ReadCommand for ZInterCard {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let accepts = Accepts {
            store: false,
            cardinality_only: true,
        };
        Ok(Self {
            combination: Combination::parse(args, 1, SetOp::Inter, accepts)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let combination = &self.combination;
        let mut sources = match combination.sources(db, ctx.now_ms) {
            Ok(sources) => sources,
            Err(error) => return Reply::Error(error),
        };
        sources.sort_by_key(|source| source.input.len());
        let mut count = 0u64;
        combination.intersect(&sources, |_, _| {
            count += 1;
            combination.limit == 0 || count < combination.limit
        });
        Reply::Integer(i64::try_from(count).unwrap_or(i64::MAX))
    }
}
