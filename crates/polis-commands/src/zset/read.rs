//! ZCARD, ZSCORE, ZMSCORE, ZRANK/ZREVRANK, ZCOUNT and ZLEXCOUNT.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{Db, ZSetValue};

use crate::access::zset_at;
use crate::args::{arg, command_name};
use crate::command::{ReadCommand, ReadContext};
use crate::zset::range_spec::{score_reply, LexRange, ScoreRange};

/// Runs `read` on the sorted set at `key` (None when absent), or replies
/// WRONGTYPE.
pub(crate) fn with_zset(
    db: &Db,
    key: &[u8],
    ctx: &ReadContext,
    read: impl FnOnce(Option<&ZSetValue>) -> Reply,
) -> Reply {
    match zset_at(db, key, ctx.now_ms) {
        Ok(zset) => read(zset),
        Err(error) => Reply::Error(error),
    }
}

/// `ZCARD key`
#[derive(Debug, Clone, PartialEq)]
pub struct ZCard {
    pub key: Bytes,
}

impl ReadCommand for ZCard {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        with_zset(db, &self.key, ctx, |zset| {
            Reply::Integer(zset.map_or(0, ZSetValue::len) as i64)
        })
    }
}

/// `ZSCORE key member`
#[derive(Debug, Clone, PartialEq)]
pub struct ZScore {
    pub key: Bytes,
    pub member: Bytes,
}

impl ReadCommand for ZScore {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            member: arg(args, 2)?.clone(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        with_zset(db, &self.key, ctx, |zset| {
            zset.and_then(|zset| zset.score(&self.member))
                .map_or(Reply::Null, score_reply)
        })
    }
}

/// `ZMSCORE key member [member ...]`
#[derive(Debug, Clone, PartialEq)]
pub struct ZMScore {
    pub key: Bytes,
    pub members: Vec<Bytes>,
}

impl ReadCommand for ZMScore {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        arg(args, 2)?;
        Ok(Self {
            key,
            members: args.get(2..).unwrap_or_default().to_vec(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        with_zset(db, &self.key, ctx, |zset| {
            Reply::Array(
                self.members
                    .iter()
                    .map(|member| {
                        zset.and_then(|zset| zset.score(member))
                            .map_or(Reply::Null, score_reply)
                    })
                    .collect(),
            )
        })
    }
}

/// `ZRANK key member` and `ZREVRANK key member`. O(n) (the store keeps
/// no subtree sizes; Redis's skiplist answers in O(log n)).
#[derive(Debug, Clone, PartialEq)]
pub struct ZRank {
    pub key: Bytes,
    pub member: Bytes,
    pub reverse: bool,
}

impl ReadCommand for ZRank {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            member: arg(args, 2)?.clone(),
            reverse: command_name(args) == "zrevrank",
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        with_zset(db, &self.key, ctx, |zset| {
            let Some(zset) = zset else {
                return Reply::Null;
            };
            match zset.rank(&self.member) {
                Some(rank) if self.reverse => Reply::Integer((zset.len() - 1 - rank) as i64),
                Some(rank) => Reply::Integer(rank as i64),
                None => Reply::Null,
            }
        })
    }
}

/// `ZCOUNT key min max`
#[derive(Debug, Clone, PartialEq)]
pub struct ZCount {
    pub key: Bytes,
    pub range: ScoreRange,
}

impl ReadCommand for ZCount {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            range: ScoreRange::parse(arg(args, 2)?, arg(args, 3)?)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        with_zset(db, &self.key, ctx, |zset| {
            let count = zset.map_or(0, |zset| self.range.members(zset, false).count());
            Reply::Integer(count as i64)
        })
    }
}

/// `ZLEXCOUNT key min max`
#[derive(Debug, Clone, PartialEq)]
pub struct ZLexCount {
    pub key: Bytes,
    pub range: LexRange,
}

impl ReadCommand for ZLexCount {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            range: LexRange::parse(arg(args, 2)?, arg(args, 3)?)?,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        with_zset(db, &self.key, ctx, |zset| {
            let count = zset.map_or(0, |zset| self.range.members(zset, false).count());
            Reply::Integer(count as i64)
        })
    }
}
