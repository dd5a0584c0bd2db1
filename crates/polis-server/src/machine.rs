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
use polis_cluster::version;
use polis_raft::{SnapshotStep, StateMachine};
use polis_resp::{Reply, ReplyError};
use polis_store::Db;
use polis_types::{GroupId, Slot, SlotSet};

use std::sync::Arc;

use crate::eviction::{Footprint, Reported};
use crate::migrating::Migrations;
use crate::notify::EventSink;
use serde::{Deserialize, Serialize};

/// The slots a shard owns, and the map version that gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    pub version: u64,
    pub slots: SlotSet,
}

#[path = "machine_op.rs"]
mod op;

pub use op::{Logged, Op, Transaction};

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
    /// The command's slot is frozen for a migration's switch: nothing
    /// happened; the client tries again (the slot is about to move).
    Frozen {
        slot: Option<Slot>,
    },
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

/// The first byte of a shard's snapshot: its format (1: no migrations
/// part; 2: staging without read indexes; 3: no change feed part; all
/// still read).
const SNAPSHOT_FORMAT: u8 = 4;

/// The keyspace of a shard as a Raft state machine.
pub struct DataMachine {
    group: GroupId,
    pub db: Db,
    pub ownership: Ownership,
    pub migrations: Migrations,
    /// The change feed: feeds, outbox, marks (replicated, in snapshots).
    pub feed: crate::feed::FeedState,
    /// Where the key events of each applied entry go (none: dropped).
    pub(crate) events: Option<Arc<dyn EventSink>>,
    /// The classes the node's keyspace notifications want.
    pub(crate) notify_mask: u16,
    /// The node's footprint this replica's keyspace counts in, and what
    /// it last added to it.
    footprint: Option<(Arc<Footprint>, Reported)>,
    /// The term of the entry being applied (see [`StateMachine::begin_entry`]).
    pub(crate) entry_term: u64,
}

impl DataMachine {
    /// Returns the empty state of shard `group`: no keys, no slots.
    pub fn new(group: GroupId) -> Self {
        Self {
            group,
            db: Db::default(),
            ownership: Ownership::default(),
            migrations: Migrations::default(),
            feed: crate::feed::FeedState::default(),
            events: None,
            notify_mask: 0,
            footprint: None,
            entry_term: 0,
        }
    }

    /// Counts this replica's keyspace in `footprint` (the node's memory
    /// that `maxmemory` bounds).
    pub fn with_footprint(mut self, footprint: Arc<Footprint>) -> Self {
        let mut reported = Reported::default();
        reported.report(&footprint, &self.db);
        self.footprint = Some((footprint, reported));
        self
    }

    /// Brings the node's footprint up to date with the keyspace.
    pub(crate) fn report_footprint(&mut self) {
        if let Some((footprint, reported)) = &mut self.footprint {
            reported.report(footprint, &self.db);
        }
    }

