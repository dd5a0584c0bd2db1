//! Eventual (AP) replication for the keys of eventual namespaces: the
//! hybrid logical clock that versions their writes ([`hlc`]) and the state
//! each type keeps so that replicas converge whatever order writes and
//! syncs arrive in ([`merge`]), a key's deadline included ([`expiry`]).
//!
//! This crate knows nothing of Raft, sockets or the keyspace's strong
//! side; the coordinator, hinted handoff, read repair and anti-entropy
//! will live here too, over these pieces.

pub mod command;
pub mod expiry;
pub mod hlc;
pub mod merge;
pub mod value;
