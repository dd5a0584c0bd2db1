//! The adapter between openraft and an application state machine.
//!
//! The application implements [`StateMachine`]: deterministic `apply`,
//! whole-state `snapshot` and `restore`. The adapter keeps the Raft
//! bookkeeping (last applied log id, membership, the group's clock) next to
//! it, persists snapshots to a file, and shares the state with readers
//! through [`StateHandle`].
//!
//! A snapshot file is one record in the log engine's format (see
//! [`record`]): a version byte and an xxh3 checksum before the encoded
//! snapshot (or the snapshot sealed with AES-256-GCM in an encrypted data
//! directory, see [`crate::at_rest`]), verified on every read. A damaged
//! file stops the node (exit code 71) as damaged log data does; it never
//! restores a wrong keyspace.
//!
//! [`record`]: crate::log_store::record

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use parking_lot::{RwLock, RwLockWriteGuard};
use serde::{Deserialize, Serialize};

use crate::at_rest::Cipher;
use crate::log_store::corruption::{self, Corruption, RecordProblem};
use crate::log_store::OpenError;
use crate::mem_log_store::MemLogStore;
use crate::state_read::{self, StateRead};
use crate::storage::write_durably;
use crate::types::{Applied, LogId, SnapshotMeta, StoredMembership, TypeConfig};

/// An application state machine replicated by a Raft group.
pub trait StateMachine: Send + Sync + 'static {
    /// Applies one committed proposal and returns the encoded reply.
    ///
    /// Must be deterministic: the same proposals in the same order give the
    /// same state and replies on every replica. `time_ms` is the group's
    /// clock (never decreasing), taken from the proposals.
    fn apply(&mut self, index: u64, time_ms: u64, payload: &[u8]) -> Bytes;

    /// Told, before [`StateMachine::apply`], the term of the leader that
    /// appended the entry: a new leader applies its predecessors'
    /// entries too, and may need to tell them from its own. Nothing by
    /// default.
    fn begin_entry(&mut self, _term: u64) {}

    /// Returns the whole state, encoded.
    fn snapshot(&self) -> Vec<u8>;

    /// Begins a snapshot encoded in steps ([`StateMachine::snapshot_step`])
    /// and returns its first bytes. Proposals are applied between the
    /// steps, yet together the bytes must be [`StateMachine::snapshot`] as
    /// of now. By default the whole snapshot, at once.
    fn snapshot_begin(&mut self) -> Vec<u8> {
        self.snapshot()
    }

    /// Appends the next part (about `items` items) of the snapshot begun
    /// last to `out`.
    fn snapshot_step(&mut self, _out: &mut Vec<u8>, _items: usize) -> SnapshotStep {
        SnapshotStep::Done
    }

    /// Drops what an unfinished snapshot keeps: its build stopped.
    fn snapshot_abandon(&mut self) {}

    /// Replaces the whole state with a decoded snapshot.
    ///
    /// # Errors
    /// Returns a message when `data` is not a valid snapshot.
    fn restore(&mut self, data: &[u8]) -> Result<(), String>;

    /// Returns how many items (keys, for a data group) the state holds,
    /// for status reports.
    fn items(&self) -> u64 {
        0
    }

    /// Returns an estimate of the bytes the state holds, for status
    /// reports and the balancing of shards.
    fn bytes(&self) -> u64 {
        0
    }

    /// Returns a version the application gives its state (the map version
    /// of a shard's slot ownership, for instance), reported in beats.
    fn version(&self) -> u64 {
        0
    }
}

/// Where a snapshot encoded in steps stands after one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotStep {
    /// More steps follow.
    More,
    /// The snapshot is complete.
    Done,
    /// The state was replaced since the snapshot began (a snapshot was
    /// installed): begin again.
    Lost,
}

