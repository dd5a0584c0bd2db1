//! The queue extensions of consumer groups, beyond Redis Streams: the
//! options XGROUP CREATE and XGROUP SETOPTIONS take (`ACKWAIT ms`,
//! `MAXDELIVERIES n`, `DEADLETTER key` / `NODEADLETTER`), XNACK, and what
//! a read of new entries (`XREADGROUP ... >`) does with the entries due
//! again: deliver them to the reader, before new entries, or move those
//! delivered max-deliveries times to the group's dead-letter stream.
//!
//! Redis clients never send these options, so a plain Redis group
//! behaves as in Redis. Everything runs at apply with the leader's time
//! from the log entry (see `polis_store::stream::queue`), so every
//! replica redelivers and dead-letters the same entries. The dead-letter
//! stream hashes to the stream's slot (checked when configured, and again
//! at the move), so the move is one change of one shard's keyspace.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::stream::QueueOptions;
use polis_store::{event_class, Db, StreamId};
use polis_types::key_hash_slot;
use polis_types::limits::QUEUE_WAIT_MS_MAX;

use super::id::{no_such_key_or_group, node_limits, parse_strict_id};
use crate::access::{stream_at, update_stream};
use crate::args::{arg, int_arg, is};
use crate::command::WriteCommand;

/// Why an entry went to the dead-letter stream (its `reason` field).
pub const REASON_MAX_DELIVERIES: &str = "max-deliveries";

/// Queue options as given: `None` leaves an option as it is, `Some(None)`
/// clears it (`ACKWAIT 0`, `MAXDELIVERIES 0`, `NODEADLETTER`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionChanges {
    pub ack_wait_ms: Option<Option<u64>>,
    pub max_deliveries: Option<Option<u64>>,
    pub dead_letter: Option<Option<Bytes>>,
}

impl OptionChanges {
    /// Returns true when no option was given.
    pub fn is_empty(&self) -> bool {
        self.ack_wait_ms.is_none() && self.max_deliveries.is_none() && self.dead_letter.is_none()
    }

    /// Returns `options` with these changes.
    pub fn applied_to(&self, mut options: QueueOptions) -> QueueOptions {
        if let Some(ack_wait_ms) = self.ack_wait_ms {
            options.ack_wait_ms = ack_wait_ms;
        }
        if let Some(max_deliveries) = self.max_deliveries {
            options.max_deliveries = max_deliveries;
        }
        if let Some(dead_letter) = &self.dead_letter {
            options.dead_letter.clone_from(dead_letter);
        }
        options
    }

    /// Parses the queue option at `args[index]` into these changes, for
    /// the group of stream `key`; returns how many arguments it took, or
    /// 0 when `args[index]` is no queue option.
    ///
    /// # Errors
    /// A value that is not an integer, negative or too large; an option
    /// given twice; a dead-letter stream of another slot (CROSSSLOT) or
    /// the stream itself.
    pub fn parse_at(
        &mut self,
        args: &[Bytes],
        index: usize,
        key: &[u8],
    ) -> Result<usize, ReplyError> {
        let option = &args[index];
        let value = args.get(index + 1);
        if is(option, "nodeadletter") {
            if self.dead_letter.is_some() {
                return Err(ReplyError::Syntax);
            }
            self.dead_letter = Some(None);
            return Ok(1);
        }
        let Some(value) = value else {
            return Ok(0);
        };
        if is(option, "ackwait") && self.ack_wait_ms.is_none() {
            let wait_ms = bounded_ms(value, "ACKWAIT")?;
            self.ack_wait_ms = Some((wait_ms > 0).then_some(wait_ms));
        } else if is(option, "maxdeliveries") && self.max_deliveries.is_none() {
            let max = u64::try_from(int_arg(value)?)
                .map_err(|_| ReplyError::err("value for MAXDELIVERIES must be positive or 0"))?;
            self.max_deliveries = Some((max > 0).then_some(max));
        } else if is(option, "deadletter") && self.dead_letter.is_none() {
            check_dead_letter(key, value)?;
            self.dead_letter = Some(Some(value.clone()));
        } else if is(option, "ackwait") || is(option, "maxdeliveries") || is(option, "deadletter") {
            return Err(ReplyError::Syntax);
        } else {
            return Ok(0);
        }
        Ok(2)
    }
}

