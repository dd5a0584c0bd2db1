//! RENAME, RENAMENX and COPY. The value moves (or is copied) with its
//! deadline.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db};

use crate::args::{arg, command_name, is, parse_i64};
use crate::command::WriteCommand;

/// `RENAME key newkey` and `RENAMENX key newkey`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rename {
    pub from: Bytes,
    pub to: Bytes,
    pub nx: bool,
}

impl WriteCommand for Rename {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            from: arg(args, 1)?.clone(),
            to: arg(args, 2)?.clone(),
            nx: command_name(args) == "renamenx",
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        if !db.contains(&self.from, now_ms) {
            return Reply::Error(ReplyError::NoSuchKey);
        }
        let done = || {
            if self.nx {
                Reply::Integer(1)
            } else {
                Reply::ok()
            }
        };
        if self.from == self.to {
            return if self.nx { Reply::Integer(0) } else { done() };
        }
        if self.nx && db.contains(&self.to, now_ms) {
            return Reply::Integer(0);
        }
        let Some(entry) = db.remove(&self.from, now_ms) else {
            return Reply::Error(ReplyError::NoSuchKey);
        };
        // The destination is deleted, then created: Redis records `new`
        // for it even when it existed.
        let deadline = entry.expire_at_ms();
        db.remove(&self.to, now_ms);
        db.insert(self.to.clone(), entry.value, deadline, now_ms);
        db.notify(event_class::GENERIC, "rename_from", &self.from);
        db.notify(event_class::GENERIC, "rename_to", &self.to);
        done()
    }
}

/// `COPY source destination [DB 0] [REPLACE]`: polis has one database per
/// shard, so only `DB 0` is accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    pub from: Bytes,
    pub to: Bytes,
    pub replace: bool,
}

impl WriteCommand for Copy {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let from = arg(args, 1)?.clone();
        let to = arg(args, 2)?.clone();
        let mut replace = false;
        let mut index = 3;
        // Bounded: index advances every round.
        while let Some(option) = args.get(index) {
            if is(option, "replace") {
                replace = true;
            } else if is(option, "db") && index + 1 < args.len() {
                let db = parse_i64(&args[index + 1])
                    .filter(|db| i32::try_from(*db).is_ok())
                    .ok_or(ReplyError::NotInteger)?;
                if db != 0 {
                    return Err(ReplyError::err("DB index is out of range"));
                }
                index += 1;
            } else {
                return Err(ReplyError::Syntax);
            }
            index += 1;
        }
        if from == to {
            return Err(ReplyError::err(
                "source and destination objects are the same",
            ));
        }
        Ok(Self { from, to, replace })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let Some(entry) = db.entry(&self.from, now_ms).cloned() else {
            return Reply::Integer(0);
        };
        if !self.replace && db.contains(&self.to, now_ms) {
            return Reply::Integer(0);
        }
        // As for RENAME: deleted, then created (`new` even when replaced).
        let deadline = entry.expire_at_ms();
        db.remove(&self.to, now_ms);
        db.insert(self.to.clone(), entry.value, deadline, now_ms);
        db.notify(event_class::GENERIC, "copy_to", &self.to);
        Reply::Integer(1)
    }
}
