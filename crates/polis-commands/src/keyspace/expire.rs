//! EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (with NX/XX/GT/LT), PERSIST, and
//! TTL, PTTL, EXPIRETIME, PEXPIRETIME.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db};

use crate::args::{arg, command_name, int_arg, is};
use crate::command::{ReadCommand, ReadContext, WriteCommand};
use crate::string::expiry_error;

/// The condition an EXPIRE option puts on the current deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpireConditions {
    /// Only when the key has no deadline.
    pub nx: bool,
    /// Only when the key has a deadline.
    pub xx: bool,
    /// Only when the new deadline is later (no deadline counts as later
    /// than any).
    pub gt: bool,
    /// Only when the new deadline is earlier.
    pub lt: bool,
}

/// `EXPIRE key seconds`, `PEXPIRE key ms`, `EXPIREAT key unix-s`,
/// `PEXPIREAT key unix-ms`, each with `[NX|XX|GT|LT]`. A deadline already
/// past deletes the key.
#[derive(Debug, Clone, PartialEq)]
pub struct Expire {
    pub key: Bytes,
    /// The deadline in ms: relative to now when `relative`, else absolute.
    pub when_ms: i64,
    pub relative: bool,
    pub conditions: ExpireConditions,
    pub command: String,
}

impl WriteCommand for Expire {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let command = command_name(args);
        let key = arg(args, 1)?.clone();
        let raw = arg(args, 2)?;
        let mut conditions = ExpireConditions::default();
        for option in &args[3..] {
            if is(option, "nx") {
                conditions.nx = true;
            } else if is(option, "xx") {
                conditions.xx = true;
            } else if is(option, "gt") {
                conditions.gt = true;
            } else if is(option, "lt") {
                conditions.lt = true;
            } else {
                return Err(ReplyError::err(format!(
                    "Unsupported option {}",
                    String::from_utf8_lossy(option)
                )));
            }
        }
        if conditions.nx && (conditions.xx || conditions.gt || conditions.lt) {
            return Err(ReplyError::err(
                "NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if conditions.gt && conditions.lt {
            return Err(ReplyError::err(
                "GT and LT options at the same time are not compatible",
            ));
        }
        let value = int_arg(raw)?;
        let in_seconds = command == "expire" || command == "expireat";
        let when_ms = if in_seconds {
            value
                .checked_mul(1000)
                .ok_or_else(|| expiry_error(&command))?
        } else {
            value
        };
        Ok(Self {
            key,
            when_ms,
            relative: command == "expire" || command == "pexpire",
            conditions,
            command,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let base = if self.relative {
            i64::try_from(now_ms).unwrap_or(i64::MAX)
        } else {
            0
        };
        let Some(when) = self.when_ms.checked_add(base) else {
            return Reply::Error(expiry_error(&self.command));
        };
        let Some(entry) = db.entry(&self.key, now_ms) else {
            return Reply::Integer(0);
        };
        let current = entry
            .expire_at_ms()
            .map(|at| i64::try_from(at).unwrap_or(i64::MAX));
        let conditions = self.conditions;
        let refused = (conditions.nx && current.is_some())
            || (conditions.xx && current.is_none())
            || (conditions.gt && current.is_none_or(|current| when <= current))
            || (conditions.lt && current.is_some_and(|current| when >= current));
        if refused {
            return Reply::Integer(0);
        }
        match u64::try_from(when) {
            Ok(deadline) if deadline > now_ms => {
                db.set_expire(&self.key, Some(deadline), now_ms);
                db.notify(event_class::GENERIC, "expire", &self.key);
            }
            // A deadline already past deletes the key (Redis replicates
            // it as a DEL and names the event so).
            _ => {
                if db.remove(&self.key, now_ms).is_some() {
                    db.notify(event_class::GENERIC, "del", &self.key);
                }
            }
        }
        Reply::Integer(1)
    }
}

/// `PERSIST key`: removes the deadline; 1 when there was one.
#[derive(Debug, Clone, PartialEq)]
pub struct Persist {
    pub key: Bytes,
}

impl WriteCommand for Persist {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let has_deadline = db
            .entry(&self.key, now_ms)
            .is_some_and(|entry| entry.expire_at_ms().is_some());
        if has_deadline {
            db.set_expire(&self.key, None, now_ms);
            db.notify(event_class::GENERIC, "persist", &self.key);
        }
        Reply::Integer(i64::from(has_deadline))
    }
}

/// Which of the four TTL commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlOutput {
    /// TTL: remaining seconds, rounded.
    Seconds,
    /// PTTL: remaining milliseconds.
    Millis,
    /// EXPIRETIME: absolute unix seconds.
    AbsoluteSeconds,
    /// PEXPIRETIME: absolute unix milliseconds.
    AbsoluteMillis,
}

/// `TTL key`, `PTTL key`, `EXPIRETIME key`, `PEXPIRETIME key`: -2 when the
/// key is absent, -1 when it has no deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct Ttl {
    pub key: Bytes,
    pub output: TtlOutput,
}

impl ReadCommand for Ttl {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let output = match command_name(args).as_str() {
            "ttl" => TtlOutput::Seconds,
            "pttl" => TtlOutput::Millis,
            "expiretime" => TtlOutput::AbsoluteSeconds,
            _ => TtlOutput::AbsoluteMillis,
        };
        Ok(Self {
            key: arg(args, 1)?.clone(),
            output,
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        // As in Redis, asking for the time to live is no use of the key.
        let Some(entry) = db.peek(&self.key, ctx.now_ms) else {
            return Reply::Integer(-2);
        };
        let Some(deadline) = entry.expire_at_ms() else {
            return Reply::Integer(-1);
        };
        let remaining = deadline.saturating_sub(ctx.now_ms);
        let value = match self.output {
            TtlOutput::Seconds => remaining.saturating_add(500) / 1000,
            TtlOutput::Millis => remaining,
            TtlOutput::AbsoluteSeconds => deadline.saturating_add(500) / 1000,
            TtlOutput::AbsoluteMillis => deadline,
        };
        Reply::Integer(i64::try_from(value).unwrap_or(i64::MAX))
    }
}
