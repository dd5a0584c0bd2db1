//! The checkers: from a history to a verdict.
//!
//! ```text
//!   events ──pair──> operations + fault windows
//!                      ├──registers──> linearizable per key?
//!                      ├──set────────> lost or invented elements?
//!                      └──append─────> strictly serializable transactions?
//! ```
//!
//! The checkers read the same events; each ignores the operations of the
//! other workloads.

pub mod append;
mod append_graph;
pub mod pair;
pub mod registers;
mod search;
pub mod set;

#[cfg(test)]
mod append_test;
#[cfg(test)]
mod registers_oracle_test;
#[cfg(test)]
mod registers_test;
