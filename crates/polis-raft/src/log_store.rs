//! The Raft log and vote of every group of a node, in one fjall database.
//!
//! Keys are addressed by group id so groups never see each other's entries:
//! `logs`: `group (u64 BE) | index (u64 BE)` -> record of a postcard entry;
//! `meta`: `group (u64 BE) | name` -> record of a postcard value.
//! Every value is stored as a [`record`]: a format version and a checksum
//! in front of the payload, checked on every read, or, in an encrypted
//! data directory, sealed with AES-256-GCM (see [`crate::at_rest`]). Appends become durable
//! through [`GroupCommit`], which batches fsyncs across groups.
//!
//! Opening checks everything stored (see [`LogEngine::open_verified`]): a
//! torn journal tail is cut off, corruption of durable data stops the node
//! ([`corruption`]).

pub mod corruption;
mod journal_audit;
pub mod record;
mod stored;
mod verify;

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use polis_types::limits::APPEND_ENTRIES_BYTES_MAX;
use polis_types::{GroupId, ReplicaId};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::at_rest::Cipher;
use crate::group_commit::{self, GroupCommit};
use crate::types::{Entry, LogId, TypeConfig, Vote};
use corruption::{Corruption, RecordProblem, Stored};
use stored::{
    decode_entry, decode_record, encode_record, invalid, log_key, meta_key, split_log_key,
};

/// The memtable size of the log keyspace (fjall's default is 64 MiB).
///
/// Replication reads an entry back soon after it is appended; older
/// entries are read only by catch-up, from tables on disk. The memtable
/// is the largest fixed cost of a node's memory: heaptrack saw it peak at
/// 19 MB with 16 MiB here, while a node's resident set grew by 45 MB
/// under a 1,000,000-element list of 20 MB. 4 MiB is several hundred
/// milliseconds of appends at the peak write rates measured, and the
/// strong SET and LPUSH workloads spent the same CPU per write with it.
const LOG_MEMTABLE_BYTES: u64 = 4 * 1024 * 1024;

const META_VOTE: &[u8] = b"vote";
const META_COMMITTED: &[u8] = b"committed";
const META_PURGED: &[u8] = b"purged";
/// The replica id this node's copy of the group belongs to.
const META_REPLICA: &[u8] = b"replica";

/// The keyspaces shared by every group's log store on a node.
#[derive(Clone)]
pub struct LogEngine {
    db: Database,
    logs: Keyspace,
    meta: Keyspace,
    /// The keys of eventual namespaces (see `crate::storage_eventual`).
    pub(crate) eventual: Keyspace,
    group_commit: GroupCommit,
    /// The database directory, named in corruption reports.
    dir: Arc<Path>,
    /// How every value is sealed.
    cipher: Cipher,
}

/// Why the log engine did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Stored data failed verification: the node must not start.
    #[error(transparent)]
    Corrupt(#[from] Corruption),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<journal_audit::AuditError> for OpenError {
    fn from(error: journal_audit::AuditError) -> Self {
        match error {
            journal_audit::AuditError::Corrupt(corruption) => Self::Corrupt(corruption),
            journal_audit::AuditError::Io(error) => Self::Io(error),
        }
    }
}

impl LogEngine {
    /// Opens (or creates) the log engine under `dir`, verified as
    /// [`LogEngine::open_verified`] describes, and starts its group-commit
    /// thread. Corrupt stored data ends the process with exit code
    /// [`corruption::EXIT_CORRUPT_STORAGE`] before it serves anything.
    ///
    /// # Errors
    /// Returns an error if the database cannot be opened.
    pub fn open(dir: &Path, cipher: Cipher) -> io::Result<Self> {
        match Self::open_verified(dir, cipher) {
            Ok(engine) => Ok(engine),
            Err(OpenError::Corrupt(corruption)) => corruption::refuse_to_start(&corruption),
            Err(OpenError::Io(error)) => Err(error),
        }
    }

