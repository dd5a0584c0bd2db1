//! INCR, DECR, INCRBY, DECRBY and INCRBYFLOAT. The result keeps the key's
//! deadline, as Redis overwrites the value in place.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db, Value};

use crate::access::string_at;
use crate::args::{arg, command_name, format_float_human, int_arg, parse_f64, parse_i64};
use crate::command::WriteCommand;

/// `INCR key`, `DECR key`, `INCRBY key n`, `DECRBY key n`.
#[derive(Debug, Clone, PartialEq)]
pub struct IncrBy {
    pub key: Bytes,
    pub delta: i64,
}

impl WriteCommand for IncrBy {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let delta = match command_name(args).as_str() {
            "incr" => 1,
            "decr" => -1,
            "incrby" => int_arg(arg(args, 2)?)?,
            _ => {
                let amount = int_arg(arg(args, 2)?)?;
                amount
                    .checked_neg()
                    .ok_or_else(|| ReplyError::err("decrement would overflow"))?
            }
        };
        Ok(Self { key, delta })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let current = match string_at(db, &self.key, now_ms) {
            Ok(Some(bytes)) => match parse_i64(bytes) {
                Some(value) => value,
                None => return Reply::Error(ReplyError::NotInteger),
            },
            Ok(None) => 0,
            Err(error) => return Reply::Error(error),
        };
        let Some(next) = current.checked_add(self.delta) else {
            return Reply::Error(ReplyError::Overflow);
        };
        let text = Bytes::from(next.to_string());
        db.insert_keep_ttl(self.key.clone(), Value::String(text), now_ms);
        db.notify(event_class::STRING, "incrby", &self.key);
        Reply::Integer(next)
    }
}

/// `INCRBYFLOAT key increment`
#[derive(Debug, Clone, PartialEq)]
pub struct IncrByFloat {
    pub key: Bytes,
    /// Checked after the key's value, as Redis does.
    pub increment: Bytes,
}

impl WriteCommand for IncrByFloat {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            increment: arg(args, 2)?.clone(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let current = match string_at(db, &self.key, now_ms) {
            Ok(Some(bytes)) => match parse_f64(bytes) {
                Some(value) => value,
                None => return Reply::Error(ReplyError::NotFloat),
            },
            Ok(None) => 0.0,
            Err(error) => return Reply::Error(error),
        };
        let Some(increment) = parse_f64(&self.increment) else {
            return Reply::Error(ReplyError::NotFloat);
        };
        let next = current + increment;
        if !next.is_finite() {
            return Reply::Error(ReplyError::err("increment would produce NaN or Infinity"));
        }
        let text = Bytes::from(format_float_human(next));
        db.insert_keep_ttl(self.key.clone(), Value::String(text.clone()), now_ms);
        db.notify(event_class::STRING, "incrbyfloat", &self.key);
        Reply::Bulk(text)
    }
}