/// What an [`ApplyObserver`] is shown of one applied proposal.
pub struct AppliedEntry<'a> {
    pub group: polis_types::GroupId,
    pub index: u64,
    pub time_ms: u64,
    pub payload: &'a [u8],
    /// The application's answer.
    pub answer: &'a [u8],
    /// The state machine's version after it (see [`StateMachine::version`]).
    pub version: u64,
}

/// Sees every proposal a replica applies (a simulation's trace).
pub trait ApplyObserver: Send + Sync + 'static {
    /// Called as each proposal is applied, with the state locked: it must
    /// not call back into the group.
    fn applied(&self, entry: &AppliedEntry<'_>);
}

/// Exit code of a node that met a log entry it cannot decode (sysexits'
/// `EX_PROTOCOL`): another binary wrote it, or it is damaged past its
/// checksum.
pub const EXIT_UNDECODABLE_ENTRY: i32 = 76;

/// Stops the node (crash-stop): the entry at `index` of `group` cannot be
/// applied. Skipping it would let this replica's state differ from the
/// replicas that could apply it; stopping costs the group one member, and
/// a binary that understands the entry can take over the same data.
/// In a simulation it panics instead, which the run reports.
pub fn undecodable_entry(group: polis_types::GroupId, index: u64, detail: &str) -> ! {
    if crate::runtime::is_simulated() {
        panic!("group {group} cannot decode its log entry at index {index}: {detail}");
    }
    tracing::error!(%group, index, detail, "undecodable log entry: stopping the node (crash-stop)");
    eprintln!(
        "polis: stopping: group {group} cannot decode its log entry at index {index} ({detail}). \
         A node of another version wrote it: run the same polis version on every node; \
         exit code {EXIT_UNDECODABLE_ENTRY}"
    );
    std::process::exit(EXIT_UNDECODABLE_ENTRY)
}

/// The state a group's replicas agree on.
pub struct SmState<S> {
    pub app: S,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    /// The group's clock: the largest proposal time applied so far.
    pub time_ms: u64,
    /// Bytes of proposals applied since this replica started (not
    /// replicated state: it only paces snapshots).
    applied_bytes: u64,
}

/// When to snapshot by the log's growth, as Redis rewrites its AOF: once
/// the proposals applied since the last snapshot add up to as many bytes
/// as that snapshot had, and at least `min_bytes`. Snapshotting costs
/// time proportional to the state, so this keeps its cost per byte
/// written constant whatever the state's size, and the log on disk
/// within about twice the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPacing {
    pub min_bytes: u64,
    /// Items per step of a snapshot encoded in steps.
    pub step_items: usize,
}

/// The bookkeeping behind [`SnapshotPacing`], shared by the state machine
/// (which counts) and the task that asks openraft for a snapshot.
#[derive(Default)]
pub(crate) struct LogGrowth {
    /// `applied_bytes` when the last snapshot was taken.
    at_snapshot: AtomicU64,
    /// The last snapshot's size.
    snapshot_bytes: AtomicU64,
    /// A snapshot was asked for and not built yet.
    requested: AtomicBool,
    wanted: tokio::sync::Notify,
}

impl LogGrowth {
    /// Waits until a snapshot is due.
    pub(crate) async fn due(&self) {
        self.wanted.notified().await;
    }

    /// Forgets a request openraft did not take, so the next apply asks
    /// again.
    pub(crate) fn request_failed(&self) {
        self.requested.store(false, Ordering::SeqCst);
    }
}

/// Shared read access to a group's state machine.
pub struct StateHandle<S> {
    state: Arc<RwLock<SmState<S>>>,
}

impl<S> Clone for StateHandle<S> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
        }
    }
}

impl<S> StateHandle<S> {
    /// Returns a read guard on the state. Hold it briefly: apply waits.
    /// Never take a second one while holding one (see [`state_read`]).
    pub fn read(&self) -> StateRead<'_, SmState<S>> {
        state_read::read(&self.state)
    }

    fn write(&self) -> RwLockWriteGuard<'_, SmState<S>> {
        state_read::write(&self.state)
    }

    /// Runs `configure` on the application state under the write lock:
    /// for node settings kept beside the data (CONFIG SET of what OBJECT
    /// ENCODING reports), never for replicated state, which only log
    /// entries change.
    pub fn configure(&self, configure: impl FnOnce(&mut S)) {
        configure(&mut self.write().app);
    }
}

