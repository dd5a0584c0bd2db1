//! Which trace a leader's proposals belong to, so that the followers that
//! receive their entries join the trace (see [`polis_trace`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use polis_trace::traceparent;

/// Proposals of traced requests a leader may remember at once, to tell
/// its followers' spans which trace the entries they receive belong to.
const TRACED_PROPOSALS_MAX: usize = 256;

/// The trace context of proposals under way on this process's leaders,
/// by a hash of their payload (a follower's entries are read back from the
/// log, so the bytes are equal, not the same).
static TRACED: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
/// How many proposals [`TRACED`] holds: read without the lock.
static TRACED_COUNT: AtomicUsize = AtomicUsize::new(0);

fn traced() -> std::sync::MutexGuard<'static, Vec<(usize, String)>> {
    TRACED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The key of `payload` in [`TRACED`].
fn key(payload: &Bytes) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    payload.hash(&mut hasher);
    hasher.finish() as usize
}

/// Remembers a traced proposal while it is under way.
pub(crate) struct TracedProposal(Option<usize>);

impl TracedProposal {
    /// Remembers `payload` with the trace context of the current span, if
    /// it belongs to a sampled trace and there is room.
    pub(crate) fn note(payload: &Bytes) -> Self {
        if !polis_trace::enabled() {
            return Self(None);
        }
        let Some(parent) = traceparent(&tracing::Span::current()) else {
            return Self(None);
        };
        let mut traced = traced();
        if traced.len() >= TRACED_PROPOSALS_MAX {
            return Self(None);
        }
        let hashed = key(payload);
        traced.push((hashed, parent));
        TRACED_COUNT.store(traced.len(), Ordering::Relaxed);
        Self(Some(hashed))
    }
}

impl Drop for TracedProposal {
    fn drop(&mut self) {
        let Some(hashed) = self.0 else { return };
        let mut traced = traced();
        if let Some(at) = traced.iter().position(|(noted, _)| *noted == hashed) {
            traced.swap_remove(at);
        }
        TRACED_COUNT.store(traced.len(), Ordering::Relaxed);
    }
}

/// Returns the trace context of the first traced proposal among
/// `payloads`, if any.
pub(crate) fn traceparent_of<'a>(payloads: impl Iterator<Item = &'a Bytes>) -> Option<String> {
    if TRACED_COUNT.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let traced = traced();
    payloads.into_iter().find_map(|payload| {
        let hashed = key(payload);
        traced
            .iter()
            .find(|(noted, _)| *noted == hashed)
            .map(|(_, parent)| parent.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_exporter_nothing_is_remembered() {
        let payload = Bytes::from_static(b"set k v");
        let noted = TracedProposal::note(&payload);
        assert!(noted.0.is_none());
        assert_eq!(traceparent_of(std::iter::once(&payload)), None);
    }
}
