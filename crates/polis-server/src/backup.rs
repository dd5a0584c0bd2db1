//! Backups of a shard, and restoring them: what `polis backup` keeps of
//! a shard (its leader's snapshot at one log index), how `polis restore`
//! cuts its keys into requests for the shards of a new cluster, how a
//! shard applies them, and the digest both sides compare.
//!
//! The digest of a set of slots adds up, per key live at a given time,
//! the xxh3 hash of the key and its entry (value and deadline) as they
//! are encoded: it does not depend on the order of keys or on which
//! shard holds which slot, so a backup's shard can be compared with the
//! same slots in a cluster of another shape.

use std::collections::BTreeMap;

use bytes::Bytes;
use polis_resp::Reply;
use polis_store::{Db, Entry, Value};
use polis_types::{key_hash_slot, SlotSet};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::machine::{decode_snapshot, split_snapshot, Applied, DataMachine};
use crate::migrating::ShippedKey;

/// Bytes of keys per restore request, at most (a larger single key goes
/// alone, or in parts when it is a hash, set or sorted set).
pub const CHUNK_BYTES: usize = 1 << 20;

/// What a shard's backup says of itself, read without decoding its keys.
pub struct ShardHead {
    /// The slots the shard owned at the backup's index.
    pub owned: SlotSet,
    /// The map version of that ownership.
    pub owned_version: u64,
    /// The keys it stored (some may have expired since).
    pub keys: u64,
}

impl ShardHead {
    /// Reads a shard's snapshot's head: its ownership, and the count of
    /// keys that heads its keyspace.
    ///
    /// # Errors
    /// A message when `app` is not a shard's snapshot.
    pub fn read(app: &[u8]) -> Result<Self, String> {
        let parts = split_snapshot(app)?;
        let keys = match parts.keyspace.split_first() {
            Some((_, keys)) => {
                postcard::take_from_bytes::<u64>(keys)
                    .map_err(|error| format!("keyspace: {error}"))?
                    .0
            }
            None => return Err("a snapshot without its keyspace".into()),
        };
        Ok(Self {
            owned: parts.ownership.slots,
            owned_version: parts.ownership.version,
            keys,
        })
    }
}

/// A shard as a backup holds it.
pub struct ShardContents {
    /// The slots the shard owned at the backup's index; keys of other
    /// slots (staged for a migration) are not its.
    pub owned: SlotSet,
    /// The map version of that ownership.
    pub owned_version: u64,
    pub db: Db,
}

impl ShardContents {
    /// Decodes a shard's snapshot, as `GET /backup/shards/{id}` returns it.
    ///
    /// # Errors
    /// A message when `app` is not a shard's snapshot.
    pub fn decode(app: &[u8]) -> Result<Self, String> {
        let decoded = decode_snapshot(app)?;
        Ok(Self {
            owned: decoded.ownership.slots,
            owned_version: decoded.ownership.version,
            db: decoded.db,
        })
    }

    /// Returns the keys of owned slots that are live at `at_ms`.
    pub fn live_keys(&self, at_ms: u64) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.db
            .iter(at_ms)
            .filter(|(key, _)| self.owned.contains(key_hash_slot(key)))
    }

    /// Returns the digest of each owned slot holding keys live at `at_ms`.
    pub fn digests(&self, at_ms: u64) -> BTreeMap<u16, SlotDigest> {
        slot_digests(&self.db, &self.owned, at_ms)
    }
}

/// The keys of one slot and their digest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotDigest {
    pub keys: u64,
    pub digest: u64,
}

impl SlotDigest {
    /// Adds another slot's (or key's) figures.
    pub fn add(&mut self, other: SlotDigest) {
        self.keys += other.keys;
        self.digest = self.digest.wrapping_add(other.digest);
    }
}

/// Returns the digest of each slot of `owned` that holds keys of `db`
/// live at `at_ms`.
pub fn slot_digests(db: &Db, owned: &SlotSet, at_ms: u64) -> BTreeMap<u16, SlotDigest> {
    let mut digests: BTreeMap<u16, SlotDigest> = BTreeMap::new();
    for (key, entry) in db.iter(at_ms) {
        let slot = key_hash_slot(key);
        if !owned.contains(slot) {
            continue;
        }
        digests.entry(slot.get()).or_default().add(SlotDigest {
            keys: 1,
            digest: key_digest(key, entry),
        });
    }
    digests
}

