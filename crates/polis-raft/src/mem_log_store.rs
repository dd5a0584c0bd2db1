//! An in-memory disk for simulation: one node's Raft logs, votes and
//! snapshots (one of each per group, as the fjall engine keeps them) and
//! its small files, with the same storage interface as the fjall
//! [`LogStore`] and the same durability rules.
//!
//! Writes land in a journal first, visible to the node at once, like
//! fjall's writes before `persist`. A flush, after a delay drawn from the
//! disk's seed, makes the whole journal durable and then fires the
//! `IOFlushed` callbacks that were waiting (group commit). A vote is saved
//! only once it is durable. [`MemDisk::crash`] throws the journal away:
//! only what a flush made durable survives, and every handle of the
//! crashed incarnation fails from then on, so a stopped node's leftover
//! tasks can change nothing. Snapshots and files are saved durably at
//! once, as the file-based code does before it returns.
//!
//! [`LogStore`]: crate::log_store::LogStore

use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::MutexGuard;

use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use polis_types::{GroupId, NodeId, ReplicaId};

use crate::types::{Entry, LogId, TypeConfig, Vote};

#[path = "mem_log_store/disk.rs"]
mod disk;

use disk::{DiskState, Image, Stored, Waiter, Write};
pub use disk::{MemDisk, WHOLE_DISK};

/// Where an entry sits in a log: its index and the term it was made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition {
    pub index: u64,
    pub term: u64,
}

impl LogPosition {
    fn of(log_id: &LogId) -> Self {
        Self {
            index: log_id.index,
            term: log_id.leader_id.term,
        }
    }
}

/// One entry of a log as the checkers see it: position and a digest of
/// the whole entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntrySummary {
    pub index: u64,
    pub term: u64,
    pub digest: u64,
}

/// A node's log as the checkers see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSummary {
    /// The last entry compacted into a snapshot, if any.
    pub purged: Option<LogPosition>,
    /// The entries after it, in index order.
    pub entries: Vec<EntrySummary>,
}

/// What happened on a disk, for a simulation's trace and checkers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskEvent {
    /// A vote was written (durable once `save_vote` returns).
    VoteSaved {
        term: u64,
        voted_for: ReplicaId,
        committed: bool,
    },
    /// This node saved a committed vote for itself: it leads `term`, with
    /// this log.
    LeaderElected {
        term: u64,
        log: LogSummary,
    },
    /// The node recorded that its log is committed up to `index`.
    /// `digest` is the entry's digest in this node's log (`None` when it
    /// is not there); `vote_term` is the node's term when it recorded it.
    Committed {
        index: u64,
        term: u64,
        digest: Option<u64>,
        vote_term: u64,
    },
    Appended {
        first: u64,
        last: u64,
    },
    /// Entries after `after` were removed.
    Truncated {
        after: Option<u64>,
    },
    Purged {
        upto: u64,
    },
    /// A flush made `writes` journal writes durable.
    Flushed {
        writes: usize,
    },
    SnapshotSaved {
        last: Option<LogPosition>,
    },
    SnapshotLoaded {
        last: Option<LogPosition>,
    },
    /// The node crashed; `lost_writes` journal writes never became durable.
    Crashed {
        lost_writes: usize,
    },
    /// The group's log, vote and snapshot were removed.
    Destroyed,
}

/// Receives a disk's events (`group` is [`WHOLE_DISK`] for events of the
/// whole disk: flushes and crashes). Called with the disk locked: it
/// must not call back into the disk.
pub trait DiskObserver: Send + Sync {
    fn disk_event(&self, node: NodeId, group: GroupId, event: DiskEvent);
}

/// Returns a 64-bit FNV-1a digest of `bytes`: stable across runs and
/// platforms, unlike the standard library's hasher.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn crashed() -> io::Error {
    io::Error::other("simulated node crashed: storage handle of a past incarnation")
}

fn digest_of(entry: &Entry) -> io::Result<u64> {
    let bytes = postcard::to_stdvec(entry)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
    Ok(fnv1a64(&bytes))
}

/// The log store of one group for one incarnation of a node on a
/// [`MemDisk`].
#[derive(Clone)]
pub struct MemLogStore {
    disk: MemDisk,
    group: GroupId,
    generation: u64,
}

