//! Hash commands (Redis's `t_hash.c`).

mod get;
mod incr;
mod scan;
mod set;

pub use get::{HExists, HGet, HGetAll, HLen, HMGet, HStrLen};
pub use incr::{HIncrBy, HIncrByFloat};
pub use scan::{HRandField, HScan};
pub use set::{HDel, HSet, HSetNx};

#[cfg(test)]
mod hash_test;
