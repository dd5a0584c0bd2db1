//! The value of a sorted set key: members with scores, ordered by
//! `(score, member)` for ranges and ranks, and found by member in hash
//! order (so ZSCAN cursors and snapshots are the same on every replica).

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::Bound;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::db::detached;
use crate::memory::{btree_bytes, heap_bytes_spread, Fill};
use crate::ordered::{HashOrderedMap, ScanPage};
use crate::value::EncodingLimits;

/// A member's slot in the index by member: its 8-byte hash, its `Bytes`
/// and its score.
const MEMBER_SLOT_BYTES: usize = 48;
/// A member's slot in the index by score: its score and a second `Bytes`.
const SCORE_SLOT_BYTES: usize = 40;
/// The header the member's second handle makes it allocate (its buffer
/// becomes shared).
const SHARED_HEADER_BYTES: usize = 32;

/// A score with the total order sorted sets need: never NaN, and -0 is
/// stored as 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score(f64);

impl Score {
    /// Returns the score of `value`, or None for NaN.
    pub fn new(value: f64) -> Option<Self> {
        if value.is_nan() {
            None
        } else if value == 0.0 {
            Some(Self(0.0))
        } else {
            Some(Self(value))
        }
    }

    /// Returns the score as a float.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A sorted set of binary-safe members.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ZSetValue {
    members: HashOrderedMap<f64>,
    by_score: BTreeSet<(Score, Bytes)>,
    /// Sum of member lengths.
    payload_bytes: usize,
    /// Largest number of members the set ever had (Redis converts a
    /// listpack to a skiplist once, never back).
    peak_len: usize,
    /// Longest member ever stored.
    peak_item_len: usize,
}

impl ZSetValue {
    /// Returns an empty sorted set.
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