/// Parses milliseconds from 0 to [`QUEUE_WAIT_MS_MAX`] for option `name`.
fn bounded_ms(text: &[u8], name: &str) -> Result<u64, ReplyError> {
    let value = int_arg(text)?;
    let value = u64::try_from(value)
        .map_err(|_| ReplyError::err(format!("value for {name} must be positive or 0")))?;
    if value > QUEUE_WAIT_MS_MAX {
        return Err(ReplyError::err(format!(
            "value for {name} must be at most {QUEUE_WAIT_MS_MAX} milliseconds"
        )));
    }
    Ok(value)
}

/// Checks that `dead_letter` may be the dead-letter stream of `key`:
/// another key of the same slot, so the move is one shard's change.
fn check_dead_letter(key: &[u8], dead_letter: &[u8]) -> Result<(), ReplyError> {
    if dead_letter == key {
        return Err(ReplyError::err(
            "the dead-letter stream must be another key than the stream",
        ));
    }
    if key_hash_slot(dead_letter) != key_hash_slot(key) {
        return Err(ReplyError::CrossSlot);
    }
    Ok(())
}

/// Checks, at apply, that the dead-letter stream named in `changes` is
/// absent or a stream (WRONGTYPE otherwise).
pub(super) fn check_dead_letter_type(
    db: &Db,
    changes: &OptionChanges,
    now_ms: u64,
) -> Result<(), ReplyError> {
    if let Some(Some(dead_letter)) = &changes.dead_letter {
        stream_at(db, dead_letter, now_ms)?;
    }
    Ok(())
}

/// `XNACK key group [DELAY ms] id [id ...]`: the pending entries `id`
/// are due again at once, or `DELAY` milliseconds from now; the next read
/// of new entries by any consumer of the group takes them (or moves them
/// to the dead-letter stream when they were delivered max-deliveries
/// times). Replies how many of them were pending.
#[derive(Debug, Clone, PartialEq)]
pub struct XNack {
    pub key: Bytes,
    pub group: Bytes,
    pub delay_ms: u64,
    pub ids: Vec<StreamId>,
}

impl WriteCommand for XNack {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let group = arg(args, 2)?.clone();
        let mut at = 3;
        let mut delay_ms = 0;
        if is(arg(args, at)?, "delay") {
            delay_ms = bounded_ms(arg(args, at + 1)?, "DELAY")?;
            at += 2;
        }
        arg(args, at)?;
        let ids = args[at..]
            .iter()
            .map(|id| parse_strict_id(id))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            key,
            group,
            delay_ms,
            ids,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        crate::access::reply(self.run(db, now_ms))
    }
}

impl XNack {
    fn run(&self, db: &mut Db, now_ms: u64) -> Result<Reply, ReplyError> {
        let has_group = stream_at(db, &self.key, now_ms)?
            .is_some_and(|stream| stream.groups.contains_key(&self.group));
        if !has_group {
            return Err(no_such_key_or_group(&self.key, &self.group, ""));
        }
        let due_ms = now_ms.saturating_add(self.delay_ms);
        let nacked = update_stream(db, &self.key, now_ms, |stream| {
            let Some(group) = stream.groups.get_mut(&self.group) else {
                return 0;
            };
            self.ids
                .iter()
                .filter(|id| group.nack(**id, due_ms))
                .count()
        })?;
        if nacked > 0 {
            db.notify(event_class::STREAM, "xnack", &self.key);
        }
        Ok(Reply::Integer(nacked as i64))
    }
}

/// Returns true when `args` use a queue extension, which only a binary
/// that knows them may apply: XNACK, XGROUP SETOPTIONS, and XGROUP CREATE
/// with a queue option. Redis's own forms return false.
pub fn uses_queue_extensions(args: &[Bytes]) -> bool {
    let Some(name) = args.first() else {
        return false;
    };
    if is(name, "xnack") {
        return true;
    }
    if !is(name, "xgroup") {
        return false;
    }
    match super::XGroup::parse(args) {
        Ok(command) => command.uses_queue_options(),
        // Refused before the log: never proposed.
        Err(_) => false,
    }
}

/// Returns the dead-letter streams a write may append to besides the keys
/// it names: those of the groups an XREADGROUP reads (a read of new
/// entries moves exhausted entries there). A migration notes them as
/// changed, and their blocked readers are woken.
pub fn dead_letter_keys(db: &Db, args: &[Bytes], now_ms: u64) -> Vec<Bytes> {
    if !args.first().is_some_and(|name| is(name, "xreadgroup")) {
        return Vec::new();
    }
    let Ok(read) = super::read::parse_read_args(args, true) else {
        return Vec::new();
    };
    let Some((group, _)) = &read.group else {
        return Vec::new();
    };
    read.keys
        .iter()
        .filter_map(|key| {
            let stream = stream_at(db, key, now_ms).ok().flatten()?;
            stream.groups.get(group)?.options().dead_letter
        })
        .collect()
}

