//! `FENCED <lock> <token> <command> [arg ...]`: a data command applied
//! only while `<token>` is the lock's current token and its lease runs.
//!
//! The check and the command are one write, applied at one log position,
//! so nothing can come between them: a lock granted to someone else in
//! an earlier entry fences the command off, one granted in a later entry
//! comes after it. The lock and the command's keys share one slot, hence
//! one shard and one log (CROSSSLOT otherwise: name the lock with the
//! hash tag of what it guards, `{order:42}` for `{order:42}:status`).

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::Db;

use super::{check_token, token_arg};
use crate::args::{arg, wrong_arity};
use crate::classify::single_slot;
use crate::command::{Command, WriteCommand};
use crate::spec::{check_arity, command_keys, is_node, lookup, resolve, BLOCKING};

/// The transaction commands, which a fence cannot hold (FENCED goes
/// inside MULTI instead).
const TRANSACTION_COMMANDS: &[&str] = &["multi", "exec", "discard", "watch", "unwatch"];

/// `FENCED <lock> <token> <command> [arg ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fenced {
    pub lock: Bytes,
    pub token: u64,
    /// The data command it guards, parsed.
    pub inner: Box<Command>,
}

/// Returns FENCED's refusal of the command named `name`.
fn refused(name: &[u8], why: &str) -> ReplyError {
    ReplyError::err(format!(
        "FENCED cannot run '{}': {why}",
        super::quoted(&name.to_ascii_lowercase())
    ))
}

/// Returns the spec of the command FENCED guards, or why FENCED refuses
/// it: an unknown command, a node or connection command, a transaction
/// command, a blocking one, a lock command or FENCED itself, one that
/// names no key.
fn guarded_spec(inner: &[Bytes]) -> Result<&'static crate::spec::CommandSpec, ReplyError> {
    let name = &inner[0];
    let spec = lookup(name).ok_or_else(|| refused(name, "no such command"))?;
    if TRANSACTION_COMMANDS.contains(&spec.name) {
        return Err(refused(
            name,
            "transactions cannot be fenced; put FENCED inside MULTI instead",
        ));
    }
    if spec.name == "fenced" {
        return Err(refused(name, "fences do not nest"));
    }
    if spec.group == "lock" {
        return Err(refused(
            name,
            "a lock's own commands check their tokens already",
        ));
    }
    check_arity(spec, inner)?;
    let governing = resolve(spec, inner);
    if is_node(spec) || is_node(governing) {
        return Err(refused(
            name,
            "it is a node or connection command, not a data command",
        ));
    }
    if spec.has(BLOCKING) || governing.has(BLOCKING) {
        return Err(refused(
            name,
            "it may block, and a fenced write never waits",
        ));
    }
    Ok(spec)
}

impl WriteCommand for Fenced {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let lock = arg(args, 1)?.clone();
        let token = token_arg(arg(args, 2)?)?;
        let inner = match args.get(3..) {
            Some(inner) if !inner.is_empty() => inner,
            _ => return Err(wrong_arity(args)),
        };
        let spec = guarded_spec(inner)?;
        let mut keys = command_keys(spec, inner);
        if keys.is_empty() {
            return Err(refused(&inner[0], "it names no key for the lock to guard"));
        }
        keys.push(lock.clone());
        single_slot(&keys)?;
        let command = Command::parse_named(spec.name, inner)
            .unwrap_or_else(|| Err(refused(&inner[0], "no such command")))?;
        Ok(Self {
            lock,
            token,
            inner: Box::new(command),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        if let Err(error) = check_token(db, &self.lock, self.token, now_ms) {
            return Reply::Error(error);
        }
        self.inner.execute_write(db, now_ms)
    }
}
