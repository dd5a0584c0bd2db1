//! A polis node: the RESP listener, connections, command routing, the
//! admin HTTP endpoint, and the wiring of the data model to Raft.
//!
//! ```text
//!  TcpStream -> connection (decode, pipeline) -> dispatch (spec, arity, slot)
//!      node-level command -> server_commands (INFO, CLIENT, CLUSTER, CONFIG...)
//!      write -> Group::propose(Op) -> Raft -> DataMachine::apply -> reply
//!      read  -> Group::linearizable_read -> execute_read on the local keyspace
//! ```
//!
//! It owns policy that cuts across commands (routing, MOVED, READONLY,
//! limits, stats); commands themselves live in polis-commands and must not
//! depend on this crate. It never imports openraft: polis-raft is the
//! boundary.

pub mod admin;
pub mod clients;
pub mod config;
pub mod connection;
pub mod dispatch;
pub mod expiry;
pub mod machine;
pub mod node;
pub mod server_commands;
pub mod settings;
pub mod stats;

pub use config::{MemberSpec, ServerConfig};
pub use node::{run, ServerError};
pub use polis_raft::RaftSettings;
