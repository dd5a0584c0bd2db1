//! The value of a set key: members in hash order (so SSCAN cursors and
//! snapshots are the same on every replica), with the figures that memory
//! estimates and OBJECT ENCODING need kept up to date.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::db::detached;
use crate::memory::{btree_bytes, heap_bytes_spread, Fill};
use crate::ordered::{HashOrderedMap, ScanPage};
use crate::value::EncodingLimits;

/// A member's B-tree slot: its 8-byte hash and its `Bytes`.
const MEMBER_SLOT_BYTES: usize = 40;

/// A set of binary-safe members.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct SetValue {
    members: HashOrderedMap<()>,
    /// Sum of member lengths.
    payload_bytes: usize,
    /// Largest number of members the set ever had (Redis converts an
    /// intset to a hashtable once, never back).
    peak_len: usize,
    /// True once a member that is not a 64-bit integer was added.
    had_non_integer: bool,
}

impl SetValue {
    /// Returns an empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Returns true when the set has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Returns true when `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.contains_key(member)
    }

    /// Adds `member`; returns true when it is new.
    pub fn insert(&mut self, member: &Bytes) -> bool {
        if self.members.contains_key(member) {
            return false;
        }
        self.had_non_integer |= !is_set_integer(member);
        self.payload_bytes += member.len();
        self.members.insert(detached(member), ());
        self.peak_len = self.peak_len.max(self.members.len());
        true
    }

    /// Removes `member`; returns true when it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.members.remove(member) {
            Some((stored, ())) => {
                self.payload_bytes -= stored.len();
                true
            }
            None => false,
        }
    }

    /// Iterates the members in hash order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Bytes> + ExactSizeIterator {
        self.members.iter().map(|(member, ())| member)
    }

    /// Returns the member at `index` in iteration order (O(n)).
    pub fn nth(&self, index: usize) -> Option<&Bytes> {
        self.members.nth(index).map(|(member, ())| member)
    }

    /// Returns the members from `cursor` on (see [`HashOrderedMap::scan`]).
    pub fn scan(&self, cursor: u64, count: usize) -> ScanPage<'_, ()> {
        self.members.scan(cursor, count)
    }

    /// Returns `intset` or `hashtable`, as Redis 7.0 would under `limits`.
    pub fn encoding(&self, limits: &EncodingLimits) -> &'static str {
        if !self.had_non_integer && self.peak_len <= limits.set_max_intset_entries {
            "intset"
        } else {
            "hashtable"
        }
    }

    /// Returns the heap bytes this set holds (see [`crate::memory`]): its
    /// B-tree and each member's allocation.
    pub fn mem_bytes(&self) -> usize {
        let len = self.members.len();
        btree_bytes(len, MEMBER_SLOT_BYTES, Fill::Random)
            + heap_bytes_spread(self.payload_bytes, len)
    }

    /// Cuts the members into sets of about `part_bytes` each, in order;
    /// the first keeps this set's encoding history.
    pub(crate) fn split(&self, part_bytes: usize) -> Vec<SetValue> {
        let mut parts = vec![SetValue {
            peak_len: self.peak_len,
            had_non_integer: self.had_non_integer,
            ..SetValue::new()
        }];
        for member in self.iter() {
            if parts
                .last()
                .is_some_and(|part| !part.is_empty() && part.mem_bytes() >= part_bytes)
            {
                parts.push(SetValue::new());
            }
            if let Some(part) = parts.last_mut() {
                part.insert(member);
            }
        }
        parts
    }
}

/// Returns true when Redis would keep `member` in an intset: a canonical
/// 64-bit integer.
pub fn is_set_integer(member: &[u8]) -> bool {
    crate::value::is_canonical_integer(member)
}

impl FromIterator<Bytes> for SetValue {
    fn from_iter<I: IntoIterator<Item = Bytes>>(members: I) -> Self {
        let mut set = SetValue::new();
        for member in members {
            set.insert(&member);
        }
        set
    }
}