    /// Returns the score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.members.get(member).copied()
    }

    /// Sets the score of `member`; returns its previous score, if any.
    /// A NaN score is refused (the commands never pass one) and changes
    /// nothing.
    pub fn insert(&mut self, member: &Bytes, score: f64) -> Option<f64> {
        let score = Score::new(score)?;
        let previous = self.members.get(member).copied();
        if let Some(old) = previous {
            if let Some(old) = Score::new(old) {
                if old == score {
                    return previous;
                }
                if let Some((_, stored)) = self.by_score.take(&(old, member.clone())) {
                    self.by_score.insert((score, stored));
                }
            }
            if let Some(slot) = self.members.get_mut(member) {
                *slot = score.get();
            }
            return previous;
        }
        let member = detached(member);
        self.payload_bytes += member.len();
        self.peak_item_len = self.peak_item_len.max(member.len());
        self.by_score.insert((score, member.clone()));
        self.members.insert(member, score.get());
        self.peak_len = self.peak_len.max(self.members.len());
        None
    }

    /// Removes `member`; returns its score when it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (stored, score) = self.members.remove(member)?;
        if let Some(key) = Score::new(score) {
            self.by_score.remove(&(key, stored.clone()));
        }
        self.payload_bytes -= stored.len();
        Some(score)
    }

    /// Returns the 0-based rank of `member` in ascending order (O(n)).
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = Score::new(self.score(member)?)?;
        let key = (score, Bytes::copy_from_slice(member));
        Some(self.by_score.range(..key).count())
    }

    /// Iterates `(member, score)` in ascending `(score, member)` order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> {
        self.by_score
            .iter()
            .map(|(score, member)| (member, score.get()))
    }

    /// Iterates `(member, score)` with scores between the bounds, in
    /// ascending order (reversed for descending ranges).
    pub fn range_by_score(
        &self,
        min: Bound<f64>,
        max: Bound<f64>,
    ) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> {
        // Keys `(score, member)`: the empty member sorts first among a
        // score's members, so "scores above s" start at (next_up(s), "").
        let key = |score: f64| Score::new(score).map(|score| (score, Bytes::new()));
        let empty = || {
            let origin = (Score(0.0), Bytes::new());
            (Bound::Included(origin.clone()), Bound::Excluded(origin))
        };
        let low = match min {
            Bound::Included(score) => key(score).map(Bound::Included),
            Bound::Excluded(score) if score == f64::INFINITY => None,
            Bound::Excluded(score) => key(score.next_up()).map(Bound::Included),
            Bound::Unbounded => Some(Bound::Unbounded),
        };
        let high = match max {
            Bound::Included(score) if score == f64::INFINITY => Some(Bound::Unbounded),
            Bound::Included(score) => key(score.next_up()).map(Bound::Excluded),
            Bound::Excluded(score) => key(score).map(Bound::Excluded),
            Bound::Unbounded => Some(Bound::Unbounded),
        };
        let bounds = match (low, high) {
            (Some(low), Some(high)) if !is_empty_range(&low, &high) => (low, high),
            _ => empty(),
        };
        self.by_score
            .range(bounds)
            .map(|(score, member)| (member, score.get()))
    }

    /// Iterates `(member, score)` from `(score, member)` `start` on, in
    /// ascending order: the start of a lexicographic range among members
    /// of one score.
    pub fn iter_from(&self, score: f64, member: &Bytes) -> impl Iterator<Item = (&Bytes, f64)> {
        let start = Score::new(score).map(|score| (score, member.clone()));
        let bound = match start {
            Some(key) => Bound::Included(key),
            None => Bound::Unbounded,
        };
        self.by_score
            .range((bound, Bound::Unbounded))
            .map(|(score, member)| (member, score.get()))
    }

    /// Iterates `(member, score)` between two `(score, member)` keys, in
    /// ascending order (reversed for descending ranges): a lexicographic
    /// range among members of one score. A NaN score gives an empty range.
    pub fn range_by_key(
        &self,
        low: Bound<(f64, &[u8])>,
        high: Bound<(f64, &[u8])>,
    ) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> {
        let key = |bound: Bound<(f64, &[u8])>| -> Option<Bound<(Score, Bytes)>> {
            let make = |(score, member): (f64, &[u8])| {
                Score::new(score).map(|score| (score, Bytes::copy_from_slice(member)))
            };
            Some(match bound {
                Bound::Included(at) => Bound::Included(make(at)?),
                Bound::Excluded(at) => Bound::Excluded(make(at)?),
                Bound::Unbounded => Bound::Unbounded,
            })
        };
        let origin = (Score(0.0), Bytes::new());
        let empty = (Bound::Included(origin.clone()), Bound::Excluded(origin));
        let bounds = match (key(low), key(high)) {
            (Some(low), Some(high)) if !is_empty_range(&low, &high) => (low, high),
            _ => empty,
        };
        self.by_score
            .range(bounds)
            .map(|(score, member)| (member, score.get()))
    }

    /// Returns the members from `cursor` on, in hash order (ZSCAN).
    pub fn scan(&self, cursor: u64, count: usize) -> ScanPage<'_, f64> {
        self.members.scan(cursor, count)
    }

    /// Iterates `(member, score)` in hash order.
    pub fn iter_hashed(&self) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> {
        self.members.iter().map(|(member, score)| (member, *score))
    }

    /// Returns `listpack` or `skiplist`, as Redis 7.0 would under `limits`.
    pub fn encoding(&self, limits: &EncodingLimits) -> &'static str {
        if self.peak_len <= limits.zset_max_listpack_entries
            && self.peak_item_len <= limits.zset_max_listpack_value
        {
            "listpack"
        } else {
            "skiplist"
        }
    }

    /// Returns the heap bytes this sorted set holds (see
    /// [`crate::memory`]): its two B-trees, each member's allocation and
    /// its shared header.
    pub fn mem_bytes(&self) -> usize {
        let len = self.members.len();
        btree_bytes(len, MEMBER_SLOT_BYTES, Fill::Random)
            + btree_bytes(len, SCORE_SLOT_BYTES, Fill::Random)
            + heap_bytes_spread(self.payload_bytes, len)
            + len * SHARED_HEADER_BYTES
    }

    /// Cuts the members into sorted sets of about `part_bytes` each; the
    /// first keeps this set's encoding history.
    pub(crate) fn split(&self, part_bytes: usize) -> Vec<ZSetValue> {
        let mut parts = vec![ZSetValue {
            peak_len: self.peak_len,
            peak_item_len: self.peak_item_len,
            ..ZSetValue::new()
        }];
        for (member, score) in self.iter_hashed() {
            if parts
                .last()
                .is_some_and(|part| !part.is_empty() && part.mem_bytes() >= part_bytes)
            {
                parts.push(ZSetValue::new());
            }
            if let Some(part) = parts.last_mut() {
                part.insert(member, score);
            }
        }
        parts
    }
}

