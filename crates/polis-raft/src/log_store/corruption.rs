//! Stored data that failed verification, and what the node does about it:
//! refuse to start, or stop at once when found while running.
//!
//! Corruption is node-fatal. A replica that served a damaged log could
//! vote with a log it does not have, or apply an entry nobody proposed;
//! a stopped replica costs the group one member, and its peers still hold
//! every committed entry. The operator replaces the data directory (the
//! node then catches up from its peers) or the disk.

use std::fmt;
use std::path::PathBuf;

use polis_types::GroupId;

use super::record::RecordError;

/// Exit code of a node that found corrupt stored data (sysexits'
/// `EX_OSERR`). 70 is taken by a failed fsync (see `group_commit`).
pub const EXIT_CORRUPT_STORAGE: i32 = 71;

/// What a stored record is, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// The log entry at this index.
    Entry(u64),
    /// The metadata value with this name (`vote`, `committed`, `purged`).
    Meta(String),
}

impl fmt::Display for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stored::Entry(index) => write!(f, "log entry at index {index}"),
            Stored::Meta(name) => write!(f, "metadata value {name:?}"),
        }
    }
}

/// Stored data that failed verification.
#[derive(Debug, thiserror::Error)]
pub enum Corruption {
    /// fjall's journal is damaged where a crash cannot explain it.
    #[error(
        "journal file {} is damaged at byte {offset} ({damage}){holding}; {why}",
        file.display()
    )]
    Journal {
        file: PathBuf,
        offset: u64,
        damage: String,
        /// What the damaged batch holds, when it could be read, e.g.
        /// ", in a batch holding log entry at index 57 of group 1".
        holding: String,
        why: &'static str,
    },
    /// A record's own checksum or contents do not check out.
    #[error("{stored} of group {group} in {} failed verification: {problem}", dir.display())]
    Record {
        dir: PathBuf,
        group: GroupId,
        stored: Stored,
        problem: RecordProblem,
    },
    /// A key of the log engine has no valid shape.
    #[error("a key of the {keyspace} keyspace in {} is malformed: {key:02x?}", dir.display())]
    Key {
        dir: PathBuf,
        keyspace: &'static str,
        key: Vec<u8>,
    },
    /// Entries are missing from the middle of a group's log.
    #[error(
        "the log of group {group} in {} jumps from index {previous} to {next}: entries are missing",
        dir.display()
    )]
    Gap {
        dir: PathBuf,
        group: GroupId,
        previous: u64,
        next: u64,
    },
    /// A group's snapshot file fails its checksum or does not decode.
    #[error("snapshot file {} failed verification: {problem}", file.display())]
    Snapshot {
        file: PathBuf,
        problem: RecordProblem,
    },
    /// A small file of the node fails its checksum or does not decode.
    #[error("file {} failed verification: {problem}", file.display())]
    File {
        file: PathBuf,
        problem: RecordProblem,
    },
    /// A stored eventual key's record fails its checksum.
    #[error("eventual key {key:02x?} in {} failed verification: {problem}", dir.display())]
    Eventual {
        dir: PathBuf,
        key: Vec<u8>,
        problem: RecordProblem,
    },
    /// fjall or lsm-tree found damage (a block checksum, a malformed
    /// journal batch, an unreadable table).
    #[error("the log engine in {} found damaged data: {detail}", dir.display())]
    Engine { dir: PathBuf, detail: String },
}

/// What is wrong with one record.
#[derive(Debug, thiserror::Error)]
pub enum RecordProblem {
    #[error(transparent)]
    Checksum(#[from] RecordError),
    #[error("its payload does not decode: {0}")]
    Decode(String),
    #[error("it is stored under index {key_index} but holds index {entry_index}")]
    MisplacedEntry { key_index: u64, entry_index: u64 },
}

/// Stops the process before it serves anything: stored data failed
/// verification at start-up.
pub fn refuse_to_start(corruption: &Corruption) -> ! {
    if crate::runtime::is_simulated() {
        panic!("refusing to start: stored data is corrupt: {corruption}");
    }
    tracing::error!(%corruption, "stored data is corrupt: refusing to start");
    eprintln!(
        "polis: refusing to start: stored data is corrupt: {corruption}. \
         Replace this node's data directory (it catches up from its peers) \
         or its disk; exit code {EXIT_CORRUPT_STORAGE}"
    );
    std::process::exit(EXIT_CORRUPT_STORAGE)
}

/// Stops the running node at once (crash-stop): stored data failed
/// verification on a read.
pub fn crash_stop(corruption: &Corruption) -> ! {
    if crate::runtime::is_simulated() {
        panic!("stopping: stored data is corrupt: {corruption}");
    }
    tracing::error!(%corruption, "stored data is corrupt: stopping the node (crash-stop)");
    eprintln!(
        "polis: stopping: stored data is corrupt: {corruption}. \
         Replace this node's data directory (it catches up from its peers) \
         or its disk; exit code {EXIT_CORRUPT_STORAGE}"
    );
    std::process::exit(EXIT_CORRUPT_STORAGE)
}

/// Returns whether `error` from fjall means damaged data, as opposed to
/// an I/O failure, a held lock or misuse.
pub fn is_damage(error: &fjall::Error) -> bool {
    match error {
        fjall::Error::Storage(fjall::LsmError::Io(_)) => false,
        fjall::Error::Storage(_)
        | fjall::Error::JournalRecovery(_)
        | fjall::Error::Decompress(_)
        | fjall::Error::InvalidTrailer
        | fjall::Error::InvalidTag(_)
        | fjall::Error::Unrecoverable => true,
        _ => false,
    }
}
