//! An in-memory disk for simulation: one node's Raft log, vote and
//! snapshot, with the same storage interface as the fjall [`LogStore`]
//! and the same durability rules.
//!
//! Writes land in a journal first, visible to the node at once, like
//! fjall's writes before `persist`. A flush, after a delay drawn from the
//! disk's seed, makes the whole journal durable and then fires the
//! `IOFlushed` callbacks that were waiting (group commit). A vote is saved
//! only once it is durable. [`MemDisk::crash`] throws the journal away:
//! only what a flush made durable survives, and every handle of the
//! crashed incarnation fails from then on, so a stopped node's leftover
//! tasks can change nothing. Snapshots are saved durably at once, as the
//! file-based state machine does before it returns.
//!
//! [`LogStore`]: crate::log_store::LogStore

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use polis_types::NodeId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::types::{Entry, LogId, TypeConfig, Vote};

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
        voted_for: NodeId,
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
}

/// Receives a disk's events. Called with the disk locked: it must not
/// call back into the disk.
pub trait DiskObserver: Send + Sync {
    fn disk_event(&self, node: NodeId, event: DiskEvent);
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

#[derive(Clone)]
struct Stored {
    entry: Entry,
    digest: u64,
}

/// The log, vote and commit point as the node sees them (or as they
/// would be after a crash, for the durable image).
#[derive(Clone, Default)]
struct Image {
    vote: Option<Vote>,
    committed: Option<LogId>,
    purged: Option<LogId>,
    entries: BTreeMap<u64, Stored>,
}

enum Write {
    Append(Vec<Stored>),
    TruncateAfter(Option<u64>),
    Purge(LogId),
    Committed(Option<LogId>),
    Vote(Vote),
}

impl Image {
    fn apply(&mut self, write: &Write) {
        match write {
            Write::Append(entries) => {
                for stored in entries {
                    self.entries
                        .insert(stored.entry.log_id.index, stored.clone());
                }
            }
            Write::TruncateAfter(after) => {
                let from = after.map_or(0, |index| index + 1);
                self.entries.split_off(&from);
            }
            Write::Purge(log_id) => {
                self.purged = Some(*log_id);
                self.entries = self.entries.split_off(&(log_id.index + 1));
            }
            Write::Committed(committed) => self.committed = *committed,
            Write::Vote(vote) => self.vote = Some(*vote),
        }
    }

    fn summary(&self) -> LogSummary {
        LogSummary {
            purged: self.purged.as_ref().map(LogPosition::of),
            entries: self
                .entries
                .values()
                .map(|stored| EntrySummary {
                    index: stored.entry.log_id.index,
                    term: stored.entry.log_id.leader_id.term,
                    digest: stored.digest,
                })
                .collect(),
        }
    }
}

enum Waiter {
    Append(IOFlushed<TypeConfig>),
    Signal(tokio::sync::oneshot::Sender<()>),
}

struct DiskState {
    node: NodeId,
    generation: u64,
    current: Image,
    durable: Image,
    journal: Vec<Write>,
    snapshot: Option<Vec<u8>>,
    waiters: Vec<Waiter>,
    flush_scheduled: bool,
    rng: StdRng,
    flush_delay_max: Duration,
    observer: Option<Arc<dyn DiskObserver>>,
    /// A lying disk reports writes durable before they are: the fault a
    /// simulation injects to show that its checkers notice lost writes.
    lying: bool,
}

impl DiskState {
    fn emit(&self, event: DiskEvent) {
        if let Some(observer) = &self.observer {
            observer.disk_event(self.node, event);
        }
    }

