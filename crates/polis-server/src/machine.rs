//! The replicated state machine of a data group: the keyspace, changed
//! only by applying log entries.

use bytes::Bytes;
use polis_raft::StateMachine;
use polis_resp::{Reply, ReplyError};
use polis_store::Db;
use serde::{Deserialize, Serialize};

/// One log entry of a data group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    /// A client's write command, as its arguments.
    Command(Vec<Bytes>),
    /// Active expiry: delete these keys if they are still expired at the
    /// entry's time.
    Expire(Vec<Bytes>),
    /// Pipelined write commands of one connection, applied in order; the
    /// reply is one reply per command.
    Batch(Vec<Vec<Bytes>>),
}

impl Op {
    /// Returns the entry's encoding.
    ///
    /// # Errors
    /// Returns an error if encoding fails (it cannot for these types).
    pub fn encode(&self) -> Result<Bytes, postcard::Error> {
        postcard::to_stdvec(self).map(Bytes::from)
    }
}

/// The keyspace of a data group as a Raft state machine.
#[derive(Default)]
pub struct DataMachine {
    pub db: Db,
}

impl DataMachine {
    /// Decodes what [`StateMachine::apply`] returned.
    pub fn decode_reply(bytes: &[u8]) -> Reply {
        postcard::from_bytes(bytes).unwrap_or_else(|error| {
            Reply::Error(ReplyError::err(format!("undecodable reply: {error}")))
        })
    }

    /// Decodes what applying an [`Op::Batch`] of `count` commands
    /// returned: one reply per command.
    pub fn decode_replies(bytes: &[u8], count: usize) -> Vec<Reply> {
        match postcard::from_bytes::<Vec<Reply>>(bytes) {
            Ok(replies) if replies.len() == count => replies,
            Ok(replies) => vec![
                Reply::Error(ReplyError::err(format!(
                    "batch of {count} commands answered {} replies",
                    replies.len()
                )));
                count
            ],
            Err(error) => {
                vec![Reply::Error(ReplyError::err(format!("undecodable reply: {error}"))); count]
            }
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Bytes {
    match postcard::to_stdvec(value) {
        Ok(bytes) => Bytes::from(bytes),
        // A reply that cannot be encoded is a bug; the write still applied
        // on every replica, so answer with an error rather than diverge.
        Err(error) => encode(&Reply::Error(ReplyError::err(format!(
            "reply encoding: {error}"
        )))),
    }
}

fn encode_reply(reply: &Reply) -> Bytes {
    encode(reply)
}

impl StateMachine for DataMachine {
    fn apply(&mut self, _index: u64, time_ms: u64, payload: &[u8]) -> Bytes {
        let op: Op = match postcard::from_bytes(payload) {
            Ok(op) => op,
            Err(error) => {
                // Every replica fails the same way, so the state stays the
                // same everywhere.
                tracing::error!(%error, "undecodable log entry skipped");
                return encode_reply(&Reply::Error(ReplyError::err("undecodable log entry")));
            }
        };
        let reply = match op {
            Op::Command(args) => polis_commands::execute_write(&mut self.db, &args, time_ms),
            Op::Expire(keys) => {
                let deleted = self.db.delete_expired(&keys, time_ms);
                Reply::Integer(deleted as i64)
            }
            Op::Batch(commands) => {
                let replies: Vec<Reply> = commands
                    .iter()
                    .map(|args| polis_commands::execute_write(&mut self.db, args, time_ms))
                    .collect();
                return encode(&replies);
            }
        };
        encode_reply(&reply)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.db.to_snapshot()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        self.db = Db::from_snapshot(data).map_err(|error| error.to_string())?;
        Ok(())
    }
}
