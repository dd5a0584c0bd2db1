//! A map ordered by a fixed 64-bit hash of its keys.
//!
//! Every replica must iterate the keyspace (and the fields of a hash) in the
//! same order, whatever the history of inserts and deletes that built it, so
//! that snapshots are byte-identical and SCAN cursors mean the same thing on
//! every node. Ordering by `(key_hash(key), key)` gives that, and the hash
//! doubles as the SCAN cursor: cursor `c` means "every key whose hash is
//! below `c` has been visited".

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

/// Returns the fixed 64-bit hash that orders keys, never zero (cursor 0
/// means "start" and "done" in SCAN).
///
/// The function is part of the replicated state's meaning: changing it
/// changes SCAN cursors, so it is defined here rather than taken from the
/// standard library, whose hasher may change between Rust versions.
pub fn key_hash(key: &[u8]) -> u64 {
    const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325 ^ (key.len() as u64).wrapping_mul(MULTIPLIER);
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        hash = (hash ^ u64::from_le_bytes(word))
            .wrapping_mul(MULTIPLIER)
            .rotate_left(29);
    }
    let mut tail = [0u8; 8];
    let rest = chunks.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    hash = (hash ^ u64::from_le_bytes(tail)).wrapping_mul(MULTIPLIER);
    // Final avalanche (the MurmurHash3 64-bit finalizer).
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    hash ^= hash >> 33;
    hash.max(1)
}

/// How a map holds a key: any owned value that shows the key's bytes.
///
/// The keyspace, sets and sorted sets keep `Bytes`; a hash keeps each
/// field packed with its value, so the key is part of a larger allocation.
pub trait StoredKey {
    /// Returns the bytes the key is ordered and looked up by.
    fn key_bytes(&self) -> &[u8];
}

impl StoredKey for Bytes {
    fn key_bytes(&self) -> &[u8] {
        self
    }
}

/// A key stored together with its hash; ordered by hash, then bytes.
#[derive(Clone, Debug)]
struct HashedKey<K> {
    hash: u64,
    key: K,
}

/// A borrowed view of a key and its hash, so lookups by `&[u8]` need no
/// allocation.
trait KeyView {
    fn hash(&self) -> u64;
    fn bytes(&self) -> &[u8];
}

impl<K: StoredKey> KeyView for HashedKey<K> {
    fn hash(&self) -> u64 {
        self.hash
    }
    fn bytes(&self) -> &[u8] {
        self.key.key_bytes()
    }
}

/// A lookup probe: a hash and borrowed bytes.
struct Probe<'a> {
    hash: u64,
    key: &'a [u8],
}

impl<'a> Probe<'a> {
    /// Returns the probe that finds `key`.
    fn of(key: &'a [u8]) -> Self {
        Self {
            hash: key_hash(key),
            key,
        }
    }
}

impl KeyView for Probe<'_> {
    fn hash(&self) -> u64 {
        self.hash
    }
    fn bytes(&self) -> &[u8] {
        self.key
    }
}

impl<'a, K: StoredKey + 'a> Borrow<dyn KeyView + 'a> for HashedKey<K> {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.hash() == other.hash() && self.bytes() == other.bytes()
    }
}

impl Eq for dyn KeyView + '_ {}

impl PartialOrd for dyn KeyView + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn KeyView + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.hash()
            .cmp(&other.hash())
            .then_with(|| self.bytes().cmp(other.bytes()))
    }
}

impl<K: StoredKey> PartialEq for HashedKey<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<K: StoredKey> Eq for HashedKey<K> {}

impl<K: StoredKey> PartialOrd for HashedKey<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: StoredKey> Ord for HashedKey<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.hash
            .cmp(&other.hash)
            .then_with(|| self.key.key_bytes().cmp(other.key.key_bytes()))
    }
}

/// One page of a cursor scan: the entries visited and the cursor that
/// continues after them (0 when the scan is complete).
pub struct ScanPage<'a, V, K = Bytes> {
    pub entries: Vec<(&'a K, &'a V)>,
    pub next_cursor: u64,
}