/// The hash of one key and its entry, as encoded.
fn key_digest(key: &Bytes, entry: &Entry) -> u64 {
    let encoded = postcard::to_stdvec(&(key, entry)).unwrap_or_default();
    xxh3_64(&encoded)
}

/// One restore request for a shard (`POST /restore/shards/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RestoreChunk {
    /// Whole keys (or the first part of a large collection), each
    /// replacing the key of its name.
    Keys(Vec<ShippedKey>),
    /// A later part of a large collection, added to the key of its name.
    Parts(Vec<(Bytes, Value)>),
}

/// Cuts the keys bound for one shard into restore requests of about
/// [`CHUNK_BYTES`]. A collection larger than that comes as a list of its
/// own: the key with its first part, then each later part; the caller
/// sends such a list in order, the whole list again if a request of it
/// failed (parts add nothing twice).
pub fn chunks<'a>(
    keys: impl IntoIterator<Item = (&'a Bytes, &'a Entry)>,
) -> Vec<Vec<RestoreChunk>> {
    let mut out = Vec::new();
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for (key, entry) in keys {
        if let Some((first, parts)) = entry.split(CHUNK_BYTES) {
            let mut pieces = vec![RestoreChunk::Keys(vec![(key.clone(), Some(first))])];
            pieces.extend(
                parts
                    .into_iter()
                    .map(|part| RestoreChunk::Parts(vec![(key.clone(), part)])),
            );
            out.push(pieces);
            continue;
        }
        bytes += key.len() + entry.value.mem_bytes();
        chunk.push((key.clone(), Some(entry.clone())));
        if bytes >= CHUNK_BYTES {
            out.push(vec![RestoreChunk::Keys(std::mem::take(&mut chunk))]);
            bytes = 0;
        }
    }
    if !chunk.is_empty() {
        out.push(vec![RestoreChunk::Keys(chunk)]);
    }
    out
}

impl DataMachine {
    /// Applies restored keys: all of them, or none when one's slot is not
    /// this shard's or is frozen for a migration's switch (the restore
    /// tries again on the new owner). Answers how many keys it wrote.
    pub(crate) fn restore_keys(
        &mut self,
        keys: Vec<ShippedKey>,
        index: u64,
        time_ms: u64,
    ) -> Applied {
        if let Some(refused) = self.admit_restored(keys.iter().map(|(key, _)| key), index) {
            return refused;
        }
        let mut written = 0;
        for (key, entry) in keys {
            let Some(entry) = entry else { continue };
            let deadline = entry.expire_at_ms();
            self.db.insert(key, entry.value, deadline, time_ms);
            written += 1;
        }
        Applied::Reply(Reply::Integer(written))
    }

    /// Adds later parts of restored collections to their keys, under the
    /// same rule as [`DataMachine::restore_keys`]. Answers how many parts
    /// found their key.
    pub(crate) fn restore_parts(
        &mut self,
        parts: Vec<(Bytes, Value)>,
        index: u64,
        time_ms: u64,
    ) -> Applied {
        if let Some(refused) = self.admit_restored(parts.iter().map(|(key, _)| key), index) {
            return refused;
        }
        let mut absorbed = 0;
        for (key, part) in parts {
            let added = self.db.update(&key, time_ms, |value| value.absorb(part));
            absorbed += i64::from(added == Some(true));
        }
        Applied::Reply(Reply::Integer(absorbed))
    }

    /// Refuses restored keys when one's slot is not this shard's or is
    /// frozen; otherwise notes them changed for an outgoing migration.
    fn admit_restored<'a>(
        &mut self,
        keys: impl Iterator<Item = &'a Bytes> + Clone,
        index: u64,
    ) -> Option<Applied> {
        if let Some(refused) = keys
            .clone()
            .find_map(|key| self.refusal(Some(key_hash_slot(key))))
        {
            return Some(refused);
        }
        self.migrations.note_changed(keys, index);
        None
    }
}

#[cfg(test)]
#[path = "backup_test.rs"]
mod tests;
