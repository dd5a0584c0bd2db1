//! A key's entry in the keyspace: its value, its deadline, the version
//! WATCH compares, and its access word (see [`crate::access`]); and what
//! one entry counts for in the keyspace's memory figure.

use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};

use crate::access::Access;
use crate::memory::{btree_entry_bytes, heap_bytes, Fill};
use crate::value::Value;

/// A key's value, its absolute expiry deadline in Unix milliseconds, and
/// what eviction knows of its use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub value: Value,
    /// The deadline, never 0 (a deadline of 0 is stored as 1 ms: both are
    /// long past), so that it fits in 8 bytes and the entry keeps its
    /// size with the access word beside it.
    #[serde(rename = "expire_at_ms", with = "deadline_serde")]
    pub(crate) expire_at: Option<NonZeroU64>,
    /// The version of the write that last changed the key (WATCH compares
    /// it). Replicated state, stored in snapshots, but not shipped by a
    /// migration: a key gets the version of the entry that makes it live.
    #[serde(skip)]
    pub version: u64,
    /// The LRU clock or LFU counter (see [`crate::access`]): this
    /// replica's own, never shipped or stored.
    #[serde(skip)]
    pub(crate) access: Access,
}

/// An entry keeps to 56 bytes: a key of the keyspace costs a B-tree slot
/// of its entry and its key handle (40 bytes).
const _: () = assert!(std::mem::size_of::<Entry>() <= 56);

/// Returns the stored form of a deadline.
pub(crate) fn deadline(expire_at_ms: Option<u64>) -> Option<NonZeroU64> {
    expire_at_ms.and_then(|ms| NonZeroU64::new(ms.max(1)))
}

/// An entry's deadline as snapshots and migrations have always written
/// it: an `Option<u64>`.
mod deadline_serde {
    use std::num::NonZeroU64;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        deadline: &Option<NonZeroU64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        deadline.map(NonZeroU64::get).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<NonZeroU64>, D::Error> {
        Ok(super::deadline(Option::<u64>::deserialize(deserializer)?))
    }
}

impl Entry {
    /// Returns an entry of `value` with deadline `expire_at_ms` and
    /// version `version`, used never.
    pub fn new(value: Value, expire_at_ms: Option<u64>, version: u64) -> Self {
        Self {
            value,
            expire_at: deadline(expire_at_ms),
            version,
            access: Access::default(),
        }
    }

    /// Cuts a collection of more than `part_bytes` into its first part, an
    /// entry with this entry's deadline, and the later parts (see
    /// [`Value::split`]); `None` for a value that travels whole.
    pub fn split(&self, part_bytes: usize) -> Option<(Entry, Vec<Value>)> {
        let mut parts = self.value.split(part_bytes)?.into_iter();
        let first = parts.next()?;
        Some((Entry::new(first, self.expire_at_ms(), 0), parts.collect()))
    }

    /// Returns the deadline in Unix milliseconds, if the key has one.
    pub fn expire_at_ms(&self) -> Option<u64> {
        self.expire_at.map(NonZeroU64::get)
    }

    /// Returns true when the deadline has passed at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        matches!(self.expire_at_ms(), Some(deadline) if deadline <= now_ms)
    }

    /// Returns what eviction knows of the key's use on this replica.
    pub fn access(&self) -> &Access {
        &self.access
    }
}

/// A key's share of the keyspace's B-tree: its slot holds a 40-byte key
/// handle (hash and `Bytes`) and its entry, and keys come in hash order.
pub const KEY_SLOT_BYTES: usize =
    btree_entry_bytes(40 + std::mem::size_of::<Entry>(), Fill::Random);
/// What a deadline adds: a slot of the expiry index (deadline and key
/// handle, deadlines mostly ascending) and the shared header the key's
/// second handle makes it allocate.
pub const DEADLINE_BYTES: usize = btree_entry_bytes(40, Fill::Ascending) + 32;

/// Returns the bytes one keyspace entry counts for in
/// [`crate::Db::used_memory`]: its slot, its key's and value's heap blocks, and
/// its deadline's place in the expiry index (see [`crate::memory`]).
pub(crate) fn entry_bytes(key: &[u8], entry: &Entry) -> usize {
    let deadline = if entry.expire_at.is_some() {
        DEADLINE_BYTES
    } else {
        0
    };
    KEY_SLOT_BYTES + heap_bytes(key.len()) + entry.value.mem_bytes() + deadline
}
