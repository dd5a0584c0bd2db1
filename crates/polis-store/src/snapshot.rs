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

/// The snapshot format this build writes (1: keys without versions, still
/// read; their versions are 0).
pub const SNAPSHOT_FORMAT_VERSION: u8 = 2;

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

/// The deserialized form of format 1, whose entries had no version.
#[derive(Deserialize)]
struct SnapshotOwnedV1 {
    keys: HashOrderedMap<Entry>,
    stats: DbStats,
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
        if version == 1 {
            let (owned, rest): (SnapshotOwnedV1, &[u8]) = postcard::take_from_bytes(body)?;
            if !rest.is_empty() {
                return Err(SnapshotError::TrailingBytes(rest.len()));
            }
            return Ok(Db::from_parts(owned.keys, owned.stats));
        }
        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                found: version,
                expected: SNAPSHOT_FORMAT_VERSION,
            });
        }
        let (owned, rest): (SnapshotOwned, &[u8]) = postcard::take_from_bytes(body)?;
        if !rest.is_empty() {
            return Err(SnapshotError::TrailingBytes(rest.len()));
        }
        let keys = owned
            .keys
            .map_values(|StoredOwned(value, expire_at_ms, version)| {
                Entry::new(value, expire_at_ms, version)
            });
        Ok(Db::from_parts(keys, owned.stats))
    }
}
