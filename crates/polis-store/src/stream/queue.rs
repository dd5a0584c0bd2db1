//! What polis adds to a consumer group beyond Redis Streams: the options
//! of a work queue (ack-wait redelivery, max deliveries, a dead-letter
//! stream) and the state they need (negative acknowledgements, counters).
//!
//! A group without them is a plain Redis group and is stored exactly as
//! before (see `value.rs`: a stream whose groups have queue state is
//! stored under a tag of its own, so a snapshot of plain Redis streams
//! keeps the bytes older binaries wrote and read).
//!
//! A pending entry is *due* for redelivery from a time: the time its
//! negative acknowledgement named, else its delivery time plus the
//! group's ack-wait; an entry of a group with neither is never due, as in
//! Redis. Due entries go, at the next read of new entries by any consumer
//! of the group (`XREADGROUP ... >`), to that reader, before new entries;
//! one already delivered max-deliveries times moves to the dead-letter
//! stream instead. Every time here is a leader's timestamp from a log
//! entry, so every replica finds the same entries due.

use std::collections::BTreeMap;

use bytes::Bytes;
use polis_types::limits::QUEUE_DUE_SCAN_ENTRIES_MAX;
use serde::{Deserialize, Serialize};

use super::{ConsumerGroup, PendingEntry, StreamId};

/// The queue options of a group; each `None` is Redis's behaviour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueOptions {
    /// A delivery not acknowledged within this time is redelivered.
    pub ack_wait_ms: Option<u64>,
    /// Deliveries after which an entry is not delivered again.
    pub max_deliveries: Option<u64>,
    /// The stream (of the same slot) entries past max deliveries move to.
    pub dead_letter: Option<Bytes>,
}

impl QueueOptions {
    /// Returns true when no option is set.
    pub fn is_empty(&self) -> bool {
        self.ack_wait_ms.is_none() && self.max_deliveries.is_none() && self.dead_letter.is_none()
    }
}

/// A group's queue options and the state they need.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupQueue {
    pub options: QueueOptions,
    /// Pending entries negatively acknowledged (XNACK), each with the
    /// time it is due from; forgotten when the entry is delivered again,
    /// claimed or acknowledged.
    pub nacked: BTreeMap<StreamId, u64>,
    /// Entries redelivered by reads of new entries.
    pub redeliveries: u64,
    /// Entries moved to the dead-letter stream.
    pub dead_lettered: u64,
}

/// How a pending entry stands for redelivery at some time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DueState {
    /// Not due, now or ever (no ack-wait, no negative acknowledgement).
    Never,
    /// Due from this time on (not yet).
    Later(u64),
    /// Due: the next read of new entries takes it.
    Due,
    /// Due, but delivered max-deliveries times: the next read moves it to
    /// the dead-letter stream, or leaves it pending when the group has
    /// none (it is never delivered again by a read).
    Exhausted,
}

/// The due entries a read found, in id order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DueEntries {
    /// To deliver again to the reader (at most the read's count).
    pub redeliver: Vec<StreamId>,
    /// Past max deliveries, for the dead-letter stream (only when the
    /// group has one).
    pub dead: Vec<StreamId>,
}

impl ConsumerGroup {
    /// Returns the group's queue options and state, when it has any.
    pub fn queue(&self) -> Option<&GroupQueue> {
        self.queue.as_deref()
    }

    /// Returns the group's queue options and state, created empty when
    /// absent.
    pub fn queue_mut(&mut self) -> &mut GroupQueue {
        self.queue.get_or_insert_with(Box::default)
    }

    /// Returns the group's queue options (all `None` for a Redis group).
    pub fn options(&self) -> QueueOptions {
        self.queue()
            .map(|queue| queue.options.clone())
            .unwrap_or_default()
    }

    /// Replaces the queue options; a group left with no option and no
    /// negative acknowledgement is a plain Redis group again (its
    /// counters go too).
    pub fn set_options(&mut self, options: QueueOptions) {
        self.queue_mut().options = options;
        self.tidy_queue();
    }

