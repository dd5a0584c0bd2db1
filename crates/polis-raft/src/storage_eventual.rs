//! The keys of eventual namespaces on one node: their merged states, kept
//! beside the Raft logs in the same fjall database (so one group-commit
//! fsync serves both), or on the simulated disk.
//!
//! ```text
//!   eventual: slot (u16 BE) | key  ->  record of the key's state (opaque here)
//! ```
//!
//! Keys sort by slot, so a slot's keys are one range: anti-entropy digests
//! and slot migration read them in order. Every value is a [`record`]
//! (checksummed, or sealed in an encrypted directory; the keys, slot and
//! key name, stay in the clear for that order); a record that fails its
//! check on a read stops the node,
//! as damaged log data does.
//!
//! [`record`]: crate::log_store::record

use std::io;
use std::ops::Bound;

use crate::at_rest::Cipher;
use crate::log_store::corruption::{self, Corruption, RecordProblem};
use crate::storage::Storage;

/// One write: a key's new state, or its removal.
pub type EventualWrite = (Vec<u8>, Option<Vec<u8>>);

/// Returns the stored key of `key` in `slot`.
pub fn eventual_key(slot: u16, key: &[u8]) -> Vec<u8> {
    let mut stored = Vec::with_capacity(2 + key.len());
    stored.extend_from_slice(&slot.to_be_bytes());
    stored.extend_from_slice(key);
    stored
}

/// Splits a stored key into its slot and key.
pub fn split_eventual_key(stored: &[u8]) -> Option<(u16, &[u8])> {
    let (slot, key) = stored.split_first_chunk::<2>()?;
    Some((u16::from_be_bytes(*slot), key))
}

impl Storage {
    fn open_record(&self, key: &[u8], bytes: &[u8]) -> Vec<u8> {
        match self.cipher().open(key, bytes) {
            Ok(payload) => payload.into_owned(),
            Err(error) => {
                let dir = match self {
                    Self::Disk { engine, .. } => engine.dir().to_owned(),
                    Self::Memory(_) => "memory".into(),
                };
                corruption::crash_stop(&Corruption::Eventual {
                    dir,
                    key: key.to_vec(),
                    problem: RecordProblem::from(error),
                })
            }
        }
    }

    /// Returns the stored state of `key` (a key made by [`eventual_key`]).
    ///
    /// # Errors
    /// Returns an error if the storage cannot be read.
    pub fn eventual_get(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let bytes = match self {
            Self::Disk { engine, .. } => engine
                .eventual
                .get(key)
                .map_err(io::Error::other)?
                .map(|slice| slice.to_vec()),
            Self::Memory(disk) => disk.with_eventual(|table| table.get(key).cloned())?,
        };
        Ok(bytes.map(|bytes| self.open_record(key, &bytes)))
    }

    /// Stores `writes` in one batch, durably: when this returns, a crash
    /// keeps them all.
    ///
    /// # Errors
    /// Returns an error if the storage cannot be written. (A failed fsync
    /// stops the node before this could return.)
    pub async fn eventual_put(&self, writes: Vec<EventualWrite>) -> io::Result<()> {
        match self {
            Self::Disk { engine, .. } => {
                let mut batch = engine.db().batch();
                for (key, value) in writes {
                    match value {
                        Some(value) => {
                            let sealed = engine.cipher().sealed(&key, &value);
                            batch.insert(&engine.eventual, key, sealed);
                        }
                        None => batch.remove(&engine.eventual, key),
                    }
                }
                batch.commit().map_err(io::Error::other)?;
                let (done, synced) = tokio::sync::oneshot::channel();
                engine
                    .group_commit()
                    .after_next_sync(Box::new(move |result| drop(done.send(result))));
                synced
                    .await
                    .map_err(|_| io::Error::other("group commit stopped"))?
            }
            Self::Memory(disk) => disk.with_eventual(|table| {
                for (key, value) in writes {
                    match value {
                        Some(value) => {
                            let sealed = Cipher::Plain.sealed(&key, &value);
                            table.insert(key, sealed);
                        }
                        None => {
                            table.remove(&key);
                        }
                    }
                }
            }),
        }
    }

    /// Returns up to `limit` stored keys (as [`eventual_key`] makes them)
    /// and states after `after` (from the first when none), in order,
    /// across slots.
    ///
    /// # Errors
    /// Returns an error if the storage cannot be read.
    pub fn eventual_page(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let lower = match after {
            Some(stored) => Bound::Excluded(stored.to_vec()),
            None => Bound::Unbounded,
        };
        self.eventual_range((lower, Bound::Unbounded), limit)
    }

    fn eventual_range(
        &self,
        range: (Bound<Vec<u8>>, Bound<Vec<u8>>),
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let found: Vec<(Vec<u8>, Vec<u8>)> = match self {
            Self::Disk { engine, .. } => {
                let mut found = Vec::new();
                for guard in engine.eventual.range::<Vec<u8>, _>(range).take(limit) {
                    let (key, value) = guard.into_inner().map_err(io::Error::other)?;
                    found.push((key.to_vec(), value.to_vec()));
                }
                found
            }
            Self::Memory(disk) => disk.with_eventual(|table| {
                table
                    .range::<Vec<u8>, _>(range)
                    .take(limit)
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect()
            })?,
        };
        Ok(found
            .into_iter()
            .map(|(key, value)| {
                let payload = self.open_record(&key, &value);
                (key, payload)
            })
            .collect())
    }

