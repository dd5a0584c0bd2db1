//! HSCAN and HRANDFIELD: visiting and sampling the fields of a hash.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{Db, FieldsPage};

use crate::access::{bulk_copy, hash_at, pairs_reply};
use crate::args::{arg, int_arg, is};
use crate::command::{ReadCommand, ReadContext};
use crate::keyspace::iterate::{parse_scan_options, pattern_matches, scan_reply, ScanOptions};
use crate::random::SplitMix64;

pub use polis_types::limits::RANDOM_REPLY_LEN_MAX;

/// `HSCAN key cursor [MATCH pattern] [COUNT count]`: like SCAN over the
/// fields; a hash small enough for Redis's listpack encoding is returned
/// whole in one call, as Redis does.
#[derive(Debug, Clone, PartialEq)]
pub struct HScan {
    pub key: Bytes,
    pub options: ScanOptions,
}

impl ReadCommand for HScan {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            options: parse_scan_options(args, 2, false)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let hash = match hash_at(db, &self.key, ctx.now_ms) {
            Ok(Some(hash)) => hash,
            Ok(None) => return scan_reply(0, Vec::new()),
            Err(error) => return Reply::Error(error),
        };
        let options = &self.options;
        let whole = hash.encoding(&db.encoding_limits()) == "listpack";
        let page = if whole {
            FieldsPage {
                pairs: hash.iter().collect(),
                next_cursor: 0,
            }
        } else {
            hash.scan(options.cursor, options.count)
        };
        let items = page
            .pairs
            .into_iter()
            .filter(|(field, _)| pattern_matches(options.pattern.as_ref(), field))
            .flat_map(|(field, value)| [bulk_copy(field), bulk_copy(value)])
            .collect();
        scan_reply(page.next_cursor, items)
    }
}

/// `HRANDFIELD key [count [WITHVALUES]]`: a positive count samples
/// distinct fields, a negative one samples with repetition. Sampling
/// copies the field list first, so it costs O(fields).
#[derive(Debug, Clone, PartialEq)]
pub struct HRandField {
    pub key: Bytes,
    pub count: Option<i64>,
    pub with_values: bool,
}

impl ReadCommand for HRandField {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let Some(raw) = args.get(2) else {
            return Ok(Self {
                key,
                count: None,
                with_values: false,
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
        let with_values = match args.get(3..).unwrap_or_default() {
            [] => false,
            [option] if is(option, "withvalues") => true,
            _ => return Err(ReplyError::Syntax),
        };
        if with_values && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
            return Err(ReplyError::err("value is out of range"));
        }
        if count.unsigned_abs() > RANDOM_REPLY_LEN_MAX && count < 0 {
            return Err(ReplyError::err("value is out of range"));
        }
        Ok(Self {
            key,
            count: Some(count),
            with_values,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let hash = match hash_at(db, &self.key, ctx.now_ms) {
            Ok(Some(hash)) => hash,
            Ok(None) if self.count.is_some() => return Reply::Array(Vec::new()),
            Ok(None) => return Reply::Null,
            Err(error) => return Reply::Error(error),
        };
        let pairs: Vec<(&[u8], &[u8])> = hash.iter().collect();
        let mut random = SplitMix64::new(ctx.seed);
        let Some(count) = self.count else {
            return pairs
                .get(random.below(pairs.len()))
                .map_or(Reply::Null, |(field, _)| bulk_copy(field));
        };
        let picks: Vec<usize> = if count < 0 {
            // Parse capped |count| at RANDOM_REPLY_LEN_MAX.
            (0..count.unsigned_abs())
                .map(|_| random.below(pairs.len()))
                .collect()
        } else if count.unsigned_abs() >= pairs.len() as u64 {
            (0..pairs.len()).collect()
        } else {
            random.distinct_picks(pairs.len(), count.unsigned_abs() as usize)
        };
        if self.with_values {
            let chosen = picks
                .iter()
                .map(|&index| (bulk_copy(pairs[index].0), bulk_copy(pairs[index].1)))
                .collect();
            pairs_reply(chosen, ctx.protocol)
        } else {
            Reply::Array(
                picks
                    .iter()
                    .map(|&index| bulk_copy(pairs[index].0))
                    .collect(),
            )
        }
    }
}
