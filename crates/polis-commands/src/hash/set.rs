//! HSET (and HMSET), HSETNX and HDEL.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db};

use crate::access::{hash_at, update_hash};
use crate::args::{arg, command_name, wrong_arity};
use crate::command::WriteCommand;

/// `HSET key field value [field value ...]` (replies the number of new
/// fields) and `HMSET` (replies OK).
#[derive(Debug, Clone, PartialEq)]
pub struct HSet {
    pub key: Bytes,
    pub pairs: Vec<(Bytes, Bytes)>,
    pub reply_ok: bool,
}

impl WriteCommand for HSet {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        if args.len() < 4 || !args.len().is_multiple_of(2) {
            return Err(wrong_arity(args));
        }
        Ok(Self {
            key: args[1].clone(),
            pairs: args[2..]
                .chunks_exact(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect(),
            reply_ok: command_name(args) == "hmset",
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let created = update_hash(db, &self.key, now_ms, |hash| {
            self.pairs
                .iter()
                .filter(|(field, value)| hash.insert(field, value))
                .count()
        });
        let created = match created {
            Ok(created) => created,
            Err(error) => return Reply::Error(error),
        };
        // Redis records hset whether or not a field was new.
        db.notify(event_class::HASH, "hset", &self.key);
        if self.reply_ok {
            Reply::ok()
        } else {
            Reply::Integer(created as i64)
        }
    }
}

/// `HSETNX key field value`: sets only a new field.
#[derive(Debug, Clone, PartialEq)]
pub struct HSetNx {
    pub key: Bytes,
    pub field: Bytes,
    pub value: Bytes,
}

impl WriteCommand for HSetNx {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            field: arg(args, 2)?.clone(),
            value: arg(args, 3)?.clone(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let set = update_hash(db, &self.key, now_ms, |hash| {
            !hash.contains(&self.field) && hash.insert(&self.field, &self.value)
        });
        match set {
            Ok(set) => {
                if set {
                    db.notify(event_class::HASH, "hset", &self.key);
                }
                Reply::Integer(i64::from(set))
            }
            Err(error) => Reply::Error(error),
        }
    }
}

/// `HDEL key field [field ...]`: the key goes when its last field does.
#[derive(Debug, Clone, PartialEq)]
pub struct HDel {
    pub key: Bytes,
    pub fields: Vec<Bytes>,
}

impl WriteCommand for HDel {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        arg(args, 2)?;
        Ok(Self {
            key,
            fields: args[2..].to_vec(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        match hash_at(db, &self.key, now_ms) {
            Ok(Some(_)) => {}
            Ok(None) => return Reply::Integer(0),
            Err(error) => return Reply::Error(error),
        }
        let removed = db
            .update(&self.key, now_ms, |value| match value.as_hash_mut() {
                Some(hash) => self
                    .fields
                    .iter()
                    .filter(|field| hash.remove(field))
                    .count(),
                None => 0,
            })
            .unwrap_or(0);
        if removed > 0 {
            db.notify(event_class::HASH, "hdel", &self.key);
        }
        Reply::Integer(removed as i64)
    }
}
