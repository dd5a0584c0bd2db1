//! Where a node keeps its groups (logs, votes, snapshots) and its few
//! small files: a data directory with the fjall log engine, or a simulated
//! disk.
//!
//! ```text
//!   <data dir>/log/                 fjall: every group's log and metadata
//!   <data dir>/snapshots/group-N.snapshot
//!   <data dir>/<name>               small files of the node (one record each)
//!   <data dir>/keyring              the data keys, when encrypted (see at_rest)
//! ```
//!
//! A file is one [`record`]: a version byte and a checksum in front of the
//! payload (or sealed with AES-256-GCM, see [`at_rest`]), written to a temporary file, fsynced and renamed, so a reader
//! sees the old contents or the new, never a mix, and damage is found.

use std::io;
use std::path::{Path, PathBuf};

use polis_types::{GroupId, ReplicaId};

use crate::at_rest::{self, Cipher, MasterKey};
use crate::log_store::corruption::{self, Corruption, RecordProblem};
use crate::log_store::LogEngine;
use crate::mem_log_store::MemDisk;

/// A node's storage.
#[derive(Clone)]
pub enum Storage {
    Disk { dir: PathBuf, engine: LogEngine },
    Memory(MemDisk),
}

impl Storage {
    /// Opens (or creates) the storage in `dir`, verifying the log engine
    /// (see [`LogEngine::open`]), encrypted with a keyring wrapped by
    /// `master` when it is given (see [`at_rest::open`]).
    ///
    /// # Errors
    /// Returns an error if a directory or the engine cannot be opened, or
    /// the key does not match the directory.
    pub fn open_disk(dir: &Path, master: Option<&MasterKey>) -> io::Result<Self> {
        let fresh = !dir.join("log").exists();
        std::fs::create_dir_all(dir.join("snapshots"))?;
        let cipher = at_rest::open(dir, master, fresh)?;
        let engine = LogEngine::open(&dir.join("log"), cipher)?;
        Ok(Self::Disk {
            dir: dir.to_owned(),
            engine,
        })
    }

    /// Returns where `group`'s snapshot file lives (disk storage).
    pub(crate) fn snapshot_path(dir: &Path, group: GroupId) -> PathBuf {
        dir.join("snapshots")
            .join(format!("group-{group}.snapshot"))
    }

    /// Returns how this storage's records are sealed (in the clear on the
    /// simulated disk).
    pub fn cipher(&self) -> Cipher {
        match self {
            Self::Disk { engine, .. } => engine.cipher().clone(),
            Self::Memory(_) => Cipher::Plain,
        }
    }

    /// Returns every group stored here, with the replica it belongs to.
    ///
    /// # Errors
    /// Returns an error if the storage cannot be read.
    pub fn groups(&self) -> io::Result<Vec<(GroupId, ReplicaId)>> {
        match self {
            Self::Disk { engine, .. } => engine.groups(),
            Self::Memory(disk) => Ok(disk.groups()),
        }
    }

    /// Returns the replica `group`'s stored state belongs to, if any.
    ///
    /// # Errors
    /// Returns an error if the storage cannot be read.
    pub fn replica(&self, group: GroupId) -> io::Result<Option<ReplicaId>> {
        match self {
            Self::Disk { engine, .. } => engine.group(group).replica(),
            Self::Memory(disk) => disk.store(group).replica(),
        }
    }

    /// Records that `group`'s stored state belongs to `replica`, durably.
    ///
    /// # Errors
    /// Returns an error if the storage cannot be written.
    pub async fn set_replica(&self, group: GroupId, replica: ReplicaId) -> io::Result<()> {
        match self {
            Self::Disk { engine, .. } => engine.group(group).set_replica(replica).await,
            Self::Memory(disk) => disk.store(group).set_replica(replica),
        }
    }

    /// Removes everything `group` stored, durably.
    ///
    /// # Errors
    /// Returns an error if the storage cannot be written.
    pub async fn destroy(&self, group: GroupId) -> io::Result<()> {
        match self {
            Self::Disk { dir, engine } => {
                engine.destroy(group).await?;
                match std::fs::remove_file(Self::snapshot_path(dir, group)) {
                    Ok(()) => Ok(()),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
                    Err(error) => Err(error),
                }
            }
            Self::Memory(disk) => {
                disk.destroy(group);
                Ok(())
            }
        }
    }

    /// Returns the file `name`, verified, if there is one. A damaged file
    /// stops the node (exit code 71) as damaged log data does.
    ///
    /// # Errors
    /// Returns an error if the file exists but cannot be read.
    pub fn read_file(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let bytes = match self {
            Self::Disk { dir, .. } => match std::fs::read(dir.join(name)) {
                Ok(bytes) => bytes,
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(error) => return Err(error),
            },
            Self::Memory(disk) => match disk.read_file(name) {
                Some(bytes) => bytes,
                None => return Ok(None),
            },
        };
        match self.cipher().open(name.as_bytes(), &bytes) {
            Ok(payload) => Ok(Some(payload.into_owned())),
            Err(error) => {
                let file = match self {
                    Self::Disk { dir, .. } => dir.join(name),
                    Self::Memory(_) => PathBuf::from(name),
                };
                corruption::crash_stop(&Corruption::File {
                    file,
                    problem: RecordProblem::from(error),
                })
            }
        }
    }

    /// Stores `payload` as the file `name`, atomically and durably.
    ///
    /// # Errors
    /// Returns an error if the file cannot be written.
    pub async fn write_file(&self, name: &str, payload: &[u8]) -> io::Result<()> {
        let bytes = self.cipher().sealed(name.as_bytes(), payload);
        match self {
            Self::Disk { dir, .. } => {
                let path = dir.join(name);
                tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
                    .await
                    .map_err(io::Error::other)?
            }
            Self::Memory(disk) => {
                disk.write_file(name, bytes);
                Ok(())
            }
        }
    }
}

/// Writes `bytes` to `path` atomically and durably: a temporary file,
/// fsync, rename, fsync of the directory.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_round_trip_and_a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open_disk(dir.path(), None).unwrap();
        assert_eq!(storage.read_file("identity").unwrap(), None);
        storage.write_file("identity", b"node 3").await.unwrap();
        assert_eq!(storage.read_file("identity").unwrap().unwrap(), b"node 3");
        storage.write_file("identity", b"node 4").await.unwrap();
        assert_eq!(storage.read_file("identity").unwrap().unwrap(), b"node 4");
        let memory = Storage::Memory(MemDisk::new(
            polis_types::NodeId(1),
            1,
            std::time::Duration::from_millis(1),
            None,
        ));
        memory.write_file("map", b"v1").await.unwrap();
        assert_eq!(memory.read_file("map").unwrap().unwrap(), b"v1");
    }

    #[tokio::test]
    async fn groups_remember_their_replica_until_destroyed() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open_disk(dir.path(), None).unwrap();
        storage
            .set_replica(GroupId(3), ReplicaId(17))
            .await
            .unwrap();
        storage.set_replica(GroupId(0), ReplicaId(2)).await.unwrap();
        let mut groups = storage.groups().unwrap();
        groups.sort();
        assert_eq!(
            groups,
            vec![(GroupId(0), ReplicaId(2)), (GroupId(3), ReplicaId(17))]
        );
        assert_eq!(storage.replica(GroupId(3)).unwrap(), Some(ReplicaId(17)));
        storage.destroy(GroupId(3)).await.unwrap();
        assert_eq!(storage.replica(GroupId(3)).unwrap(), None);
        assert_eq!(storage.groups().unwrap(), vec![(GroupId(0), ReplicaId(2))]);
    }
}
