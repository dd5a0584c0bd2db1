//! GETEX and GETDEL: reads that also change the key.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db};

use crate::access::{bulk, string_at};
use crate::args::arg;
use crate::command::WriteCommand;
use crate::string::expiry::{parse_extended, ExpireOption};

/// `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]`
#[derive(Debug, Clone, PartialEq)]
pub struct GetEx {
    pub key: Bytes,
    /// Validated only once the key is known to hold a string, as Redis
    /// does: GETEX on a missing key replies null whatever the value.
    pub expire: ExpireOption,
}

impl WriteCommand for GetEx {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let options = parse_extended(&args[2..], false)?;
        Ok(Self {
            key,
            expire: options.expire,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let value = match string_at(db, &self.key, now_ms) {
            Ok(Some(value)) => value.clone(),
            Ok(None) => return Reply::Null,
            Err(error) => return Reply::Error(error),
        };
        let deadline = match self.expire.deadline(now_ms, "getex") {
            Ok(deadline) => deadline,
            Err(error) => return Reply::Error(error),
        };
        match deadline {
            Some(deadline) if self.expire.is_absolute() && deadline <= now_ms => {
                // The key was read live above, so it is removed here.
                let removed = db.remove(&self.key, now_ms).is_some();
                if removed {
                    db.notify(event_class::GENERIC, "del", &self.key);
                }
            }
            Some(deadline) => {
                db.set_expire(&self.key, Some(deadline), now_ms);
                db.notify(event_class::GENERIC, "expire", &self.key);
            }
            None if self.expire == ExpireOption::Persist => {
                let had_deadline = db
                    .entry(&self.key, now_ms)
                    .is_some_and(|entry| entry.expire_at_ms().is_some());
                if had_deadline {
                    db.set_expire(&self.key, None, now_ms);
                    db.notify(event_class::GENERIC, "persist", &self.key);
                }
            }
            None => {}
        }
        bulk(&value)
    }
}

/// `GETDEL key`
#[derive(Debug, Clone, PartialEq)]
pub struct GetDel {
    pub key: Bytes,
}

impl WriteCommand for GetDel {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        match string_at(db, &self.key, now_ms) {
            Ok(Some(value)) => {
                let reply = bulk(value);
                if db.remove(&self.key, now_ms).is_some() {
                    db.notify(event_class::GENERIC, "del", &self.key);
                }
                reply
            }
            Ok(None) => Reply::Null,
            Err(error) => Reply::Error(error),
        }
    }
}
