//! The keyspace of one shard: keys, values, absolute expiry deadlines and
//! the counters INFO reports.
//!
//! Time is always a parameter (`now_ms`): on the write path it is the
//! leader's timestamp carried in the log entry, so every replica applies
//! the same entry to the same state with the same result. A key whose
//! deadline is `<= now_ms` is invisible to every read at once, even before
//! anything deletes it; every mutating method first deletes such a key
//! (lazy expiry) and counts it in [`DbStats::expired_keys`].

use std::collections::BTreeSet;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::access::{Access, Tracking};
pub use crate::entry::Entry;
pub(crate) use crate::entry::{deadline, entry_bytes};
use crate::events::{class, KeyEvent, Recorder};
use crate::namespace_usage::NamespaceUsage;
use crate::ordered::{HashOrderedMap, ScanPage};
use crate::value::{EncodingLimits, Value};

/// Counters that are part of the replicated state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbStats {
    /// Keys deleted because their deadline passed (lazily or actively).
    pub expired_keys: u64,
    /// Keys deleted to keep the node within `maxmemory`.
    pub evicted_keys: u64,
}

/// The keyspace of one shard.
#[derive(Clone, Debug, Default)]
pub struct Db {
    pub(crate) keys: HashOrderedMap<Entry>,
    /// `(deadline, key)` for every key with a deadline, earliest first.
    pub(crate) expires: BTreeSet<(u64, Bytes)>,
    pub(crate) used_bytes: usize,
    pub(crate) stats: DbStats,
    /// Node configuration, not replicated state: only OBJECT ENCODING
    /// reads it.
    encoding_limits: EncodingLimits,
    /// The snapshot being encoded in steps, if any (see [`crate::pinned`]).
    pub(crate) pin: Option<Box<crate::pinned::Pinned>>,
    /// The version stamped on keys written from here on (set by
    /// [`Db::begin_write`]: the log index of the entry applied).
    pub(crate) write_version: u64,
    /// The state of the pseudo-random picks of the write being applied
    /// (set by [`Db::begin_write`] from the entry, so every replica
    /// picks alike).
    entropy: u64,
    /// The shard's ownership map version at the entry applied: the high
    /// part of the fencing tokens it grants (see [`crate::fencing`]).
    pub(crate) epoch: u64,
    /// The write version of the last entry that granted a lock: an entry
    /// grants at most one. Meaningful only within that entry, so not
    /// replicated state.
    pub(crate) lock_granted_at: Option<u64>,
    /// Key events of the writes applied (see [`crate::events`]); not
    /// replicated state.
    recorder: Recorder,
    /// How access words are kept (node configuration, not replicated).
    tracking: Tracking,
    /// The bytes per cache namespace, when the node has any (node
    /// configuration and what follows from it; see
    /// [`crate::namespace_usage`]).
    pub(crate) namespaces: Option<Box<NamespaceUsage>>,
    /// The time of the log entry being applied (set by
    /// [`Db::set_write_time`]): what writes stamp access words with.
    write_time_ms: u64,
}

/// Strings up to this size are copied rather than shared (see [`detached`]).
const DETACHED_COPY_MAX_BYTES: usize = 4096;

/// Returns a `Bytes` with the contents of `bytes` that shares nothing with
/// it when it is small: a copy in an allocation of exactly its size.
///
/// Cloning a `Bytes` that owns its buffer alone gives it a separately
/// allocated shared header, for as long as it lives. So the keyspace
/// keeps copies of what commands hand it (a command's parser clones its
/// arguments), and replies copy small strings out of the keyspace rather
/// than clone them: otherwise each stored key and value would carry that
/// header (~32 bytes each) once written or read. A copy costs a small
/// memcpy; larger strings are shared, and the header is small beside them.
pub fn detached(bytes: &Bytes) -> Bytes {
    if bytes.len() <= DETACHED_COPY_MAX_BYTES {
        Bytes::copy_from_slice(bytes)
    } else {
        bytes.clone()
    }
}

impl Db {
    /// Returns an empty keyspace.
    pub fn new() -> Self {
        Self::default()
    }

    // ----- sizes and counters -----

