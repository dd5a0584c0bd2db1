//! SET (and SETNX, SETEX, PSETEX), GETSET, MSET and MSETNX.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db, Value};

use crate::access::{bulk_or_null, string_at};
use crate::args::{arg, command_name, wrong_arity};
use crate::command::WriteCommand;
use crate::string::expiry::{parse_extended, ExpireOption};

/// What SET replies when it writes and when a condition stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetReply {
    /// SET: `OK`, or null when NX/XX stops it.
    Status,
    /// SETNX: 1 or 0.
    Integer,
}

/// `SET key value [NX|XX|IFEQ match] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`;
/// also SETNX, SETEX and PSETEX, which are SET with fixed options.
///
/// IFEQ (as in Valkey 8.1 and Redis 8.4) writes only if the key holds a
/// string equal to `match`: a compare-and-set in one command.
#[derive(Debug, Clone, PartialEq)]
pub struct Set {
    pub key: Bytes,
    pub value: Bytes,
    pub nx: bool,
    pub xx: bool,
    pub ifeq: Option<Bytes>,
    pub get: bool,
    pub expire: ExpireOption,
    pub reply: SetReply,
    /// The command's name, quoted in expire-time errors.
    pub command: String,
}

impl WriteCommand for Set {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let command = command_name(args);
        let key = arg(args, 1)?.clone();
        let mut set = Set {
            key,
            value: Bytes::new(),
            nx: false,
            xx: false,
            ifeq: None,
            get: false,
            expire: ExpireOption::Unset,
            reply: SetReply::Status,
            command,
        };
        match set.command.as_str() {
            "setnx" => {
                set.value = arg(args, 2)?.clone();
                set.nx = true;
                set.reply = SetReply::Integer;
            }
            "setex" | "psetex" => {
                let ttl = arg(args, 2)?.clone();
                set.value = arg(args, 3)?.clone();
                set.expire = if set.command == "setex" {
                    ExpireOption::Ex(ttl)
                } else {
                    ExpireOption::Px(ttl)
                };
            }
            _ => {
                set.value = arg(args, 2)?.clone();
                let options = parse_extended(&args[3..], true)?;
                set.nx = options.nx;
                set.xx = options.xx;
                set.ifeq = options.ifeq;
                set.get = options.get;
                set.expire = options.expire;
            }
        }
        // Redis validates the expire time before anything else; only the
        // addition of the current time waits for `execute`.
        set.expire.deadline(0, &set.command)?;
        Ok(set)
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let deadline = match self.expire.deadline(now_ms, &self.command) {
            Ok(deadline) => deadline,
            Err(error) => return Reply::Error(error),
        };
        let old = if self.get {
            match string_at(db, &self.key, now_ms) {
                Ok(old) => Some(bulk_or_null(old)),
                Err(error) => return Reply::Error(error),
            }
        } else {
            None
        };
        // Only NX and XX ask whether the key exists.
        let found = (self.nx || self.xx) && db.contains(&self.key, now_ms);
        let matches = match &self.ifeq {
            None => true,
            Some(expected) => match string_at(db, &self.key, now_ms) {
                Ok(current) => current == Some(expected),
                Err(error) => return Reply::Error(error),
            },
        };
        if (self.nx && found) || (self.xx && !found) || !matches {
            return old.unwrap_or(match self.reply {
                SetReply::Status => Reply::Null,
                SetReply::Integer => Reply::Integer(0),
            });
        }
        let value = Value::String(self.value.clone());
        if self.expire == ExpireOption::KeepTtl {
            db.insert_keep_ttl(self.key.clone(), value, now_ms);
        } else {
            db.insert(self.key.clone(), value, deadline, now_ms);
        }
        db.notify(event_class::STRING, "set", &self.key);
        if deadline.is_some() {
            db.notify(event_class::GENERIC, "expire", &self.key);
        }
        old.unwrap_or(match self.reply {
            SetReply::Status => Reply::ok(),
            SetReply::Integer => Reply::Integer(1),
        })
    }
}

/// `GETSET key value`: sets the value (clearing any deadline) and returns
/// the old one.
#[derive(Debug, Clone, PartialEq)]
pub struct GetSet {
    pub key: Bytes,
    pub value: Bytes,
}

impl WriteCommand for GetSet {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            value: arg(args, 2)?.clone(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let old = match string_at(db, &self.key, now_ms) {
            Ok(old) => bulk_or_null(old),
            Err(error) => return Reply::Error(error),
        };
        db.insert(
            self.key.clone(),
            Value::String(self.value.clone()),
            None,
            now_ms,
        );
        db.notify(event_class::STRING, "set", &self.key);
        old
    }
}

/// `MSET key value [key value ...]`; MSETNX sets nothing unless every key
/// is absent.
#[derive(Debug, Clone, PartialEq)]
pub struct MSet {
    pub pairs: Vec<(Bytes, Bytes)>,
    pub nx: bool,
}

impl WriteCommand for MSet {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        if args.len() < 3 || args.len().is_multiple_of(2) {
            return Err(wrong_arity(args));
        }
        Ok(Self {
            pairs: args[1..]
                .chunks_exact(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect(),
            nx: command_name(args) == "msetnx",
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        if self.nx && self.pairs.iter().any(|(key, _)| db.contains(key, now_ms)) {
            return Reply::Integer(0);
        }
        for (key, value) in &self.pairs {
            db.insert(key.clone(), Value::String(value.clone()), None, now_ms);
            db.notify(event_class::STRING, "set", key);
        }
        if self.nx {
            Reply::Integer(1)
        } else {
            Reply::ok()
        }
    }
}
