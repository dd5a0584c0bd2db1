//! Key events: what a write did to which key, as Redis's keyspace
//! notifications name it (`set`, `lpush`, `del`, `expired`, ...).
//!
//! The keyspace records an event only for the classes its mask selects
//! (none by default, so recording costs nothing until someone listens).
//! Commands call [`crate::Db::notify`] after they change a key; the
//! keyspace itself records `new` (a key created), `expired` (a key deleted
//! at its deadline) and `del` for a collection a command left empty, which
//! comes after the command's own events, as in Redis.
//!
//! ```text
//!  command ──> Db::notify ──┐
//!  Db (new, expired) ───────┼──> events (in apply order) ──> take_events
//!  emptied collections ─────┘ at end_command (as `del`)
//! ```

use bytes::Bytes;

/// The classes of events, one bit each: the letters of Redis's
/// `notify-keyspace-events`.
pub mod class {
    /// `g`: DEL, EXPIRE, RENAME, ... (commands of no one type).
    pub const GENERIC: u16 = 1 << 0;
    /// `$`: string commands.
    pub const STRING: u16 = 1 << 1;
    /// `l`: list commands.
    pub const LIST: u16 = 1 << 2;
    /// `s`: set commands.
    pub const SET: u16 = 1 << 3;
    /// `h`: hash commands.
    pub const HASH: u16 = 1 << 4;
    /// `z`: sorted set commands.
    pub const ZSET: u16 = 1 << 5;
    /// `x`: a key deleted because its deadline passed.
    pub const EXPIRED: u16 = 1 << 6;
    /// `e`: a key deleted to keep within maxmemory.
    pub const EVICTED: u16 = 1 << 7;
    /// `t`: stream commands.
    pub const STREAM: u16 = 1 << 8;
    /// `m`: a read of a key that does not exist.
    pub const KEY_MISS: u16 = 1 << 9;
    /// `d`: module types (polis has none; accepted for compatibility).
    pub const MODULE: u16 = 1 << 10;
    /// `n`: a key created.
    pub const NEW: u16 = 1 << 11;
    /// `A`: every class but `m` and `n`.
    pub const ALL: u16 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// One event: class, Redis's name for it, and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    pub class: u16,
    pub event: &'static str,
    pub key: Bytes,
}

/// The events recorded while writes apply (not replicated state).
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorder {
    /// The classes recorded; 0 records nothing.
    pub(crate) mask: u16,
    pub(crate) events: Vec<KeyEvent>,
    /// Collections the current command left empty (deleted): their `del`
    /// follows the command's own events.
    pub(crate) emptied: Vec<Bytes>,
}

impl Recorder {
    pub(crate) fn wants(&self, class: u16) -> bool {
        self.mask & class != 0
    }

    pub(crate) fn record(&mut self, class: u16, event: &'static str, key: &[u8]) {
        if self.wants(class) {
            self.events.push(KeyEvent {
                class,
                event,
                key: Bytes::copy_from_slice(key),
            });
        }
    }

    pub(crate) fn end_command(&mut self) {
        for key in std::mem::take(&mut self.emptied) {
            self.events.push(KeyEvent {
                class: class::GENERIC,
                event: "del",
                key,
            });
        }
    }
}
