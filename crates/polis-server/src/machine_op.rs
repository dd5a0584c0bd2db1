//! The entries of a shard's log: client commands, batches and
//! transactions, and what the leader proposes itself (expiry, eviction,
//! ownership, migrations, change feeds), each with the entry format it needs.

use bytes::Bytes;
use polis_cluster::version::{self, EntryFormat};
use polis_store::Value;
use polis_types::{GroupId, Slot, SlotSet};
use serde::{Deserialize, Serialize};

use crate::migrating::ShippedKey;

/// One client command as it enters the log: the slot its keys hash to
/// (none for a keyless command such as FLUSHALL) and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logged {
    pub slot: Option<Slot>,
    pub args: Vec<Bytes>,
}

/// One log entry of a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// A client's write command.
    Command(Logged),
    /// Pipelined write commands of one connection, applied in order; the
    /// answer is one per command.
    Batch(Vec<Logged>),
    /// Active expiry: delete these keys if they are still expired at the
    /// entry's time.
    Expire(Vec<Bytes>),
    /// The shard owns `slots` from map version `version` on (ignored if
    /// the shard already holds a newer ownership). Keys staged for slots
    /// it now owns become its keys; keys of slots it gave away go.
    Own { version: u64, slots: SlotSet },
    /// Source of migration `migration`: record the keys changed in
    /// `slots` from here on (entry format 2).
    Track { migration: u64, slots: SlotSet },
    /// Source: refuse commands on the tracked slots from here on, until
    /// the switch takes them away (entry format 2).
    Freeze { migration: u64 },
    /// Source: the freeze outlasted its bound; writes apply again (entry
    /// format 2).
    Thaw { migration: u64 },
    /// Source: the migration ended; stop tracking (entry format 2).
    Untrack { migration: u64 },
    /// Target: keys of the migration's `slots`, kept out of sight until
    /// the shard owns them; `reset` drops what was staged before (a new
    /// copy starts) (entry format 2).
    Stage {
        migration: u64,
        slots: SlotSet,
        reset: bool,
        /// The source's log index the keys were read at (at most).
        read_at: u64,
        keys: Vec<ShippedKey>,
    },
    /// Target: the migration ended without a switch; drop what was
    /// staged (entry format 2).
    Unstage { migration: u64 },
    /// Target: later parts of collections too large for one `Stage`,
    /// each added to the key staged from the same read (entry format 3).
    StageParts {
        migration: u64,
        slots: SlotSet,
        /// The source's log index the whole value was read at.
        read_at: u64,
        parts: Vec<(Bytes, Value)>,
    },
    /// A transaction (MULTI ... EXEC) on one slot: its commands applied
    /// together, with nothing in between, or none of them when a watched
    /// key's version changed since WATCH read it (entry format 4).
    Exec(Transaction),
    /// The change feeds, if newer than the shard's (entry format 5).
    Feeds(crate::feed::Feeds),
    /// Feed stream holder: events of shard `source`'s outbox, appended to
    /// their streams unless appended before (entry format 5).
    FeedAppend {
        source: GroupId,
        events: Vec<crate::feed::FeedEvent>,
    },
    /// Source: the outbox's events up to `through` reached their streams
    /// (entry format 5).
    FeedAcked { through: crate::feed::Position },
    /// Eviction: delete these keys, whatever their deadlines, to keep the
    /// leader's node within `maxmemory` (entry format 5).
    Evict(Vec<Bytes>),
    /// Keys read from a backup (`polis restore`): each replaces the key
    /// of its name, in the slots the shard owns (entry format 10).
    Restore(Vec<ShippedKey>),
    /// Later parts of restored collections too large for one `Restore`,
    /// each added to the key of its name (entry format 10).
    RestoreParts(Vec<(Bytes, Value)>),
}

/// The commands of a transaction and the keys it watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The slot of its keys (none when every command is keyless).
    pub slot: Option<Slot>,
    /// Each watched key with the version WATCH read (None: absent).
    pub watched: Vec<(Bytes, Option<u64>)>,
    /// The data commands, in order.
    pub commands: Vec<Vec<Bytes>>,
}

impl Op {
    /// Returns the entry format this entry needs.
    pub fn format(&self) -> EntryFormat {
        match self {
            Self::Command(logged) => command_format(&logged.args),
            Self::Batch(batch) => batch
                .iter()
                .map(|logged| command_format(&logged.args))
                .max()
                .unwrap_or(EntryFormat::V1),
            Self::Expire(_) | Self::Own { .. } => EntryFormat::V1,
            Self::StageParts { .. } => EntryFormat::V3,
            Self::Exec(transaction) => transaction
                .commands
                .iter()
                .map(|args| command_format(args))
                .fold(EntryFormat::V4, EntryFormat::max),
            Self::Feeds(_) | Self::FeedAppend { .. } | Self::FeedAcked { .. } | Self::Evict(_) => {
                EntryFormat::V5
            }
            Self::Restore(_) | Self::RestoreParts(_) => EntryFormat::V10,
            _ => EntryFormat::V2,
        }
    }

    /// Returns the entry's encoding.
    ///
    /// # Errors
    /// Returns an error if encoding fails (it cannot for these types).
    pub fn encode(&self) -> Result<Bytes, postcard::Error> {
        version::encode_entry(self.format(), self)
    }
}

/// Returns the entry format a client command needs: the commands of
/// lists, sets, sorted sets, streams and the newer bitmap commands came
/// with format 4 (a replica of an older binary would answer them with an
/// unknown-command error while the others apply them); LOCK and FENCED,
/// and the queue options of consumer groups (XNACK, XGROUP SETOPTIONS,
/// XGROUP CREATE with ACKWAIT, MAXDELIVERIES, DEADLETTER) with format 5,
/// while Redis's forms of the same commands stay at 4.
fn command_format(args: &[Bytes]) -> EntryFormat {
    let Some(spec) = args.first().and_then(|name| polis_commands::lookup(name)) else {
        return EntryFormat::V1;
    };
    match spec.group {
        "lock" => EntryFormat::V5,
        "stream" if polis_commands::stream::uses_queue_extensions(args) => EntryFormat::V5,
        "list" | "set" | "sorted_set" | "stream" => EntryFormat::V4,
        "bitmap" if !matches!(spec.name, "setbit" | "getbit" | "bitcount" | "bitpos") => {
            EntryFormat::V4
        }
        _ => EntryFormat::V1,
    }
}
