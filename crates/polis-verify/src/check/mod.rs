//! The checkers: from a history to a verdict.
//!
//! ```text
//!   events ──pair──> operations + fault windows
//!                      ├──registers──> linearizable per key?
//!                      ├──set────────> lost or invented elements?
//!                      ├──queue──────> stream entries delivered, kept, acks durable?
//!                      ├──pops───────> list elements popped once, none lost?
//!                      ├──append─────> strictly serializable transactions?
//!                      ├──locks──────> tokens increase, stale tokens never write?
//!                      ├──changefeed─> the feed lists every write once, in order?
//!                      └──eventual───> replicas converged, nothing lost or invented?
//! ```
//!
//! Every checker reads the same events; each ignores the operations of
//! the other workloads.

mod describe;

pub mod append;
mod append_graph;
pub mod changefeed;
pub mod eventual;
mod eventual_rules;
pub mod locks;
pub mod pair;
pub mod pops;
pub mod queue;
pub mod registers;
mod search;
pub mod set;

#[cfg(test)]
mod append_test;
#[cfg(test)]
mod changefeed_test;
#[cfg(test)]
mod eventual_test;
#[cfg(test)]
mod registers_oracle_test;
#[cfg(test)]
mod registers_test;
