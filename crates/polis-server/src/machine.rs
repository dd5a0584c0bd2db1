//! The replicated state machine of a shard: its keyspace and the slots it
//! owns, changed only by applying log entries.
//!
//! **Ownership is checked at apply.** The shard's leader proposes an
//! [`Op::Own`] entry whenever the cluster map changes the shard's slots;
//! every replica applies it at the same log position. A command for a slot
//! the shard does not own at that position is not applied, whenever it was
//! proposed: its proposer learns [`Applied::NotOwned`] and redirects the
//! client. Entries are versioned (see `polis_cluster::version`); one a
//! replica cannot decode stops it.

use bytes::Bytes;
use polis_cluster::version::{self, EntryFormat};
use polis_raft::StateMachine;
use polis_resp::{Reply, ReplyError};
use polis_store::Db;
use polis_types::{GroupId, Slot, SlotSet};
use serde::{Deserialize, Serialize};

/// The slots a shard owns, and the map version that gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    pub version: u64,
    pub slots: SlotSet,
}

/// One client command as it enters the log: the slot its keys hash to
/// (none for a keyless command such as FLUSHALL) and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logged {
    pub slot: Option<Slot>,
    pub args: Vec<Bytes>,
}

/// One log entry of a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// A client's write command.
    Command(Logged),
    /// Pipelined write commands of one connection, applied in order; the
    /// answer is one per command.
    Batch(Vec<Logged>),
    /// Active expiry: delete these keys if they are still expired at the
    /// entry's time.
    Expire(Vec<Bytes>),
    /// The shard owns `slots` from map version `version` on (ignored if
    /// the shard already holds a newer ownership).
    Own { version: u64, slots: SlotSet },
}

impl Op {
    /// Returns the entry format this entry needs.
    pub fn format(&self) -> EntryFormat {
        EntryFormat::V1
    }

    /// Returns the entry's encoding.
    ///
    /// # Errors
    /// Returns an error if encoding fails (it cannot for these types).
    pub fn encode(&self) -> Result<Bytes, postcard::Error> {
        version::encode_entry(self.format(), self)
    }
}

/// What applying an entry answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Applied {
    Reply(Reply),
    /// The shard did not own the command's slot when the entry applied:
    /// nothing happened. Its owner is in map version `version` or later.
    NotOwned {
        slot: Slot,
        version: u64,
    },
    /// One answer per command of a batch.
    Batch(Vec<Applied>),
}

impl Applied {
    /// Decodes what [`DataMachine`] answered.
    pub fn decode(bytes: &[u8]) -> Self {
        postcard::from_bytes(bytes).unwrap_or_else(|error| {
            Self::Reply(Reply::Error(ReplyError::err(format!(
                "undecodable answer: {error}"
            ))))
        })
    }

    /// Returns the answers of a batch of `count` commands.
    pub fn into_batch(self, count: usize) -> Vec<Applied> {
        match self {
            Self::Batch(answers) if answers.len() == count => answers,
            Self::Batch(answers) => vec![
                Self::Reply(Reply::Error(ReplyError::err(format!(
                    "batch of {count} commands answered {} replies",
                    answers.len()
                ))));
                count
            ],
            other => vec![other; count],
        }
    }
}

/// The first byte of a shard's snapshot: its format.
const SNAPSHOT_FORMAT: u8 = 1;

/// The keyspace of a shard as a Raft state machine.
pub struct DataMachine {
    group: GroupId,
    pub db: Db,
    pub ownership: Ownership,
}

impl DataMachine {
    /// Returns the empty state of shard `group`: no keys, no slots.
    pub fn new(group: GroupId) -> Self {
        Self {
            group,
            db: Db::default(),
            ownership: Ownership::default(),
        }
    }

    /// Returns the shard.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// Returns true when the shard owns `slot` (a keyless command has
    /// none and always passes).
    pub fn owns(&self, slot: Option<Slot>) -> bool {
        slot.is_none_or(|slot| self.ownership.slots.contains(slot))
    }

    fn command(&mut self, logged: &Logged, time_ms: u64) -> Applied {
        if !self.owns(logged.slot) {
            return Applied::NotOwned {
                slot: logged.slot.unwrap_or_default(),
                version: self.ownership.version,
            };
        }
        Applied::Reply(polis_commands::execute_write(
            &mut self.db,
            &logged.args,
            time_ms,
        ))
    }

    fn execute(&mut self, op: Op, time_ms: u64) -> Applied {
        match op {
            Op::Command(logged) => self.command(&logged, time_ms),
            Op::Batch(commands) => Applied::Batch(
                commands
                    .iter()
                    .map(|logged| self.command(logged, time_ms))
                    .collect(),
            ),
            Op::Expire(keys) => {
                let deleted = self.db.delete_expired(&keys, time_ms);
                Applied::Reply(Reply::Integer(deleted as i64))
            }
            Op::Own { version, slots } => {
                if version > self.ownership.version {
                    self.ownership = Ownership { version, slots };
                }
                Applied::Reply(Reply::Integer(self.ownership.version as i64))
            }
        }
    }
}

fn encode(applied: &Applied) -> Bytes {
    match postcard::to_stdvec(applied) {
        Ok(bytes) => Bytes::from(bytes),
        // An answer that cannot be encoded is a bug; the write still
        // applied on every replica, so answer with an error rather than
        // diverge.
        Err(error) => encode(&Applied::Reply(Reply::Error(ReplyError::err(format!(
            "reply encoding: {error}"
        ))))),
    }
}

impl StateMachine for DataMachine {
    fn apply(&mut self, index: u64, time_ms: u64, payload: &[u8]) -> Bytes {
        let op: Op = match version::decode_entry(payload) {
            Ok(op) => op,
            Err(detail) => polis_raft::state_machine::undecodable_entry(self.group, index, &detail),
        };
        encode(&self.execute(op, time_ms))
    }

    /// `| format (1) | ownership length (u32 LE) | ownership | keyspace |`
    fn snapshot(&self) -> Vec<u8> {
        let ownership = postcard::to_stdvec(&self.ownership).unwrap_or_default();
        let keyspace = self.db.to_snapshot();
        let mut bytes = Vec::with_capacity(5 + ownership.len() + keyspace.len());
        bytes.push(SNAPSHOT_FORMAT);
        bytes.extend_from_slice(&(ownership.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&ownership);
        bytes.extend_from_slice(&keyspace);
        bytes
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let Some((&format, rest)) = data.split_first() else {
            return Err("an empty snapshot".into());
        };
        if format != SNAPSHOT_FORMAT {
            return Err(format!(
                "snapshot format {format}; this binary reads format {SNAPSHOT_FORMAT}"
            ));
        }
        let (len, rest) = rest
            .split_first_chunk::<4>()
            .ok_or("a snapshot cut short")?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err("a snapshot cut short".into());
        }
        let (ownership, keyspace) = rest.split_at(len);
        let ownership: Ownership =
            postcard::from_bytes(ownership).map_err(|error| format!("ownership: {error}"))?;
        self.db = Db::from_snapshot(keyspace).map_err(|error| error.to_string())?;
        self.ownership = ownership;
        Ok(())
    }

    fn items(&self) -> u64 {
        self.db.len() as u64
    }

    fn version(&self) -> u64 {
        self.ownership.version
    }
}

#[cfg(test)]
#[path = "machine_test.rs"]
mod tests;
