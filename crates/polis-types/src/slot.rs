//! Hash slots, computed exactly as Redis Cluster does: CRC16 (XMODEM) of the
//! key, or of its `{hash tag}`, modulo 16384; and the ranges and sets of
//! slots a shard owns.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Number of hash slots in the cluster.
pub const SLOT_COUNT: u16 = 16384;

/// A hash slot, `0..SLOT_COUNT`. Deserializing checks the bound, so a
/// slot read from the network or the disk is always a valid index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Slot(u16);

impl<'de> Deserialize<'de> for Slot {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = u16::deserialize(deserializer)?;
        Slot::new(number)
            .ok_or_else(|| serde::de::Error::custom(format!("slot {number} is out of range")))
    }
}

impl Slot {
    /// Returns the slot numbered `slot`, if it is below [`SLOT_COUNT`].
    pub const fn new(slot: u16) -> Option<Self> {
        if slot < SLOT_COUNT {
            Some(Self(slot))
        } else {
            None
        }
    }

    /// Returns the slot's number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Returns the CRC16/XMODEM checksum of `data` (polynomial 0x1021, initial
/// value 0), the checksum Redis Cluster hashes keys with.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Returns the part of `key` that is hashed: the content of the first
/// `{...}` if it is non-empty, otherwise the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    let rest = &key[open + 1..];
    match rest.iter().position(|&b| b == b'}') {
        Some(0) | None => key,
        Some(close) => &rest[..close],
    }
}

/// Returns the hash slot of `key`.
pub fn key_hash_slot(key: &[u8]) -> Slot {
    Slot(crc16(hash_tag(key)) % SLOT_COUNT)
}

/// An inclusive range of slots, `start..=end`, as Redis Cluster lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SlotRange {
    pub start: Slot,
    pub end: Slot,
}

impl SlotRange {
    /// Returns `start..=end`, if `start <= end`.
    pub fn new(start: Slot, end: Slot) -> Option<Self> {
        (start <= end).then_some(Self { start, end })
    }

    /// Returns every slot.
    pub const fn all() -> Self {
        Self {
            start: Slot(0),
            end: Slot(SLOT_COUNT - 1),
        }
    }

    /// Returns true when `slot` is in the range.
    pub fn contains(&self, slot: Slot) -> bool {
        self.start <= slot && slot <= self.end
    }

    /// Returns the number of slots in the range.
    pub fn len(&self) -> usize {
        usize::from(self.end.0 - self.start.0) + 1
    }

    /// Always false: a range holds at least one slot.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Returns the slots of the range.
    pub fn slots(&self) -> impl Iterator<Item = Slot> {
        (self.start.0..=self.end.0).map(Slot)
    }
}

impl fmt::Display for SlotRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

const WORDS: usize = SLOT_COUNT as usize / 64;

/// A set of slots: one bit per slot (2 KiB), serialized as its ranges.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SlotSet {
    words: Box<[u64; WORDS]>,
}

impl Default for SlotSet {
    fn default() -> Self {
        Self {
            words: Box::new([0; WORDS]),
        }
    }
}

impl SlotSet {
    /// Returns the set of the slots in `ranges`.
    pub fn from_ranges<'a>(ranges: impl IntoIterator<Item = &'a SlotRange>) -> Self {
        let mut set = Self::default();
        for range in ranges {
            for slot in range.slots() {
                set.insert(slot);
            }
        }
        set
    }

    /// Adds `slot`.
    pub fn insert(&mut self, slot: Slot) {
        let index = usize::from(slot.0);
        self.words[index / 64] |= 1 << (index % 64);
    }

    /// Removes `slot`.
    pub fn remove(&mut self, slot: Slot) {
        let index = usize::from(slot.0);
        self.words[index / 64] &= !(1 << (index % 64));
    }

    /// Returns true when `slot` is in the set.
    pub fn contains(&self, slot: Slot) -> bool {
        let index = usize::from(slot.0);
        self.words[index / 64] & (1 << (index % 64)) != 0
    }

    /// Returns the number of slots in the set.
    pub fn len(&self) -> usize {
        self.words
            .iter()
            .map(|word| word.count_ones() as usize)
            .sum()
    }

    /// Returns true when the set holds no slot.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|word| *word == 0)
    }

    /// Returns the set as maximal ranges, in slot order.
    pub fn ranges(&self) -> Vec<SlotRange> {
        let mut ranges = Vec::new();
        let mut open: Option<Slot> = None;
        for number in 0..SLOT_COUNT {
            let slot = Slot(number);
            match (self.contains(slot), open) {
                (true, None) => open = Some(slot),
                (false, Some(start)) => {
                    ranges.push(SlotRange {
                        start,
                        end: Slot(number - 1),
                    });
                    open = None;
                }
                _ => {}
            }
        }
        if let Some(start) = open {
            ranges.push(SlotRange {
                start,
                end: Slot(SLOT_COUNT - 1),
            });
        }
        ranges
    }
}