/// What a snapshot carries besides Raft's metadata.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    time_ms: u64,
    app: Vec<u8>,
}

/// A snapshot as stored in its file.
#[derive(Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The same, borrowed for writing (postcard encodes a byte slice and a
/// `Vec<u8>` alike), so persisting copies the data once, not twice.
#[derive(Serialize)]
struct SnapshotFileRef<'a> {
    meta: &'a SnapshotMeta,
    data: &'a [u8],
}

/// Where a group's snapshot is kept.
#[derive(Clone)]
enum SnapshotPlace {
    /// A file, written atomically and durably, sealed as the node's
    /// records are.
    File(PathBuf, Cipher),
    /// A simulated disk (synchronous, so a simulation stays deterministic).
    Memory(MemLogStore),
}

/// The openraft state machine of one group.
///
/// The latest snapshot lives only where it is persisted: it is as large
/// as the keyspace, and it is read back only to send it to a follower
/// too far behind for the log.
pub struct SmStore<S> {
    handle: StateHandle<S>,
    place: SnapshotPlace,
    pacing: Option<SnapshotPacing>,
    growth: Arc<LogGrowth>,
    observer: Option<(polis_types::GroupId, Arc<dyn ApplyObserver>)>,
}

impl<S> Clone for SmStore<S> {
    fn clone(&self) -> Self {
        Self {
            handle: self.handle.clone(),
            place: self.place.clone(),
            pacing: self.pacing,
            growth: self.growth.clone(),
            observer: self.observer.clone(),
        }
    }
}