    /// Drops the queue state when it holds nothing a Redis group lacks.
    pub(super) fn tidy_queue(&mut self) {
        let empty = self
            .queue()
            .is_some_and(|queue| queue.options.is_empty() && queue.nacked.is_empty());
        if empty {
            self.queue = None;
        }
    }

    /// Forgets the negative acknowledgement of `id` (it was delivered
    /// again, claimed, or acknowledged).
    pub(super) fn forget_nack(&mut self, id: StreamId) {
        if let Some(queue) = self.queue.as_deref_mut() {
            if queue.nacked.remove(&id).is_some() {
                self.tidy_queue();
            }
        }
    }

    /// Records a delivery of pending entry `id` at `now_ms` that is not a
    /// claim (a consumer reading its own history): the count goes up and
    /// any negative acknowledgement is forgotten.
    pub fn redelivered_in_place(&mut self, id: StreamId, now_ms: u64) {
        if let Some(entry) = self.pending.get_mut(&id) {
            entry.delivered_ms = now_ms;
            entry.deliveries += 1;
        }
        self.forget_nack(id);
    }

    /// Makes pending entry `id` due at `due_ms` (XNACK); returns false
    /// when it is not pending.
    pub fn nack(&mut self, id: StreamId, due_ms: u64) -> bool {
        if !self.pending.contains_key(&id) {
            return false;
        }
        self.queue_mut().nacked.insert(id, due_ms);
        true
    }

    /// Returns how pending entry `id` stands at `now_ms`.
    pub fn due_state(&self, id: StreamId, entry: &PendingEntry, now_ms: u64) -> DueState {
        let Some(queue) = self.queue() else {
            return DueState::Never;
        };
        let due_ms = match queue.nacked.get(&id) {
            Some(due_ms) => *due_ms,
            None => match queue.options.ack_wait_ms {
                Some(wait_ms) => entry.delivered_ms.saturating_add(wait_ms),
                None => return DueState::Never,
            },
        };
        if due_ms > now_ms {
            return DueState::Later(due_ms);
        }
        match queue.options.max_deliveries {
            Some(max) if entry.deliveries >= max => DueState::Exhausted,
            _ => DueState::Due,
        }
    }

    /// Returns the entries due at `now_ms`, in id order: up to `limit` to
    /// redeliver, and the exhausted ones met before those for the
    /// dead-letter stream (at most `dead_max`) when the group has one.
    pub fn due_entries(&self, now_ms: u64, limit: usize, dead_max: usize) -> DueEntries {
        let mut due = DueEntries::default();
        let Some(queue) = self.queue() else {
            return due;
        };
        let has_dead_letter = queue.options.dead_letter.is_some();
        for (id, entry) in self.pending.iter().take(QUEUE_DUE_SCAN_ENTRIES_MAX) {
            if due.redeliver.len() >= limit {
                break;
            }
            match self.due_state(*id, entry, now_ms) {
                DueState::Due => due.redeliver.push(*id),
                DueState::Exhausted if has_dead_letter && due.dead.len() < dead_max => {
                    due.dead.push(*id);
                }
                _ => {}
            }
        }
        due
    }

    /// Returns the earliest time after `after_ms` at which a pending
    /// entry becomes due and a read could act on it (redeliver it, or
    /// move it to a dead-letter stream); the leader's timer wakes blocked
    /// readers then.
    pub fn next_due_after(&self, after_ms: u64) -> Option<u64> {
        let queue = self.queue()?;
        let has_dead_letter = queue.options.dead_letter.is_some();
        self.pending
            .iter()
            .take(QUEUE_DUE_SCAN_ENTRIES_MAX)
            .filter(|(_, entry)| {
                has_dead_letter
                    || queue
                        .options
                        .max_deliveries
                        .is_none_or(|max| entry.deliveries < max)
            })
            .filter_map(|(id, entry)| match queue.nacked.get(id) {
                Some(due_ms) => Some(*due_ms),
                None => queue
                    .options
                    .ack_wait_ms
                    .map(|wait_ms| entry.delivered_ms.saturating_add(wait_ms)),
            })
            .filter(|due_ms| *due_ms > after_ms)
            .min()
    }
}

#[cfg(test)]
#[path = "queue_test.rs"]
mod tests;