/// Returns true when no key lies between `low` and `high` (a range whose
/// start is past its end, which `BTreeSet::range` refuses with a panic).
fn is_empty_range(low: &Bound<(Score, Bytes)>, high: &Bound<(Score, Bytes)>) -> bool {
    match (low, high) {
        (Bound::Included(low), Bound::Included(high)) => low > high,
        (Bound::Included(low), Bound::Excluded(high))
        | (Bound::Excluded(low), Bound::Included(high))
        | (Bound::Excluded(low), Bound::Excluded(high)) => low >= high,
        _ => false,
    }
}

/// What a snapshot stores of a sorted set: the score index is rebuilt.
#[derive(Serialize)]
struct ZSetRef<'a> {
    members: &'a HashOrderedMap<f64>,
    peak_len: usize,
    peak_item_len: usize,
}

#[derive(Deserialize)]
struct ZSetOwned {
    members: HashOrderedMap<f64>,
    peak_len: usize,
    peak_item_len: usize,
}

impl Serialize for ZSetValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ZSetRef {
            members: &self.members,
            peak_len: self.peak_len,
            peak_item_len: self.peak_item_len,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ZSetValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let owned = ZSetOwned::deserialize(deserializer)?;
        let mut zset = ZSetValue {
            peak_len: owned.peak_len,
            peak_item_len: owned.peak_item_len,
            ..ZSetValue::new()
        };
        for (member, score) in owned.members.iter() {
            zset.insert(member, *score);
        }
        Ok(zset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zset(pairs: &[(&str, f64)]) -> ZSetValue {
        let mut zset = ZSetValue::new();
        for (member, score) in pairs {
            zset.insert(&Bytes::copy_from_slice(member.as_bytes()), *score);
        }
        zset
    }

    fn members(items: impl Iterator<Item = (&'static Bytes, f64)>) -> Vec<String> {
        items
            .map(|(member, _)| String::from_utf8_lossy(member).into_owned())
            .collect()
    }

    #[test]
    fn score_ranges_honour_inclusive_and_exclusive_bounds() {
        let set = Box::leak(Box::new(zset(&[
            ("a", 1.0),
            ("b", 2.0),
            ("c", 2.0),
            ("d", 3.0),
            ("e", f64::INFINITY),
        ])));
        use Bound::{Excluded, Included, Unbounded};
        let table: &[(Bound<f64>, Bound<f64>, &[&str])] = &[
            (Unbounded, Unbounded, &["a", "b", "c", "d", "e"]),
            (Included(2.0), Included(2.0), &["b", "c"]),
            (Excluded(1.0), Excluded(3.0), &["b", "c"]),
            (Excluded(2.0), Included(3.0), &["d"]),
            (Included(3.0), Included(1.0), &[]),
            (Excluded(2.0), Excluded(2.0), &[]),
            (Excluded(f64::INFINITY), Unbounded, &[]),
            (Included(f64::INFINITY), Included(f64::INFINITY), &["e"]),
            (Included(f64::NEG_INFINITY), Excluded(2.0), &["a"]),
        ];
        for (min, max, expected) in table {
            assert_eq!(
                members(set.range_by_score(*min, *max)),
                *expected,
                "{min:?} {max:?}"
            );
        }
        assert_eq!(
            members(set.range_by_score(Included(2.0), Unbounded).rev()),
            ["e", "d", "c", "b"]
        );
    }

    #[test]
    fn rescoring_moves_a_member_and_removal_forgets_it() {
        let mut set = zset(&[("a", 1.0), ("b", 2.0)]);
        assert_eq!(set.insert(&Bytes::from_static(b"a"), 5.0), Some(1.0));
        assert_eq!(set.rank(b"a"), Some(1));
        assert_eq!(set.rank(b"b"), Some(0));
        assert_eq!(set.remove(b"b"), Some(2.0));
        assert_eq!(set.rank(b"a"), Some(0));
        assert_eq!(set.len(), 1);
        assert_eq!(set.insert(&Bytes::from_static(b"n"), f64::NAN), None);
        assert_eq!(set.len(), 1);
        let decoded: ZSetValue = postcard::from_bytes(&postcard::to_stdvec(&set).unwrap()).unwrap();
        assert_eq!(decoded, set);
    }
}
