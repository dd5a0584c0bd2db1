//! The Raft log and vote of every group of a node, in one fjall database.
//!
//! Keys are addressed by group id so groups never see each other's entries:
//! `logs`: `group (u64 BE) | index (u64 BE)` -> postcard entry;
//! `meta`: `group (u64 BE) | name` -> postcard value.
//! Appends become durable through [`GroupCommit`], which batches fsyncs
//! across groups.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use polis_types::GroupId;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::group_commit::{self, GroupCommit};
use crate::types::{Entry, LogId, TypeConfig, Vote};

const META_VOTE: &[u8] = b"vote";
const META_COMMITTED: &[u8] = b"committed";
const META_PURGED: &[u8] = b"purged";

/// The keyspaces shared by every group's log store on a node.
#[derive(Clone)]
pub struct LogEngine {
    db: Database,
    logs: Keyspace,
    meta: Keyspace,
    group_commit: GroupCommit,
}

impl LogEngine {
    /// Opens (or creates) the log engine under `dir` and starts its
    /// group-commit thread.
    ///
    /// # Errors
    /// Returns an error if the database cannot be opened.
    pub fn open(dir: &std::path::Path) -> io::Result<Self> {
        let db = Database::builder(dir)
            .manual_journal_persist(true)
            .open()
            .map_err(io::Error::other)?;
        let logs = db
            .keyspace("logs", KeyspaceCreateOptions::default)
            .map_err(io::Error::other)?;
        let meta = db
            .keyspace("meta", KeyspaceCreateOptions::default)
            .map_err(io::Error::other)?;
        let group_commit = GroupCommit::start(db.clone())?;
        Ok(Self {
            db,
            logs,
            meta,
            group_commit,
        })
    }

    /// Returns the log store of `group`.
    pub fn group(&self, group: GroupId) -> LogStore {
        LogStore {
            engine: self.clone(),
            group,
        }
    }
}

/// The log store of one group.
#[derive(Clone)]
pub struct LogStore {
    engine: LogEngine,
    group: GroupId,
}

fn log_key(group: GroupId, index: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

fn index_of(key: &[u8]) -> io::Result<u64> {
    let bytes: [u8; 8] = key
        .get(8..16)
        .and_then(|slice| slice.try_into().ok())
        .ok_or_else(|| invalid("log key is not 16 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

fn meta_key(group: GroupId, name: &[u8]) -> Vec<u8> {
    let mut key = group.to_be_bytes().to_vec();
    key.extend_from_slice(name);
    key
}

fn invalid(message: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(invalid)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(invalid)
}

impl LogStore {
    fn get_meta<T: DeserializeOwned>(&self, name: &[u8]) -> io::Result<Option<T>> {
        let value = self
            .engine
            .meta
            .get(meta_key(self.group, name))
            .map_err(io::Error::other)?;
        value.map(|bytes| decode(&bytes)).transpose()
    }

    fn put_meta<T: Serialize>(&self, name: &[u8], value: &T) -> io::Result<()> {
        self.engine
            .meta
            .insert(meta_key(self.group, name), encode(value)?)
            .map_err(io::Error::other)
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
            let key = guard.key().map_err(io::Error::other)?;
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
            let (key, value) = guard.into_inner().map_err(io::Error::other)?;
            let index = index_of(&key)?;
            let entry: Entry = decode(&value)?;
            if entry.index() != index {
                return Err(invalid(format!(
                    "log entry at key index {index} has index {}",
                    entry.index()
                )));
            }
            entries.push(entry);
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
                let (_, value) = guard.into_inner().map_err(io::Error::other)?;
                let entry: Entry = decode(&value)?;
                Some(entry.log_id())
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
        for entry in entries {
            batch.insert(
                &self.engine.logs,
                log_key(self.group, entry.index()),
                encode(&entry)?,
            );
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