    /// Returns the number of keys, including expired keys not yet deleted
    /// (as Redis's DBSIZE does).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Returns true when the keyspace holds no key at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Returns the number of keys that have a deadline (INFO `expires=`).
    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    /// Returns the replicated counters.
    pub fn stats(&self) -> DbStats {
        self.stats
    }

    /// Returns the bytes the keyspace holds, as the allocator counts them
    /// (see [`crate::memory`]): INFO `used_memory` sums it over a node's
    /// shard replicas, and `maxmemory` bounds that sum.
    pub fn used_memory(&self) -> usize {
        self.used_bytes
    }

    /// Returns the thresholds OBJECT ENCODING reports against.
    pub fn encoding_limits(&self) -> EncodingLimits {
        self.encoding_limits
    }

    /// Sets the thresholds OBJECT ENCODING reports against (CONFIG SET
    /// `hash-max-listpack-*`). Not replicated: it changes no data.
    pub fn set_encoding_limits(&mut self, limits: EncodingLimits) {
        self.encoding_limits = limits;
    }

    /// Returns how access words are kept.
    pub fn tracking(&self) -> Tracking {
        self.tracking
    }

    /// Sets how access words are kept from here on (CONFIG SET
    /// `maxmemory-policy`, `lfu-*`). Not replicated: the words already
    /// stored are read the new way, as Redis does.
    pub fn set_tracking(&mut self, tracking: Tracking) {
        self.tracking = tracking;
    }

    /// Copies the node configuration (encoding limits, the key events
    /// recorded, how access words are kept, the cache namespaces counted)
    /// of `other`: a keyspace read
    /// from a snapshot takes over the one it replaces.
    pub fn configure_like(&mut self, other: &Db) {
        self.encoding_limits = other.encoding_limits;
        self.recorder.mask = other.recorder.mask;
        self.tracking = other.tracking;
        self.set_namespaces(other.namespace_table().cloned());
    }

    /// Moves the count of `key`'s cache namespace, if any, from `before`
    /// to `after` bytes.
    fn account(&mut self, key: &[u8], before: usize, after: usize) {
        if let Some(usage) = &mut self.namespaces {
            usage.account(key, before, after);
        }
    }

    /// Sets the time of the log entry being applied: the keys its writes
    /// touch are stamped with it (a write passing an earlier time, as a
    /// migration's does, still counts as a use now).
    pub fn set_write_time(&mut self, time_ms: u64) {
        self.write_time_ms = time_ms;
    }

    /// Stamps every key as used at `now_ms` (a keyspace just read from a
    /// snapshot, whose access words were not stored).
    pub fn stamp_access(&mut self, now_ms: u64) {
        for (_, entry) in self.keys.iter() {
            entry.access.stamp(self.tracking, now_ms);
        }
    }

    /// Starts applying a write: keys it changes get `version`, and its
    /// random picks ([`Db::draw`]) follow from `seed`. Both come from the
    /// log entry, so every replica stamps and picks alike.
    pub fn begin_write(&mut self, version: u64, seed: u64) {
        self.write_version = version;
        self.entropy = seed;
    }