    /// Hands the key events of every applied entry to `sink`.
    pub fn with_events(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
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

    /// Returns why a command on `slot` may not apply here now, if it may
    /// not: the shard does not own the slot, or the slot is frozen.
    pub(crate) fn refusal(&self, slot: Option<Slot>) -> Option<Applied> {
        if !self.owns(slot) {
            return Some(Applied::NotOwned {
                slot: slot.unwrap_or_default(),
                version: self.ownership.version,
            });
        }
        if self.migrations.frozen(slot) {
            return Some(Applied::Frozen { slot });
        }
        None
    }

    /// Notes the keys `args` may change for an outgoing migration: those
    /// it names, and the dead-letter streams a group read may append to.
    fn note_changes(&mut self, slot: Option<Slot>, args: &[Bytes], index: u64, time_ms: u64) {
        if self.migrations.outgoing.is_none() {
            return;
        }
        match slot {
            Some(_) => {
                let mut keys = args
                    .first()
                    .and_then(|name| polis_commands::spec::lookup(name))
                    .map(|spec| polis_commands::spec::command_keys(spec, args))
                    .unwrap_or_default();
                keys.extend(polis_commands::stream::dead_letter_keys(
                    &self.db, args, time_ms,
                ));
                self.migrations.note_changed(&keys, index);
            }
            None => self.migrations.note_all_changed(&self.db, index),
        }
    }

    fn command(&mut self, logged: &Logged, index: u64, time_ms: u64) -> Applied {
        if let Some(refused) = self
            .refusal(logged.slot)
            .or_else(|| self.feed_refusal(&logged.args))
        {
            return refused;
        }
        self.note_changes(logged.slot, &logged.args, index, time_ms);
        Applied::Reply(polis_commands::execute_write(
            &mut self.db,
            &logged.args,
            time_ms,
        ))
    }

    /// Applies a transaction: all its commands, or none when a watched
    /// key changed (the null array EXEC replies then). A command that
    /// fails answers its error and the others still apply, as in Redis.
    fn transaction(&mut self, transaction: &Transaction, index: u64, time_ms: u64) -> Applied {
        if let Some(refused) = self.refusal(transaction.slot).or_else(|| {
            transaction
                .commands
                .iter()
                .find_map(|args| self.feed_refusal(args))
        }) {
            return refused;
        }
        let changed = transaction
            .watched
            .iter()
            .any(|(key, version)| self.db.version_of(key, time_ms) != *version);
        if changed {
            return Applied::Reply(Reply::NullArray);
        }
        let mut replies = Vec::with_capacity(transaction.commands.len());
        for (position, args) in transaction.commands.iter().enumerate() {
            self.note_changes(transaction.slot, args, index, time_ms);
            self.db
                .begin_write(index, entry_seed(index, time_ms, position as u64));
            replies.push(polis_commands::execute_write(&mut self.db, args, time_ms));
            // Each command's events with the values it left.
            self.take_events(index, time_ms);
        }
        Applied::Reply(Reply::Array(replies))
    }

    fn execute(&mut self, op: Op, index: u64, time_ms: u64) -> Applied {
        // Keys written get this entry's index as their version; random
        // picks follow from the entry's index and time; fencing tokens
        // from the index and the ownership version, which never goes back
        // (a slot arrives at a shard with a higher one than it left); the
        // keys it touches are used at its time.
        self.db.begin_write(index, entry_seed(index, time_ms, 0));
        self.db.set_epoch(self.ownership.version);
        self.db.set_write_time(time_ms);
        match op {
            Op::Command(logged) => self.command(&logged, index, time_ms),
            Op::Batch(commands) => Applied::Batch(
                commands
                    .iter()
                    .enumerate()
                    .map(|(position, logged)| {
                        self.db
                            .begin_write(index, entry_seed(index, time_ms, position as u64));
                        let applied = self.command(logged, index, time_ms);
                        self.take_events(index, time_ms);
                        applied
                    })
                    .collect(),
            ),
            Op::Exec(transaction) => self.transaction(&transaction, index, time_ms),
            Op::Expire(keys) => {
                self.migrations.note_changed(&keys, index);
                let deleted = self.db.delete_expired(&keys, time_ms);
                Applied::Reply(Reply::Integer(deleted as i64))
            }
            Op::Evict(keys) => {
                self.migrations.note_changed(&keys, index);
                let evicted = self.db.evict(&keys);
                Applied::Reply(Reply::Integer(evicted as i64))
            }
            Op::Own { version, slots } => {
                if version > self.ownership.version {
                    let before =
                        std::mem::replace(&mut self.ownership, Ownership { version, slots });
                    // Activating or dropping a range's keys touches each
                    // of them: the node's other groups go on meanwhile.
                    let (migrations, db) = (&mut self.migrations, &mut self.db);
                    polis_raft::state_read::off_runtime(|| {
                        migrations.owned(db, &before.slots, &self.ownership.slots);
                    });
                    // Keys arriving or leaving with slots are no client's
                    // writes: they notify nothing.
                    drop(self.db.take_events());
                }
                Applied::Reply(Reply::Integer(self.ownership.version as i64))
            }
            Op::Track { migration, slots } => {
                self.migrations.track(migration, slots);
                Applied::Reply(Reply::ok())
            }
            Op::Freeze { migration } => {
                self.migrations.set_frozen(migration, true);
                Applied::Reply(Reply::ok())
            }
            Op::Thaw { migration } => {
                self.migrations.set_frozen(migration, false);
                Applied::Reply(Reply::ok())
            }
            Op::Untrack { migration } => {
                self.migrations.untrack(migration);
                Applied::Reply(Reply::ok())
            }
            Op::Stage {
                migration,
                slots,
                reset,
                read_at,
                keys,
            } => {
                if self.owns_any(&slots) {
                    // Owned already: the switch applied here, the copy is
                    // late. Nothing to stage.
                    return Applied::Reply(Reply::ok());
                }
                self.migrations
                    .stage(migration, slots, reset, read_at, keys);
                Applied::Reply(Reply::ok())
            }
            Op::StageParts {
                migration,
                slots,
                read_at,
                parts,
            } => {
                if !self.owns_any(&slots) {
                    self.migrations.stage_parts(migration, read_at, parts);
                }
                Applied::Reply(Reply::ok())
            }
            Op::Unstage { migration } => {
                self.migrations.unstage(migration);
                Applied::Reply(Reply::ok())
            }
            Op::Feeds(feeds) => self.set_feeds(feeds),
            Op::FeedAppend { source, events } => self.feed_append(source, events, index, time_ms),
            Op::FeedAcked { through } => self.feed_acked(through),
            Op::Restore(keys) => self.restore_keys(keys, index, time_ms),
            Op::RestoreParts(parts) => self.restore_parts(parts, index, time_ms),
        }
    }
}

/// Returns the seed of the random picks of command `position` of the entry
/// at `index`, proposed at `time_ms`: the same on every replica.
fn entry_seed(index: u64, time_ms: u64, position: u64) -> u64 {
    index.rotate_left(32) ^ time_ms ^ position.wrapping_mul(0x9E37_79B9_7F4A_7C15)
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

impl DataMachine {
    /// Returns true when this shard owns one of `slots` (a migration's
    /// switch applied here: a late copy of them stages nothing).
    fn owns_any(&self, slots: &SlotSet) -> bool {
        slots
            .ranges()
            .iter()
            .flat_map(|range| range.slots())
            .any(|slot| self.ownership.slots.contains(slot))
    }

    /// The snapshot's bytes before the keyspace's.
    fn snapshot_head(&self) -> Vec<u8> {
        let ownership = postcard::to_stdvec(&self.ownership).unwrap_or_default();
        let migrations = postcard::to_stdvec(&self.migrations).unwrap_or_default();
        let feed = postcard::to_stdvec(&self.feed).unwrap_or_default();
        let mut bytes = Vec::with_capacity(13 + ownership.len() + migrations.len() + feed.len());
        bytes.push(SNAPSHOT_FORMAT);
        for part in [&ownership, &migrations, &feed] {
            bytes.extend_from_slice(&(part.len() as u32).to_le_bytes());
            bytes.extend_from_slice(part);
        }
        bytes
    }
}

impl StateMachine for DataMachine {
    fn begin_entry(&mut self, term: u64) {
        self.entry_term = term;
    }

    fn apply(&mut self, index: u64, time_ms: u64, payload: &[u8]) -> Bytes {
        let op: Op = match version::decode_entry(payload) {
            Ok(op) => op,
            Err(detail) => polis_raft::state_machine::undecodable_entry(self.group, index, &detail),
        };
        let applied = self.execute(op, index, time_ms);
        self.report_footprint();
        self.take_events(index, time_ms);
        encode(&applied)
    }

    /// `| format (1) | ownership length (u32 LE) | ownership | migrations
    /// length (u32 LE) | migrations | feed length (u32 LE) | feed |
    /// keyspace |`
    fn snapshot(&self) -> Vec<u8> {
        let mut bytes = self.snapshot_head();
        bytes.extend_from_slice(&self.db.to_snapshot());
        bytes
    }

    /// The same bytes as [`StateMachine::snapshot`]; the keyspace follows
    /// in steps.
    fn snapshot_begin(&mut self) -> Vec<u8> {
        let mut bytes = self.snapshot_head();
        bytes.extend_from_slice(&self.db.pin());
        bytes
    }

    fn snapshot_step(&mut self, out: &mut Vec<u8>, keys: usize) -> SnapshotStep {
        match self.db.pinned_step(out, keys) {
            Some(true) => SnapshotStep::Done,
            Some(false) => SnapshotStep::More,
            None => SnapshotStep::Lost,
        }
    }

    fn snapshot_abandon(&mut self) {
        self.db.unpin();
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let DecodedSnapshot {
            ownership,
            migrations,
            feed,
            mut db,
        } = decode_snapshot(data)?;
        // The node's configuration stays; access words were not stored:
        // every key counts as used now (this replica knows no better).
        db.configure_like(&self.db);
        db.stamp_access(crate::node::now_ms());
        self.db = db;
        self.ownership = ownership;
        self.migrations = migrations;
        self.feed = feed;
        self.refresh_events_mask();
        self.report_footprint();
        Ok(())
    }

    fn items(&self) -> u64 {
        self.db.len() as u64
    }

    fn bytes(&self) -> u64 {
        self.db.used_memory() as u64
    }

    fn version(&self) -> u64 {
        self.ownership.version
    }
}

/// A replica that goes takes its keyspace out of the node's footprint.
impl Drop for DataMachine {
    fn drop(&mut self) {
        if let Some((footprint, reported)) = &mut self.footprint {
            reported.withdraw(footprint);
        }
    }
}

/// A shard's snapshot, decoded.
pub(crate) struct DecodedSnapshot {
    pub ownership: Ownership,
    pub migrations: Migrations,
    pub feed: crate::feed::FeedState,
    pub db: Db,
}

/// Decodes what [`StateMachine::snapshot`] of a [`DataMachine`] encoded,
/// in any format this binary reads.
///
/// # Errors
/// A message when `data` is not such a snapshot.
pub(crate) fn decode_snapshot(data: &[u8]) -> Result<DecodedSnapshot, String> {
    let parts = split_snapshot(data)?;
    let migrations = match parts.migrations {
        None => Ok(Migrations::default()),
        Some(migrations) if parts.format == 2 => {
            postcard::from_bytes::<crate::migrating::MigrationsV2>(migrations).map(Migrations::from)
        }
        Some(migrations) => postcard::from_bytes(migrations),
    }
    .map_err(|error| format!("migrations: {error}"))?;
    let feed = match parts.feed {
        None => crate::feed::FeedState::default(),
        Some(feed) => {
            postcard::from_bytes(feed).map_err(|error| format!("change feed: {error}"))?
        }
    };
    let db = Db::from_snapshot(parts.keyspace).map_err(|error| error.to_string())?;
    Ok(DecodedSnapshot {
        ownership: parts.ownership,
        migrations,
        feed,
        db,
    })
}

/// A shard's snapshot cut into its parts, only the ownership decoded.
pub(crate) struct SnapshotParts<'a> {
    pub format: u8,
    pub ownership: Ownership,
    pub migrations: Option<&'a [u8]>,
    pub feed: Option<&'a [u8]>,
    pub keyspace: &'a [u8],
}

/// Cuts a shard's snapshot into its parts (see [`StateMachine::snapshot`]
/// of [`DataMachine`]).
///
/// # Errors
/// A message when `data` is not such a snapshot.
pub(crate) fn split_snapshot(data: &[u8]) -> Result<SnapshotParts<'_>, String> {
    let Some((&format, rest)) = data.split_first() else {
        return Err("an empty snapshot".into());
    };
    if !(1..=SNAPSHOT_FORMAT).contains(&format) {
        return Err(format!(
            "snapshot format {format}; this binary reads formats 1 to {SNAPSHOT_FORMAT}"
        ));
    }
    let (ownership, rest) = length_prefixed(rest)?;
    let ownership: Ownership =
        postcard::from_bytes(ownership).map_err(|error| format!("ownership: {error}"))?;
    let (migrations, rest) = if format == 1 {
        (None, rest)
    } else {
        let (migrations, rest) = length_prefixed(rest)?;
        (Some(migrations), rest)
    };
    let (feed, keyspace) = if format < 4 {
        (None, rest)
    } else {
        let (feed, rest) = length_prefixed(rest)?;
        (Some(feed), rest)
    };
    Ok(SnapshotParts {
        format,
        ownership,
        migrations,
        feed,
        keyspace,
    })
}

/// Splits a `| length (u32 LE) | part |` prefix off `bytes`.
fn length_prefixed(bytes: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (len, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or("a snapshot cut short")?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err("a snapshot cut short".into());
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
#[path = "machine_queue_test.rs"]
mod queue_tests;
#[cfg(test)]
#[path = "machine_test.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "machine_lock_test.rs"]
mod lock_tests;

#[cfg(test)]
#[path = "machine_evict_test.rs"]
mod evict_tests;
