//! Keys of eventual namespaces on a node: stored merged states, the
//! hybrid logical clock that versions their writes, and the coordinator
//! that replicates them without Raft.
//!
//! ```text
//!  client ─> any replica of the slot's shard (else forwarded to one)
//!     write: lock keys ─> run on local states ─> store (durable) ─> send states to the other N-1
//!            ─> W acknowledgements (this node's own included) ─> reply; fewer by the deadline
//!            ─> OUTCOMEUNKNOWN (the write stays here and spreads later)
//!     read:  local states + R-1 replicas' ─> merge ─> reply; replicas that were behind get
//!            the merged states (read repair)
//!  replica: Merge ─> clock within bound? ─> lock keys ─> stored ⊔ received ─> store ─> ack
//! ```
//!
//! A state is the whole of one key (see `polis_eventual::value`), merged
//! by a join: a replica takes in states in any order, any number of
//! times, and ends in the same state.

mod anti_entropy;
mod coordinator;
mod gc;
mod handoff;
mod hints;
mod outbox;
mod replica;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use polis_eventual::command::States;
use polis_eventual::hlc::{Clock, Hlc, SystemClock};
use polis_eventual::merge::Merge;
use polis_eventual::value::KeyState;
use polis_raft::storage::Storage;
use polis_raft::storage_eventual::{eventual_key, EventualWrite};
use polis_types::{NodeId, Slot};

pub(crate) use anti_entropy::{differing, sync_answer};
pub use anti_entropy::{run as run_anti_entropy, whole_digest};
pub(crate) use coordinator::run_forwarded;
pub use coordinator::{execute, replicas_of};
pub(crate) use gc::purge_here;
pub use handoff::run as run_handoff;
pub use hints::run as run_hints;
pub use outbox::MergeItem;
pub(crate) use replica::{merge_here, merge_many_here, read_here, WireStates};

/// The file holding the node's actor epoch.
pub const EPOCH_FILE: &str = "eventual-actor-epoch";

/// Stripes of the key locks: a key's read-modify-write on this node holds
/// its stripe, so two commands (or a command and a replica's merge) on one
/// key never overwrite each other.
const STRIPES: usize = 256;

/// The machine's clock, moved by an offset (fault injection: clock skew).
/// In a simulation it is the run's virtual time since the run began (the
/// same for every node and every restart) from a fixed epoch, so a seed
/// replays the same versions.
pub struct NodeClock {
    offset_ms: AtomicI64,
    /// The virtual start and the wall time it stands for (simulation).
    simulated: Option<(tokio::time::Instant, u64)>,
}

/// The wall time a simulation's virtual start stands for (2026-01-01).
const SIMULATION_EPOCH_MS: u64 = 1_767_225_600_000;

impl Default for NodeClock {
    fn default() -> Self {
        Self {
            offset_ms: AtomicI64::new(0),
            simulated: polis_raft::runtime::is_simulated().then(|| {
                let origin = polis_raft::runtime::simulation_origin()
                    .unwrap_or_else(tokio::time::Instant::now);
                (origin, SIMULATION_EPOCH_MS)
            }),
        }
    }
}

impl NodeClock {
    /// Moves this node's clock `offset_ms` away from the machine's.
    pub fn set_offset(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }

