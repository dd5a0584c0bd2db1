//! `LOCK ACQUIRE|REFRESH|RELEASE|INFO|HELP`: granting, renewing, ending
//! and reading a lock. Every form but INFO and HELP is a write applied
//! at the log entry's time.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db, LockValue, Value};

use super::{check_token, lease_arg, lock_at, token_arg, token_reply};
use crate::args::{arg, is};
use crate::command::{ReadContext, WriteCommand};

const LOCK_HELP: &[&str] = &[
    "LOCK <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ACQUIRE <name> <owner> <lease-ms>",
    "    Grant the lock to <owner> for <lease-ms>; answer its fencing token, or",
    "    nil while another owner's lease runs. The same owner gets its token again.",
    "REFRESH <name> <token> <lease-ms>",
    "    Extend the lease of the current token to <lease-ms> from now.",
    "RELEASE <name> <token>",
    "    End the grant of the current token.",
    "INFO <name>",
    "    The owner, token and remaining lease of the holder, or nil.",
    "HELP",
    "    Print this help.",
];

/// What LOCK does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockAction {
    Acquire { owner: Bytes, lease_ms: u64 },
    Refresh { token: u64, lease_ms: u64 },
    Release { token: u64 },
    Info,
    Help,
}

/// `LOCK ACQUIRE|REFRESH|RELEASE|INFO <name> ...`, `LOCK HELP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub name: Bytes,
    pub action: LockAction,
}

/// Returns LOCK's error for a subcommand it does not know, or one given
/// the wrong number of arguments.
fn subcommand_syntax(args: &[Bytes]) -> ReplyError {
    let sub = args
        .get(1)
        .map(|sub| crate::spec::truncate_lossy(sub, 128))
        .unwrap_or_default();
    ReplyError::err(format!(
        "unknown subcommand or wrong number of arguments for '{sub}'. Try LOCK HELP."
    ))
}

fn help() -> Reply {
    Reply::Array(
        LOCK_HELP
            .iter()
            .map(|line| Reply::Simple((*line).to_owned()))
            .collect(),
    )
}

impl WriteCommand for Lock {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let sub = arg(args, 1)?;
        let argc = args.len();
        if is(sub, "help") && argc == 2 {
            return Ok(Self {
                name: Bytes::new(),
                action: LockAction::Help,
            });
        }
        let name = arg(args, 2)?.clone();
        let action = if is(sub, "acquire") && argc == 5 {
            LockAction::Acquire {
                owner: args[3].clone(),
                lease_ms: lease_arg(&args[4])?,
            }
        } else if is(sub, "refresh") && argc == 5 {
            LockAction::Refresh {
                token: token_arg(&args[3])?,
                lease_ms: lease_arg(&args[4])?,
            }
        } else if is(sub, "release") && argc == 4 {
            LockAction::Release {
                token: token_arg(&args[3])?,
            }
        } else if is(sub, "info") && argc == 3 {
            LockAction::Info
        } else {
            return Err(subcommand_syntax(args));
        };
        Ok(Self { name, action })
    }

    fn execute_keyless(&self) -> Option<Reply> {
        (self.action == LockAction::Help).then(help)
    }

    fn execute_read_only(&self, db: &Db, ctx: &ReadContext) -> Option<Reply> {
        match self.action {
            LockAction::Info => Some(self.info(db, ctx.now_ms)),
            LockAction::Help => Some(help()),
            _ => None,
        }
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let result = match &self.action {
            LockAction::Acquire { owner, lease_ms } => self.acquire(db, owner, *lease_ms, now_ms),
            LockAction::Refresh { token, lease_ms } => self.refresh(db, *token, *lease_ms, now_ms),
            LockAction::Release { token } => self.release(db, *token, now_ms),
            LockAction::Info => Ok(self.info(db, now_ms)),
            LockAction::Help => Ok(help()),
        };
        crate::access::reply(result)
    }
}