    /// Returns the next pseudo-random number of the write being applied
    /// (splitmix64 over the entry's seed): deterministic on every replica.
    pub fn draw(&mut self) -> u64 {
        self.entropy = self.entropy.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.entropy;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Returns the version of the live `key` at `now_ms`, None when it is
    /// absent or expired (WATCH).
    pub fn version_of(&self, key: &[u8], now_ms: u64) -> Option<u64> {
        self.peek(key, now_ms).map(|entry| entry.version)
    }

    // ----- key events (see crate::events) -----

    /// Records the events of the classes in `mask` from here on (0: none).
    pub fn set_events_mask(&mut self, mask: u16) {
        self.recorder.mask = mask;
    }

    /// Returns the classes of events recorded.
    pub fn events_mask(&self) -> u16 {
        self.recorder.mask
    }

    /// Records that a command did `event` (of `class`) to `key`.
    pub fn notify(&mut self, class: u16, event: &'static str, key: &[u8]) {
        self.recorder.record(class, event, key);
    }

    /// Ends a command's events: the collections it left empty get their
    /// `del` after its own events.
    pub fn end_command(&mut self) {
        self.recorder.end_command();
    }

    /// Returns the events recorded so far, in order, and forgets them.
    pub fn take_events(&mut self) -> Vec<KeyEvent> {
        std::mem::take(&mut self.recorder.events)
    }

    // ----- reads: honour expiry, never mutate -----

    /// Returns the live entry of `key` at `now_ms`, and counts the lookup
    /// as a use of the key (its LRU clock or LFU counter): what commands
    /// read goes through here.
    pub fn entry(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        let entry = self.peek(key, now_ms)?;
        entry.access.touch(self.tracking, now_ms);
        Some(entry)
    }

    /// Returns the live entry of `key` at `now_ms` without counting a use
    /// (Redis's `LOOKUP_NOTOUCH`: OBJECT, TYPE, TTL, EXISTS, WATCH).
    pub fn peek(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.keys.get(key).filter(|entry| !entry.is_expired(now_ms))
    }

    /// Returns the live value of `key` at `now_ms`, a use of the key.
    pub fn get(&self, key: &[u8], now_ms: u64) -> Option<&Value> {
        self.entry(key, now_ms).map(|entry| &entry.value)
    }

    /// Returns true when `key` is live at `now_ms` (not a use of it).
    pub fn contains(&self, key: &[u8], now_ms: u64) -> bool {
        self.peek(key, now_ms).is_some()
    }

    /// Iterates the live keys in hash order. O(n).
    pub fn iter(&self, now_ms: u64) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.keys
            .iter()
            .filter(move |(_, entry)| !entry.is_expired(now_ms))
    }

