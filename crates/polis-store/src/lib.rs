//! polis-store owns the in-memory data of one shard: the keyspace ([`Db`]),
//! the values keys hold ([`Value`]), absolute expiry deadlines, the
//! replicated counters INFO reports, locks and their fencing tokens
//! ([`lock`], [`fencing`]), and snapshots of all of it.
//!
//! ```text
//!   polis-commands ──> Db ──> HashOrderedMap<Entry>   keys in (hash, key) order
//!                        │        Entry { Value, deadline, version, access }
//!                        └──> expiry index            (deadline, key), earliest first
//!   the node's evictor ──> Evictor: samples ──> pool ──> victims (read only)
//! ```
//!
//! Everything replicated here is deterministic: time comes in as
//! `now_ms`, iteration follows a fixed 64-bit key hash, and nothing is
//! random, so every replica applying the same log holds byte-identical
//! state. The exception is each key's access word (its LRU clock or LFU
//! counter, see [`access`]): a replica's own record of use, which
//! snapshots leave out and only the evictor reads.
//!
//! Must not depend on networking, on Raft, or on RESP: the command layer
//! turns requests into calls on [`Db`] and values into replies.

pub mod access;
pub mod db;
pub mod entry;
pub mod events;
pub mod evict;
pub mod fencing;
pub mod hash;
pub mod list;
pub mod lock;
pub mod memory;
pub mod namespace_usage;
pub mod ordered;
pub mod pinned;
pub mod set;
pub mod snapshot;
pub mod stream;
pub mod value;
pub mod zset;

pub use access::{Access, Tracking};
pub use db::{detached, Db, DbStats, Entry};
pub use events::{class as event_class, KeyEvent};
pub use evict::{tracking_of, Choice, EvictionPolicy, Evictor, Victim};
pub use fencing::GrantError;
pub use hash::{FieldsPage, HashValue};
pub use list::ListValue;
pub use lock::{Fence, Holder, LockValue};
pub use namespace_usage::NamespaceTable;
pub use ordered::{key_hash, HashOrderedMap, ScanPage, StoredKey};
pub use set::SetValue;
pub use snapshot::{SnapshotError, SNAPSHOT_FORMAT_VERSION};
pub use stream::{Consumer, ConsumerGroup, PendingEntry, StreamId, StreamValue};
pub use value::{string_encoding, Aggregate, EncodingLimits, Value};
pub use zset::{Score, ZSetValue};
