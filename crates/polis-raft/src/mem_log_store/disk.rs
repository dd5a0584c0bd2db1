//! One node's simulated disk: every group's log images (as the node sees
//! them and as they would survive a crash), the journal of writes not yet
//! flushed, snapshots and small files.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::storage::IOFlushed;
use polis_types::{GroupId, NodeId, ReplicaId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{DiskEvent, DiskObserver, EntrySummary, LogPosition, LogSummary};
use crate::types::{Entry, LogId, TypeConfig, Vote};

#[derive(Clone)]
pub(super) struct Stored {
    pub(super) entry: Entry,
    pub(super) digest: u64,
}

/// One group's log, vote and commit point as the node sees them (or as
/// they would be after a crash, for the durable image).
#[derive(Clone, Default)]
pub(super) struct Image {
    pub(super) replica: Option<ReplicaId>,
    pub(super) vote: Option<Vote>,
    pub(super) committed: Option<LogId>,
    pub(super) purged: Option<LogId>,
    pub(super) entries: BTreeMap<u64, Stored>,
}

pub(super) enum Write {
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

    pub(super) fn summary(&self) -> LogSummary {
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

pub(super) enum Waiter {
    Append(IOFlushed<TypeConfig>),
    Signal(tokio::sync::oneshot::Sender<()>),
}

/// One group on the disk.
#[derive(Default)]
pub(super) struct GroupDisk {
    pub(super) current: Image,
    pub(super) durable: Image,
    pub(super) snapshot: Option<Vec<u8>>,
}

pub(super) struct DiskState {
    node: NodeId,
    pub(super) generation: u64,
    pub(super) groups: BTreeMap<GroupId, GroupDisk>,
    journal: Vec<(GroupId, Write)>,
    files: BTreeMap<String, Vec<u8>>,
    /// The eventual keys, durable at once (as files are).
    pub(crate) eventual: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(super) waiters: Vec<Waiter>,
    flush_scheduled: bool,
    rng: StdRng,
    flush_delay_max: Duration,
    observer: Option<Arc<dyn DiskObserver>>,
    /// A lying disk reports writes durable before they are: the fault a
    /// simulation injects to show that its checkers notice lost writes.
    pub(super) lying: bool,
}

/// The group id events of the whole disk carry.
pub const WHOLE_DISK: GroupId = GroupId(u64::MAX);

impl DiskState {
    pub(super) fn emit(&self, group: GroupId, event: DiskEvent) {
        if let Some(observer) = &self.observer {
            observer.disk_event(self.node, group, event);
        }
    }

    pub(super) fn group(&mut self, group: GroupId) -> &mut GroupDisk {
        self.groups.entry(group).or_default()
    }

    pub(super) fn write(&mut self, group: GroupId, write: Write) {
        self.group(group).current.apply(&write);
        self.journal.push((group, write));
    }
}

/// One node's simulated disk. Cloning shares it.
#[derive(Clone)]
pub struct MemDisk {
    state: Arc<Mutex<DiskState>>,
    /// The incarnation this handle's eventual keys belong to, when bound
    /// (see [`MemDisk::bound`]): a handle of a crashed run fails.
    bound_to: Option<u64>,
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
                groups: BTreeMap::new(),
                journal: Vec::new(),
                files: BTreeMap::new(),
                eventual: BTreeMap::new(),
                waiters: Vec::new(),
                flush_scheduled: false,
                rng: StdRng::seed_from_u64(seed),
                flush_delay_max,
                observer,
                lying: false,
            })),
            bound_to: None,
        }
    }

    /// Returns a handle bound to the disk's current incarnation: after a
    /// crash its eventual reads and writes fail, as a crashed process
    /// writes nothing (a leftover task of the old run may still hold it).
    pub fn bound(&self) -> Self {
        Self {
            state: self.state.clone(),
            bound_to: Some(self.lock().generation),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, DiskState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns the log store of `group` for the disk's current incarnation.
    pub fn store(&self, group: GroupId) -> super::MemLogStore {
        super::MemLogStore {
            disk: self.clone(),
            group,
            generation: self.lock().generation,
        }
    }

    /// Returns the groups on the disk, with the replica each belongs to.
    pub fn groups(&self) -> Vec<(GroupId, ReplicaId)> {
        self.lock()
            .groups
            .iter()
            .filter_map(|(group, disk)| Some((*group, disk.durable.replica?)))
            .collect()
    }

    /// Removes `group` from the disk, durably.
    pub fn destroy(&self, group: GroupId) {
        let mut state = self.lock();
        state.groups.remove(&group);
        state.journal.retain(|(written, _)| *written != group);
        state.emit(group, DiskEvent::Destroyed);
    }

    /// Returns the file `name`, if there is one.
    pub fn read_file(&self, name: &str) -> Option<Vec<u8>> {
        self.lock().files.get(name).cloned()
    }

    /// Stores the file `name`, durably.
    pub fn write_file(&self, name: &str, bytes: Vec<u8>) {
        self.lock().files.insert(name.to_owned(), bytes);
    }

    /// Runs `f` on the eventual keys.
    ///
    /// # Errors
    /// When the handle is bound to an incarnation that crashed.
    pub(crate) fn with_eventual<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<Vec<u8>, Vec<u8>>) -> T,
    ) -> std::io::Result<T> {
        let mut state = self.lock();
        if self.bound_to.is_some_and(|bound| bound != state.generation) {
            return Err(std::io::Error::other("the node of this handle crashed"));
        }
        Ok(f(&mut state.eventual))
    }

    /// Loses everything not yet flushed and fences every handle of the
    /// running incarnation. Waiting flush callbacks never fire.
    pub fn crash(&self) {
        let mut state = self.lock();
        let lost_writes = state.journal.len();
        state.journal.clear();
        for disk in state.groups.values_mut() {
            disk.current = disk.durable.clone();
        }
        state.waiters.clear();
        state.flush_scheduled = false;
        state.generation += 1;
        state.emit(WHOLE_DISK, DiskEvent::Crashed { lost_writes });
    }

    /// Makes the disk report every write durable at once, before its flush
    /// (`true`), or honestly again. A fault for testing the checkers: a
    /// crash before the flush then loses writes the node acknowledged.
    pub fn set_lying(&self, lying: bool) {
        self.lock().lying = lying;
    }

    /// Returns `group`'s log as the node sees it now.
    pub fn log_summary(&self, group: GroupId) -> LogSummary {
        self.lock()
            .groups
            .get(&group)
            .map(|disk| disk.current.summary())
            .unwrap_or_default()
    }

    /// Returns `group`'s log that would survive a crash now.
    pub fn durable_log_summary(&self, group: GroupId) -> LogSummary {
        self.lock()
            .groups
            .get(&group)
            .map(|disk| disk.durable.summary())
            .unwrap_or_default()
    }

    /// Makes the journal durable after a seeded delay, then fires the
    /// waiting callbacks, unless the disk crashed meanwhile.
    pub(super) fn schedule_flush(&self, state: &mut DiskState) {
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
            for (group, write) in &journal {
                state.group(*group).durable.apply(write);
            }
            state.emit(
                WHOLE_DISK,
                DiskEvent::Flushed {
                    writes: journal.len(),
                },
            );
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