/// A map from byte-string keys, held as `K`, to `V`, iterated in
/// `(key_hash, key)` order.
#[derive(Clone, Debug)]
pub struct HashOrderedMap<V, K = Bytes> {
    map: BTreeMap<HashedKey<K>, V>,
}

/// Equal when the entries are: whole stored keys, not just the bytes the
/// map orders them by, and values.
impl<V: PartialEq, K: StoredKey + PartialEq> PartialEq for HashOrderedMap<V, K> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<V, K: StoredKey> Default for HashOrderedMap<V, K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V, K: StoredKey> HashOrderedMap<V, K> {
    /// Returns an empty map.
    pub fn new() -> Self {
        Self {
            map: BTreeMap::new(),
        }
    }

    /// Returns the map with each value replaced by `convert(value)`, in
    /// one pass that keeps the keys and their hashes.
    pub fn map_values<W>(self, mut convert: impl FnMut(V) -> W) -> HashOrderedMap<W, K> {
        HashOrderedMap {
            map: self
                .map
                .into_iter()
                .map(|(key, value)| (key, convert(value)))
                .collect(),
        }
    }

    /// Returns the number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Returns true when the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Returns the value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        let probe = Probe::of(key);
        self.map.get(&probe as &dyn KeyView)
    }

    /// Returns the stored key and value for `key`.
    pub fn get_key_value(&self, key: &[u8]) -> Option<(&K, &V)> {
        let probe = Probe::of(key);
        self.map
            .get_key_value(&probe as &dyn KeyView)
            .map(|(stored, value)| (&stored.key, value))
    }

    /// Returns a mutable reference to the value stored under `key`.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let probe = Probe::of(key);
        self.map.get_mut(&probe as &dyn KeyView)
    }

    /// Returns true when `key` is present.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Stores `value` under `key`, returning the previous value; a key
    /// already present keeps the copy stored first.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let hash = key_hash(key.key_bytes());
        self.map.insert(HashedKey { hash, key }, value)
    }

    /// Stores `key` and `value` in place of any entry with equal key
    /// bytes, returning that entry.
    pub fn replace(&mut self, key: K, value: V) -> Option<(K, V)> {
        let hash = key_hash(key.key_bytes());
        let probe = Probe {
            hash,
            key: key.key_bytes(),
        };
        let previous = self.map.remove_entry(&probe as &dyn KeyView);
        self.map.insert(HashedKey { hash, key }, value);
        previous.map(|(stored, value)| (stored.key, value))
    }

    /// Keeps only the entries for which `keep` holds, in one pass without
    /// a lookup per entry.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.map.retain(|stored, value| keep(&stored.key, value));
    }

    /// Removes `key`, returning the stored key and value.
    pub fn remove(&mut self, key: &[u8]) -> Option<(K, V)> {
        let probe = Probe::of(key);
        self.map
            .remove_entry(&probe as &dyn KeyView)
            .map(|(stored, value)| (stored.key, value))
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Iterates entries in `(key_hash, key)` order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.map.iter().map(|(stored, value)| (&stored.key, value))
    }

    /// Iterates, in order and with their hashes, the entries after the
    /// position `(hash, key)`, or every entry when `after` is `None`.
    pub fn iter_after(&self, after: Option<(u64, &[u8])>) -> impl Iterator<Item = (u64, &K, &V)> {
        let probe = after.map(|(hash, key)| Probe { hash, key });
        let start: Bound<&dyn KeyView> = match &probe {
            Some(probe) => Bound::Excluded(probe),
            None => Bound::Unbounded,
        };
        self.map
            .range::<dyn KeyView, _>((start, Bound::Unbounded))
            .map(|(stored, value)| (stored.hash, &stored.key, value))
    }

    /// Takes every entry out, in order, with their hashes.
    pub fn drain_hashed(&mut self) -> impl Iterator<Item = (u64, K, V)> {
        std::mem::take(&mut self.map)
            .into_iter()
            .map(|(stored, value)| (stored.hash, stored.key, value))
    }

    /// Iterates every entry once, in order, starting at the first whose
    /// hash is at least `hash` and wrapping around to the first entry
    /// after the last. Finding the start is O(log n): random samples
    /// (eviction) start at a random hash.
    pub fn iter_from(&self, hash: u64) -> impl Iterator<Item = (&K, &V)> {
        let probe = Probe { hash, key: &[] };
        let split: Bound<&dyn KeyView> = Bound::Included(&probe);
        let tail = self.map.range::<dyn KeyView, _>((split, Bound::Unbounded));
        let split: Bound<&dyn KeyView> = Bound::Excluded(&probe);
        let head = self.map.range::<dyn KeyView, _>((Bound::Unbounded, split));
        tail.chain(head).map(|(stored, value)| (&stored.key, value))
    }

    /// Returns the entry at position `index` in iteration order.
    ///
    /// O(n): the B-tree keeps no subtree sizes. Used only by random picks
    /// (RANDOMKEY, HRANDFIELD), which Redis serves in O(1).
    pub fn nth(&self, index: usize) -> Option<(&K, &V)> {
        self.iter().nth(index)
    }

    /// Visits up to `count` entries whose hash is at least `cursor`, plus
    /// any further entries sharing the last visited hash (so a cursor never
    /// splits a group of colliding keys), and returns them with the cursor
    /// that continues the scan (0 when nothing is left).
    ///
    /// A key present from the first call to the last is returned at least
    /// once, whatever is inserted or removed in between, because the cursor
    /// only promises that all hashes below it were visited.
    pub fn scan(&self, cursor: u64, count: usize) -> ScanPage<'_, V, K> {
        let count = count.max(1);
        let probe = Probe {
            hash: cursor,
            key: &[],
        };
        let start: Bound<&dyn KeyView> = Bound::Included(&probe);
        let mut range = self.map.range::<dyn KeyView, _>((start, Bound::Unbounded));
        let mut entries = Vec::with_capacity(count.min(self.map.len()));
        let mut last_hash = None;
        // Bounded by the map's size: each iteration consumes one entry.
        for (stored, value) in range.by_ref() {
            if entries.len() >= count && last_hash != Some(stored.hash) {
                return ScanPage {
                    entries,
                    next_cursor: stored.hash,
                };
            }
            last_hash = Some(stored.hash);
            entries.push((&stored.key, value));
        }
        ScanPage {
            entries,
            next_cursor: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED_FOO: u64 = 1_953_807_813_287_780_345;
    const PINNED_LONG: u64 = 9_649_990_935_837_435_475;

    #[test]
    fn hash_is_fixed_and_never_zero() {
        // Pinned values: changing the hash changes SCAN cursors on live
        // clusters, so a change must be deliberate.
        assert_eq!(key_hash(b"foo"), PINNED_FOO);
        assert_eq!(key_hash(b"a longer key of 26 bytes.."), PINNED_LONG);
        assert_ne!(key_hash(b"a"), key_hash(b"b"));
        assert_ne!(key_hash(b"abcdefgh"), key_hash(b"abcdefgh\0"));
        for index in 0..10_000u32 {
            assert_ne!(key_hash(&index.to_le_bytes()), 0);
        }
    }

    #[test]
    fn lookups_by_slice_find_inserted_keys() {
        let mut map = HashOrderedMap::new();
        assert_eq!(map.insert(Bytes::from_static(b"k1"), 1), None);
        assert_eq!(map.insert(Bytes::from_static(b"k2"), 2), None);
        assert_eq!(map.insert(Bytes::from_static(b"k1"), 3), Some(1));
        assert_eq!(map.get(b"k1"), Some(&3));
        assert_eq!(map.get(b"k3"), None);
        assert_eq!(map.len(), 2);
        assert_eq!(map.remove(b"k2").map(|(_, v)| v), Some(2));
        assert!(!map.contains_key(b"k2"));
    }

    /// A key that carries more than its bytes, as a hash's packed entry
    /// does.
    #[derive(Clone, Debug, PartialEq)]
    struct Tagged {
        key: &'static [u8],
        tag: u8,
    }

    impl StoredKey for Tagged {
        fn key_bytes(&self) -> &[u8] {
            self.key
        }
    }

    #[test]
    fn replace_stores_the_new_key_and_insert_keeps_the_old() {
        let mut map: HashOrderedMap<u8, Tagged> = HashOrderedMap::new();
        let first = Tagged { key: b"k", tag: 1 };
        let second = Tagged { key: b"k", tag: 2 };
        assert_eq!(map.replace(first.clone(), 10), None);
        assert_eq!(map.replace(second.clone(), 20), Some((first, 10)));
        assert_eq!(map.get_key_value(b"k"), Some((&second, &20)));
        assert_eq!(map.insert(Tagged { key: b"k", tag: 3 }, 30), Some(20));
        assert_eq!(map.get_key_value(b"k"), Some((&second, &30)));
        assert_eq!(map.len(), 1);
        assert_eq!(map.remove(b"k"), Some((second, 30)));
        assert!(map.is_empty());
    }

    #[test]
    fn iteration_order_does_not_depend_on_history() {
        let mut forward = HashOrderedMap::new();
        let mut backward = HashOrderedMap::new();
        for index in 0..500u32 {
            forward.insert(Bytes::from(format!("key:{index}")), index);
        }
        for index in (0..700u32).rev() {
            backward.insert(Bytes::from(format!("key:{index}")), index);
        }
        for index in 500..700u32 {
            backward.remove(format!("key:{index}").as_bytes());
        }
        let left: Vec<_> = forward.iter().collect();
        let right: Vec<_> = backward.iter().collect();
        assert_eq!(left, right);
    }

    #[test]
    fn scan_returns_every_key_present_throughout() {
        let mut map = HashOrderedMap::new();
        for index in 0..1000u32 {
            map.insert(Bytes::from(format!("stable:{index}")), index);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 10_000, "scan does not terminate");
            let page = map.scan(cursor, 7);
            let keys: Vec<Bytes> = page.entries.iter().map(|(k, _)| (*k).clone()).collect();
            seen.extend(keys);
            cursor = page.next_cursor;
            // Churn between calls: insert and remove other keys.
            map.insert(Bytes::from(format!("churn:{rounds}")), 0);
            if rounds > 3 {
                map.remove(format!("churn:{}", rounds - 3).as_bytes());
            }
            if cursor == 0 {
                break;
            }
        }
        for index in 0..1000u32 {
            assert!(
                seen.contains(format!("stable:{index}").as_bytes()),
                "missed {index}"
            );
        }
    }

    #[test]
    fn iter_from_visits_every_entry_once_from_a_hash() {
        let mut map = HashOrderedMap::new();
        for index in 0..200u32 {
            map.insert(Bytes::from(format!("key:{index}")), index);
        }
        let ordered: Vec<u32> = map.iter().map(|(_, value)| *value).collect();
        for start in [0, 1, u64::MAX / 3, u64::MAX / 2, u64::MAX] {
            let from: Vec<u32> = map.iter_from(start).map(|(_, value)| *value).collect();
            assert_eq!(from.len(), ordered.len(), "from {start}");
            let first = map
                .iter()
                .position(|(key, _)| key_hash(key) >= start)
                .unwrap_or(0);
            let mut expected = ordered[first..].to_vec();
            expected.extend_from_slice(&ordered[..first]);
            assert_eq!(from, expected, "from {start}");
        }
        let empty: HashOrderedMap<u8> = HashOrderedMap::new();
        assert_eq!(empty.iter_from(7).count(), 0);
    }

    #[test]
    fn scan_of_empty_map_is_done_at_once() {
        let map: HashOrderedMap<u8> = HashOrderedMap::new();
        let page = map.scan(0, 10);
        assert!(page.entries.is_empty());
        assert_eq!(page.next_cursor, 0);
    }
}