/// One entry on its way to the dead-letter stream.
struct Doomed {
    id: StreamId,
    consumer: Bytes,
    deliveries: u64,
    fields: Vec<Bytes>,
}

/// Moves the pending entries `ids` of `group` of stream `key` (each
/// delivered max-deliveries times) to the group's dead-letter stream:
/// an XADD there with fields naming where it came from, then the
/// original fields, and the entry leaves the pending entries list.
/// Entries deleted from the stream meanwhile just leave the list, as
/// XAUTOCLAIM drops them. When the dead-letter stream cannot take them
/// (it holds another type, its ids are exhausted) they stay pending.
/// Returns how many moved.
///
/// # Errors
/// WRONGTYPE when `key` is not a stream (it was checked before).
pub(super) fn move_to_dead_letter(
    db: &mut Db,
    key: &Bytes,
    group: &Bytes,
    ids: &[StreamId],
    now_ms: u64,
) -> Result<usize, ReplyError> {
    let Some(stream) = stream_at(db, key, now_ms)? else {
        return Ok(0);
    };
    let Some(consumer_group) = stream.groups.get(group) else {
        return Ok(0);
    };
    let Some(dead_letter) = consumer_group.options().dead_letter else {
        return Ok(0);
    };
    if key_hash_slot(&dead_letter) != key_hash_slot(key) {
        // Refused when configured; a move across slots would reach
        // another shard's keys.
        return Ok(0);
    }
    let mut doomed = Vec::with_capacity(ids.len());
    let mut gone = Vec::new();
    for id in ids {
        match (stream.get(*id), consumer_group.pending.get(id)) {
            (Some(fields), Some(entry)) => doomed.push(Doomed {
                id: *id,
                consumer: entry.consumer.clone(),
                deliveries: entry.deliveries,
                fields: fields.clone(),
            }),
            (None, Some(_)) => gone.push(*id),
            _ => {}
        }
    }
    let last_id = match stream_at(db, &dead_letter, now_ms) {
        Ok(target) => target.map_or(StreamId::MIN, |target| target.last_id),
        Err(_) => StreamId::MAX,
    };
    let mut appended = Vec::new();
    if last_id != StreamId::MAX && !doomed.is_empty() {
        let limits = node_limits(db);
        let source = key.clone();
        let group_name = group.clone();
        let added = update_stream(db, &dead_letter, now_ms, |target| {
            let mut added = Vec::new();
            for entry in &doomed {
                let Some(id) = target.next_auto_id(now_ms) else {
                    break;
                };
                target.append(id, dead_letter_fields(&source, &group_name, entry), limits);
                added.push(entry.id);
            }
            added
        })?;
        for _ in &added {
            db.notify(event_class::STREAM, "xadd", &dead_letter);
        }
        appended = added;
    }
    if appended.is_empty() && gone.is_empty() {
        return Ok(0);
    }
    let moved = appended.len();
    update_stream(db, key, now_ms, |stream| {
        if let Some(group) = stream.groups.get_mut(group) {
            for id in appended.iter().chain(&gone) {
                group.ack(*id);
            }
            if moved > 0 {
                group.queue_mut().dead_lettered += moved as u64;
            }
        }
    })?;
    if moved > 0 {
        db.notify(event_class::STREAM, "xdeadletter", key);
    }
    Ok(moved)
}

/// The fields of an entry in the dead-letter stream: where it came from,
/// then its own fields.
fn dead_letter_fields(source: &Bytes, group: &Bytes, entry: &Doomed) -> Vec<Bytes> {
    let mut fields = Vec::with_capacity(12 + entry.fields.len());
    let mut pair = |name: &'static str, value: Bytes| {
        fields.push(Bytes::from_static(name.as_bytes()));
        fields.push(value);
    };
    pair("source-stream", source.clone());
    pair("source-group", group.clone());
    pair("source-id", Bytes::from(entry.id.to_string()));
    pair("last-consumer", entry.consumer.clone());
    pair("deliveries", Bytes::from(entry.deliveries.to_string()));
    pair(
        "reason",
        Bytes::from_static(REASON_MAX_DELIVERIES.as_bytes()),
    );
    fields.extend(entry.fields.iter().cloned());
    fields
}