    fn write(&mut self, write: Write) {
        self.current.apply(&write);
        self.journal.push(write);
    }
}

/// One node's simulated disk. Cloning shares it.
#[derive(Clone)]
pub struct MemDisk {
    state: Arc<Mutex<DiskState>>,
}

impl MemDisk {
    /// Returns an empty disk of `node` whose flushes take up to
    /// `flush_delay_max`, drawn from `seed`.
    pub fn new(
        node: NodeId,
        seed: u64,
        flush_delay_max: Duration,
        observer: Option<Arc<dyn DiskObserver>>,
    ) -> Self {
        Self {
            state: Arc::new(Mutex::new(DiskState {
                node,
                generation: 0,
                current: Image::default(),
                durable: Image::default(),
                journal: Vec::new(),
                snapshot: None,
                waiters: Vec::new(),
                flush_scheduled: false,
                rng: StdRng::seed_from_u64(seed),
                flush_delay_max,
                observer,
                lying: false,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns the log store of the disk's current incarnation.
    pub fn store(&self) -> MemLogStore {
        MemLogStore {
            disk: self.clone(),
            generation: self.lock().generation,
        }
    }

    /// Loses everything not yet flushed and fences every handle of the
    /// running incarnation. Waiting flush callbacks never fire.
    pub fn crash(&self) {
        let mut state = self.lock();
        let lost_writes = state.journal.len();
        state.journal.clear();
        state.current = state.durable.clone();
        state.waiters.clear();
        state.flush_scheduled = false;
        state.generation += 1;
        state.emit(DiskEvent::Crashed { lost_writes });
    }

    /// Makes the disk report every write durable at once, before its flush
    /// (`true`), or honestly again. A fault for testing the checkers: a
    /// crash before the flush then loses writes the node acknowledged.
    pub fn set_lying(&self, lying: bool) {
        self.lock().lying = lying;
    }

    /// Returns the log as the node sees it now.
    pub fn log_summary(&self) -> LogSummary {
        self.lock().current.summary()
    }

    /// Returns the log that would survive a crash now.
    pub fn durable_log_summary(&self) -> LogSummary {
        self.lock().durable.summary()
    }

    /// Makes the journal durable after a seeded delay, then fires the
    /// waiting callbacks, unless the disk crashed meanwhile.
    fn schedule_flush(&self, state: &mut DiskState) {
        if state.flush_scheduled {
            return;
        }
        state.flush_scheduled = true;
        let max_us = state.flush_delay_max.as_micros() as u64;
        let delay = Duration::from_micros(state.rng.random_range(0..=max_us));
        let generation = state.generation;
        let disk = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            disk.flush(generation);
        });
    }

    fn flush(&self, generation: u64) {
        let waiters = {
            let mut state = self.lock();
            if state.generation != generation {
                return;
            }
            state.flush_scheduled = false;
            let journal = std::mem::take(&mut state.journal);
            for write in &journal {
                state.durable.apply(write);
            }
            state.emit(DiskEvent::Flushed {
                writes: journal.len(),
            });
            std::mem::take(&mut state.waiters)
        };
        for waiter in waiters {
            match waiter {
                Waiter::Append(callback) => callback.io_completed(Ok(())),
                Waiter::Signal(sender) => {
                    // The receiver is gone only if its task was dropped.
                    let _ = sender.send(());
                }
            }
        }
    }
}

fn crashed() -> io::Error {
    io::Error::other("simulated node crashed: storage handle of a past incarnation")
}

fn digest_of(entry: &Entry) -> io::Result<u64> {
    let bytes = postcard::to_stdvec(entry)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
    Ok(fnv1a64(&bytes))
}

/// The log store of one incarnation of a node on a [`MemDisk`].
#[derive(Clone)]
pub struct MemLogStore {
    disk: MemDisk,
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

    /// Stores an encoded snapshot durably.
    ///
    /// # Errors
    /// Fails when this incarnation crashed.
    pub(crate) fn save_snapshot(&self, last: Option<LogId>, bytes: Vec<u8>) -> io::Result<()> {
        let mut state = self.live()?;
        state.snapshot = Some(bytes);
        state.emit(DiskEvent::SnapshotSaved {
            last: last.as_ref().map(LogPosition::of),
        });
        Ok(())
    }

    /// Returns the stored snapshot, encoded.
    ///
    /// # Errors
    /// Fails when this incarnation crashed.
    pub(crate) fn load_snapshot(&self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.live()?.snapshot.clone())
    }

    /// Reports which snapshot the state machine restored at start.
    pub(crate) fn snapshot_loaded(&self, last: Option<LogId>) {
        if let Ok(state) = self.live() {
            state.emit(DiskEvent::SnapshotLoaded {
                last: last.as_ref().map(LogPosition::of),
            });
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
}

impl RaftLogReader<TypeConfig> for MemLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let state = self.live()?;
        Ok(state
            .current
            .entries
            .range(range)
            .map(|(_, stored)| stored.entry.clone())
            .collect())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.live()?.current.vote)
    }
}

impl RaftLogStorage<TypeConfig> for MemLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let state = self.live()?;
        let last_purged_log_id = state.current.purged;
        let last = state
            .current
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
            state.write(Write::Vote(*vote));
            let term = vote.leader_id.term;
            let voted_for = vote.leader_id.voted_for;
            state.emit(DiskEvent::VoteSaved {
                term,
                voted_for,
                committed: vote.committed,
            });
            if vote.committed && voted_for == state.node {
                let log = state.current.summary();
                state.emit(DiskEvent::LeaderElected { term, log });
            }
        }
        // Durable before it is acted upon (Raft, figure 2).
        self.sync().await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let mut state = self.live()?;
        state.write(Write::Committed(committed));
        if let Some(log_id) = committed {
            let digest = state
                .current
                .entries
                .get(&log_id.index)
                .filter(|stored| stored.entry.log_id == log_id)
                .map(|stored| stored.digest);
            let vote_term = state.current.vote.map_or(0, |vote| vote.leader_id.term);
            state.emit(DiskEvent::Committed {
                index: log_id.index,
                term: log_id.leader_id.term,
                digest,
                vote_term,
            });
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.live()?.current.committed)
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
            state.emit(DiskEvent::Appended {
                first: first.entry.log_id.index,
                last: last.entry.log_id.index,
            });
        }
        state.write(Write::Append(stored));
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
        state.write(Write::TruncateAfter(after));
        state.emit(DiskEvent::Truncated { after });
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut state = self.live()?;
        state.write(Write::Purge(log_id));
        state.emit(DiskEvent::Purged { upto: log_id.index });
        Ok(())
    }
}

#[cfg(test)]
#[path = "mem_log_store_test.rs"]
mod tests;