impl MemLogStore {
    /// Returns which incarnation of the disk this handle belongs to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Locks the disk, failing if this incarnation crashed.
    fn live(&self) -> io::Result<MutexGuard<'_, DiskState>> {
        let state = self.disk.lock();
        if state.generation != self.generation {
            return Err(crashed());
        }
        Ok(state)
    }

    /// Returns the replica this copy of the group belongs to, if recorded.
    ///
    /// # Errors
    /// Fails when this incarnation crashed.
    pub fn replica(&self) -> io::Result<Option<ReplicaId>> {
        Ok(self
            .live()?
            .groups
            .get(&self.group)
            .and_then(|disk| disk.durable.replica))
    }

    /// Records the replica this copy of the group belongs to, durably.
    ///
    /// # Errors
    /// Fails when this incarnation crashed.
    pub fn set_replica(&self, replica: ReplicaId) -> io::Result<()> {
        let mut state = self.live()?;
        let disk = state.group(self.group);
        disk.current.replica = Some(replica);
        disk.durable.replica = Some(replica);
        Ok(())
    }

    /// Stores an encoded snapshot durably.
    ///
    /// # Errors
    /// Fails when this incarnation crashed.
    pub(crate) fn save_snapshot(&self, last: Option<LogId>, bytes: Vec<u8>) -> io::Result<()> {
        let mut state = self.live()?;
        state.group(self.group).snapshot = Some(bytes);
        state.emit(
            self.group,
            DiskEvent::SnapshotSaved {
                last: last.as_ref().map(LogPosition::of),
            },
        );
        Ok(())
    }

    /// Returns the stored snapshot, encoded.
    ///
    /// # Errors
    /// Fails when this incarnation crashed.
    pub(crate) fn load_snapshot(&self) -> io::Result<Option<Vec<u8>>> {
        Ok(self
            .live()?
            .groups
            .get(&self.group)
            .and_then(|disk| disk.snapshot.clone()))
    }

    /// Reports which snapshot the state machine restored at start.
    pub(crate) fn snapshot_loaded(&self, last: Option<LogId>) {
        if let Ok(state) = self.live() {
            state.emit(
                self.group,
                DiskEvent::SnapshotLoaded {
                    last: last.as_ref().map(LogPosition::of),
                },
            );
        }
    }

    /// Waits until everything written so far is durable.
    async fn sync(&self) -> io::Result<()> {
        let receiver = {
            let mut state = self.live()?;
            if state.lying {
                self.disk.schedule_flush(&mut state);
                return Ok(());
            }
            let (sender, receiver) = tokio::sync::oneshot::channel();
            state.waiters.push(Waiter::Signal(sender));
            self.disk.schedule_flush(&mut state);
            receiver
        };
        receiver.await.map_err(|_| crashed())
    }

    fn image<'a>(&self, state: &'a mut DiskState) -> &'a Image {
        &state.group(self.group).current
    }
}

impl RaftLogReader<TypeConfig> for MemLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let mut state = self.live()?;
        Ok(self
            .image(&mut state)
            .entries
            .range(range)
            .map(|(_, stored)| stored.entry.clone())
            .collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        let mut state = self.live()?;
        Ok(self.image(&mut state).vote)
    }
}

impl RaftLogStorage<TypeConfig> for MemLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let mut state = self.live()?;
        let image = self.image(&mut state);
        let last_purged_log_id = image.purged;
        let last = image
            .entries
            .values()
            .next_back()
            .map(|stored| stored.entry.log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        {
            let mut state = self.live()?;
            state.write(self.group, Write::Vote(*vote));
            let term = vote.leader_id.term;
            let voted_for = vote.leader_id.voted_for;
            state.emit(
                self.group,
                DiskEvent::VoteSaved {
                    term,
                    voted_for,
                    committed: vote.committed,
                },
            );
            let image = self.image(&mut state);
            if vote.committed && Some(voted_for) == image.replica {
                let log = image.summary();
                state.emit(self.group, DiskEvent::LeaderElected { term, log });
            }
        }
        // Durable before it is acted upon (Raft, figure 2).
        self.sync().await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let mut state = self.live()?;
        state.write(self.group, Write::Committed(committed));
        if let Some(log_id) = committed {
            let image = self.image(&mut state);
            let digest = image
                .entries
                .get(&log_id.index)
                .filter(|stored| stored.entry.log_id == log_id)
                .map(|stored| stored.digest);
            let vote_term = image.vote.map_or(0, |vote| vote.leader_id.term);
            state.emit(
                self.group,
                DiskEvent::Committed {
                    index: log_id.index,
                    term: log_id.leader_id.term,
                    digest,
                    vote_term,
                },
            );
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        let mut state = self.live()?;
        Ok(self.image(&mut state).committed)
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
        let mut stored = Vec::new();
        for entry in entries {
            let digest = digest_of(&entry)?;
            stored.push(Stored { entry, digest });
        }
        let mut state = self.live()?;
        if let (Some(first), Some(last)) = (stored.first(), stored.last()) {
            state.emit(
                self.group,
                DiskEvent::Appended {
                    first: first.entry.log_id.index,
                    last: last.entry.log_id.index,
                },
            );
        }
        state.write(self.group, Write::Append(stored));
        self.disk.schedule_flush(&mut state);
        if state.lying {
            drop(state);
            callback.io_completed(Ok(()));
        } else {
            state.waiters.push(Waiter::Append(callback));
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let mut state = self.live()?;
        let after = last_log_id.map(|log_id| log_id.index);
        state.write(self.group, Write::TruncateAfter(after));
        state.emit(self.group, DiskEvent::Truncated { after });
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut state = self.live()?;
        state.write(self.group, Write::Purge(log_id));
        state.emit(self.group, DiskEvent::Purged { upto: log_id.index });
        Ok(())
    }
}

#[cfg(test)]
#[path = "mem_log_store_test.rs"]
mod tests;
