//! The clients' history, in polis-verify's format, stamped with virtual
//! time.

use std::sync::{Arc, Mutex, MutexGuard};

use polis_verify::history::{Event, Kind, Op, Phase, NEMESIS_PROCESS};

use crate::trace::digest_extend;

struct RecorderState {
    start: tokio::time::Instant,
    events: Vec<Event>,
    next_process: u64,
    digest: u64,
}

/// Records the history of a run. Cloning shares it.
#[derive(Clone)]
pub struct Recorder {
    state: Arc<Mutex<RecorderState>>,
}

impl Recorder {
    /// Returns an empty history whose processes after an unknown outcome
    /// are numbered from `first_spare_process`.
    pub fn new(first_spare_process: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(RecorderState {
                start: tokio::time::Instant::now(),
                events: Vec::new(),
                next_process: first_spare_process,
                digest: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RecorderState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends an event now.
    pub fn record(&self, process: u64, kind: Kind, op: Op, error: Option<String>) {
        let mut state = self.lock();
        let event = Event {
            index: state.events.len() as u64,
            time_ns: state.start.elapsed().as_nanos() as u64,
            process,
            kind,
            op,
            error,
        };
        state.digest = digest_extend(state.digest, format!("{event:?}\n").as_bytes());
        state.events.push(event);
    }

    /// Records that a fault started or stopped.
    pub fn nemesis(&self, fault: &str, phase: Phase) {
        let op = Op::Nemesis {
            fault: fault.to_owned(),
            phase,
        };
        self.record(NEMESIS_PROCESS, Kind::Info, op, None);
    }

    /// Returns a process number no client used yet: a client continues
    /// under it after an operation whose outcome is unknown.
    pub fn new_process(&self) -> u64 {
        let mut state = self.lock();
        state.next_process += 1;
        state.next_process - 1
    }

    /// Returns the history so far.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// Returns the digest of the history so far.
    pub fn digest(&self) -> u64 {
        self.lock().digest
    }
}