    /// Returns the offset set by [`NodeClock::set_offset`].
    pub fn offset(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
}

impl Clock for NodeClock {
    fn now_ms(&self) -> u64 {
        let base = match self.simulated {
            Some((start, epoch)) => epoch + start.elapsed().as_millis() as u64,
            None => SystemClock.now_ms(),
        };
        base.saturating_add_signed(self.offset_ms.load(Ordering::Relaxed))
    }
}

/// Counters of eventual replication.
#[derive(Default)]
pub struct EventualStats {
    pub writes: AtomicU64,
    pub reads: AtomicU64,
    /// Writes answered OUTCOMEUNKNOWN: fewer than W replicas acknowledged.
    pub outcome_unknown: AtomicU64,
    /// Reads refused: fewer than R replicas answered.
    pub reads_short: AtomicU64,
    /// Replicas sent merged states because a read found them behind.
    pub read_repairs: AtomicU64,
    /// Requests forwarded to a replica (this node holds none of the slot).
    pub forwarded: AtomicU64,
    /// Hints stored for replicas that missed a write.
    pub hints_written: AtomicU64,
    /// Hints delivered.
    pub hints_delivered: AtomicU64,
    /// Hints dropped past the hint window.
    pub hints_expired: AtomicU64,
    /// Anti-entropy rounds run.
    pub anti_entropy_rounds: AtomicU64,
    /// Dead keys (tombstones, passed deadlines) purged once every replica
    /// held them.
    pub tombstones_purged: AtomicU64,
    /// Keys handed off to the replicas of their slot's new place.
    pub handed_off: AtomicU64,
    /// Merges refused as stale (stamped before the purge horizon).
    pub stale_refused: AtomicU64,
    /// Bytes of keys and states anti-entropy sent and received.
    pub anti_entropy_bytes: AtomicU64,
}

/// One figure of eventual replication, as INFO and /metrics show it.
pub struct Figure {
    /// The INFO field; /metrics prefixes `polis_eventual_`.
    pub name: &'static str,
    pub help: &'static str,
    pub counter: bool,
    pub value: u64,
}

/// Returns the node's figures of eventual replication.
pub fn figures(node: &crate::node::Node) -> Vec<Figure> {
    let stats = &node.eventual.stats;
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let figure = |name, help, counter, value| Figure {
        name,
        help,
        counter,
        value,
    };
    vec![
        figure("writes_total", "Eventual writes this node coordinated.", true, get(&stats.writes)),
        figure("reads_total", "Eventual reads this node coordinated.", true, get(&stats.reads)),
        figure(
            "outcome_unknown_total",
            "Eventual writes answered OUTCOMEUNKNOWN (fewer than W acknowledged).",
            true,
            get(&stats.outcome_unknown),
        ),
        figure(
            "reads_short_total",
            "Eventual reads refused: fewer than R replicas answered.",
            true,
            get(&stats.reads_short),
        ),
        figure(
            "read_repairs_total",
            "Replicas sent merged states because a read found them behind.",
            true,
            get(&stats.read_repairs),
        ),
        figure(
            "forwarded_total",
            "Eventual requests forwarded to a replica of their slot.",
            true,
            get(&stats.forwarded),
        ),
        figure(
            "hints_pending",
            "Hints waiting for a replica that missed writes.",
            false,
            hints::pending(node).unwrap_or(0),
        ),
        figure("hints_written_total", "Hints stored.", true, get(&stats.hints_written)),
        figure("hints_delivered_total", "Hints delivered.", true, get(&stats.hints_delivered)),
        figure(
            "hints_expired_total",
            "Hints dropped past the hint window (anti-entropy covers them).",
            true,
            get(&stats.hints_expired),
        ),
        figure(
            "anti_entropy_rounds_total",
            "Anti-entropy rounds run.",
            true,
            get(&stats.anti_entropy_rounds),
        ),
        figure(
            "anti_entropy_bytes_total",
            "Bytes of keys and states anti-entropy sent and received.",
            true,
            get(&stats.anti_entropy_bytes),
        ),
        figure(
            "tombstones_purged_total",
            "Dead keys purged once every replica held the same state.",
            true,
            get(&stats.tombstones_purged),
        ),
        figure(
            "tombstones_waiting",
            "Dead keys seen the same on every replica, waiting out the quiet period.",
            false,
            node.eventual.candidates.len() as u64,
        ),
        figure(
            "handed_off_total",
            "Keys sent to the new replicas of their slot, then forgotten here.",
            true,
            get(&stats.handed_off),
        ),
        figure(
            "stale_refused_total",
            "Merges refused as stamped before the purge horizon.",
            true,
            get(&stats.stale_refused),
        ),
        figure(
            "clock_refused_total",
            "Remote timestamps refused as too far ahead of this node's clock.",
            true,
            node.eventual.hlc.refused(),
        ),
        figure(
            "clock_offset_ms",
            "The size of the offset injected into this node's clock, in either direction (fault injection).",
            false,
            node.eventual.clock.offset().unsigned_abs(),
        ),
    ]
}

/// A node's eventual side.
pub struct Eventual {
    pub clock: Arc<NodeClock>,
    pub hlc: Hlc,
    /// Who this node counts and adds as (set once the node knows its
    /// incarnation).
    node: NodeId,
    /// The node's incarnation, once it started (0 before).
    incarnation: AtomicU64,
    /// The actor epoch (see `polis_eventual::command::actor`), stored in
    /// [`EPOCH_FILE`] before it is used.
    epoch: AtomicU64,
    epoch_lock: tokio::sync::Mutex<()>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    pub stats: EventualStats,
    /// Dead keys waiting to be purged.
    candidates: gc::Candidates,
    /// Merges queued for each peer.
    outboxes: outbox::Outboxes,
    /// Anti-entropy's digests, when and at which map version computed.
    digests: std::sync::Mutex<Option<(tokio::time::Instant, u64, Arc<anti_entropy::Digests>)>>,
}

impl Eventual {
    /// Returns the eventual side of node `node`, refusing remote clocks
    /// more than `max_ahead_ms` ahead.
    pub fn new(node: NodeId, max_ahead_ms: u64) -> Self {
        let clock = Arc::new(NodeClock::default());
        Self {
            hlc: Hlc::new(node, clock.clone(), max_ahead_ms),
            clock,
            node,
            incarnation: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            epoch_lock: tokio::sync::Mutex::new(()),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            stats: EventualStats::default(),
            digests: std::sync::Mutex::new(None),
            candidates: gc::Candidates::default(),
            outboxes: outbox::Outboxes::default(),
        }
    }

