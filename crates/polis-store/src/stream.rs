//! The value of a stream key: entries by id, the nodes Redis would keep
//! them in, and the consumer groups that read them with their pending
//! entries lists.
//!
//! Every time here (delivery, idle, seen) is a leader's timestamp carried
//! in a log entry, never a clock read at apply, so every replica holds the
//! same bytes.
//!
//! Redis stores a stream as a radix tree of listpack nodes, and its
//! approximate trimming (`MAXLEN ~`, `MINID ~`) removes whole nodes only.
//! polis keeps the entries in one tree but records the same node
//! boundaries (first id, live and deleted counts, last id, listpack size)
//! so that approximate trimming removes exactly what Redis would, given
//! the same `stream-node-max-entries` and `stream-node-max-bytes`. The
//! boundaries are part of the replicated value: every replica applies the
//! same appends with the same limits and gets the same nodes.

mod group;
mod id;
mod listpack;
pub mod queue;

pub use group::{Consumer, ConsumerGroup, PendingEntry};
pub use id::StreamId;
pub use queue::{DueEntries, DueState, GroupQueue, QueueOptions};

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use listpack::{integer_bytes, string_bytes, LISTPACK_EMPTY_BYTES};

use crate::db::detached;
use crate::memory::{btree_bytes, btree_entry_bytes, heap_bytes_spread, Fill};

/// An entry's B-tree slot: its id and its `Vec` of fields and values.
const ENTRY_SLOT_BYTES: usize = 40;
/// A field's or value's handle in an entry's `Vec`.
const ITEM_HANDLE_BYTES: usize = 32;
/// A node's B-tree slot: its master id and its [`StreamNode`].
const NODE_SLOT_BYTES: usize = 80;
/// A node's master fields: a `Vec` of handles sharing the first entry's
/// buffers, which that makes allocate shared headers.
const NODE_FIELDS_BYTES: usize = 96;
/// A pending entry: its slot in the group's list and in its consumer's.
const PENDING_BYTES: usize =
    btree_entry_bytes(64, Fill::Ascending) + btree_entry_bytes(16, Fill::Ascending);
/// A consumer: its slot and its name.
const CONSUMER_BYTES: usize = btree_entry_bytes(64, Fill::Random) + 32;
/// Largest listpack Redis builds (`STREAM_LISTPACK_MAX_SIZE`).
pub const STREAM_LISTPACK_MAX_BYTES: usize = 1 << 30;

/// Entry flags as Redis stores them in a listpack (`STREAM_ITEM_FLAG_*`).
const FLAG_SAMEFIELDS: i64 = 2;

/// The node sizes Redis cuts a stream at (`stream-node-max-entries`,
/// `stream-node-max-bytes`); 0 means no limit of that kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeLimits {
    pub max_entries: u64,
    pub max_bytes: usize,
}

impl Default for NodeLimits {
    fn default() -> Self {
        Self {
            max_entries: 100,
            max_bytes: 4096,
        }
    }
}

/// One node of Redis's radix tree of listpacks, keyed in
/// [`StreamValue`] by its master id (the id of its first entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamNode {
    /// Entries not deleted.
    pub live: u64,
    /// Entries flagged deleted but still in the listpack.
    pub deleted: u64,
    /// The id of the last entry appended, deleted or not.
    pub last_id: StreamId,
    /// The master entry's fields, which later entries may share.
    master_fields: Vec<Bytes>,
    /// Listpack bytes, except the live and deleted counters.
    bytes_without_counters: usize,
}

impl StreamNode {
    /// Returns the size of the node's listpack in Redis.
    pub fn listpack_bytes(&self) -> usize {
        self.bytes_without_counters
            + integer_bytes(i64::try_from(self.live).unwrap_or(i64::MAX))
            + integer_bytes(i64::try_from(self.deleted).unwrap_or(i64::MAX))
    }
}

/// How a trim decides what goes (XADD and XTRIM's MAXLEN / MINID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrimStrategy {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Keep no entry below this id.
    MinId(StreamId),
}

/// A trim request: the strategy, `~` (whole nodes only) and the most
/// entries it may delete (0: no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trim {
    pub strategy: TrimStrategy,
    pub approx: bool,
    pub limit: u64,
}

