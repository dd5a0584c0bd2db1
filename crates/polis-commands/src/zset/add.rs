//! ZADD, ZINCRBY and ZREM.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db};

use crate::access::{update_zset, zset_at};
use crate::args::{arg, float_arg, is};
use crate::command::WriteCommand;
use crate::zset::range_spec::score_reply;

/// The options of ZADD (ZINCRBY is ZADD with INCR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddOptions {
    /// NX: only add new members.
    pub only_new: bool,
    /// XX: only update existing members.
    pub only_existing: bool,
    /// GT: only update to a greater score.
    pub greater: bool,
    /// LT: only update to a lesser score.
    pub less: bool,
    /// CH: count changed members, not only added ones.
    pub changed: bool,
    /// INCR: add the score to the current one and reply with the result.
    pub increment: bool,
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`,
/// and `ZINCRBY key increment member`.
#[derive(Debug, Clone, PartialEq)]
pub struct ZAdd {
    pub key: Bytes,
    pub options: AddOptions,
    pub pairs: Vec<(f64, Bytes)>,
}

/// What adding one member did.
enum Outcome {
    Added(f64),
    Updated(f64),
    /// Processed with no change (the score was the same).
    Unchanged(f64),
    /// Skipped by NX, XX, GT or LT.
    Skipped,
}

impl ZAdd {
    /// Parses ZADD's arguments from `args[2..]` as Redis's
    /// `zaddGenericCommand`, with INCR already set for ZINCRBY.
    fn parse_with(args: &[Bytes], increment: bool) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let mut options = AddOptions {
            increment,
            ..AddOptions::default()
        };
        let mut score_index = 2;
        // Bounded by the argument count.
        while let Some(option) = args.get(score_index) {
            if is(option, "nx") {
                options.only_new = true;
            } else if is(option, "xx") {
                options.only_existing = true;
            } else if is(option, "ch") {
                options.changed = true;
            } else if is(option, "incr") {
                options.increment = true;
            } else if is(option, "gt") {
                options.greater = true;
            } else if is(option, "lt") {
                options.less = true;
            } else {
                break;
            }
            score_index += 1;
        }
        let rest = args.get(score_index..).unwrap_or_default();
        if rest.is_empty() || rest.len() % 2 != 0 {
            return Err(ReplyError::Syntax);
        }
        if options.only_new && options.only_existing {
            return Err(ReplyError::err(
                "XX and NX options at the same time are not compatible",
            ));
        }
        if ((options.greater || options.less) && options.only_new)
            || (options.greater && options.less)
        {
            return Err(ReplyError::err(
                "GT, LT, and/or NX options at the same time are not compatible",
            ));
        }
        if options.increment && rest.len() > 2 {
            return Err(ReplyError::err(
                "INCR option supports a single increment-element pair",
            ));
        }
        let pairs = rest
            .chunks_exact(2)
            .map(|pair| Ok((float_arg(&pair[0])?, pair[1].clone())))
            .collect::<Result<Vec<_>, ReplyError>>()?;
        Ok(Self {
            key,
            options,
            pairs,
        })
    }

    /// Decides what adding `member` with `score` does to a member whose
    /// score is `current`, as Redis's `zsetAdd`; Err when INCR makes the
    /// score NaN.
    fn decide(&self, current: Option<f64>, score: f64) -> Result<Outcome, ()> {
        let options = &self.options;
        let Some(current) = current else {
            if options.only_existing {
                return Ok(Outcome::Skipped);
            }
            return Ok(Outcome::Added(score));
        };
        if options.only_new {
            return Ok(Outcome::Skipped);
        }
        let mut score = score;
        if options.increment {
            score += current;
            if score.is_nan() {
                return Err(());
            }
        }
        if (options.less && score >= current) || (options.greater && score <= current) {
            return Ok(Outcome::Skipped);
        }
        if score == current {
            return Ok(Outcome::Unchanged(score));
        }
        Ok(Outcome::Updated(score))
    }

    /// Returns the reply for `outcomes`, or Redis's NaN error.
    fn reply(&self, outcomes: &[Result<Outcome, ()>]) -> Reply {
        let mut added = 0i64;
        let mut updated = 0i64;
        let mut last_score = None;
        for outcome in outcomes {
            match outcome {
                Ok(Outcome::Added(score)) => {
                    added += 1;
                    last_score = Some(*score);
                }
                Ok(Outcome::Updated(score)) => {
                    updated += 1;
                    last_score = Some(*score);
                }
                Ok(Outcome::Unchanged(score)) => last_score = Some(*score),
                Ok(Outcome::Skipped) => {}
                Err(()) => {
                    return Reply::Error(ReplyError::err("resulting score is not a number (NaN)"))
                }
            }
        }
        if self.options.increment {
            last_score.map_or(Reply::Null, score_reply)
        } else if self.options.changed {
            Reply::Integer(added + updated)
        } else {
            Reply::Integer(added)
        }
    }
}

impl WriteCommand for ZAdd {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Self::parse_with(args, false)
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        // A dry run against the current scores: until the first change,
        // each pair sees the set as it is. When nothing would change the
        // key is left untouched (its version too, for WATCH), as Redis
        // signals a modified key only when it added or updated a member.
        let zset = match zset_at(db, &self.key, now_ms) {
            Ok(zset) => zset,
            Err(error) => return Reply::Error(error),
        };
        let changes = |outcome: &Result<Outcome, ()>| {
            matches!(outcome, Ok(Outcome::Added(_) | Outcome::Updated(_)))
        };
        let mut dry = Vec::with_capacity(self.pairs.len());
        for (score, member) in &self.pairs {
            let outcome = self.decide(zset.and_then(|zset| zset.score(member)), *score);
            let changed = changes(&outcome);
            dry.push(outcome);
            if changed {
                break;
            }
        }
        if !dry.iter().any(changes) {
            return self.reply(&dry);
        }
        let outcomes = update_zset(db, &self.key, now_ms, |zset| {
            let mut outcomes = Vec::with_capacity(self.pairs.len());
            for (score, member) in &self.pairs {
                let outcome = self.decide(zset.score(member), *score);
                match outcome {
                    Ok(Outcome::Added(score) | Outcome::Updated(score)) => {
                        zset.insert(member, score);
                    }
                    Err(()) => {
                        outcomes.push(outcome);
                        break;
                    }
                    _ => {}
                }
                outcomes.push(outcome);
            }
            outcomes
        });
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            Err(error) => return Reply::Error(error),
        };
        if outcomes.iter().any(changes) {
            let event = if self.options.increment {
                "zincr"
            } else {
                "zadd"
            };
            db.notify(event_class::ZSET, event, &self.key);
        }
        self.reply(&outcomes)
    }
}

/// `ZINCRBY key increment member`: ZADD with INCR (and, as in Redis, the
/// same option scan over the arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct ZIncrBy(pub ZAdd);

impl WriteCommand for ZIncrBy {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        ZAdd::parse_with(args, true).map(Self)
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        self.0.execute(db, now_ms)
    }
}

/// `ZREM key member [member ...]`
#[derive(Debug, Clone, PartialEq)]
pub struct ZRem {
    pub key: Bytes,
    pub members: Vec<Bytes>,
}

impl WriteCommand for ZRem {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        arg(args, 2)?;
        Ok(Self {
            key,
            members: args.get(2..).unwrap_or_default().to_vec(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        match zset_at(db, &self.key, now_ms) {
            Ok(Some(zset))
                if self
                    .members
                    .iter()
                    .any(|member| zset.score(member).is_some()) => {}
            Ok(_) => return Reply::Integer(0),
            Err(error) => return Reply::Error(error),
        }
        let removed = update_zset(db, &self.key, now_ms, |zset| {
            self.members
                .iter()
                .filter(|member| zset.remove(member).is_some())
                .count()
        });
        match removed {
            Ok(removed) => {
                if removed > 0 {
                    db.notify(event_class::ZSET, "zrem", &self.key);
                }
                Reply::Integer(removed as i64)
            }
            Err(error) => Reply::Error(error),
        }
    }
}
