//! polis-commands owns the Redis command layer: the spec of every command
//! (name, arity, flags, key positions), a pure `parse` from request
//! arguments to a typed command, and `execute` over a
//! [`polis_store::Db`] that returns a [`polis_resp::Reply`] instead of
//! writing to a socket, so the node, Raft apply and tests share it.
//!
//! ```text
//!  args ──> lookup/check_arity (spec) ──> parse ──> Command
//!                                                     │
//!        write: execute_write(&mut Db, now_ms)  <─────┤  (inside Raft apply,
//!        read:  execute_read(&Db, ctx)          <─────┘   deterministic)
//! ```
//!
//! One command per type, grouped by family (`string/`, `keyspace/`,
//! `hash/`, `list/`, `set/`, `zset/`, `stream/`, `blocking/`, `lock/`), each with a
//! typed `parse` and an `execute`. Writes take time only from `now_ms`,
//! the leader's timestamp in the log entry, and randomness only from
//! `Db::draw` (seeded by the entry), so every replica computes the same
//! state and reply.
//!
//! Must not depend on networking or on Raft. Connection and server
//! commands (PING, HELLO, INFO, CONFIG, CLUSTER, ...) appear in the table
//! with the `NODE` flag so the node can render COMMAND, but the node
//! executes them.

mod access;
pub mod acl;
pub mod args;
pub mod blocking;
pub mod classify;
mod command;
pub mod glob;
pub mod hash;
pub mod keyspace;
pub mod list;
pub mod lock;
pub mod random;
pub mod reference;
pub mod set;
pub mod spec;
pub mod stream;
pub mod string;
mod table;
pub mod zset;

#[cfg(test)]
mod events_collections_test;
#[cfg(test)]
mod events_stream_test;
#[cfg(test)]
mod events_test;
#[cfg(test)]
mod test_support;

pub use classify::{classify, single_slot, Classified, Scope};
pub use command::{
    execute_read, execute_read_with, execute_write, parse, unknown_command, Command, Protocol,
    ReadCommand, ReadContext, WriteCommand,
};
pub use spec::{
    acl_categories, all_commands, check_arity, command_keys, flag_names, is_node, is_write, lookup,
    resolve, CommandSpec,
};