impl fmt::Debug for SlotSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranges: Vec<String> = self.ranges().iter().map(ToString::to_string).collect();
        write!(f, "SlotSet[{}]", ranges.join(","))
    }
}

impl Serialize for SlotSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.ranges().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SlotSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ranges = Vec::<SlotRange>::deserialize(deserializer)?;
        if ranges.iter().any(|range| range.start > range.end) {
            return Err(serde::de::Error::custom(
                "a slot range ends before it starts",
            ));
        }
        Ok(Self::from_ranges(&ranges))
    }
}

/// Returns `SLOT_COUNT` slots cut into `parts` contiguous ranges of sizes
/// differing by at most one, in order: how a new cluster spreads its slots
/// over its shards.
///
/// # Panics
/// If `parts` is 0 or more than [`SLOT_COUNT`].
pub fn split_evenly(parts: u16) -> Vec<SlotRange> {
    assert!(parts > 0 && parts <= SLOT_COUNT, "parts out of range");
    let base = SLOT_COUNT / parts;
    let extra = SLOT_COUNT % parts;
    let mut start = 0u16;
    (0..parts)
        .map(|part| {
            let len = base + u16::from(part < extra);
            let range = SlotRange {
                start: Slot(start),
                end: Slot(start + len - 1),
            };
            start += len;
            range
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_reference_vector() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn slots_match_redis_cluster() {
        let table: &[(&[u8], u16)] = &[
            (b"foo", 12182),
            (b"{user1000}.following", 3443),
            (b"{user1000}.followers", 3443),
            (b"foo{}{bar}", 8363),
            (b"foo{{bar}}zap", key_hash_slot(b"{bar").get()),
            (b"foo{bar}{zap}", key_hash_slot(b"bar").get()),
            (b"", 0),
        ];
        for (key, slot) in table {
            assert_eq!(
                key_hash_slot(key).get(),
                *slot,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn hash_tag_rules() {
        assert_eq!(hash_tag(b"{}x"), b"{}x");
        assert_eq!(hash_tag(b"a{b"), b"a{b");
        assert_eq!(hash_tag(b"a{b}c"), b"b");
    }

    #[test]
    fn slots_exist_only_below_the_count() {
        assert_eq!(Slot::new(16383).map(Slot::get), Some(16383));
        assert_eq!(Slot::new(16384), None);
    }

    #[test]
    fn even_splits_cover_every_slot_once_in_order() {
        for parts in [1u16, 2, 3, 7, 10, 128, 16384] {
            let ranges = split_evenly(parts);
            assert_eq!(ranges.len(), usize::from(parts));
            assert_eq!(ranges[0].start.get(), 0);
            assert_eq!(ranges[ranges.len() - 1].end.get(), SLOT_COUNT - 1);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end.get() + 1, pair[1].start.get());
            }
            let sizes: Vec<usize> = ranges.iter().map(SlotRange::len).collect();
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1, "{parts} parts: sizes {min}..{max}");
        }
        assert_eq!(split_evenly(3)[0].to_string(), "0-5461");
    }

    #[test]
    fn slot_sets_round_trip_through_their_ranges() {
        let ranges = [
            SlotRange::new(Slot(0), Slot(9)).unwrap(),
            SlotRange::new(Slot(100), Slot(100)).unwrap(),
            SlotRange::new(Slot(16000), Slot(16383)).unwrap(),
        ];
        let set = SlotSet::from_ranges(&ranges);
        assert_eq!(set.ranges(), ranges);
        assert_eq!(set.len(), 10 + 1 + 384);
        assert!(set.contains(Slot(100)) && !set.contains(Slot(101)));
        let json = serde_json::to_string(&set).unwrap();
        let back: SlotSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
        let mut smaller = set.clone();
        smaller.remove(Slot(100));
        assert_eq!(smaller.ranges().len(), 2);
        assert!(SlotSet::default().is_empty());
        assert!(serde_json::from_str::<SlotSet>(r#"[{"start":5,"end":4}]"#).is_err());
        assert!(serde_json::from_str::<SlotSet>(r#"[{"start":5,"end":16384}]"#).is_err());
    }
}
