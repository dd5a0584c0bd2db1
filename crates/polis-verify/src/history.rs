//! The history of a run: every operation a client invoked and how it
//! ended, in the order the recorder saw them, Jepsen-style.
//!
//! A client operation is two events with the same `process`: an
//! `invoke`, then exactly one of `ok` (it happened, with what it saw),
//! `fail` (it certainly did not happen) or `info` (unknown: it may have
//! happened, at any time after its invocation, or never). A process has at
//! most one operation open; after an `info` the client continues as a new
//! process. The nemesis writes `info` events with process
//! [`NEMESIS_PROCESS`] when a fault starts and stops.
//!
//! On disk a history is JSON lines, one [`Event`] a line.

use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

/// The process number the nemesis writes its events under.
pub const NEMESIS_PROCESS: u64 = u64::MAX;

/// How an event ends (or starts) an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// What an operation does, and in a completion, what it saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Op {
    /// Read a register. In an `ok` event `value` is what the read saw
    /// (`None`: the key did not exist); in an `invoke` it is `None`.
    Read { key: String, value: Option<u64> },
    /// Write `value` to a register.
    Write { key: String, value: u64 },
    /// Set the register to `to` if it holds `from`. Its `ok` event means
    /// the swap happened; a `fail` means the register did not hold `from`.
    Cas { key: String, from: u64, to: u64 },
    /// Add a unique element to the set.
    Add { element: u64 },
    /// Read the whole set, after the cluster healed. In an `ok` event,
    /// every element found; in an `invoke`, `None`.
    ReadAll { elements: Option<Vec<u64>> },
    /// XADD of a unique payload to the queue stream. In an `ok` event
    /// `id` is the entry id the stream gave it; in an `invoke`, `None`.
    Xadd { payload: u64, id: Option<String> },
    /// XREADGROUP by `consumer` from `from` (`>` for new entries, `0` for
    /// the consumer's pending ones). In an `ok` event, the entries it
    /// delivered; in an `invoke`, `None`.
    Xreadgroup {
        consumer: String,
        from: String,
        entries: Option<Vec<Entry>>,
    },
    /// XAUTOCLAIM of idle pending entries by `consumer`; in an `ok` event,
    /// the entries it claimed (and so delivered).
    Xautoclaim {
        consumer: String,
        entries: Option<Vec<Entry>>,
    },
    /// XACK of `ids` by the group.
    Xack { ids: Vec<String> },
    /// XNACK of `ids` (polis's queue extension): a consumer gives them
    /// back for the next reader.
    Xnack { ids: Vec<String> },
    /// XPENDING summary: in an `ok` event, how many entries were pending.
    Xpending { count: Option<u64> },
    /// XRANGE of the whole stream after healing; in an `ok` event, every
    /// entry.
    Xrange { entries: Option<Vec<Entry>> },
    /// XRANGE of the whole dead-letter stream after healing; in an `ok`
    /// event, every entry, each as the entry it came from (its
    /// `source-id` and payload).
    XrangeDead { entries: Option<Vec<Entry>> },
    /// RPUSH of a unique element to `list`.
    Rpush { list: String, element: u64 },
    /// BLMOVE (`list` to the processing list) or BLPOP of `list`: in an
    /// `ok` event, the element popped (`None`: the wait timed out).
    Pop { list: String, element: Option<u64> },
    /// LREM of a finished element from the processing list.
    Lrem { element: u64 },
    /// LRANGE of a whole list after healing; in an `ok` event, its
    /// elements.
    Lrange {
        list: String,
        elements: Option<Vec<u64>>,
    },
    /// A transaction of list appends and reads (MULTI/EXEC). In an `ok`
    /// event every read carries what it saw; in an `invoke`, and in a
    /// `fail` or `info`, reads carry `None`.
    Txn { mops: Vec<MicroOp> },
    /// LOCK ACQUIRE of `lock` by `owner`: in an `ok` event, the fencing
    /// token granted (`None`: another owner's lease ran); in an
    /// `invoke`, `None`.
    LockAcquire {
        lock: String,
        owner: String,
        token: Option<u64>,
    },
    /// FENCED RPUSH of a unique `element` to the list `lock` guards, with
    /// `token`; a `fail` is a refusal (nothing applied).
    FencedPush {
        lock: String,
        token: u64,
        element: u64,
    },
    /// LOCK REFRESH of `lock` with `token`.
    LockRefresh { lock: String, token: u64 },
    /// LOCK RELEASE of `lock` with `token`.
    LockRelease { lock: String, token: u64 },
    /// APPEND of a unique `token` to `key`, a string under the change
    /// feed's prefix. In an `ok` event `length` is the length APPEND
    /// answered; in an `invoke`, `None`.
    FeedAppend {
        key: String,
        token: String,
        length: Option<u64>,
    },
    /// GET of a fed key after healing. In an `ok` event, its value
    /// (`None`: the key does not exist); in an `invoke`, `None`.
    FeedGet { key: String, value: Option<String> },
    /// XRANGE of the whole feed stream after healing, page by page. In
    /// an `ok` event, every entry in stream order; in an `invoke`, `None`.
    FeedRead {
        stream: String,
        entries: Option<Vec<FeedEntry>>,
    },
    /// SET of a unique `value` on an eventual key: a register, or a key
    /// its client deletes later. In a completion `node` is the node that
    /// answered (for `fail` and `info`: the node it went to first); in an
    /// `invoke`, `None`; so for every write of the eventual workload.
    EventualSet {
        key: String,
        value: u64,
        node: Option<String>,
    },
    /// INCRBY of a positive `delta` on an eventual counter. In an `ok`
    /// event `value` is what INCRBY answered; in an `invoke`, `None`.
    EventualIncrby {
        key: String,
        delta: u64,
        value: Option<i64>,
        node: Option<String>,
    },
    /// SADD of a unique `element` to an eventual set.
    EventualSadd {
        key: String,
        element: u64,
        node: Option<String>,
    },
    /// SREM of `element` from an eventual set. In an `ok` event
    /// `removed` is SREM's reply: 1 when the coordinating node held the
    /// add and removed it, 0 when it had not received the add yet.
    EventualSrem {
        key: String,
        element: u64,
        removed: Option<u64>,
        node: Option<String>,
    },
    /// DEL of an eventual key. In an `ok` event `removed` is DEL's reply:
    /// 1 when the coordinating node held a value and deleted it.
    EventualDel {
        key: String,
        removed: Option<u64>,
        node: Option<String>,
    },
    /// After healing, waiting until every node's `GET /eventual` shows
    /// the same keys and digest. In an `ok` event, the keys and digest
    /// they agreed on; a `fail` did not converge in time.
    EventualConverge {
        keys: Option<u64>,
        digest: Option<String>,
    },
    /// GET of an eventual string (register, counter or deleted key) from
    /// the node at `node` alone, after healing: before the nodes
    /// converged, or once they had (`converged`). In an `ok` event its
    /// value (`None`: nil); in an `invoke`, `None`.
    EventualGet {
        key: String,
        node: String,
        converged: bool,
        value: Option<String>,
    },
    /// SMEMBERS of an eventual set from one node, as
    /// [`Op::EventualGet`]. In an `ok` event, the members; in an
    /// `invoke`, `None`.
    EventualMembers {
        key: String,
        node: String,
        converged: bool,
        members: Option<Vec<String>>,
    },
    /// A fault the nemesis started or stopped, e.g. `partition 1 | 2,3`.
    Nemesis { fault: String, phase: Phase },
}

