//! The ordered trace of a run: what every node's disk and state machine
//! did, and every fault, each stamped with virtual time. Its digest
//! identifies a run: the same seed must give the same digest.
//!
//! Every event also goes through the [`Monitor`] as it is recorded, so an
//! invariant is checked the moment the trace could break it.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use polis_raft::mem_log_store::{DiskEvent, DiskObserver, LogSummary};
use polis_types::{GroupId, NodeId, Slot, SlotRange};

use crate::invariants::{Monitor, Violation};

/// Digest of nothing (FNV-1a offset basis).
const DIGEST_EMPTY: u64 = 0xcbf2_9ce4_8422_2325;

/// The most recent events kept for a failure report; older ones live on
/// only in the digest, the counts and the monitor's state.
const EVENTS_KEPT_MAX: usize = 2_000;

/// One thing that happened in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEvent {
    /// What `node`'s disk did for `group` (or for the whole disk, when
    /// `group` is [`polis_raft::mem_log_store::WHOLE_DISK`]).
    Disk {
        node: NodeId,
        group: GroupId,
        event: DiskEvent,
    },
    /// Node `node`, in its `incarnation`-th run, applied the entry at
    /// `index` of `group` whose proposal (time and payload) has digest
    /// `digest`.
    Applied {
        node: NodeId,
        group: GroupId,
        incarnation: u64,
        index: u64,
        digest: u64,
    },
    /// A node stopped abruptly; its unflushed writes are gone.
    Crash { node: NodeId },
    /// A node started again from its disk.
    Restart { node: NodeId, incarnation: u64 },
    /// A fault started (`start`) or ended.
    Fault { description: String, start: bool },
    /// The meta group applied map `version` (first seen), whose shards
    /// own these slots.
    MapVersion {
        version: u64,
        owners: Vec<(GroupId, Vec<SlotRange>)>,
        /// Each node's incarnation in that map.
        incarnations: Vec<(NodeId, u64)>,
        /// The migrations under way, with their phase.
        migrations: Vec<(u64, &'static str)>,
        /// How many migrations began so far.
        migrations_begun: u64,
    },
    /// Shard `group` on `node` applied a write to `slot` while it owned
    /// the slots of map version `version`.
    SlotWrite {
        node: NodeId,
        group: GroupId,
        slot: Slot,
        version: u64,
    },
    /// `node` routed from map `version`.
    MapRouted { node: NodeId, version: u64 },
}

impl TraceEvent {
    /// Returns the short name of the event's kind, for summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Disk { event, .. } => match event {
                DiskEvent::VoteSaved { .. } => "vote-saved",
                DiskEvent::LeaderElected { .. } => "leader-elected",
                DiskEvent::Committed { .. } => "committed",
                DiskEvent::Appended { .. } => "appended",
                DiskEvent::Truncated { .. } => "truncated",
                DiskEvent::Purged { .. } => "purged",
                DiskEvent::Flushed { .. } => "flushed",
                DiskEvent::SnapshotSaved { .. } => "snapshot-saved",
                DiskEvent::SnapshotLoaded { .. } => "snapshot-loaded",
                DiskEvent::Crashed { .. } => "disk-crashed",
                DiskEvent::Destroyed => "destroyed",
            },
            Self::Applied { .. } => "applied",
            Self::MapVersion { .. } => "map-version",
            Self::SlotWrite { .. } => "slot-write",
            Self::MapRouted { .. } => "map-routed",
            Self::Crash { .. } => "crash",
            Self::Restart { .. } => "restart",
            Self::Fault { .. } => "fault",
        }
    }

    /// Writes the event as the digest sees it: everything, except that a
    /// leader's whole log counts by its length and last entry.
    fn digest_text(&self, out: &mut String) {
        match self {
            Self::Disk {
                node,
                group,
                event: DiskEvent::LeaderElected { term, log },
            } => {
                let _ = write!(
                    out,
                    "{node} group {group} leader-elected {term} {:?} {} {:?}",
                    log.purged,
                    log.entries.len(),
                    log.entries.last()
                );
            }
            other => {
                let _ = write!(out, "{other:?}");
            }
        }
    }
}

/// An event and when it happened, in microseconds of virtual time since
/// the run started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    pub time_us: u64,
    pub event: TraceEvent,
}

