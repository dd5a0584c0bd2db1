//! Snapshots encoded in steps while the keyspace keeps changing.
//!
//! A snapshot shows the keyspace as it was at one log index, and encoding
//! a large keyspace at once would hold up every write for as long as that
//! takes. So a snapshot *pins* the keyspace ([`Db::pin`]) and is then
//! encoded a few thousand keys at a time, in key order
//! ([`Db::pinned_step`]); writes go on between the steps. A write to a key
//! the snapshot has not reached yet first saves what the key held at the
//! pin (or that it was absent), and the steps encode a key's saved value
//! where there is one, else its live value: copy-on-write, as a forked
//! process gets it from the kernel, but per key and only for the keys
//! written while the snapshot is built.
//!
//! The bytes are those of [`Db::to_snapshot`] at the pin.

use std::collections::btree_map::Entry as Slot;
use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use crate::db::{Db, DbStats, Entry};
use crate::ordered::key_hash;
use crate::snapshot::{Stored, SNAPSHOT_FORMAT_VERSION};

/// A keyspace position: a key's hash, then its bytes (the map's order).
type Position = (u64, Bytes);

/// What a snapshot being encoded in steps keeps.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pinned {
    /// The position of the last key a step visited; `None` before the
    /// first step.
    done_through: Option<Position>,
    /// What keys the steps have not reached yet held at the pin (`None`:
    /// the key was absent), saved before their first change since.
    before: BTreeMap<Position, Option<Entry>>,
    /// The counters at the pin.
    stats: DbStats,
}

impl Pinned {
    /// Returns how many keys' values are saved.
    #[cfg(test)]
    pub(crate) fn saved(&self) -> usize {
        self.before.len()
    }

    /// Returns true when the steps have already encoded `(hash, key)`.
    fn reached(&self, hash: u64, key: &[u8]) -> bool {
        self.done_through
            .as_ref()
            .is_some_and(|(done_hash, done_key)| (hash, key) <= (*done_hash, &done_key[..]))
    }
}

/// Appends the postcard encoding of `value` to `out`.
fn encode_into<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    let taken = std::mem::take(out);
    // Postcard fails only on sequences of unknown length; none here.
    #[allow(clippy::expect_used)]
    let extended = postcard::to_extend(value, taken).expect("postcard encodes known lengths");
    *out = extended;
}

impl Db {
    /// Pins the keyspace for a snapshot encoded in steps, replacing any
    /// snapshot pinned before, and returns its first bytes.
    pub fn pin(&mut self) -> Vec<u8> {
        self.pin = Some(Box::new(Pinned {
            done_through: None,
            before: BTreeMap::new(),
            stats: self.stats,
        }));
        let mut head = vec![SNAPSHOT_FORMAT_VERSION];
        // A sequence's length, as postcard writes it: a varint.
        encode_into(&(self.keys.len() as u64), &mut head);
        head
    }

    /// Returns true while a snapshot is pinned.
    pub fn is_pinned(&self) -> bool {
        self.pin.is_some()
    }

    /// Drops the pinned snapshot and what it saved.
    pub fn unpin(&mut self) {
        self.pin = None;
    }

    /// Appends the next `count` keys of the pinned snapshot to `out`;
    /// returns `Some(true)` when the snapshot is complete (it is unpinned
    /// then), `None` when nothing is pinned (the keyspace was replaced
    /// since the pin: pin again).
    pub fn pinned_step(&mut self, out: &mut Vec<u8>, count: usize) -> Option<bool> {
        let pin = self.pin.as_mut()?;
        let after = pin.done_through.clone();
        let mut live = self
            .keys
            .iter_after(after.as_ref().map(|(hash, key)| (*hash, &key[..])))
            .peekable();
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut saved = pin.before.range((start, Bound::Unbounded)).peekable();
        let mut last: Option<(u64, &Bytes)> = None;
        for _ in 0..count {
            let take_live = match (live.peek(), saved.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((hash, key, _)), Some(((saved_hash, saved_key), _))) => {
                    (*hash, &key[..]) < (*saved_hash, &saved_key[..])
                }
            };
            if take_live {
                let Some((hash, key, entry)) = live.next() else {
                    break;
                };
                encode_into(&(key, Stored(entry)), out);
                last = Some((hash, key));
            } else {
                let Some(((hash, key), entry)) = saved.next() else {
                    break;
                };
                // The live entry under the same key, if any, is newer.
                if live
                    .peek()
                    .is_some_and(|(live_hash, live_key, _)| *live_hash == *hash && *live_key == key)
                {
                    live.next();
                }
                if let Some(entry) = entry {
                    encode_into(&(key, Stored(entry)), out);
                }
                last = Some((*hash, key));
            }
        }
        let finished = live.peek().is_none() && saved.peek().is_none();
        let last = last.map(|(hash, key)| (hash, Bytes::copy_from_slice(key)));
        if finished {
            encode_into(&pin.stats, out);
            self.pin = None;
            return Some(true);
        }
        if let Some(last) = last {
            // Saved values behind the steps are no longer needed.
            let mut ahead = pin.before.split_off(&last);
            ahead.remove(&last);
            pin.before = ahead;
            pin.done_through = Some(last);
        }
        Some(false)
    }

    /// Saves what `key` holds before it changes, when a pinned snapshot has
    /// not reached it yet and nothing was saved for it since the pin.
    pub(crate) fn preserve(&mut self, key: &[u8]) {
        let Some(pin) = self.pin.as_mut() else {
            return;
        };
        let hash = key_hash(key);
        if pin.reached(hash, key) {
            return;
        }
        if let Slot::Vacant(slot) = pin.before.entry((hash, Bytes::copy_from_slice(key))) {
            slot.insert(self.keys.get(key).cloned());
        }
    }

    /// Saves every key the pinned snapshot has not reached yet, before all
    /// are removed (FLUSHALL).
    pub(crate) fn preserve_all(&mut self) {
        let Some(pin) = self.pin.as_mut() else {
            return;
        };
        for (hash, key, entry) in self.keys.drain_hashed() {
            if !pin.reached(hash, &key) {
                pin.before.entry((hash, key)).or_insert(Some(entry));
            }
        }
    }
}

#[cfg(test)]
#[path = "pinned_test.rs"]
mod tests;
