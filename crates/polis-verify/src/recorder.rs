//! Records a history as it happens: one clock, one lock, one order.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::history::{Event, Kind, Op};

/// Events kept at most; a run that would record more stops recording
/// (and says so) rather than grow without bound.
pub const EVENTS_MAX: usize = 4_000_000;

/// Shared by every client and the nemesis of one run. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Returns the nanoseconds since the recorder started.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Appends one event; returns false when the history is full.
    pub fn record(&self, process: u64, kind: Kind, op: Op, error: Option<String>) -> bool {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if events.len() >= EVENTS_MAX {
            return false;
        }
        // Taken under the lock, so event order and time order agree.
        let time_ns = self.now_ns();
        let index = events.len() as u64;
        events.push(Event {
            index,
            time_ns,
            process,
            kind,
            op,
            error,
        });
        true
    }

    /// Returns true when the history holds [`EVENTS_MAX`] events.
    pub fn is_full(&self) -> bool {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
            >= EVENTS_MAX
    }

    /// Returns a copy of the history so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
