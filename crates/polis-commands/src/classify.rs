//! Classifying a request once: its spec, its keys and their one slot,
//! whether it reads or writes, and the parsed command. Everything
//! downstream (routing, batching, proposal, the gateway) uses this value
//! and never looks the command up or parses it again.
//!
//! ```text
//!   args ─> lookup ─> arity ─> governing spec ─┬─ NODE flag ─────────> Scope::Node
//!                                              └─ keys ─> one slot? ─> parse ─> Scope::Slot
//!                                                  none: node-wide (DBSIZE, SCAN...) or keyless
//! ```

use bytes::Bytes;
use polis_resp::ReplyError;
use polis_types::{key_hash_slot, Slot};

use crate::command::{unknown_command, Command};
use crate::spec::{check_arity, command_keys, is_node, is_write, lookup, resolve, CommandSpec};

/// What a command touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The node executes it itself (connection, server, cluster commands).
    Node,
    /// A data command over the whole keyspace a node serves: in a cluster,
    /// the shards the node leads, as Redis Cluster scopes them to a node
    /// (DBSIZE, KEYS, SCAN, RANDOMKEY, FLUSHALL, FLUSHDB).
    NodeShards,
    /// A data command that needs no keyspace at all (OBJECT HELP).
    Keyless,
    /// A data command on keys that all hash to this slot.
    Slot(Slot),
}

/// A classified request.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// The spec of the command named.
    pub spec: &'static CommandSpec,
    /// The spec that governs it: the subcommand's for a container command.
    pub governing: &'static CommandSpec,
    pub scope: Scope,
    /// The command may modify the keyspace (it goes through the log).
    pub write: bool,
    /// The parsed command; `None` for [`Scope::Node`].
    pub command: Option<Command>,
}

/// The data commands that cover every key a node serves.
const NODE_SHARDS: &[&str] = &["keys", "scan", "randomkey", "dbsize", "flushall", "flushdb"];

/// Returns the one slot every key hashes to, if there are keys.
///
/// # Errors
/// `CROSSSLOT` when two keys hash to different slots.
pub fn single_slot(keys: &[Bytes]) -> Result<Option<Slot>, ReplyError> {
    let mut slot = None;
    for key in keys {
        let this = key_hash_slot(key);
        match slot {
            None => slot = Some(this),
            Some(other) if other != this => return Err(ReplyError::CrossSlot),
            Some(_) => {}
        }
    }
    Ok(slot)
}

/// Classifies a request (`args[0]` is the command name).
///
/// # Errors
/// The error Redis replies with: unknown command, wrong arity,
/// `CROSSSLOT`, or the command's own syntax or value error.
pub fn classify(args: &[Bytes]) -> Result<Classified, ReplyError> {
    let name = args.first().ok_or_else(|| unknown_command(args))?;
    let spec = lookup(name).ok_or_else(|| unknown_command(args))?;
    check_arity(spec, args)?;
    let governing = resolve(spec, args);
    if is_node(governing) || is_node(spec) {
        return Ok(Classified {
            spec,
            governing,
            scope: Scope::Node,
            write: false,
            command: None,
        });
    }
    let keys = command_keys(spec, args);
    let slot = single_slot(&keys)?;
    let command =
        Command::parse_named(spec.name, args).unwrap_or_else(|| Err(unknown_command(args)))?;
    let scope = match slot {
        Some(slot) => Scope::Slot(slot),
        None if NODE_SHARDS.contains(&spec.name) => Scope::NodeShards,
        None => Scope::Keyless,
    };
    Ok(Classified {
        spec,
        governing,
        scope,
        write: is_write(governing),
        command: Some(command),
    })
}

#[cfg(test)]
#[path = "classify_test.rs"]
mod tests;
