//! Set commands (Redis's `t_set.c`).
//!
//! Random picks: SPOP is a write, so its picks come from
//! [`polis_store::Db::draw`] (the same on every replica); SRANDMEMBER is a
//! read and picks from the read's seed.

mod algebra;
mod members;
mod pick;
mod scan;

pub use algebra::{SInterCard, SetAlgebra, SetAlgebraStore, SetOp};
pub use members::{SAdd, SCard, SIsMember, SMIsMember, SMembers, SMove, SRem};
pub use pick::{SPop, SRandMember};
pub use scan::SScan;

#[cfg(test)]
mod set_test;