    /// Opens (or creates) the log engine under `dir` after checking what
    /// it stores, and starts its group-commit thread:
    ///
    /// 1. audits fjall's journals, cutting off a torn tail (writes a crash
    ///    interrupted before their fsync) and failing on damage to data
    ///    that was made durable (see `journal_audit`);
    /// 2. opens fjall and checks it kept every batch the audit found intact;
    /// 3. reads back every record: checksum, decoding, the index an entry
    ///    holds, no hole in any group's log (see `verify`).
    ///
    /// # Errors
    /// Returns [`OpenError::Corrupt`] if stored data fails a check, or the
    /// I/O error that stopped the opening.
    pub fn open_verified(dir: &Path, cipher: Cipher) -> Result<Self, OpenError> {
        let audit = journal_audit::audit(dir)?;
        let db = Database::builder(dir)
            // Appends are made durable by group commit, never one by one.
            .manual_journal_persist(true)
            // The audit reads values as written; built with lz4, fjall
            // would compress those from 4 KiB on.
            .journal_compression(CompressionType::None)
            .open()
            .map_err(|error| open_failed(dir, error))?;
        // fjall 3.1 has a single journal recovery mode (it cuts the journal
        // at the first batch it cannot read); the audit above decided what
        // may be cut, and this checks fjall cut nothing more.
        audit.check_kept()?;
        let logs = db
            .keyspace("logs", || {
                // Entries are read back only by replication (soon after
                // they are written) and catch-up; a smaller memtable than
                // fjall's 64 MiB default keeps less of the log in memory.
                KeyspaceCreateOptions::default().max_memtable_size(LOG_MEMTABLE_BYTES)
            })
            .map_err(|error| open_failed(dir, error))?;
        let meta = db
            .keyspace("meta", KeyspaceCreateOptions::default)
            .map_err(|error| open_failed(dir, error))?;
        let eventual = db
            .keyspace("eventual", KeyspaceCreateOptions::default)
            .map_err(|error| open_failed(dir, error))?;
        let verified = verify::verify(dir, &logs, &meta, &cipher)?;
        let torn = audit.torn();
        tracing::info!(
            dir = %dir.display(),
            journals = audit.files.len(),
            journal_batches = audit.files.iter().map(|file| file.batches).sum::<u64>(),
            torn_bytes_cut = torn.map_or(0, |file| file.torn_bytes),
            entries = verified.entries,
            meta_values = verified.meta_values,
            "log engine verified"
        );
        let group_commit = GroupCommit::start(db.clone())?;
        Ok(Self {
            db,
            logs,
            meta,
            eventual,
            group_commit,
            dir: Arc::from(dir),
            cipher,
        })
    }

    /// Returns how the engine's values are sealed.
    pub(crate) fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    /// Returns the database (for a batch across keyspaces).
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// Returns the group-commit thread every write of the engine waits on.
    pub(crate) fn group_commit(&self) -> &GroupCommit {
        &self.group_commit
    }

    /// Returns the database directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the log store of `group`.
    pub fn group(&self, group: GroupId) -> LogStore {
        LogStore {
            engine: self.clone(),
            group,
        }
    }

    /// Returns every group stored here, with the replica it belongs to.
    ///
    /// # Errors
    /// Returns an error if the engine cannot be read.
    pub fn groups(&self) -> io::Result<Vec<(GroupId, ReplicaId)>> {
        let mut groups = Vec::new();
        for guard in self.meta.iter() {
            let key = guard.key().map_err(io::Error::other)?;
            let Some((group, name)) = verify::split_meta_key(&key) else {
                continue;
            };
            if name == META_REPLICA {
                if let Some(replica) = self.group(group).get_meta::<ReplicaId>(META_REPLICA)? {
                    groups.push((group, replica));
                }
            }
        }
        Ok(groups)
    }

    /// Removes everything `group` stored (its log and metadata) and makes
    /// the removal durable.
    ///
    /// # Errors
    /// Returns an error if the engine cannot be written.
    pub async fn destroy(&self, group: GroupId) -> io::Result<()> {
        let store = self.group(group);
        store.remove_range(0, u64::MAX)?;
        let mut batch = self.db.batch();
        for guard in self.meta.prefix(group.get().to_be_bytes()) {
            let key = guard.key().map_err(io::Error::other)?;
            batch.remove(&self.meta, key);
        }
        batch.commit().map_err(io::Error::other)?;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || group_commit::sync(&db))
            .await
            .map_err(io::Error::other)?
    }
}