impl Lock {
    /// Grants the lock to `owner` unless another owner's lease runs; the
    /// owner whose lease runs gets its token again, its lease now
    /// `lease_ms` from `now_ms` (a retried ACQUIRE is safe).
    fn acquire(
        &self,
        db: &mut Db,
        owner: &Bytes,
        lease_ms: u64,
        now_ms: u64,
    ) -> Result<Reply, ReplyError> {
        let lease_until_ms = now_ms.saturating_add(lease_ms);
        let lock = lock_at(db, &self.name, now_ms)?;
        if let Some(holder) = lock.and_then(|lock| lock.holder_at(now_ms)) {
            if holder.owner != *owner {
                return Ok(Reply::Null);
            }
            let token = holder.token;
            self.set_lease(db, lease_until_ms, now_ms);
            db.notify(event_class::GENERIC, "lock-acquire", &self.name);
            return Ok(token_reply(token));
        }
        let exists = lock.is_some();
        let last_granted = lock.map_or(0, |lock| lock.last_granted);
        let token = db
            .grant_token(last_granted)
            .map_err(|error| ReplyError::err(error.to_string()))?;
        let owner = polis_store::detached(owner);
        if exists {
            db.update(&self.name, now_ms, |value| {
                if let Some(lock) = value.as_lock_mut() {
                    lock.grant(owner, token, lease_until_ms);
                }
            });
        } else {
            let lock = LockValue::granted(owner, token, lease_until_ms);
            db.insert(self.name.clone(), Value::lock(lock), None, now_ms);
        }
        db.notify(event_class::GENERIC, "lock-acquire", &self.name);
        Ok(token_reply(token))
    }

    /// Extends the lease of `token`, which must hold the lock.
    fn refresh(
        &self,
        db: &mut Db,
        token: u64,
        lease_ms: u64,
        now_ms: u64,
    ) -> Result<Reply, ReplyError> {
        check_token(db, &self.name, token, now_ms)?;
        self.set_lease(db, now_ms.saturating_add(lease_ms), now_ms);
        db.notify(event_class::GENERIC, "lock-refresh", &self.name);
        Ok(Reply::ok())
    }

    /// Ends the grant of `token`, which must hold the lock.
    fn release(&self, db: &mut Db, token: u64, now_ms: u64) -> Result<Reply, ReplyError> {
        check_token(db, &self.name, token, now_ms)?;
        db.update(&self.name, now_ms, |value| {
            if let Some(lock) = value.as_lock_mut() {
                lock.release();
            }
        });
        db.notify(event_class::GENERIC, "lock-release", &self.name);
        Ok(Reply::ok())
    }

    /// Sets the current holder's lease deadline.
    fn set_lease(&self, db: &mut Db, lease_until_ms: u64, now_ms: u64) {
        db.update(&self.name, now_ms, |value| {
            if let Some(holder) = value.as_lock_mut().and_then(|lock| lock.holder.as_mut()) {
                holder.lease_until_ms = lease_until_ms;
            }
        });
    }

    /// Returns the holder whose lease runs at `now_ms` (owner, token,
    /// lease left in milliseconds), or nil.
    fn info(&self, db: &Db, now_ms: u64) -> Reply {
        let lock = match lock_at(db, &self.name, now_ms) {
            Ok(lock) => lock,
            Err(error) => return Reply::Error(error),
        };
        match lock.and_then(|lock| lock.holder_at(now_ms)) {
            None => Reply::Null,
            Some(holder) => Reply::Map(vec![
                (Reply::bulk("owner"), crate::access::bulk(&holder.owner)),
                (Reply::bulk("token"), token_reply(holder.token)),
                (
                    Reply::bulk("lease_remaining_ms"),
                    Reply::Integer(
                        i64::try_from(holder.lease_until_ms.saturating_sub(now_ms))
                            .unwrap_or(i64::MAX),
                    ),
                ),
            ]),
        }
    }
}
