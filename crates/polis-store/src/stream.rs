//! The value of a stream key: entries by id, and the consumer groups that
//! read them with their pending entries lists.
//!
//! Every time here (delivery, idle, seen) is a leader's timestamp carried
//! in a log entry, never a clock read at apply, so every replica holds the
//! same bytes.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Approximate bookkeeping bytes of one stream entry.
pub const STREAM_ENTRY_OVERHEAD_BYTES: usize = 48;

/// A stream entry id: milliseconds and a sequence number.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    /// The smallest id.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest id.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// Returns the id `ms-seq`.
    pub const fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }

    /// Returns the id right after this one, or None after the largest.
    pub fn next(self) -> Option<Self> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(Self { ms: self.ms, seq }),
            None => self.ms.checked_add(1).map(|ms| Self { ms, seq: 0 }),
        }
    }

    /// Returns the id right before this one, or None before the smallest.
    pub fn prev(self) -> Option<Self> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(Self { ms: self.ms, seq }),
            None => self.ms.checked_sub(1).map(|ms| Self { ms, seq: u64::MAX }),
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

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
}

/// A stream: entries of field-value pairs in id order, and its groups.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamValue {
    /// Each entry's fields and values, alternating.
    pub entries: BTreeMap<StreamId, Vec<Bytes>>,
    pub last_id: StreamId,
    pub max_deleted_id: StreamId,
    /// Entries ever added (XADD), deleted ones included.
    pub entries_added: u64,
    pub groups: BTreeMap<Bytes, ConsumerGroup>,
    /// Sum of field and value lengths of the entries.
    pub payload_bytes: usize,
}

impl StreamValue {
    /// Returns an empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns true when the stream has no entries (an empty stream is
    /// still a key, unlike an empty list).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns an estimate of the bytes this stream occupies.
    pub fn mem_bytes(&self) -> usize {
        let pending: usize = self
            .groups
            .values()
            .map(|group| group.pending.len() * 96 + group.consumers.len() * 64)
            .sum();
        self.payload_bytes + self.entries.len() * STREAM_ENTRY_OVERHEAD_BYTES + pending + 64
    }
}