    /// Returns one SCAN page from `cursor` (see [`HashOrderedMap::scan`]);
    /// expired keys are visited but left out.
    pub fn scan(&self, cursor: u64, count: usize, now_ms: u64) -> ScanPage<'_, Entry> {
        let mut page = self.keys.scan(cursor, count);
        page.entries.retain(|(_, entry)| !entry.is_expired(now_ms));
        page
    }

    /// Returns a live key chosen by `seed` (uniform when few keys are
    /// expired), or None when no key is live.
    ///
    /// O(n): the ordered map cannot index by position in O(log n).
    pub fn random_key(&self, seed: u64, now_ms: u64) -> Option<&Bytes> {
        let len = self.keys.len();
        if len == 0 {
            return None;
        }
        let start = (seed % len as u64) as usize;
        self.keys
            .iter()
            .skip(start)
            .chain(self.keys.iter().take(start))
            .find(|(_, entry)| !entry.is_expired(now_ms))
            .map(|(key, _)| key)
    }

    /// Returns the bytes the live `key` counts for in
    /// [`Db::used_memory`] (MEMORY USAGE), not a use of it.
    pub fn key_footprint(&self, key: &[u8], now_ms: u64) -> Option<usize> {
        let (stored, entry) = self.keys.get_key_value(key)?;
        (!entry.is_expired(now_ms)).then(|| entry_bytes(stored, entry))
    }

    /// Returns up to `limit` keys whose deadline is `<= now_ms`, earliest
    /// first. The leader proposes their deletion (active expiry).
    pub fn expired_keys(&self, now_ms: u64, limit: usize) -> Vec<Bytes> {
        self.expires
            .iter()
            .take_while(|(deadline, _)| *deadline <= now_ms)
            .take(limit)
            .map(|(_, key)| key.clone())
            .collect()
    }

    // ----- writes: lazily delete an expired key first -----

    /// Deletes `key` if its deadline has passed at `now_ms`, counting it
    /// in `expired_keys`; returns true when it did.
    pub fn expire_if_needed(&mut self, key: &[u8], now_ms: u64) -> bool {
        let expired = self
            .keys
            .get(key)
            .is_some_and(|entry| entry.is_expired(now_ms));
        if expired {
            self.remove_raw(key);
            self.stats.expired_keys += 1;
            self.recorder.record(class::EXPIRED, "expired", key);
        }
        expired
    }

    /// Deletes those of `keys` still expired at `now_ms` (a key rewritten
    /// since the leader listed it survives); returns how many it deleted.
    pub fn delete_expired(&mut self, keys: &[Bytes], now_ms: u64) -> usize {
        keys.iter()
            .filter(|key| self.expire_if_needed(key, now_ms))
            .count()
    }

    /// Stores `value` under `key` with deadline `expire_at_ms`, replacing
    /// any previous value and deadline.
    pub fn insert(&mut self, key: Bytes, value: Value, expire_at_ms: Option<u64>, now_ms: u64) {
        let value = match value {
            Value::String(bytes) => Value::String(detached(&bytes)),
            other => other,
        };
        // The common case in one lookup: no deadline before or after, so
        // the value is replaced in place and nothing else changes. A key
        // found absent needs no expiry check or removal either.
        let mut absent = false;
        if expire_at_ms.is_none() {
            self.preserve(&key);
            match self.keys.get_mut(&key) {
                Some(entry) if entry.expire_at.is_none() => {
                    let before = entry.value.mem_bytes();
                    let after = value.mem_bytes();
                    entry.value = value;
                    entry.version = self.write_version;
                    entry
                        .access
                        .touch(self.tracking, now_ms.max(self.write_time_ms));
                    self.used_bytes = self.used_bytes.saturating_sub(before) + after;
                    self.account(&key, before, after);
                    return;
                }
                found => absent = found.is_none(),
            }
        }
        let key = detached(&key);
        let used_at_ms = now_ms.max(self.write_time_ms);
        let replaced = if absent {
            None
        } else {
            self.expire_if_needed(&key, now_ms);
            self.remove_raw(&key)
        };
        let mut entry = Entry::new(value, expire_at_ms, self.write_version);
        match replaced {
            // An overwritten key keeps its history (its LFU counter), as
            // in Redis, and this write is one more use.
            Some(previous) => {
                entry.access = previous.access;
                entry.access.touch(self.tracking, used_at_ms);
            }
            None => {
                entry.access = Access::new(self.tracking, used_at_ms);
                self.recorder.record(class::NEW, "new", &key);
            }
        }
        let bytes = entry_bytes(&key, &entry);
        self.used_bytes += bytes;
        self.account(&key, 0, bytes);
        if let Some(deadline) = entry.expire_at_ms() {
            self.expires.insert((deadline, key.clone()));
        }
        self.preserve(&key);
        self.keys.insert(key, entry);
    }

    /// Stores `value` under `key`, keeping the deadline of a live previous
    /// value (SET KEEPTTL, SETRANGE on an existing key, ...).
    pub fn insert_keep_ttl(&mut self, key: Bytes, value: Value, now_ms: u64) {
        let deadline = self.peek(&key, now_ms).and_then(Entry::expire_at_ms);
        self.insert(key, value, deadline, now_ms);
    }

    /// Removes `key` and returns its entry, or None when it was absent or
    /// already expired.
    pub fn remove(&mut self, key: &[u8], now_ms: u64) -> Option<Entry> {
        if self.expire_if_needed(key, now_ms) {
            return None;
        }
        self.remove_raw(key)
    }

    /// Runs `update` on the live value of `key` and returns its result, or
    /// None when the key is absent. An aggregate left empty is deleted, as
    /// Redis never keeps empty hashes.
    pub fn update<R>(
        &mut self,
        key: &[u8],
        now_ms: u64,
        update: impl FnOnce(&mut Value) -> R,
    ) -> Option<R> {
        self.expire_if_needed(key, now_ms);
        let (stored_key, entry) = self.keys.get_key_value(key)?;
        let before = entry_bytes(stored_key, entry);
        self.preserve(key);
        let entry = self.keys.get_mut(key)?;
        entry.version = self.write_version;
        entry
            .access
            .touch(self.tracking, now_ms.max(self.write_time_ms));
        let result = update(&mut entry.value);
        let after = entry_bytes(key, entry);
        let now_empty = entry.value.is_empty_aggregate();
        self.used_bytes = self.used_bytes.saturating_sub(before) + after;
        self.account(key, before, after);
        if now_empty {
            self.remove_raw(key);
            if self.recorder.wants(class::GENERIC) {
                self.recorder.emptied.push(Bytes::copy_from_slice(key));
            }
        }
        Some(result)
    }

    /// Sets (`Some`) or removes (`None`) the deadline of a live `key`;
    /// returns false when the key is absent.
    pub fn set_expire(&mut self, key: &[u8], expire_at_ms: Option<u64>, now_ms: u64) -> bool {
        self.expire_if_needed(key, now_ms);
        let Some((stored_key, entry)) = self.keys.get_key_value(key) else {
            return false;
        };
        let stored_key = stored_key.clone();
        if let Some(previous) = entry.expire_at_ms() {
            self.expires.remove(&(previous, stored_key.clone()));
        }
        let expire_at = deadline(expire_at_ms);
        if let Some(deadline) = expire_at {
            self.expires.insert((deadline.get(), stored_key));
        }
        self.preserve(key);
        let (tracking, used_at_ms) = (self.tracking, now_ms.max(self.write_time_ms));
        if let Some(entry) = self.keys.get_mut(key) {
            let before = entry_bytes(key, entry);
            entry.expire_at = expire_at;
            entry.version = self.write_version;
            entry.access.touch(tracking, used_at_ms);
            let after = entry_bytes(key, entry);
            self.used_bytes = self.used_bytes.saturating_sub(before) + after;
            self.account(key, before, after);
        }
        true
    }

    /// Removes every key (FLUSHALL, FLUSHDB). Counters survive, as in
    /// Redis.
    pub fn clear(&mut self) {
        self.preserve_all();
        self.keys.clear();
        self.expires.clear();
        self.used_bytes = 0;
        if let Some(usage) = &mut self.namespaces {
            usage.bytes.iter_mut().for_each(|bytes| *bytes = 0);
        }
    }

    /// Removes every key for which `gone` holds, whatever its deadline,
    /// in one pass over the keyspace (a shard giving slots away); returns
    /// how many went. While a snapshot is encoded in steps each key goes
    /// by itself, so that what the snapshot has not reached is saved.
    pub fn remove_where(&mut self, gone: impl Fn(&[u8]) -> bool) -> usize {
        if self.pin.is_some() {
            let keys: Vec<Bytes> = self
                .keys
                .iter()
                .filter(|(key, _)| gone(key))
                .map(|(key, _)| key.clone())
                .collect();
            for key in &keys {
                self.remove_raw(key);
            }
            return keys.len();
        }
        let (mut removed, mut freed) = (0, 0);
        let expires = &mut self.expires;
        let mut usage = self.namespaces.as_deref_mut();
        self.keys.retain(|key, entry| {
            if !gone(key) {
                return true;
            }
            removed += 1;
            let bytes = entry_bytes(key, entry);
            freed += bytes;
            if let Some(usage) = usage.as_mut() {
                usage.account(key, bytes, 0);
            }
            if let Some(deadline) = entry.expire_at_ms() {
                expires.remove(&(deadline, key.clone()));
            }
            false
        });
        self.used_bytes = self.used_bytes.saturating_sub(freed);
        removed
    }

    /// Removes `key` whatever its deadline, keeping the indexes in step.
    pub(crate) fn remove_raw(&mut self, key: &[u8]) -> Option<Entry> {
        self.preserve(key);
        let (stored_key, entry) = self.keys.remove(key)?;
        let bytes = entry_bytes(&stored_key, &entry);
        self.used_bytes = self.used_bytes.saturating_sub(bytes);
        self.account(&stored_key, bytes, 0);
        if let Some(deadline) = entry.expire_at_ms() {
            self.expires.remove(&(deadline, stored_key));
        }
        Some(entry)
    }

    /// Rebuilds the indexes of a keyspace read from a snapshot.
    pub(crate) fn from_parts(keys: HashOrderedMap<Entry>, stats: DbStats) -> Self {
        let mut expires = BTreeSet::new();
        let mut used_bytes = 0;
        for (key, entry) in keys.iter() {
            used_bytes += entry_bytes(key, entry);
            if let Some(deadline) = entry.expire_at_ms() {
                expires.insert((deadline, key.clone()));
            }
        }
        Self {
            keys,
            expires,
            used_bytes,
            stats,
            encoding_limits: EncodingLimits::default(),
            pin: None,
            write_version: 0,
            entropy: 0,
            epoch: 0,
            lock_granted_at: None,
            recorder: Recorder::default(),
            tracking: Tracking::default(),
            write_time_ms: 0,
            namespaces: None,
        }
    }
}

// Db is shared between the apply task and readers under a lock.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Db>();
};

#[cfg(test)]
#[path = "db_test.rs"]
mod tests;
