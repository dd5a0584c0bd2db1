//! Group commit: one thread makes appended log entries durable for every
//! group of the node, so one fsync serves every write that arrived while the
//! previous fsync ran.
//!
//! fjall's `persist` holds the journal lock, so appends write their batch
//! first (visible to readers at once), then queue a completion here. The
//! thread drains the queue, calls `persist` once, then runs every queued
//! completion. An fsync error is node-fatal: the process stops before any
//! completion runs, so nothing is ever acknowledged after a failed fsync.

use std::io;
use std::sync::mpsc;
use std::thread;

use fjall::{Database, PersistMode};
use polis_types::limits::GROUP_COMMIT_BATCH_MAX;

/// A completion to run once the journal is durable.
pub type Completion = Box<dyn FnOnce(io::Result<()>) + Send>;

/// Handle to the group-commit thread. Cloning shares the thread.
#[derive(Clone)]
pub struct GroupCommit {
    sender: mpsc::SyncSender<Completion>,
}

impl GroupCommit {
    /// Starts the group-commit thread for `db`.
    ///
    /// # Errors
    /// Returns an error if the thread cannot be spawned.
    pub fn start(db: Database) -> io::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel::<Completion>(GROUP_COMMIT_BATCH_MAX);
        // The thread logs in the span of whoever started it (the node's).
        let span = tracing::Span::current();
        thread::Builder::new()
            .name("polis-group-commit".into())
            .spawn(move || {
                let _in_span = span.entered();
                run(db, receiver);
            })?;
        Ok(Self { sender })
    }

    /// Queues `completion` to run after the next fsync. Waits while the
    /// queue is full (backpressure on appends).
    pub fn after_next_sync(&self, completion: Completion) {
        if let Err(mpsc::SendError(completion)) = self.sender.send(completion) {
            completion(Err(io::Error::other("group commit stopped")));
        }
    }
}

fn run(db: Database, receiver: mpsc::Receiver<Completion>) {
    let mut batch: Vec<Completion> = Vec::with_capacity(GROUP_COMMIT_BATCH_MAX);
    while let Ok(first) = receiver.recv() {
        batch.push(first);
        while batch.len() < GROUP_COMMIT_BATCH_MAX {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        if let Err(error) = sync(&db) {
            crash_stop(&error);
        }
        metrics::record_sync(batch.len(), started.elapsed());
        for completion in batch.drain(..) {
            completion(Ok(()));
        }
    }
}

/// Makes everything written to the journal so far durable.
///
/// # Errors
/// Returns the I/O error of the fsync.
pub fn sync(db: &Database) -> io::Result<()> {
    if faults::fsync_should_fail() {
        return Err(io::Error::other("injected fsync failure"));
    }
    db.persist(PersistMode::SyncData).map_err(io::Error::other)
}

/// Exit code of a node whose fsync failed (sysexits' `EX_SOFTWARE`).
/// Corrupt stored data exits with
/// [`EXIT_CORRUPT_STORAGE`](crate::log_store::corruption::EXIT_CORRUPT_STORAGE) (71).
pub const EXIT_FSYNC_FAILED: i32 = 70;

/// Stops the node after a failed fsync. The data that was acknowledged is
/// durable; what was not synced is unknown, and continuing could
/// acknowledge a write that is not on disk (see PostgreSQL's fsyncgate).
pub fn crash_stop(error: &io::Error) -> ! {
    tracing::error!(%error, "fsync failed: stopping the node (crash-stop)");
    eprintln!("polis: fsync failed ({error}); stopping the node");
    std::process::exit(EXIT_FSYNC_FAILED)
}

/// Counters of the group-commit thread, for metrics.
pub mod metrics {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    static SYNCS: AtomicU64 = AtomicU64::new(0);
    static SYNCED_APPENDS: AtomicU64 = AtomicU64::new(0);

    pub(super) fn record_sync(appends: usize, took: Duration) {
        SYNCS.fetch_add(1, Ordering::Relaxed);
        SYNCED_APPENDS.fetch_add(appends as u64, Ordering::Relaxed);
        crate::latency::FSYNCS.record(took);
    }

    /// Returns (fsyncs, appends made durable by them) since start.
    pub fn totals() -> (u64, u64) {
        (
            SYNCS.load(Ordering::Relaxed),
            SYNCED_APPENDS.load(Ordering::Relaxed),
        )
    }
}

/// Disk fault injection: an injected fsync failure, for tests of
/// crash-stop.
pub mod faults {
    use std::sync::atomic::{AtomicBool, Ordering};

    static FAIL_FSYNC: AtomicBool = AtomicBool::new(false);

    /// Makes every later fsync fail.
    pub fn fail_fsync() {
        FAIL_FSYNC.store(true, Ordering::SeqCst);
    }

    pub(super) fn fsync_should_fail() -> bool {
        FAIL_FSYNC.load(Ordering::SeqCst)
    }
}
