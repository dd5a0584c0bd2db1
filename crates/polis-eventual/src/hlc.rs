//! Hybrid logical clocks (Kulkarni et al., 2014): timestamps that follow
//! each node's wall clock, never go backwards, and are always ahead of
//! every timestamp the node has seen, so a write's version is newer than
//! the versions of the writes it could have read.
//!
//! A remote timestamp more than the drift bound ahead of the local wall
//! clock is refused and counted, never adopted: adopting it would drag
//! this node's clock (and every later version it makes) into the future
//! of the skewed node, and a key written there would win every conflict
//! for as long as the skew lasts.
//!
//! The wall clock is a [`Clock`], so tests and the simulation give each
//! node its own (skewed) time. (`uhlc` reads time through one global
//! function, which cannot give nodes in one process different clocks.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use polis_types::NodeId;
use serde::{Deserialize, Serialize};

/// How far ahead of the local clock a remote timestamp may be, by default.
pub const MAX_AHEAD_MS_DEFAULT: u64 = 500;

/// A reading of a hybrid logical clock: wall-clock milliseconds since the
/// Unix epoch, and a counter that orders readings within one millisecond.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp {
    pub physical_ms: u64,
    pub logical: u32,
}

impl Timestamp {
    /// Returns the reading right after this one.
    fn next(self) -> Self {
        match self.logical.checked_add(1) {
            Some(logical) => Self {
                physical_ms: self.physical_ms,
                logical,
            },
            // Four billion readings in one millisecond: borrow the next.
            None => Self {
                physical_ms: self.physical_ms + 1,
                logical: 0,
            },
        }
    }
}

/// A write's version: its timestamp, then the node that made it. Two nodes
/// may read equal timestamps; the node id orders them, so versions are
/// unique and totally ordered.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Version {
    pub time: Timestamp,
    pub node: NodeId,
}

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64)
    }
}

/// A remote timestamp this node refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a timestamp {ahead_ms} ms ahead of this node's clock (at most {max_ahead_ms} ms allowed): check the clocks' synchronization"
)]
pub struct TooFarAhead {
    pub ahead_ms: u64,
    pub max_ahead_ms: u64,
}

/// One node's hybrid logical clock.
pub struct Hlc {
    node: NodeId,
    clock: Arc<dyn Clock>,
    max_ahead_ms: AtomicU64,
    last: Mutex<Timestamp>,
    refused: AtomicU64,
}

impl Hlc {
    /// Returns the clock of `node`, reading wall time from `clock` and
    /// refusing remote timestamps more than `max_ahead_ms` ahead.
    pub fn new(node: NodeId, clock: Arc<dyn Clock>, max_ahead_ms: u64) -> Self {
        Self {
            node,
            clock,
            max_ahead_ms: AtomicU64::new(max_ahead_ms),
            last: Mutex::new(Timestamp::default()),
            refused: AtomicU64::new(0),
        }
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Timestamp> {
        self.last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns the version of a new write: later than every reading and
    /// every accepted remote timestamp before it.
    pub fn now(&self) -> Version {
        let wall = self.clock.now_ms();
        let mut last = self.last();
        let time = if wall > last.physical_ms {
            Timestamp {
                physical_ms: wall,
                logical: 0,
            }
        } else {
            last.next()
        };
        *last = time;
        Version {
            time,
            node: self.node,
        }
    }

    /// Takes in a timestamp a peer sent, so that later versions here are
    /// newer than it.
    ///
    /// # Errors
    /// [`TooFarAhead`] (and counted) when `remote` is more than the bound
    /// ahead of this node's wall clock; the clock is left as it was.
    pub fn observe(&self, remote: Timestamp) -> Result<(), TooFarAhead> {
        let wall = self.clock.now_ms();
        let ahead_ms = remote.physical_ms.saturating_sub(wall);
        let max_ahead_ms = self.max_ahead_ms.load(Ordering::Relaxed);
        if ahead_ms > max_ahead_ms {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(TooFarAhead {
                ahead_ms,
                max_ahead_ms,
            });
        }
        let mut last = self.last();
        if remote > *last {
            *last = remote;
        }
        Ok(())
    }

    /// Takes in a timestamp this node already holds (a version in its own
    /// stored states), whatever the bound: a write made after it must be
    /// newer, even when this node's wall clock went back.
    pub fn witness(&self, held: Timestamp) {
        let mut last = self.last();
        if held > *last {
            *last = held;
        }
    }

    /// Changes the bound on how far ahead a remote timestamp may be.
    pub fn set_max_ahead_ms(&self, max_ahead_ms: u64) {
        self.max_ahead_ms.store(max_ahead_ms, Ordering::Relaxed);
    }

    /// Returns the wall clock's reading, in milliseconds.
    pub fn wall_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Returns how many remote timestamps were refused as too far ahead.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
#[path = "hlc_test.rs"]
mod tests;
