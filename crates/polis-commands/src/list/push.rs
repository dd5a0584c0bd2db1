//! LPUSH, RPUSH, LPUSHX and RPUSHX.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db};

use crate::access::{list_at, reply, update_list};
use crate::args::{arg, command_name};
use crate::command::WriteCommand;
use crate::list::End;

/// `LPUSH|RPUSH|LPUSHX|RPUSHX key element [element ...]`: pushes each
/// element in turn at one end; the `X` forms only onto an existing list.
/// Replies the new length.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub key: Bytes,
    pub elements: Vec<Bytes>,
    pub end: End,
    pub only_existing: bool,
}

impl WriteCommand for Push {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        arg(args, 2)?;
        let name = command_name(args);
        Ok(Self {
            key,
            elements: args[2..].to_vec(),
            end: if name.starts_with('l') {
                End::Left
            } else {
                End::Right
            },
            only_existing: name.ends_with('x'),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        reply(self.push(db, now_ms))
    }
}

impl Push {
    fn push(&self, db: &mut Db, now_ms: u64) -> Result<Reply, ReplyError> {
        if list_at(db, &self.key, now_ms)?.is_none() && self.only_existing {
            return Ok(Reply::Integer(0));
        }
        let len = update_list(db, &self.key, now_ms, |list| {
            for element in &self.elements {
                match self.end {
                    End::Left => list.push_front(element),
                    End::Right => list.push_back(element),
                }
            }
            list.len()
        })?;
        db.notify(event_class::LIST, self.end.push_event(), &self.key);
        Ok(Reply::Integer(i64::try_from(len).unwrap_or(i64::MAX)))
    }
}
