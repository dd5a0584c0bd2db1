//! Sorted set commands (Redis's `t_zset.c`), except the blocking pops
//! (BZPOPMIN, BZPOPMAX, BZMPOP), which the node serves by running ZMPOP
//! (see [`BlockingPop`]).
//!
//! Ranks cost O(n) here (ZRANK, ZRANGE by rank, ZREMRANGEBYRANK): the
//! store's score index is a B-tree without subtree sizes, where Redis's
//! skiplist answers in O(log n).

mod add;
mod combine;
mod pop;
mod range;
mod range_spec;
mod read;
mod scan;

pub use add::{AddOptions, ZAdd, ZIncrBy, ZRem};
pub use combine::{Aggregate, Combination, SetOp, ZCombine, ZCombineStore, ZInterCard};
pub use pop::{BlockingPop, PopSide, ZMPop, ZPop};
pub use range::{RangeBy, RangeQuery, ZRange, ZRangeStore, ZRemRange};
pub use range_spec::{LexBound, LexRange, ScoreRange};
pub use read::{ZCard, ZCount, ZLexCount, ZMScore, ZRank, ZScore};
pub use scan::{ZRandMember, ZScan};

#[cfg(test)]
mod zset_test;