/// A stream: entries of field-value pairs in id order, and its groups.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamValue {
    /// Each live entry's fields and values, alternating.
    entries: BTreeMap<StreamId, Vec<Bytes>>,
    /// Redis's nodes by master id.
    nodes: BTreeMap<StreamId, StreamNode>,
    pub last_id: StreamId,
    /// Redis's `recorded-first-entry-id`.
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    /// Entries ever added (XADD), deleted ones included.
    pub entries_added: u64,
    pub groups: BTreeMap<Bytes, ConsumerGroup>,
    /// Sum of field and value lengths of the entries.
    payload_bytes: usize,
    /// Fields and values of the entries: derived from them, so not
    /// stored ([`StreamValue::recount`] after reading).
    #[serde(skip)]
    items: usize,
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

    /// Returns the live entries in id order.
    pub fn entries(&self) -> &BTreeMap<StreamId, Vec<Bytes>> {
        &self.entries
    }

    /// Returns the fields and values of entry `id`.
    pub fn get(&self, id: StreamId) -> Option<&Vec<Bytes>> {
        self.entries.get(&id)
    }

    /// Returns the nodes Redis would hold, by master id.
    pub fn nodes(&self) -> &BTreeMap<StreamId, StreamNode> {
        &self.nodes
    }

    /// Returns the id of the first live entry.
    pub fn first_entry_id(&self) -> Option<StreamId> {
        self.entries.keys().next().copied()
    }

    /// Returns the id of the last live entry (Redis's `streamLastValidID`).
    pub fn last_entry_id(&self) -> Option<StreamId> {
        self.entries.keys().next_back().copied()
    }

    /// Returns the id `XADD *` gives at `now_ms`: the time when it is past
    /// the last id's, else the last id plus one. None when the last id is
    /// the largest.
    pub fn next_auto_id(&self, now_ms: u64) -> Option<StreamId> {
        if now_ms > self.last_id.ms {
            Some(StreamId::new(now_ms, 0))
        } else {
            self.last_id.next()
        }
    }

    /// Appends an entry with `id`, which the caller checked is above the
    /// last id, to the last node, or to a new one when the last is full
    /// under `limits` (Redis's `streamAppendItem`).
    pub fn append(&mut self, id: StreamId, fields: Vec<Bytes>, limits: NodeLimits) {
        let raw_len: usize = fields.iter().map(Bytes::len).sum();
        let max_bytes = if limits.max_bytes == 0 || limits.max_bytes > STREAM_LISTPACK_MAX_BYTES {
            STREAM_LISTPACK_MAX_BYTES
        } else {
            limits.max_bytes
        };
        let names: Vec<&Bytes> = fields.iter().step_by(2).collect();
        let tail_has_room = self.nodes.values().next_back().is_some_and(|node| {
            node.listpack_bytes() + raw_len < max_bytes
                && (limits.max_entries == 0 || node.live + node.deleted < limits.max_entries)
        });
        if !tail_has_room {
            let master_bytes = integer_bytes(names.len() as i64)
                + names.iter().map(|name| string_bytes(name)).sum::<usize>()
                + integer_bytes(0);
            self.nodes.insert(
                id,
                StreamNode {
                    live: 0,
                    deleted: 0,
                    last_id: id,
                    master_fields: names.iter().map(|name| (*name).clone()).collect(),
                    bytes_without_counters: LISTPACK_EMPTY_BYTES + master_bytes,
                },
            );
        }
        if let Some((master_id, node)) = self.nodes.iter_mut().next_back() {
            let same_fields = node.master_fields.len() == names.len()
                && node.master_fields.iter().zip(&names).all(|(a, b)| a == *b);
            let ms_delta = id.ms.wrapping_sub(master_id.ms) as i64;
            let seq_delta = id.seq.wrapping_sub(master_id.seq) as i64;
            let mut bytes = integer_bytes(if same_fields { FLAG_SAMEFIELDS } else { 0 })
                + integer_bytes(ms_delta)
                + integer_bytes(seq_delta);
            let pairs = names.len() as i64;
            let mut pieces = pairs + 3;
            if same_fields {
                bytes += fields
                    .iter()
                    .skip(1)
                    .step_by(2)
                    .map(|v| string_bytes(v))
                    .sum::<usize>();
            } else {
                bytes += integer_bytes(pairs);
                bytes += fields.iter().map(|item| string_bytes(item)).sum::<usize>();
                pieces += pairs + 1;
            }
            bytes += integer_bytes(pieces);
            node.bytes_without_counters += bytes;
            node.live += 1;
            node.last_id = id;
        }
        self.payload_bytes += raw_len;
        self.items += fields.len();
        // Copies, so that an entry keeps no request's buffer alive.
        let fields: Vec<Bytes> = fields.iter().map(detached).collect();
        self.entries.insert(id, fields);
        self.entries_added += 1;
        self.last_id = id;
        if self.entries.len() == 1 {
            self.first_id = id;
        }
    }

    /// Removes live entry `id` as XDEL does (a node left with no live
    /// entry goes); returns true when it existed. Does not touch the
    /// recorded first id or the largest deleted id.
    fn remove_entry(&mut self, id: StreamId) -> bool {
        let Some(fields) = self.entries.remove(&id) else {
            return false;
        };
        self.payload_bytes -= fields.iter().map(Bytes::len).sum::<usize>();
        self.items -= fields.len();
        let master = self
            .nodes
            .range(..=id)
            .next_back()
            .map(|(master, _)| *master);
        if let Some(master) = master {
            let empty = match self.nodes.get_mut(&master) {
                Some(node) => {
                    node.live = node.live.saturating_sub(1);
                    node.deleted += 1;
                    node.live == 0
                }
                None => false,
            };
            if empty {
                self.nodes.remove(&master);
            }
        }
        true
    }

    /// Deletes the entries `ids` (XDEL); returns how many existed.
    pub fn delete(&mut self, ids: &[StreamId]) -> u64 {
        let mut deleted = 0;
        let mut first_deleted = false;
        for &id in ids {
            if self.remove_entry(id) {
                if id == self.first_id {
                    first_deleted = true;
                }
                if id > self.max_deleted_id {
                    self.max_deleted_id = id;
                }
                deleted += 1;
            }
        }
        if deleted > 0 {
            if self.entries.is_empty() {
                self.first_id = StreamId::MIN;
            } else if first_deleted {
                self.first_id = self.first_entry_id().unwrap_or_default();
            }
        }
        deleted
    }

    /// Trims the stream as Redis's `streamTrim` does: whole nodes from the
    /// head while they fit the strategy, then (unless approximate) entries
    /// of the next node; never more than `limit` entries when it is not 0.
    /// Returns the number of entries deleted.
    pub fn trim(&mut self, trim: Trim) -> u64 {
        let mut deleted: u64 = 0;
        // Bounded by the number of nodes: each round removes one or stops.
        while let Some((&master, node)) = self.nodes.iter().next() {
            let length = self.entries.len() as u64;
            if let TrimStrategy::MaxLen(max_len) = trim.strategy {
                if length <= max_len {
                    break;
                }
            }
            let live = node.live;
            if trim.limit != 0 && deleted + live > trim.limit {
                break;
            }
            let remove_node = match trim.strategy {
                TrimStrategy::MaxLen(max_len) => length - live >= max_len,
                TrimStrategy::MinId(min_id) => node.last_id < min_id,
            };
            let next_master = self
                .nodes
                .range(master.next().unwrap_or(StreamId::MAX)..)
                .next()
                .map(|(next, _)| *next);
            let doomed: Vec<StreamId> = match (remove_node, trim.strategy) {
                (true, _) => self.node_entries(master, next_master),
                (false, _) if trim.approx => break,
                (false, TrimStrategy::MaxLen(max_len)) => {
                    let excess = usize::try_from(length - max_len).unwrap_or(usize::MAX);
                    let mut ids = self.node_entries(master, next_master);
                    ids.truncate(excess);
                    ids
                }
                (false, TrimStrategy::MinId(min_id)) => {
                    let mut ids = self.node_entries(master, next_master);
                    ids.retain(|id| *id < min_id);
                    ids
                }
            };
            for id in &doomed {
                if let Some(fields) = self.entries.remove(id) {
                    self.payload_bytes -= fields.iter().map(Bytes::len).sum::<usize>();
                    self.items -= fields.len();
                }
            }
            deleted += doomed.len() as u64;
            if remove_node {
                self.nodes.remove(&master);
                continue;
            }
            if let Some(node) = self.nodes.get_mut(&master) {
                node.live -= doomed.len() as u64;
                node.deleted += doomed.len() as u64;
            }
            break;
        }
        if self.entries.is_empty() {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.first_id = self.first_entry_id().unwrap_or_default();
        }
        deleted
    }

    /// Returns the live entry ids of the node at `master` (up to the next
    /// node's master).
    fn node_entries(&self, master: StreamId, next_master: Option<StreamId>) -> Vec<StreamId> {
        match next_master {
            Some(next) => self
                .entries
                .range(master..next)
                .map(|(id, _)| *id)
                .collect(),
            None => self.entries.range(master..).map(|(id, _)| *id).collect(),
        }
    }

    /// Returns true when a deleted entry may lie at or after `start`
    /// (Redis's `streamRangeHasTombstones` with no end).
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.entries.is_empty() || self.max_deleted_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id
    }

    /// Returns how many entries precede `id` since the first ever added,
    /// when that can be known (Redis's
    /// `streamEstimateDistanceFromFirstEverEntry`).
    pub fn entries_read_at(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.entries.is_empty() && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            let length = self.entries.len() as u64;
            if id < self.first_id {
                return Some(self.entries_added.saturating_sub(length));
            }
            if id == self.first_id {
                return Some(self.entries_added.saturating_sub(length) + 1);
            }
        }
        None
    }

    /// Returns the lag of `group`: entries not yet delivered, when known.
    pub fn lag(&self, group: &ConsumerGroup) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = group.entries_read {
            if !self.has_tombstones_from(group.last_delivered) {
                return Some(self.entries_added.saturating_sub(read));
            }
        }
        self.entries_read_at(group.last_delivered)
            .map(|read| self.entries_added.saturating_sub(read))
    }

    /// Records that `group` delivered `id`, past its last delivered id
    /// (Redis's counter upkeep in `streamReplyWithRange`).
    pub fn advance_group(&mut self, group_name: &[u8], id: StreamId) {
        let tombstones_ahead = self.has_tombstones_from(id);
        let estimate = self.entries_read_at(id);
        let entries_added = self.entries_added;
        let Some(group) = self.groups.get_mut(group_name) else {
            return;
        };
        if id <= group.last_delivered {
            return;
        }
        match group.entries_read {
            Some(read) if !tombstones_ahead => group.entries_read = Some(read + 1),
            _ if entries_added > 0 => group.entries_read = estimate,
            _ => {}
        }
        group.last_delivered = id;
    }

    /// Returns true when a group has queue state, which the stream's
    /// encoding must carry (`value.rs`).
    pub fn has_queue_state(&self) -> bool {
        self.groups.values().any(|group| group.queue.is_some())
    }

    /// Counts the fields and values of the entries again (a stream read
    /// from a snapshot or a log entry).
    pub(crate) fn recount(&mut self) {
        self.items = self.entries.values().map(Vec::len).sum();
    }

    /// Returns the heap bytes this stream holds (see [`crate::memory`]):
    /// its entries' B-tree, each entry's handles and each field's and
    /// value's bytes, the nodes, and the groups' pending entries and
    /// consumers.
    pub fn mem_bytes(&self) -> usize {
        let entries = self.entries.len();
        let groups: usize = self
            .groups
            .values()
            .map(|group| {
                let nacked = group
                    .queue()
                    .map_or(0, |queue| 64 + queue.nacked.len() * 48);
                group.pending.len() * PENDING_BYTES
                    + group.consumers.len() * CONSUMER_BYTES
                    + nacked
            })
            .sum();
        btree_bytes(entries, ENTRY_SLOT_BYTES, Fill::Ascending)
            + heap_bytes_spread(self.items * ITEM_HANDLE_BYTES, entries)
            + heap_bytes_spread(self.payload_bytes, self.items)
            + btree_bytes(self.nodes.len(), NODE_SLOT_BYTES, Fill::Ascending)
            + self.nodes.len() * NODE_FIELDS_BYTES
            + groups
    }
}

#[cfg(test)]
mod tests;
