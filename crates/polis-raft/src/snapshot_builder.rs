//! Building a group's snapshot. The state machine encodes it in steps
//! under the state lock ([`StateMachine::snapshot_begin`]) and proposals
//! are applied between the steps, so a large state holds up writes for a
//! step at a time rather than for the whole encoding; the data is then
//! persisted with no lock held.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use openraft::RaftSnapshotBuilder;

use super::{invalid, SmState, SmStore, SnapshotBody, SnapshotStep, StateHandle, StateMachine};
use crate::types::{SnapshotMeta, TypeConfig};

/// Splits a snapshot's data (what openraft holds and sends) into the
/// group's clock and the application's own snapshot.
///
/// # Errors
/// A message when `data` is not a snapshot's data.
pub fn decode_snapshot_body(data: &[u8]) -> Result<(u64, Vec<u8>), String> {
    let body: SnapshotBody = postcard::from_bytes(data).map_err(|error| error.to_string())?;
    Ok((body.time_ms, body.app))
}

/// How many times a build begins again when the state is replaced under
/// it (a snapshot installed meanwhile) before it encodes the state at once.
const ATTEMPTS_MAX: usize = 3;

/// Items per step of a store opened without pacing.
const STEP_ITEMS_UNPACED: usize = 2048;

/// How long the state lock was held for a build: in all, and at most at
/// once.
#[derive(Default)]
struct Held {
    total: Duration,
    longest: Duration,
}

impl Held {
    fn add(&mut self, since: Instant) {
        let held = since.elapsed();
        self.total += held;
        self.longest = self.longest.max(held);
    }
}

/// Drops what an unfinished snapshot keeps when its build stops early.
struct AbandonOnDrop<'a, S: StateMachine>(Option<&'a StateHandle<S>>);

impl<S: StateMachine> Drop for AbandonOnDrop<'_, S> {
    fn drop(&mut self) {
        if let Some(handle) = self.0 {
            handle.write().app.snapshot_abandon();
        }
    }
}

impl<S: StateMachine> SmStore<S> {
    /// Notes where the log stood when a snapshot of `state` began (for
    /// pacing) and returns the snapshot's Raft metadata.
    fn begin(&self, state: &SmState<S>) -> SnapshotMeta {
        self.growth
            .at_snapshot
            .store(state.applied_bytes, Ordering::SeqCst);
        SnapshotMeta {
            last_log_id: state.last_applied,
            last_membership: state.membership.clone(),
        }
    }

    /// Encodes the state as it is now, in steps; `None` when it was
    /// replaced before the last step.
    async fn encode_in_steps(&self, held: &mut Held) -> Option<(SnapshotMeta, SnapshotBody)> {
        let since = Instant::now();
        let (meta, time_ms, mut app) = {
            let mut state = self.handle.write();
            let meta = self.begin(&state);
            (meta, state.time_ms, state.app.snapshot_begin())
        };
        held.add(since);
        let mut abandon = AbandonOnDrop(Some(&self.handle));
        loop {
            let since = Instant::now();
            let items = self
                .pacing
                .map_or(STEP_ITEMS_UNPACED, |pacing| pacing.step_items);
            let step = self.handle.write().app.snapshot_step(&mut app, items);
            held.add(since);
            match step {
                SnapshotStep::More => tokio::task::yield_now().await,
                SnapshotStep::Done => {
                    abandon.0 = None;
                    return Some((meta, SnapshotBody { time_ms, app }));
                }
                SnapshotStep::Lost => {
                    abandon.0 = None;
                    return None;
                }
            }
        }
    }

    /// Encodes the state at once, under the lock.
    fn encode_at_once(&self, held: &mut Held) -> (SnapshotMeta, SnapshotBody) {
        let since = Instant::now();
        let state = self.handle.read();
        let meta = self.begin(&state);
        let body = SnapshotBody {
            time_ms: state.time_ms,
            app: state.app.snapshot(),
        };
        drop(state);
        held.add(since);
        (meta, body)
    }
}

impl<S: StateMachine> RaftSnapshotBuilder<TypeConfig> for SmStore<S> {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(
        &mut self,
    ) -> Result<openraft::alias::SnapshotOf<TypeConfig, Vec<u8>>, io::Error> {
        let started = Instant::now();
        let mut held = Held::default();
        let mut encoded = None;
        for _ in 0..ATTEMPTS_MAX {
            encoded = self.encode_in_steps(&mut held).await;
            if encoded.is_some() {
                break;
            }
        }
        let (meta, body) = match encoded {
            Some(encoded) => encoded,
            None => self.encode_at_once(&mut held),
        };
        let data = postcard::to_stdvec(&body).map_err(invalid)?;
        drop(body);
        self.persist(&meta, &data).await?;
        self.growth
            .snapshot_bytes
            .store(data.len() as u64, Ordering::SeqCst);
        self.growth.requested.store(false, Ordering::SeqCst);
        tracing::info!(
            last_log_id = ?meta.last_log_id,
            bytes = data.len(),
            locked_ms = held.total.as_millis() as u64,
            locked_longest_ms = held.longest.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "snapshot built"
        );
        Ok(openraft::alias::SnapshotOf::<TypeConfig, Vec<u8>> {
            meta,
            snapshot: data,
        })
    }
}