/// Folds `text` into a running FNV-1a digest.
pub fn digest_extend(mut digest: u64, text: &[u8]) -> u64 {
    for byte in text {
        digest ^= u64::from(*byte);
        digest = digest.wrapping_mul(0x0100_0000_01b3);
    }
    digest
}

struct TraceState {
    start: tokio::time::Instant,
    recent: VecDeque<Stamped>,
    recorded: usize,
    digest: u64,
    counts: BTreeMap<&'static str, u64>,
    monitor: Monitor,
    scratch: String,
    /// Every event's text, when asked for.
    full: Option<Vec<String>>,
}

/// The trace of a run. Cloning shares it.
#[derive(Clone)]
pub struct Trace {
    state: Arc<Mutex<TraceState>>,
}

impl Trace {
    /// Returns an empty trace whose clock starts now (virtual time) and
    /// that also keeps every event's text.
    pub fn keeping_everything() -> Self {
        let trace = Self::new();
        trace.lock().full = Some(Vec::new());
        trace
    }

    /// Returns an empty trace whose clock starts now (virtual time).
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(TraceState {
                start: tokio::time::Instant::now(),
                recent: VecDeque::with_capacity(EVENTS_KEPT_MAX),
                recorded: 0,
                digest: DIGEST_EMPTY,
                counts: BTreeMap::new(),
                monitor: Monitor::default(),
                scratch: String::new(),
                full: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TraceState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns microseconds of virtual time since the run started.
    pub fn now_us(&self) -> u64 {
        self.lock().start.elapsed().as_micros() as u64
    }

    /// Records `event` now and checks the invariants against it.
    pub fn record(&self, event: TraceEvent) {
        let mut state = self.lock();
        let state = &mut *state;
        let time_us = state.start.elapsed().as_micros() as u64;
        let stamped = Stamped { time_us, event };
        state.scratch.clear();
        let _ = write!(state.scratch, "{time_us} ");
        stamped.event.digest_text(&mut state.scratch);
        state.scratch.push('\n');
        state.digest = digest_extend(state.digest, state.scratch.as_bytes());
        if let Some(full) = &mut state.full {
            full.push(state.scratch.trim_end().to_owned());
        }
        *state.counts.entry(stamped.event.kind()).or_default() += 1;
        state.monitor.observe(&stamped);
        if state.recent.len() == EVENTS_KEPT_MAX {
            state.recent.pop_front();
        }
        state.recent.push_back(stamped);
        state.recorded += 1;
    }

    /// Checks the log invariants against the nodes' logs of `group` as
    /// they are now.
    pub fn check_logs(&self, group: GroupId, logs: &[(NodeId, LogSummary)]) {
        let mut state = self.lock();
        let time_us = state.start.elapsed().as_micros() as u64;
        state.monitor.check_logs(time_us, group, logs);
    }

    /// Records a violation found outside the monitor (the history check,
    /// a node that cannot restart).
    pub fn violation(&self, invariant: &'static str, detail: String) {
        let mut state = self.lock();
        let time_us = state.start.elapsed().as_micros() as u64;
        state.monitor.push(Violation {
            invariant,
            time_us,
            detail,
        });
    }

    /// Returns every event's text, if the trace keeps them.
    pub fn everything(&self) -> Vec<String> {
        self.lock().full.clone().unwrap_or_default()
    }

    /// Returns the digest of everything recorded so far.
    pub fn digest(&self) -> u64 {
        self.lock().digest
    }

    /// Returns how many events of each kind were recorded.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.lock().counts.clone()
    }

    /// Returns the number of events recorded.
    pub fn len(&self) -> usize {
        self.lock().recorded
    }

    /// Returns true when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the last `count` events (at most the last
    /// `EVENTS_KEPT_MAX`).
    pub fn tail(&self, count: usize) -> Vec<Stamped> {
        let state = self.lock();
        let from = state.recent.len().saturating_sub(count);
        state.recent.iter().skip(from).cloned().collect()
    }

    /// Returns every violation found so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.lock().monitor.violations().to_vec()
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}

impl DiskObserver for Trace {
    fn disk_event(&self, node: NodeId, group: GroupId, event: DiskEvent) {
        self.record(TraceEvent::Disk { node, group, event });
    }
}
