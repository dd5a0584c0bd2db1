//! HINCRBY and HINCRBYFLOAT.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db};

use crate::access::{hash_at, update_hash};
use crate::args::{arg, float_arg, format_float_human, int_arg, parse_f64, parse_i64};
use crate::command::WriteCommand;

/// `HINCRBY key field increment`
#[derive(Debug, Clone, PartialEq)]
pub struct HIncrBy {
    pub key: Bytes,
    pub field: Bytes,
    pub delta: i64,
}

impl WriteCommand for HIncrBy {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            field: arg(args, 2)?.clone(),
            delta: int_arg(arg(args, 3)?)?,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let current = match hash_at(db, &self.key, now_ms) {
            Ok(hash) => hash.and_then(|hash| hash.get(&self.field)),
            Err(error) => return Reply::Error(error),
        };
        let current = match current.map(parse_i64) {
            None => 0,
            Some(Some(value)) => value,
            Some(None) => return Reply::Error(ReplyError::err("hash value is not an integer")),
        };
        let Some(next) = current.checked_add(self.delta) else {
            return Reply::Error(ReplyError::Overflow);
        };
        let text = Bytes::from(next.to_string());
        match update_hash(db, &self.key, now_ms, |hash| {
            hash.insert(&self.field, &text)
        }) {
            Ok(_) => {
                db.notify(event_class::HASH, "hincrby", &self.key);
                Reply::Integer(next)
            }
            Err(error) => Reply::Error(error),
        }
    }
}

/// `HINCRBYFLOAT key field increment`
#[derive(Debug, Clone, PartialEq)]
pub struct HIncrByFloat {
    pub key: Bytes,
    pub field: Bytes,
    pub increment: f64,
}

impl WriteCommand for HIncrByFloat {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let field = arg(args, 2)?.clone();
        let increment = float_arg(arg(args, 3)?)?;
        if !increment.is_finite() {
            return Err(ReplyError::err("value is NaN or Infinity"));
        }
        Ok(Self {
            key,
            field,
            increment,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let current = match hash_at(db, &self.key, now_ms) {
            Ok(hash) => hash.and_then(|hash| hash.get(&self.field)),
            Err(error) => return Reply::Error(error),
        };
        let current = match current.map(parse_f64) {
            None => 0.0,
            Some(Some(value)) => value,
            Some(None) => return Reply::Error(ReplyError::err("hash value is not a float")),
        };
        let next = current + self.increment;
        if !next.is_finite() {
            return Reply::Error(ReplyError::err("increment would produce NaN or Infinity"));
        }
        let text = Bytes::from(format_float_human(next));
        match update_hash(db, &self.key, now_ms, |hash| {
            hash.insert(&self.field, &text)
        }) {
            Ok(_) => {
                db.notify(event_class::HASH, "hincrbyfloat", &self.key);
                Reply::Bulk(text)
            }
            Err(error) => Reply::Error(error),
        }
    }
}