/// The log store of one group.
#[derive(Clone)]
pub struct LogStore {
    engine: LogEngine,
    group: GroupId,
}

/// Maps an error of fjall opening `dir`: damage is corruption.
fn open_failed(dir: &Path, error: fjall::Error) -> OpenError {
    if corruption::is_damage(&error) {
        OpenError::Corrupt(engine_damage(dir, error))
    } else {
        OpenError::Io(io::Error::other(error))
    }
}

fn engine_damage(dir: &Path, error: fjall::Error) -> Corruption {
    Corruption::Engine {
        dir: dir.to_owned(),
        detail: error.to_string(),
    }
}

impl LogStore {
    /// Returns the error of a failed read; stops the node (crash-stop) if
    /// fjall found damaged data.
    fn read_failed(&self, error: fjall::Error) -> io::Error {
        if corruption::is_damage(&error) {
            corruption::crash_stop(&engine_damage(&self.engine.dir, error));
        }
        io::Error::other(error)
    }

    /// Stops the node (crash-stop): a record read back failed verification.
    fn corrupt(&self, stored: Stored, problem: RecordProblem) -> ! {
        corruption::crash_stop(&Corruption::Record {
            dir: self.engine.dir.to_path_buf(),
            group: self.group,
            stored,
            problem,
        })
    }

    fn get_meta<T: DeserializeOwned>(&self, name: &[u8]) -> io::Result<Option<T>> {
        let key = meta_key(self.group, name);
        let Some(bytes) = self
            .engine
            .meta
            .get(&key)
            .map_err(|error| self.read_failed(error))?
        else {
            return Ok(None);
        };
        match decode_record(&self.engine.cipher, &key, &bytes) {
            Ok(value) => Ok(Some(value)),
            Err(problem) => {
                let name = String::from_utf8_lossy(name).into_owned();
                self.corrupt(Stored::Meta(name), problem)
            }
        }
    }

    fn put_meta<T: Serialize>(&self, name: &[u8], value: &T) -> io::Result<()> {
        let key = meta_key(self.group, name);
        let record = encode_record(&self.engine.cipher, &key, value)?;
        self.engine
            .meta
            .insert(key, record)
            .map_err(io::Error::other)
    }

    /// Returns the replica this copy of the group belongs to, if recorded.
    ///
    /// # Errors
    /// Returns an error if the engine cannot be read.
    pub fn replica(&self) -> io::Result<Option<ReplicaId>> {
        self.get_meta(META_REPLICA)
    }

    /// Records the replica this copy of the group belongs to, durably.
    ///
    /// # Errors
    /// Returns an error if the engine cannot be written or synced.
    pub async fn set_replica(&self, replica: ReplicaId) -> io::Result<()> {
        self.put_meta(META_REPLICA, &replica)?;
        let db = self.engine.db.clone();
        tokio::task::spawn_blocking(move || group_commit::sync(&db))
            .await
            .map_err(io::Error::other)?
    }

    /// Reads the log entry `key` holds, verified.
    fn read_entry(&self, key: &[u8], bytes: &[u8]) -> io::Result<Entry> {
        let Some((group, index)) = split_log_key(key) else {
            corruption::crash_stop(&Corruption::Key {
                dir: self.engine.dir.to_path_buf(),
                keyspace: "logs",
                key: key.to_vec(),
            })
        };
        if group != self.group {
            return Err(invalid(format!(
                "group {} read the log key of group {group}",
                self.group
            )));
        }
        decode_entry(&self.engine.cipher, key, bytes)
            .or_else(|problem| self.corrupt(Stored::Entry(index), problem))
    }

