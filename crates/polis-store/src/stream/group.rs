//! A stream's consumer groups: their consumers and the pending entries
//! each was delivered and has not acknowledged.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::queue::GroupQueue;
use super::StreamId;

/// A message delivered to a consumer and not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEntry {
    pub consumer: Bytes,
    /// The leader's time of the last delivery.
    pub delivered_ms: u64,
    pub deliveries: u64,
}

/// A consumer of a group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    /// The leader's time of the consumer's last read or claim.
    pub seen_ms: u64,
    /// The ids of its pending entries.
    pub pending: BTreeSet<StreamId>,
}

/// A consumer group of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerGroup {
    pub last_delivered: StreamId,
    /// Entries the group read (Redis 7.0's `entries-read`), when known.
    pub entries_read: Option<u64>,
    pub pending: BTreeMap<StreamId, PendingEntry>,
    pub consumers: BTreeMap<Bytes, Consumer>,
    /// polis's queue options and their state (see [`super::queue`]); None for a
    /// plain Redis group. Not in this derived encoding, which stays the
    /// one older binaries read: a stream whose groups have it is stored
    /// under its own tag (`value.rs`).
    #[serde(skip)]
    pub queue: Option<Box<GroupQueue>>,
}

impl ConsumerGroup {
    /// Returns a group that delivered up to `last_delivered`.
    pub fn new(last_delivered: StreamId, entries_read: Option<u64>) -> Self {
        Self {
            last_delivered,
            entries_read,
            ..Self::default()
        }
    }

    /// Returns the consumer `name`, created when absent, with its seen
    /// time set to `now_ms` (Redis refreshes it on every lookup that
    /// reads or claims).
    pub fn touch_consumer(&mut self, name: &Bytes, now_ms: u64) -> &mut Consumer {
        let consumer = self.consumers.entry(name.clone()).or_default();
        consumer.seen_ms = now_ms;
        consumer
    }

    /// Creates consumer `name` unless it exists; returns true when created.
    pub fn create_consumer(&mut self, name: &Bytes, now_ms: u64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(
            name.clone(),
            Consumer {
                seen_ms: now_ms,
                pending: BTreeSet::new(),
            },
        );
        true
    }

    /// Removes consumer `name` and its pending entries; returns how many
    /// entries it had pending, or None when it did not exist.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let consumer = self.consumers.remove(name)?;
        for id in &consumer.pending {
            self.pending.remove(id);
            self.forget_nack(*id);
        }
        Some(consumer.pending.len())
    }

    /// Acknowledges `id`; returns true when it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(entry) = self.pending.remove(&id) else {
            return false;
        };
        if let Some(consumer) = self.consumers.get_mut(&entry.consumer) {
            consumer.pending.remove(&id);
        }
        self.forget_nack(id);
        true
    }

    /// Gives pending entry `id` to `consumer` (which must exist), creating
    /// it when absent; returns the entry. A negative acknowledgement of it
    /// is forgotten: it is delivered again.
    pub fn assign(&mut self, id: StreamId, consumer: &Bytes, now_ms: u64) -> &mut PendingEntry {
        self.forget_nack(id);
        let previous = self.pending.get(&id).map(|entry| entry.consumer.clone());
        if let Some(previous) = previous.filter(|previous| previous != consumer) {
            if let Some(owner) = self.consumers.get_mut(&previous) {
                owner.pending.remove(&id);
            }
        }
        if let Some(owner) = self.consumers.get_mut(consumer) {
            owner.pending.insert(id);
        }
        let entry = self.pending.entry(id).or_insert_with(|| PendingEntry {
            consumer: consumer.clone(),
            delivered_ms: now_ms,
            deliveries: 0,
        });
        entry.consumer = consumer.clone();
        entry
    }
}
