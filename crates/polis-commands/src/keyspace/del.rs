//! DEL/UNLINK, EXISTS/TOUCH and TYPE.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db};

use crate::args::{arg, is};
use crate::command::{ReadCommand, ReadContext, WriteCommand};

/// `DEL key [key ...]` and `UNLINK key [key ...]` (identical here: there
/// is no background freeing to opt into).
#[derive(Debug, Clone, PartialEq)]
pub struct Del {
    pub keys: Vec<Bytes>,
}

impl WriteCommand for Del {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        arg(args, 1)?;
        Ok(Self {
            keys: args[1..].to_vec(),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        let mut removed = 0;
        for key in &self.keys {
            if db.remove(key, now_ms).is_some() {
                db.notify(event_class::GENERIC, "del", key);
                removed += 1;
            }
        }
        Reply::Integer(removed)
    }
}

/// `EXISTS key [key ...]` and `TOUCH key [key ...]`: counts live keys, a
/// repeated key once per mention. TOUCH counts as a use of each key (its
/// LRU clock or LFU counter, on the leader that serves it); EXISTS does
/// not, as in Redis.
#[derive(Debug, Clone, PartialEq)]
pub struct Exists {
    pub keys: Vec<Bytes>,
    pub touch: bool,
}

impl ReadCommand for Exists {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        arg(args, 1)?;
        Ok(Self {
            keys: args[1..].to_vec(),
            touch: is(&args[0], "touch"),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let live = self
            .keys
            .iter()
            .filter(|key| {
                if self.touch {
                    db.entry(key, ctx.now_ms).is_some()
                } else {
                    db.contains(key, ctx.now_ms)
                }
            })
            .count();
        Reply::Integer(live as i64)
    }
}

/// `TYPE key`: `string`, `hash`, ... or `none`.
#[derive(Debug, Clone, PartialEq)]
pub struct Type {
    pub key: Bytes,
}

impl ReadCommand for Type {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let name = db
            .peek(&self.key, ctx.now_ms)
            .map_or("none", |entry| entry.value.type_name());
        Reply::Simple(name.to_owned())
    }
}