fn invalid(message: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

impl<S: StateMachine> SmStore<S> {
    /// Opens the state machine of a group, restoring it from its snapshot
    /// file when there is one. Entries after the snapshot are re-applied
    /// from the log by openraft.
    ///
    /// # Errors
    /// Returns an error if the snapshot file exists but cannot be read.
    /// A damaged snapshot file ends the process with exit code 71 before
    /// it serves anything (see [`SmStore::open_verified`]).
    pub fn open(app: S, snapshot_path: PathBuf, cipher: Cipher) -> io::Result<Self> {
        match Self::open_verified(app, snapshot_path, cipher) {
            Ok(store) => Ok(store),
            Err(OpenError::Corrupt(corruption)) => corruption::refuse_to_start(&corruption),
            Err(OpenError::Io(error)) => Err(error),
        }
    }

    /// Opens the state machine of a group from its snapshot file, if any,
    /// once the file's checksum checks out.
    ///
    /// # Errors
    /// Returns [`OpenError::Corrupt`] if the file fails verification, or
    /// the I/O error that stopped reading it.
    pub fn open_verified(
        app: S,
        snapshot_path: PathBuf,
        cipher: Cipher,
    ) -> Result<Self, OpenError> {
        let file = read_snapshot_file(&snapshot_path, &cipher)?;
        Ok(Self::open_with(
            app,
            file,
            SnapshotPlace::File(snapshot_path, cipher),
        )?)
    }

    /// Opens the state machine of a group whose snapshot lives on the
    /// simulated disk of `store`.
    ///
    /// # Errors
    /// Returns an error if the stored snapshot cannot be decoded or the
    /// disk's incarnation crashed.
    pub fn open_in_memory(app: S, store: MemLogStore) -> io::Result<Self> {
        let file = store
            .load_snapshot()?
            .map(|bytes| decode_snapshot_file(&Cipher::Plain, &bytes).map_err(invalid))
            .transpose()?;
        let opened = Self::open_with(app, file, SnapshotPlace::Memory(store.clone()))?;
        store.snapshot_loaded(opened.handle.read().last_applied);
        Ok(opened)
    }

    fn open_with(app: S, file: Option<SnapshotFile>, place: SnapshotPlace) -> io::Result<Self> {
        let mut state = SmState {
            app,
            last_applied: None,
            membership: StoredMembership::default(),
            time_ms: 0,
            applied_bytes: 0,
        };
        let growth = Arc::new(LogGrowth::default());
        if let Some(file) = file {
            restore_into(&mut state, &file.meta, &file.data)?;
            growth
                .snapshot_bytes
                .store(file.data.len() as u64, Ordering::SeqCst);
        }
        Ok(Self {
            handle: StateHandle {
                state: Arc::new(RwLock::new(state)),
            },
            place,
            pacing: None,
            growth,
            observer: None,
        })
    }

    /// Asks for a snapshot whenever `pacing` says one is due, besides
    /// openraft's own policy; [`Self::log_growth`] tells when.
    #[must_use]
    pub fn with_pacing(mut self, pacing: SnapshotPacing) -> Self {
        self.pacing = Some(pacing);
        self
    }

    /// Reports every applied proposal of `group` to `observer`.
    #[must_use]
    pub fn with_observer(
        mut self,
        group: polis_types::GroupId,
        observer: Option<Arc<dyn ApplyObserver>>,
    ) -> Self {
        self.observer = observer.map(|observer| (group, observer));
        self
    }

    pub(crate) fn log_growth(&self) -> Arc<LogGrowth> {
        self.growth.clone()
    }

    /// Signals a due snapshot once `applied_bytes` has grown enough.
    fn pace(&self, applied_bytes: u64) {
        let Some(pacing) = self.pacing else { return };
        let grown = applied_bytes.saturating_sub(self.growth.at_snapshot.load(Ordering::SeqCst));
        let due = pacing
            .min_bytes
            .max(self.growth.snapshot_bytes.load(Ordering::SeqCst));
        if grown >= due && !self.growth.requested.swap(true, Ordering::SeqCst) {
            self.growth.wanted.notify_one();
        }
    }

    /// Returns a handle for reading the state.
    pub fn handle(&self) -> StateHandle<S> {
        self.handle.clone()
    }

    async fn persist(&self, meta: &SnapshotMeta, data: &[u8]) -> io::Result<()> {
        let cipher = match &self.place {
            SnapshotPlace::File(_, cipher) => cipher.clone(),
            SnapshotPlace::Memory(_) => Cipher::Plain,
        };
        let bytes = encode_snapshot_file(&cipher, meta, data)?;
        match &self.place {
            SnapshotPlace::File(path, _) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
                    .await
                    .map_err(io::Error::other)??;
            }
            SnapshotPlace::Memory(store) => store.save_snapshot(meta.last_log_id, bytes)?,
        }
        Ok(())
    }

    /// Reads the latest persisted snapshot back. A damaged file stops the
    /// node at once (exit code 71), as a damaged log entry does.
    async fn load(&self) -> io::Result<Option<SnapshotFile>> {
        match &self.place {
            SnapshotPlace::File(path, cipher) => {
                let (path, cipher) = (path.clone(), cipher.clone());
                let read = tokio::task::spawn_blocking(move || read_snapshot_file(&path, &cipher))
                    .await
                    .map_err(io::Error::other)?;
                match read {
                    Ok(file) => Ok(file),
                    Err(OpenError::Corrupt(corruption)) => corruption::crash_stop(&corruption),
                    Err(OpenError::Io(error)) => Err(error),
                }
            }
            SnapshotPlace::Memory(store) => store
                .load_snapshot()?
                .map(|bytes| decode_snapshot_file(&Cipher::Plain, &bytes).map_err(invalid))
                .transpose(),
        }
    }
}

/// The key a snapshot file's checksum is seeded with (see [`record`]).
const SNAPSHOT_RECORD_KEY: &[u8] = b"snapshot";