    /// Returns up to `limit` stored keys starting with `prefix` (after
    /// `after` when given), with their values, in order.
    ///
    /// # Errors
    /// Returns an error if the storage cannot be read.
    pub fn eventual_prefix(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let lower = match after {
            Some(stored) => Bound::Excluded(stored.to_vec()),
            None => Bound::Included(prefix.to_vec()),
        };
        let mut found = self.eventual_range((lower, Bound::Unbounded), limit)?;
        if let Some(end) = found.iter().position(|(key, _)| !key.starts_with(prefix)) {
            found.truncate(end);
        }
        Ok(found)
    }

    /// Returns up to `limit` stored keys and states from `from` (included,
    /// or after it when `after`) to the end of slot `slot`, in order.
    ///
    /// # Errors
    /// Returns an error if the storage cannot be read.
    pub fn eventual_scan(
        &self,
        slot: u16,
        from: &[u8],
        after: bool,
        limit: usize,
    ) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let start = eventual_key(slot, from);
        let lower = if after {
            Bound::Excluded(start)
        } else {
            Bound::Included(start)
        };
        let upper = match slot.checked_add(1) {
            Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
            None => Bound::Unbounded,
        };
        self.eventual_range((lower, upper), limit)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly.

    use super::*;
    use crate::mem_log_store::MemDisk;

    async fn round_trip(storage: Storage) {
        let a = eventual_key(7, b"a");
        let b = eventual_key(7, b"b");
        let other = eventual_key(8, b"a");
        storage
            .eventual_put(vec![
                (a.clone(), Some(b"1".to_vec())),
                (b.clone(), Some(b"2".to_vec())),
                (other.clone(), Some(b"3".to_vec())),
            ])
            .await
            .unwrap();
        assert_eq!(storage.eventual_get(&a).unwrap(), Some(b"1".to_vec()));
        let slot = storage.eventual_scan(7, b"", false, 10).unwrap();
        assert_eq!(
            slot,
            vec![(a.clone(), b"1".to_vec()), (b.clone(), b"2".to_vec())],
            "one slot's keys, in order, and no other slot's"
        );
        assert_eq!(storage.eventual_scan(7, b"a", true, 10).unwrap().len(), 1);
        assert_eq!(storage.eventual_scan(7, b"", false, 1).unwrap().len(), 1);
        storage.eventual_put(vec![(a.clone(), None)]).await.unwrap();
        assert_eq!(storage.eventual_get(&a).unwrap(), None);
        assert_eq!(split_eventual_key(&other), Some((8, &b"a"[..])));
        let last = eventual_key(u16::MAX, b"z");
        storage
            .eventual_put(vec![(last.clone(), Some(b"4".to_vec()))])
            .await
            .unwrap();
        assert_eq!(
            storage
                .eventual_scan(u16::MAX, b"", false, 10)
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn eventual_keys_round_trip_on_the_simulated_disk() {
        round_trip(Storage::Memory(MemDisk::new(
            polis_types::NodeId(1),
            1,
            std::time::Duration::ZERO,
            None,
        )))
        .await;
    }

    #[tokio::test]
    async fn eventual_keys_round_trip_and_survive_a_reopen_on_disk() {
        round_trip_and_reopen(None).await;
    }

    #[tokio::test]
    async fn encrypted_eventual_keys_round_trip_and_their_states_stay_sealed() {
        let master = crate::MasterKey::generate().unwrap();
        let dir = round_trip_and_reopen(Some(&master)).await;
        let secret = b"a state nobody reads on disk";
        let storage = open_when_free(dir.path(), Some(&master)).await;
        let key = eventual_key(9, b"secret");
        storage
            .eventual_put(vec![(key.clone(), Some(secret.to_vec()))])
            .await
            .unwrap();
        assert_eq!(storage.eventual_get(&key).unwrap(), Some(secret.to_vec()));
        drop(storage);
        let mut files = vec![dir.path().to_owned()];
        let mut scanned = 0;
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else {
                let bytes = std::fs::read(&path).unwrap();
                scanned += bytes.len();
                let found = bytes.windows(secret.len()).any(|window| window == secret);
                assert!(!found, "{} holds the state in the clear", path.display());
            }
        }
        assert!(scanned > 0);
    }

    /// Opens the disk storage in `dir` once the previous handle's
    /// group-commit thread has let the database go.
    async fn open_when_free(dir: &std::path::Path, master: Option<&crate::MasterKey>) -> Storage {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Storage::open_disk(dir, master) {
                Ok(storage) => break storage,
                Err(error) if std::time::Instant::now() < deadline => {
                    assert_eq!(error.kind(), io::ErrorKind::WouldBlock, "{error}");
                    // The lock frees once the thread lets go.
                    let pause = std::time::Duration::from_millis(10);
                    tokio::time::sleep(pause).await; // retry-backoff
                }
                Err(error) => panic!("the database stayed locked: {error}"),
            }
        }
    }

    async fn round_trip_and_reopen(master: Option<&crate::MasterKey>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        round_trip(Storage::open_disk(dir.path(), master).unwrap()).await;
        // The group-commit thread lets the database go once the first
        // handle is dropped.
        let reopened = open_when_free(dir.path(), master).await;
        let key = eventual_key(7, b"b");
        assert_eq!(reopened.eventual_get(&key).unwrap(), Some(b"2".to_vec()));
        dir
    }
}
