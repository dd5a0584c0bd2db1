//! APPEND and SETRANGE: writes that grow or patch a string in place (the
//! key keeps its deadline).

use bytes::{Bytes, BytesMut};
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db, Value};
use polis_types::limits::STRING_LEN_MAX;

use crate::access::string_at;
use crate::args::{arg, int_arg};
use crate::command::WriteCommand;

/// Checks that a string of `len + extra` bytes stays within the limit.
pub(crate) fn check_string_len(len: u64, extra: u64) -> Result<(), ReplyError> {
    match len.checked_add(extra) {
        Some(total) if total <= STRING_LEN_MAX => Ok(()),
        _ => Err(ReplyError::err(
            "string exceeds maximum allowed size (proto-max-bulk-len)",
        )),
    }
}

/// `APPEND key value`
#[derive(Debug, Clone, PartialEq)]
pub struct Append {
    pub key: Bytes,
    pub value: Bytes,
}

impl WriteCommand for Append {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            value: arg(args, 2)?.clone(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let current = match string_at(db, &self.key, now_ms) {
            Ok(current) => current,
            Err(error) => return Reply::Error(error),
        };
        let Some(current) = current else {
            db.insert(
                self.key.clone(),
                Value::String(self.value.clone()),
                None,
                now_ms,
            );
            db.notify(event_class::STRING, "append", &self.key);
            return Reply::Integer(self.value.len() as i64);
        };
        if let Err(error) = check_string_len(current.len() as u64, self.value.len() as u64) {
            return Reply::Error(error);
        }
        let mut joined = BytesMut::with_capacity(current.len() + self.value.len());
        joined.extend_from_slice(current);
        joined.extend_from_slice(&self.value);
        let len = joined.len() as i64;
        db.insert_keep_ttl(self.key.clone(), Value::String(joined.freeze()), now_ms);
        db.notify(event_class::STRING, "append", &self.key);
        Reply::Integer(len)
    }
}

/// `SETRANGE key offset value`: overwrites from `offset`, zero-padding a
/// shorter string.
#[derive(Debug, Clone, PartialEq)]
pub struct SetRange {
    pub key: Bytes,
    pub offset: u64,
    pub value: Bytes,
}

impl WriteCommand for SetRange {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let offset = int_arg(arg(args, 2)?)?;
        let offset =
            u64::try_from(offset).map_err(|_| ReplyError::err("offset is out of range"))?;
        Ok(Self {
            key,
            offset,
            value: arg(args, 3)?.clone(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let current = match string_at(db, &self.key, now_ms) {
            Ok(current) => current,
            Err(error) => return Reply::Error(error),
        };
        if self.value.is_empty() {
            return Reply::Integer(current.map_or(0, |bytes| bytes.len() as i64));
        }
        if let Err(error) = check_string_len(self.offset, self.value.len() as u64) {
            return Reply::Error(error);
        }
        // Within STRING_LEN_MAX, so the sum fits in usize.
        let offset = self.offset as usize;
        let end = offset + self.value.len();
        let mut patched = BytesMut::new();
        if let Some(current) = current {
            patched.extend_from_slice(current);
        }
        if patched.len() < end {
            patched.resize(end, 0);
        }
        patched[offset..end].copy_from_slice(&self.value);
        let len = patched.len() as i64;
        db.insert_keep_ttl(self.key.clone(), Value::String(patched.freeze()), now_ms);
        db.notify(event_class::STRING, "setrange", &self.key);
        Reply::Integer(len)
    }
}