    /// Starts the node's eventual side in `incarnation`: a new actor
    /// epoch, stored before any write uses it.
    ///
    /// # Errors
    /// Returns an error if the epoch cannot be stored.
    pub async fn start(&self, storage: &Storage, incarnation: u64) -> io::Result<()> {
        self.incarnation.store(incarnation, Ordering::Relaxed);
        self.next_epoch(storage).await
    }

    /// Moves to the next actor epoch, durably: after a start, and after
    /// this node forgot keys (their copies elsewhere may hold its
    /// contributions, which a write from nothing must not collide with).
    async fn next_epoch(&self, storage: &Storage) -> io::Result<()> {
        let _held = self.epoch_lock.lock().await;
        let stored = storage
            .read_file(EPOCH_FILE)?
            .and_then(|bytes| bytes.as_slice().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0);
        let next = stored.max(self.epoch.load(Ordering::Relaxed)) + 1;
        storage.write_file(EPOCH_FILE, &next.to_be_bytes()).await?;
        self.epoch.store(next, Ordering::Relaxed);
        Ok(())
    }

    /// Returns who this node counts and adds as now (none before it
    /// started).
    fn actor(&self) -> Option<NodeId> {
        let incarnation = self.incarnation.load(Ordering::Relaxed);
        let epoch = self.epoch.load(Ordering::Relaxed);
        (incarnation > 0 && epoch > 0)
            .then(|| polis_eventual::command::actor(self.node, incarnation, epoch))
    }

    /// Locks the stripes of `keys` (in order, so two lockers never wait
    /// on each other).
    async fn lock(
        &self,
        keys: impl IntoIterator<Item = &Bytes>,
    ) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let stripes: BTreeSet<usize> = keys.into_iter().map(|key| stripe(key)).collect();
        let mut guards = Vec::with_capacity(stripes.len());
        for index in stripes {
            guards.push(self.stripes[index].lock().await);
        }
        guards
    }
}

fn stripe(key: &[u8]) -> usize {
    // FNV-1a: cheap and spreads keys that share a prefix.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % STRIPES as u64) as usize
}

/// Returns the stored states of `keys` in `slot` (a key never written is
/// left out).
fn load(storage: &Storage, slot: Slot, keys: &[Bytes]) -> io::Result<States> {
    let mut states = States::new();
    for key in keys {
        if let Some(bytes) = storage.eventual_get(&eventual_key(slot.get(), key))? {
            states.insert(key.clone(), decode(&bytes)?);
        }
    }
    Ok(states)
}

fn decode(bytes: &[u8]) -> io::Result<KeyState> {
    postcard::from_bytes(bytes).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("an eventual key's state does not decode: {error}"),
        )
    })
}

fn encode(state: &KeyState) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(state).map_err(io::Error::other)
}

/// Stores `states` of `slot`, durably.
async fn store(storage: &Storage, slot: Slot, states: &States) -> io::Result<()> {
    let writes: Vec<EventualWrite> = states
        .iter()
        .map(|(key, state)| Ok((eventual_key(slot.get(), key), Some(encode(state)?))))
        .collect::<io::Result<_>>()?;
    storage.eventual_put(writes).await
}

