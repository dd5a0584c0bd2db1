//! ZSCAN and ZRANDMEMBER: visiting and sampling the members of a sorted
//! set.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::Db;

use crate::access::{bulk, pairs_reply, zset_at};
use crate::args::{arg, int_arg, is};
use crate::command::{ReadCommand, ReadContext};
use crate::keyspace::iterate::{parse_scan_options, pattern_matches, scan_reply, ScanOptions};
use crate::random::SplitMix64;
use crate::zset::range_spec::{score_reply, score_text};

use polis_types::limits::RANDOM_REPLY_LEN_MAX;

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: like SCAN over the
/// members, each followed by its score; a sorted set small enough for
/// Redis's listpack encoding is returned whole in one call, in score
/// order, as Redis does.
#[derive(Debug, Clone, PartialEq)]
pub struct ZScan {
    pub key: Bytes,
    pub options: ScanOptions,
}

impl ReadCommand for ZScan {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            options: parse_scan_options(args, 2, false)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let zset = match zset_at(db, &self.key, ctx.now_ms) {
            Ok(Some(zset)) => zset,
            Ok(None) => return scan_reply(0, Vec::new()),
            Err(error) => return Reply::Error(error),
        };
        let options = &self.options;
        let whole = zset.encoding(&db.encoding_limits()) == "listpack";
        let (pairs, next_cursor): (Vec<(&Bytes, f64)>, u64) = if whole {
            (zset.iter().collect(), 0)
        } else {
            let page = zset.scan(options.cursor, options.count);
            let pairs = page
                .entries
                .iter()
                .map(|(member, score)| (*member, **score))
                .collect();
            (pairs, page.next_cursor)
        };
        let items = pairs
            .into_iter()
            .filter(|(member, _)| pattern_matches(options.pattern.as_ref(), member))
            .flat_map(|(member, score)| [bulk(member), Reply::bulk(score_text(score))])
            .collect();
        scan_reply(next_cursor, items)
    }
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`: a positive count samples
/// distinct members, a negative one samples with repetition. Sampling
/// copies the member list first, so it costs O(members).
#[derive(Debug, Clone, PartialEq)]
pub struct ZRandMember {
    pub key: Bytes,
    pub count: Option<i64>,
    pub with_scores: bool,
}

impl ReadCommand for ZRandMember {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let Some(raw) = args.get(2) else {
            return Ok(Self {
                key,
                count: None,
                with_scores: false,
            });
        };
        let count = int_arg(raw)?;
        if count < -i64::MAX {
            return Err(ReplyError::err(format!(
                "value is out of range, value must between {} and {}",
                -i64::MAX,
                i64::MAX
            )));
        }
        let with_scores = match args.get(3..).unwrap_or_default() {
            [] => false,
            [option] if is(option, "withscores") => true,
            _ => return Err(ReplyError::Syntax),
        };
        if with_scores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
            return Err(ReplyError::err("value is out of range"));
        }
        // polis builds replies in memory: a huge repeated sample is
        // refused rather than streamed.
        if count < 0 && count.unsigned_abs() > RANDOM_REPLY_LEN_MAX {
            return Err(ReplyError::err("value is out of range"));
        }
        Ok(Self {
            key,
            count: Some(count),
            with_scores,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let zset = match zset_at(db, &self.key, ctx.now_ms) {
            Ok(Some(zset)) => zset,
            Ok(None) if self.count.is_some() => return Reply::Array(Vec::new()),
            Ok(None) => return Reply::Null,
            Err(error) => return Reply::Error(error),
        };
        let members: Vec<(&Bytes, f64)> = zset.iter_hashed().collect();
        let mut random = SplitMix64::new(ctx.seed);
        let Some(count) = self.count else {
            return members
                .get(random.below(members.len()))
                .map_or(Reply::Null, |(member, _)| bulk(member));
        };
        let chosen: Vec<(&Bytes, f64)> = if count < 0 {
            // Parse capped |count| at RANDOM_REPLY_LEN_MAX.
            (0..count.unsigned_abs())
                .filter_map(|_| members.get(random.below(members.len())).copied())
                .collect()
        } else if count.unsigned_abs() >= members.len() as u64 {
            zset.iter().collect()
        } else {
            random
                .distinct_picks(members.len(), count.unsigned_abs() as usize)
                .into_iter()
                .filter_map(|index| members.get(index).copied())
                .collect()
        };
        if self.with_scores {
            let pairs = chosen
                .into_iter()
                .map(|(member, score)| (bulk(member), score_reply(score)))
                .collect();
            pairs_reply(pairs, ctx.protocol)
        } else {
            Reply::Array(chosen.into_iter().map(|(member, _)| bulk(member)).collect())
        }
    }
}
