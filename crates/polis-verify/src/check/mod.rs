//! The checkers: from a history to a verdict.
//!
//! ```text
//!   events ──pair──> operations + fault windows
//!                      ├──registers──> linearizable per key?
//!                      └──set────────> lost or invented elements?
//! ```
//!
//! Both checkers read the same events; each ignores the operations of the
//! other workload.

pub mod pair;
pub mod registers;
mod search;
pub mod set;

#[cfg(test)]
mod registers_oracle_test;
#[cfg(test)]
mod registers_test;