/// Why states were not merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("storage: {0}")]
    Io(#[from] io::Error),
    /// A state holds a version too far ahead of this node's clock.
    #[error("{0}")]
    TooFarAhead(#[from] polis_eventual::hlc::TooFarAhead),
}

/// Merges `incoming` into the stored states (under the keys' locks) and
/// returns the states after the merge. States holding a version more than
/// the clock bound ahead of this node's clock are refused (and counted):
/// taken in, they would win every conflict for as long as the skew lasts.
async fn merge_stored(
    eventual: &Eventual,
    storage: &Storage,
    slot: Slot,
    incoming: States,
) -> Result<States, MergeError> {
    if let Some(newest) = incoming.values().filter_map(KeyState::max_version).max() {
        eventual.hlc.observe(newest.time)?;
    }
    let keys: Vec<Bytes> = incoming.keys().cloned().collect();
    let _locked = eventual.lock(&keys).await;
    let mut stored = load(storage, slot, &keys)?;
    let mut changed = States::new();
    for (key, state) in incoming {
        let current = stored.entry(key.clone()).or_default();
        let before = current.clone();
        current.merge(&state);
        if *current != before {
            changed.insert(key, current.clone());
        }
    }
    if !changed.is_empty() {
        store(storage, slot, &changed).await?;
    }
    Ok(stored)
}

/// Counts the live eventual keys this node holds for which `matches`
/// holds, and returns one of them.
///
/// # Errors
/// Returns an error if the storage cannot be read.
pub fn live_keys(
    node: &crate::node::Node,
    matches: &dyn Fn(&[u8]) -> bool,
) -> io::Result<(u64, Option<Bytes>)> {
    let storage = node.host.storage();
    let now = polis_eventual::hlc::Clock::now_ms(node.eventual.clock.as_ref());
    let mut count = 0;
    let mut example = None;
    for slot in 0..polis_types::SLOT_COUNT {
        let mut from: Vec<u8> = Vec::new();
        let mut after = false;
        loop {
            let page = storage.eventual_scan(slot, &from, after, SCAN_PAGE)?;
            for (stored, bytes) in &page {
                let Some((_, key)) = polis_raft::storage_eventual::split_eventual_key(stored)
                else {
                    continue;
                };
                if matches(key) && decode(bytes)?.live_kind(now).is_some() {
                    count += 1;
                    example.get_or_insert_with(|| Bytes::copy_from_slice(key));
                }
            }
            match page.last() {
                Some((stored, _)) if page.len() == SCAN_PAGE => {
                    from = stored[2..].to_vec();
                    after = true;
                }
                _ => break,
            }
        }
    }
    Ok((count, example))
}

/// Keys read from storage at once by a scan.
const SCAN_PAGE: usize = 1024;

/// Merges the states of several writes (each of one slot) into the stored
/// ones under one lock of all their keys, in one durable write. The
/// states were checked against the clock bound by the caller.
async fn merge_many(
    eventual: &Eventual,
    storage: &Storage,
    items: Vec<(Slot, States)>,
) -> io::Result<()> {
    let keys: Vec<Bytes> = items
        .iter()
        .flat_map(|(_, states)| states.keys().cloned())
        .collect();
    let _locked = eventual.lock(&keys).await;
    let mut merged: BTreeMap<(Slot, Bytes), KeyState> = BTreeMap::new();
    let mut touched: BTreeMap<(Slot, Bytes), bool> = BTreeMap::new();
    for (slot, states) in items {
        for (key, state) in states {
            let entry = (slot, key);
            if !merged.contains_key(&entry) {
                let stored = load(storage, slot, std::slice::from_ref(&entry.1))?;
                let current = stored.into_values().next().unwrap_or_default();
                merged.insert(entry.clone(), current);
            }
            let current = merged.entry(entry.clone()).or_default();
            let before = current.clone();
            current.merge(&state);
            if *current != before {
                touched.insert(entry, true);
            }
        }
    }
    let writes: Vec<EventualWrite> = touched
        .keys()
        .filter_map(|entry| Some((entry, merged.get(entry)?)))
        .map(|((slot, key), state)| Ok((eventual_key(slot.get(), key), Some(encode(state)?))))
        .collect::<io::Result<_>>()?;
    if writes.is_empty() {
        return Ok(());
    }
    storage.eventual_put(writes).await
}