/// Returns the stored form of a snapshot: one sealed record.
fn encode_snapshot_file(cipher: &Cipher, meta: &SnapshotMeta, data: &[u8]) -> io::Result<Vec<u8>> {
    let file = SnapshotFileRef { meta, data };
    let mut bytes = postcard::to_extend(&file, cipher.start(data.len() + 64)).map_err(invalid)?;
    cipher.seal(SNAPSHOT_RECORD_KEY, &mut bytes);
    Ok(bytes)
}

/// Verifies and decodes what [`encode_snapshot_file`] stored.
fn decode_snapshot_file(cipher: &Cipher, bytes: &[u8]) -> Result<SnapshotFile, RecordProblem> {
    let payload = cipher.open(SNAPSHOT_RECORD_KEY, bytes)?;
    postcard::from_bytes(&payload).map_err(|error| RecordProblem::Decode(error.to_string()))
}

/// Reads and verifies the snapshot file at `path`; `None` if there is
/// none.
fn read_snapshot_file(path: &Path, cipher: &Cipher) -> Result<Option<SnapshotFile>, OpenError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(OpenError::Io(error)),
    };
    decode_snapshot_file(cipher, &bytes)
        .map(Some)
        .map_err(|problem| {
            OpenError::Corrupt(Corruption::Snapshot {
                file: path.to_path_buf(),
                problem,
            })
        })
}

fn restore_into<S: StateMachine>(
    state: &mut SmState<S>,
    meta: &SnapshotMeta,
    data: &[u8],
) -> io::Result<()> {
    let body: SnapshotBody = postcard::from_bytes(data).map_err(invalid)?;
    state.app.restore(&body.app).map_err(invalid)?;
    state.time_ms = body.time_ms;
    state.last_applied = meta.last_log_id;
    state.membership = meta.last_membership.clone();
    Ok(())
}

#[path = "snapshot_builder.rs"]
mod snapshot_builder;
pub use snapshot_builder::decode_snapshot_body;

impl<S: StateMachine> RaftStateMachine<TypeConfig> for SmStore<S> {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let state = self.handle.read();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let log_id = entry.log_id();
            let (reply, applied_bytes) = {
                let mut state = self.handle.write();
                state.last_applied = Some(log_id);
                let reply = match entry.payload {
                    EntryPayload::Blank => Applied::default(),
                    EntryPayload::Normal(proposal) => {
                        let time_ms = proposal.time_ms.max(state.time_ms);
                        state.time_ms = time_ms;
                        state.applied_bytes += proposal.payload.len() as u64;
                        state.app.begin_entry(log_id.leader_id.term);
                        let started = std::time::Instant::now();
                        let answer = state.app.apply(log_id.index(), time_ms, &proposal.payload);
                        crate::latency::APPLIES.record(started.elapsed());
                        if let Some((group, observer)) = &self.observer {
                            observer.applied(&AppliedEntry {
                                group: *group,
                                index: log_id.index(),
                                time_ms,
                                payload: &proposal.payload,
                                answer: &answer,
                                version: state.app.version(),
                            });
                        }
                        Applied(answer)
                    }
                    EntryPayload::Membership(membership) => {
                        state.membership = StoredMembership::new(Some(log_id), membership);
                        Applied::default()
                    }
                };
                (reply, state.applied_bytes)
            };
            if let Some(responder) = responder {
                responder.send(reply);
            }
            self.pace(applied_bytes);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Vec<u8>,
    ) -> Result<(), io::Error> {
        {
            let mut state = self.handle.write();
            restore_into(&mut state, meta, &snapshot)?;
        }
        self.persist(meta, &snapshot).await?;
        tracing::info!(last_log_id = ?meta.last_log_id, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<openraft::alias::SnapshotOf<TypeConfig, Vec<u8>>>, io::Error> {
        Ok(self
            .load()
            .await?
            .map(|file| openraft::alias::SnapshotOf::<TypeConfig, Vec<u8>> {
                meta: file.meta,
                snapshot: file.data,
            }))
    }
}

#[cfg(test)]
#[path = "state_machine_test.rs"]
mod tests;