    fn first_and_last_index(&self, range: (Bound<u64>, Bound<u64>)) -> (u64, u64) {
        let start = match range.0 {
            Bound::Included(index) => index,
            Bound::Excluded(index) => index.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.1 {
            Bound::Included(index) => index,
            Bound::Excluded(index) => index.saturating_sub(1),
            Bound::Unbounded => u64::MAX,
        };
        (start, end)
    }

    /// Removes the entries with index in `from..=to` of this group.
    fn remove_range(&self, from: u64, to: u64) -> io::Result<()> {
        if from > to {
            return Ok(());
        }
        let mut batch = self.engine.db.batch();
        let range = log_key(self.group, from)..=log_key(self.group, to);
        for guard in self.engine.logs.range(range) {
            let key = guard.key().map_err(|error| self.read_failed(error))?;
            batch.remove(&self.engine.logs, key);
        }
        batch.commit().map_err(io::Error::other)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (start, end) =
            self.first_and_last_index((range.start_bound().cloned(), range.end_bound().cloned()));
        if start > end {
            return Ok(Vec::new());
        }
        let mut entries = Vec::new();
        for guard in self
            .engine
            .logs
            .range(log_key(self.group, start)..=log_key(self.group, end))
        {
            let (key, value) = guard
                .into_inner()
                .map_err(|error| self.read_failed(error))?;
            entries.push(self.read_entry(&key, &value)?);
        }
        Ok(entries)
    }

    /// Returns the entries from `start` on, up to `end` (excluded), as
    /// many as fit in [`APPEND_ENTRIES_BYTES_MAX`] bytes and at least one:
    /// what one AppendEntries carries to a follower.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, io::Error> {
        if start >= end {
            return Ok(Vec::new());
        }
        let mut entries = Vec::new();
        let mut bytes = 0;
        for guard in self
            .engine
            .logs
            .range(log_key(self.group, start)..log_key(self.group, end))
        {
            let (key, value) = guard
                .into_inner()
                .map_err(|error| self.read_failed(error))?;
            bytes += value.len();
            entries.push(self.read_entry(&key, &value)?);
            if bytes >= APPEND_ENTRIES_BYTES_MAX {
                break;
            }
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.get_meta(META_VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id: Option<LogId> = self.get_meta(META_PURGED)?;
        let range = log_key(self.group, 0)..=log_key(self.group, u64::MAX);
        let last = match self.engine.logs.range(range).next_back() {
            None => None,
            Some(guard) => {
                let (key, value) = guard
                    .into_inner()
                    .map_err(|error| self.read_failed(error))?;
                Some(self.read_entry(&key, &value)?.log_id())
            }
        };
        let last_log_id = last.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.put_meta(META_VOTE, vote)?;
        // A vote must be durable before it is acted upon (Raft, figure 2:
        // "updated on stable storage before responding to RPCs").
        let db = self.engine.db.clone();
        let synced = tokio::task::spawn_blocking(move || group_commit::sync(&db))
            .await
            .map_err(io::Error::other)?;
        if let Err(error) = synced {
            group_commit::crash_stop(&error);
        }
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Need not be durable: on restart, a lower committed index only
        // means re-applying fewer entries before the leader tells us more.
        self.put_meta(META_COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.get_meta::<Option<LogId>>(META_COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = self.engine.db.batch();
        let mut previous: Option<u64> = None;
        for entry in entries {
            let index = entry.index();
            // Raft appends a run of consecutive entries; a hole would be
            // read back as corruption.
            assert!(
                previous.is_none_or(|previous| previous + 1 == index),
                "group {} appends index {index} after {previous:?}",
                self.group
            );
            previous = Some(index);
            let key = log_key(self.group, index);
            let record = encode_record(&self.engine.cipher, &key, &entry)?;
            batch.insert(&self.engine.logs, key, record);
        }
        // Written (and readable) now; durable after the next group fsync.
        batch.commit().map_err(io::Error::other)?;
        self.engine
            .group_commit
            .after_next_sync(Box::new(move |result| callback.io_completed(result)));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = match last_log_id {
            Some(log_id) => log_id.index() + 1,
            None => 0,
        };
        self.remove_range(from, u64::MAX)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        // Record the purge point first: entries at or before it are ignored
        // from then on, so a crash between the two steps is harmless.
        self.put_meta(META_PURGED, &log_id)?;
        self.remove_range(0, log_id.index())
    }
}

#[cfg(test)]
#[path = "log_store/open_test.rs"]
mod tests;

#[cfg(test)]
#[path = "log_store/suite_test.rs"]
mod suite_tests;
