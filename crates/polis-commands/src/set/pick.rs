//! SPOP and SRANDMEMBER: random members of a set.
//!
//! SPOP is a write: its picks come from [`Db::draw`], seeded by the log
//! entry, so every replica pops the same members. SRANDMEMBER is a read:
//! its picks come from the read's seed. Either copies the member list
//! first, so a pick costs O(members) where Redis's costs O(1).

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db};
use polis_types::limits::RANDOM_REPLY_LEN_MAX;

use crate::access::{bulk, set_at, update_set};
use crate::args::{arg, parse_i64};
use crate::command::{ReadCommand, ReadContext, WriteCommand};
use crate::random::SplitMix64;

/// Returns a number in `0..bound` from 64 random bits (0 when `bound` is
/// 0), without the bias of a plain modulo.
fn below(bits: u64, bound: usize) -> usize {
    ((u128::from(bits) * bound as u128) >> 64) as usize
}

/// Moves `count` uniformly chosen distinct items of `items` to its front
/// (a partial Fisher-Yates shuffle) and drops the rest; `next` gives 64
/// random bits per call.
fn choose_distinct<T>(items: &mut Vec<T>, count: usize, mut next: impl FnMut() -> u64) {
    let count = count.min(items.len());
    for place in 0..count {
        let other = place + below(next(), items.len() - place);
        items.swap(place, other);
    }
    items.truncate(count);
}

/// `SPOP key [count]`: removes and returns one random member (a bulk, or
/// null), or up to `count` distinct ones (a set reply).
#[derive(Debug, Clone, PartialEq)]
pub struct SPop {
    pub key: Bytes,
    pub count: Option<u64>,
}

impl WriteCommand for SPop {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let count = match args.get(2..).unwrap_or_default() {
            [] => None,
            [count] => Some(
                parse_i64(count)
                    .and_then(|count| u64::try_from(count).ok())
                    .ok_or_else(|| ReplyError::err("value is out of range, must be positive"))?,
            ),
            _ => return Err(ReplyError::Syntax),
        };
        Ok(Self { key, count })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let len = match set_at(db, &self.key, now_ms) {
            Ok(Some(set)) => set.len(),
            Ok(None) if self.count.is_some() => return Reply::Set(Vec::new()),
            Ok(None) => return Reply::Null,
            Err(error) => return Reply::Error(error),
        };
        let count = match self.count {
            Some(0) => return Reply::Set(Vec::new()),
            Some(count) => usize::try_from(count).unwrap_or(usize::MAX),
            None => 1,
        };
        if count >= len {
            let Some(entry) = db.remove(&self.key, now_ms) else {
                return Reply::Set(Vec::new());
            };
            db.notify(event_class::SET, "spop", &self.key);
            db.notify(event_class::GENERIC, "del", &self.key);
            let members = entry
                .value
                .as_set()
                .map_or_else(Vec::new, |set| set.iter().map(bulk).collect());
            return match self.count {
                Some(_) => Reply::Set(members),
                None => members.into_iter().next().unwrap_or(Reply::Null),
            };
        }
        // Draw before borrowing the set: the draws need the keyspace
        // mutably. At most `count < len` draws.
        let draws: Vec<u64> = (0..count).map(|_| db.draw()).collect();
        let mut draws = draws.into_iter();
        let chosen: Vec<Bytes> = match set_at(db, &self.key, now_ms) {
            Ok(Some(set)) => {
                let mut members: Vec<&Bytes> = set.iter().collect();
                choose_distinct(&mut members, count, || draws.next().unwrap_or(0));
                members.into_iter().cloned().collect()
            }
            _ => Vec::new(),
        };
        let removed = update_set(db, &self.key, now_ms, |set| {
            for member in &chosen {
                set.remove(member);
            }
        });
        if let Err(error) = removed {
            return Reply::Error(error);
        }
        db.notify(event_class::SET, "spop", &self.key);
        let replies: Vec<Reply> = chosen.iter().map(bulk).collect();
        match self.count {
            Some(_) => Reply::Set(replies),
            None => replies.into_iter().next().unwrap_or(Reply::Null),
        }
    }
}

/// `SRANDMEMBER key [count]`: one random member (a bulk, or null); a
/// positive count returns up to `count` distinct members, a negative one
/// `|count|` members that may repeat.
#[derive(Debug, Clone, PartialEq)]
pub struct SRandMember {
    pub key: Bytes,
    pub count: Option<i64>,
}

impl ReadCommand for SRandMember {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let count = match args.get(2..).unwrap_or_default() {
            [] => None,
            [count] => Some(parse_i64(count).ok_or(ReplyError::NotInteger)?),
            _ => return Err(ReplyError::Syntax),
        };
        if let Some(count) = count {
            if count < -i64::MAX {
                return Err(ReplyError::err(format!(
                    "value is out of range, value must between {} and {}",
                    -i64::MAX,
                    i64::MAX
                )));
            }
            // Redis streams a huge reply; polis builds it in memory.
            if count < 0 && count.unsigned_abs() > RANDOM_REPLY_LEN_MAX {
                return Err(ReplyError::err("value is out of range"));
            }
        }
        Ok(Self { key, count })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let set = match set_at(db, &self.key, ctx.now_ms) {
            Ok(Some(set)) => set,
            Ok(None) if self.count.is_some() => return Reply::Array(Vec::new()),
            Ok(None) => return Reply::Null,
            Err(error) => return Reply::Error(error),
        };
        let mut random = SplitMix64::new(ctx.seed);
        let Some(count) = self.count else {
            return set.nth(random.below(set.len())).map_or(Reply::Null, bulk);
        };
        let mut members: Vec<&Bytes> = set.iter().collect();
        if count < 0 {
            // Parse capped |count| at RANDOM_REPLY_LEN_MAX.
            let picks = (0..count.unsigned_abs())
                .filter_map(|_| members.get(random.below(members.len())))
                .map(|member| bulk(member))
                .collect();
            return Reply::Array(picks);
        }
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count < members.len() {
            choose_distinct(&mut members, count, || random.next_u64());
        }
        Reply::Array(members.into_iter().map(bulk).collect())
    }
}