/// A stream entry as the queue workload sees it: its id and the payload
/// of its one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub payload: u64,
}

/// One entry of a change feed stream: the key event it carries and the
/// source shard's log position (`shard`, `index`, `seq`), which is the
/// same when an event is appended twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEntry {
    /// The stream entry's id.
    pub id: String,
    pub key: String,
    /// The Redis keyspace event name: `append`, `new`, `del`, ...
    pub event: String,
    pub shard: u64,
    pub index: u64,
    pub seq: u64,
    /// The string value the write left, when the entry carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl FeedEntry {
    /// Returns where the event sits in its source shard's log.
    pub fn position(&self) -> (u64, u64, u64) {
        (self.shard, self.index, self.seq)
    }
}

/// One step of a [`Op::Txn`], on a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum MicroOp {
    /// Append a unique `value` to the list at `key` (RPUSH).
    Append { key: String, value: u64 },
    /// Read the whole list at `key` (LRANGE 0 -1); `None` until known.
    /// An absent key reads as the empty list.
    Read {
        key: String,
        value: Option<Vec<u64>>,
    },
}

/// Whether a nemesis event starts or ends a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Start,
    Stop,
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history, from 0.
    pub index: u64,
    /// Nanoseconds since the run started, from one monotonic clock.
    pub time_ns: u64,
    pub process: u64,
    #[serde(rename = "type")]
    pub kind: Kind,
    #[serde(flatten)]
    pub op: Op,
    /// For `fail` and `info`: the error the client saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Writes `events` as JSON lines.
///
/// # Errors
/// Returns an error if writing fails.
pub fn write_jsonl<'a>(
    out: &mut impl Write,
    events: impl IntoIterator<Item = &'a Event>,
) -> io::Result<()> {
    for event in events {
        serde_json::to_writer(&mut *out, event)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Reads a history written by [`write_jsonl`].
///
/// # Errors
/// Returns an error naming the line that is not an event.
pub fn read_jsonl(input: impl BufRead) -> io::Result<Vec<Event>> {
    let mut events = Vec::new();
    for (number, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(&line).map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("history line {}: {error}", number + 1),
            )
        })?;
        events.push(event);
    }
    Ok(events)
}
