//! Snapshots of a [`Db`]: one format-version byte, then the keyspace in
//! postcard.
//!
//! Keys are written in hash order, so two replicas holding the same data
//! produce byte-identical snapshots whatever history built them. Derived
//! indexes (the expiry index, the memory estimate) are rebuilt on load
//! rather than stored.

use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};

use crate::db::{Db, DbStats, Entry};
use crate::ordered::HashOrderedMap;
use crate::value::Value;

/// The snapshot format this build writes (1: keys without versions, whose
/// versions read as 0; 2: counters without `evicted_keys`, which reads as
/// 0; both still read).
pub const SNAPSHOT_FORMAT_VERSION: u8 = 3;

/// Why a snapshot could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot is empty")]
    Empty,
    #[error("snapshot format version {found} is not supported (this build reads 1 to {expected})")]
    UnsupportedVersion { found: u8, expected: u8 },
    #[error("snapshot is corrupt: {0}")]
    Decode(#[from] postcard::Error),
    #[error("snapshot has {0} unexpected trailing bytes")]
    TrailingBytes(usize),
}

/// How a snapshot stores a key's entry: its version too.
pub(crate) struct Stored<'a>(pub(crate) &'a Entry);

impl Serialize for Stored<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.0.value, self.0.expire_at_ms(), self.0.version).serialize(serializer)
    }
}

/// A stored entry read back.
#[derive(Deserialize)]
struct StoredOwned(Value, Option<u64>, u64);

/// The keys of a snapshot, each with its [`Stored`] entry.
struct StoredKeys<'a>(&'a HashOrderedMap<Entry>);

impl Serialize for StoredKeys<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (key, entry) in self.0.iter() {
            seq.serialize_element(&(key, Stored(entry)))?;
        }
        seq.end()
    }
}

/// The serialized form, borrowing the live keyspace.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    keys: StoredKeys<'a>,
    stats: DbStats,
}

/// The deserialized form.
#[derive(Deserialize)]
struct SnapshotOwned {
    keys: HashOrderedMap<StoredOwned>,
    stats: DbStats,
}

/// The counters of formats 1 and 2: no evictions yet.
#[derive(Deserialize)]
struct DbStatsV2 {
    expired_keys: u64,
}

impl From<DbStatsV2> for DbStats {
    fn from(stats: DbStatsV2) -> Self {
        DbStats {
            expired_keys: stats.expired_keys,
            evicted_keys: 0,
        }
    }
}

/// The deserialized form of format 2.
#[derive(Deserialize)]
struct SnapshotOwnedV2 {
    keys: HashOrderedMap<StoredOwned>,
    stats: DbStatsV2,
}

/// The deserialized form of format 1, whose entries had no version.
#[derive(Deserialize)]
struct SnapshotOwnedV1 {
    keys: HashOrderedMap<Entry>,
    stats: DbStatsV2,
}

/// Returns what `body` holds as a `T`, with nothing left over.
fn decode_whole<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, SnapshotError> {
    let (owned, rest): (T, &[u8]) = postcard::take_from_bytes(body)?;
    if !rest.is_empty() {
        return Err(SnapshotError::TrailingBytes(rest.len()));
    }
    Ok(owned)
}

/// Returns the keys of a snapshot with their versions.
fn with_versions(keys: HashOrderedMap<StoredOwned>) -> HashOrderedMap<Entry> {
    keys.map_values(|StoredOwned(value, expire_at_ms, version)| {
        Entry::new(value, expire_at_ms, version)
    })
}

impl Db {
    /// Returns the snapshot of this keyspace.
    ///
    /// # Panics
    /// Panics only if postcard fails to encode, which it does only for
    /// sequences of unknown length; every sequence here has a known length,
    /// so a failure is a broken invariant and stops the node.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let body = SnapshotRef {
            keys: StoredKeys(&self.keys),
            stats: self.stats,
        };
        let mut out = Vec::with_capacity(1 + self.used_memory() / 2);
        out.push(SNAPSHOT_FORMAT_VERSION);
        #[allow(clippy::expect_used)]
        postcard::to_extend(&body, out).expect("postcard encodes sequences of known length")
    }

    /// Reads a keyspace from a snapshot made by [`Db::to_snapshot`].
    ///
    /// # Errors
    /// Returns [`SnapshotError`] when the version byte is unknown or the
    /// body does not decode completely.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Db, SnapshotError> {
        let (&version, body) = bytes.split_first().ok_or(SnapshotError::Empty)?;
        match version {
            1 => {
                let owned: SnapshotOwnedV1 = decode_whole(body)?;
                Ok(Db::from_parts(owned.keys, owned.stats.into()))
            }
            2 => {
                let owned: SnapshotOwnedV2 = decode_whole(body)?;
                Ok(Db::from_parts(
                    with_versions(owned.keys),
                    owned.stats.into(),
                ))
            }
            SNAPSHOT_FORMAT_VERSION => {
                let owned: SnapshotOwned = decode_whole(body)?;
                Ok(Db::from_parts(with_versions(owned.keys), owned.stats))
            }
            found => Err(SnapshotError::UnsupportedVersion {
                found,
                expected: SNAPSHOT_FORMAT_VERSION,
            }),
        }
    }
}

/// Returns a format 2 snapshot as this build writes it: the same keys and
/// values, the header's format 3 and an `evicted_keys` of 0 after the
/// other counter (postcard writes 0 as one byte).
#[cfg(test)]
pub(crate) fn in_current_format(format_2: &[u8]) -> Vec<u8> {
    assert_eq!(format_2.first(), Some(&2), "a format 2 snapshot");
    let mut bytes = vec![SNAPSHOT_FORMAT_VERSION];
    bytes.extend_from_slice(&format_2[1..]);
    bytes.push(0);
    bytes
}

#[cfg(test)]
#[path = "snapshot_test.rs"]
mod tests;
