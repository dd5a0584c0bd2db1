//! What eviction knows of a key's use: one 32-bit word per key, as
//! Redis keeps 24 bits in every object, read as an LRU clock or as an
//! LFU counter depending on the node's policy.
//!
//! ```text
//!  LRU:  | clock: now_ms / LRU_CLOCK_MS, wrapping (32 bits)              |
//!  LFU:  | unused (8) | minutes of the last decrement (16) | counter (8) |
//! ```
//!
//! This is not replicated state: reads served by a leader update its own
//! copy (they hold only `&Db`, so the word is a relaxed atomic), writes
//! update it on every replica as they apply, snapshots leave it out. A
//! switch between LRU and LFU reinterprets the words, as in Redis, and
//! they take a while to mean something again.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

/// The LRU clock's unit: ten times finer than Redis's (1 s), so that
/// accesses a few milliseconds apart still order; a signed 32-bit
/// difference of it spans 248 days, past Redis's 194.
pub const LRU_CLOCK_MS: u64 = 10;
/// The counter of a new key (Redis's `LFU_INIT_VAL`), so that a new key
/// is not the first evicted before it had a chance to be used.
pub const LFU_INIT_VAL: u8 = 5;
/// Redis's default `lfu-log-factor`.
pub const LFU_LOG_FACTOR_DEFAULT: u32 = 10;
/// Redis's default `lfu-decay-time`, in minutes.
pub const LFU_DECAY_MINUTES_DEFAULT: u32 = 1;

/// How the access word of every key is kept: the node's policy decides
/// (an LFU policy keeps counters, every other policy the LRU clock).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tracking {
    #[default]
    Lru,
    Lfu {
        /// `lfu-log-factor`: the larger, the more hits a counter needs
        /// to grow.
        log_factor: u32,
        /// `lfu-decay-time`: minutes per step a counter loses while the
        /// key is not used (0: never decays).
        decay_minutes: u32,
    },
}

/// One key's access word.
#[derive(Debug, Default)]
pub struct Access(AtomicU32);

impl Clone for Access {
    fn clone(&self) -> Self {
        Self(AtomicU32::new(self.raw()))
    }
}

/// Access words are no part of a value: two entries equal in everything
/// else are equal.
impl PartialEq for Access {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Access {
    /// Returns the word of a key created at `now_ms`.
    pub fn new(tracking: Tracking, now_ms: u64) -> Self {
        let word = match tracking {
            Tracking::Lru => lru_clock(now_ms),
            Tracking::Lfu { .. } => lfu_word(now_ms, LFU_INIT_VAL),
        };
        Self(AtomicU32::new(word))
    }

    /// Stamps the word as [`Access::new`] would at `now_ms` (a key whose
    /// history this replica does not know).
    pub fn stamp(&self, tracking: Tracking, now_ms: u64) {
        self.0
            .store(Self::new(tracking, now_ms).raw(), Ordering::Relaxed);
    }

    /// Returns the raw word.
    pub fn raw(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// Records a use at `now_ms`: the LRU clock moves to now, or the LFU
    /// counter decays for the time since its last decrement and then
    /// grows with probability `1 / ((counter - 5) * log_factor + 1)`.
    ///
    /// Two readers touching one key at once may lose one increment: a
    /// counter, like Redis's, is an estimate.
    pub fn touch(&self, tracking: Tracking, now_ms: u64) {
        let word = match tracking {
            Tracking::Lru => lru_clock(now_ms),
            Tracking::Lfu {
                log_factor,
                decay_minutes,
            } => {
                let counter = self.frequency(now_ms, decay_minutes);
                lfu_word(now_ms, lfu_log_incr(counter, log_factor, unit_random()))
            }
        };
        self.0.store(word, Ordering::Relaxed);
    }

    /// Returns how long ago, in milliseconds, the LRU clock was last
    /// moved (0 for a clock ahead of `now_ms`: another node's time).
    pub fn idle_ms(&self, now_ms: u64) -> u64 {
        let elapsed = lru_clock(now_ms).wrapping_sub(self.raw()) as i32;
        u64::try_from(elapsed).unwrap_or(0) * LRU_CLOCK_MS
    }

    /// Returns the LFU counter as decayed at `now_ms`, without storing it
    /// (Redis's `LFUDecrAndReturn`).
    pub fn frequency(&self, now_ms: u64, decay_minutes: u32) -> u8 {
        let word = self.raw();
        let counter = (word & 0xFF) as u8;
        let last_minutes = ((word >> 8) & 0xFFFF) as u16;
        lfu_decay(counter, minutes_since(last_minutes, now_ms), decay_minutes)
    }
}

/// Returns the LRU clock at `now_ms`.
fn lru_clock(now_ms: u64) -> u32 {
    (now_ms / LRU_CLOCK_MS) as u32
}

/// Returns Redis's LFU minutes at `now_ms`: 16 bits, wrapping.
fn lfu_minutes(now_ms: u64) -> u16 {
    (now_ms / 60_000) as u16
}

fn lfu_word(now_ms: u64, counter: u8) -> u32 {
    (u32::from(lfu_minutes(now_ms)) << 8) | u32::from(counter)
}

/// Returns the minutes from `last` to `now_ms`, modulo 2^16 (Redis's
/// `LFUTimeElapsed`).
fn minutes_since(last: u16, now_ms: u64) -> u64 {
    u64::from(lfu_minutes(now_ms).wrapping_sub(last))
}

/// Returns `counter` after one hit, given `random` in `[0, 1)`: it grows
/// by one with probability `1 / ((counter - LFU_INIT_VAL) * log_factor +
/// 1)` and stops at 255 (Redis's `LFULogIncr`).
pub fn lfu_log_incr(counter: u8, log_factor: u32, random: f64) -> u8 {
    if counter == u8::MAX {
        return counter;
    }
    let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
    let probability = 1.0 / (base * f64::from(log_factor) + 1.0);
    if random < probability {
        counter + 1
    } else {
        counter
    }
}

/// Returns `counter` less one for every `decay_minutes` in
/// `elapsed_minutes` (0 never decays), at least 0.
pub fn lfu_decay(counter: u8, elapsed_minutes: u64, decay_minutes: u32) -> u8 {
    if decay_minutes == 0 {
        return counter;
    }
    let periods = elapsed_minutes / u64::from(decay_minutes);
    u8::try_from(u64::from(counter).saturating_sub(periods)).unwrap_or(0)
}

thread_local! {
    /// The state of this thread's draws for LFU increments. Access words
    /// are not replicated, so they need not be the same on every replica:
    /// a draw per thread keeps readers from contending on one counter.
    static DRAWS: Cell<u64> = const { Cell::new(0x853C_49E6_748F_EA9B) };
}

/// Returns a number in `[0, 1)` from this thread's splitmix64 sequence.
fn unit_random() -> f64 {
    DRAWS.with(|state| {
        let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(next);
        let mut mixed = next;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^= mixed >> 31;
        (mixed >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
#[path = "access_test.rs"]
mod tests;
