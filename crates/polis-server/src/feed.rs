//! The change feed: key events of chosen key prefixes, appended to
//! streams that consumers read with XREADGROUP, in log order, each with
//! its log position. Durable: nothing is lost on failover, and nothing is
//! there for a write that did not commit.
//!
//! ```text
//!  shard A apply ──> key events of feed prefixes ──> A's outbox (replicated, in snapshots)
//!                                                       │ A's leader, in order
//!                                                       ▼
//!                        FeedAppend{source A, events} on the feed stream's shard
//!                          (applied once: per stream and source, a mark of the
//!                           last position appended skips what came before)
//!                                                       │ committed
//!                                                       ▼
//!                        FeedAcked{through} on A: the outbox lets them go
//! ```
//!
//! An event is recorded at apply on every replica of the source shard, so
//! it exists exactly when its write committed; the outbox survives a
//! leader change, and the new leader sends what was not acknowledged (the
//! mark on the stream's shard drops what already arrived). The feeds
//! themselves ([`Feeds`]) are replicated state of every shard, set by an
//! `Op::Feeds` entry; a node's shards adopt the newest version any of them
//! holds (see `crate::feed_forward`).

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use polis_store::KeyEvent;
use serde::{Deserialize, Serialize};

/// Events an outbox holds at most: writes to feed prefixes are refused
/// with `TRYAGAIN` beyond it, until the leader forwarded some.
pub const OUTBOX_EVENTS_MAX: usize = 100_000;

/// A string value up to this size travels with its key's event.
pub const VALUE_BYTES_MAX: usize = 64 * 1024;

/// One feed: the keys starting with `prefix` go to stream `stream`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Feed {
    pub prefix: Bytes,
    pub stream: Bytes,
}

/// The feeds of the cluster, versioned: a shard takes a newer version
/// only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feeds {
    pub version: u64,
    pub feeds: Vec<Feed>,
}

impl Feeds {
    /// Returns true when `key` is a feed stream (never fed itself).
    pub fn is_stream(&self, key: &[u8]) -> bool {
        self.feeds.iter().any(|feed| feed.stream == key)
    }

    /// Returns the streams `key`'s events go to.
    pub fn streams_of<'a>(&'a self, key: &'a [u8]) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.feeds
            .iter()
            .filter(move |feed| key.starts_with(&feed.prefix) && !self.is_stream(key))
            .map(|feed| &feed.stream)
    }

    /// Parses `CONFIG SET changefeeds "<prefix> <stream> ..."`.
    ///
    /// # Errors
    /// A message when the words do not pair up or a word is empty.
    pub fn parse(text: &str, version: u64) -> Result<Feeds, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if !words.len().is_multiple_of(2) {
            return Err("changefeeds takes pairs of <prefix> <stream>".into());
        }
        let mut feeds: Vec<Feed> = words
            .chunks(2)
            .map(|pair| Feed {
                prefix: Bytes::copy_from_slice(pair[0].as_bytes()),
                stream: Bytes::copy_from_slice(pair[1].as_bytes()),
            })
            .collect();
        feeds.sort();
        feeds.dedup();
        Ok(Feeds { version, feeds })
    }

    /// Prints the feeds as CONFIG GET shows them.
    pub fn to_text(&self) -> String {
        self.feeds
            .iter()
            .map(|feed| {
                format!(
                    "{} {}",
                    String::from_utf8_lossy(&feed.prefix),
                    String::from_utf8_lossy(&feed.stream)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Where an event sits in its shard's log: the entry's index, and its
/// place among that entry's events.
pub type Position = (u64, u32);

/// One event waiting to reach its feed stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEvent {
    pub stream: Bytes,
    pub key: Bytes,
    pub event: String,
    pub position: Position,
    /// The key's value after the command, when it is a string of at most
    /// [`VALUE_BYTES_MAX`] bytes.
    pub value: Option<Bytes>,
}

impl FeedEvent {
    fn bytes(&self) -> usize {
        let value = self.value.as_ref().map_or(0, Bytes::len);
        self.stream.len() + self.key.len() + self.event.len() + value + 32
    }

    /// The fields of the stream entry it becomes.
    pub fn fields(&self, source: u64) -> Vec<Bytes> {
        let mut fields = vec![
            Bytes::from_static(b"key"),
            self.key.clone(),
            Bytes::from_static(b"event"),
            Bytes::from(self.event.clone()),
            Bytes::from_static(b"shard"),
            Bytes::from(source.to_string()),
            Bytes::from_static(b"index"),
            Bytes::from(self.position.0.to_string()),
            Bytes::from_static(b"seq"),
            Bytes::from(self.position.1.to_string()),
        ];
        if let Some(value) = &self.value {
            fields.extend([Bytes::from_static(b"value"), value.clone()]);
        }
        fields
    }
}

/// A shard's feed state: its feeds, the events not yet in their streams,
/// and, for the feed streams it holds, what each source appended last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedState {
    pub feeds: Feeds,
    pub outbox: VecDeque<FeedEvent>,
    /// (stream, source shard) -> the last position appended from it.
    pub marks: BTreeMap<(Bytes, u64), Position>,
    /// The position the next event of the entry being applied takes
    /// (entries are never split by a snapshot: not saved).
    #[serde(skip)]
    next: Position,
}

impl FeedState {
    /// Returns true when the outbox is full: writes to feed prefixes wait.
    pub fn is_full(&self) -> bool {
        self.outbox.len() >= OUTBOX_EVENTS_MAX
    }

    /// Returns the bytes the outbox holds (estimated).
    pub fn outbox_bytes(&self) -> usize {
        self.outbox.iter().map(FeedEvent::bytes).sum()
    }

    /// Adds the events (of the entry at `index`) whose keys a feed takes,
    /// in order, each with the value `value_of` gives its key; called once
    /// or more per entry (once per command of a batch).
    pub fn record(
        &mut self,
        index: u64,
        events: &[KeyEvent],
        value_of: impl Fn(&[u8]) -> Option<Bytes>,
    ) {
        if self.feeds.feeds.is_empty() {
            return;
        }
        if self.next.0 != index {
            self.next = (index, 0);
        }
        for event in events {
            let mut value = None;
            for stream in self.feeds.streams_of(&event.key) {
                if value.is_none() {
                    value = Some(value_of(&event.key));
                }
                self.outbox.push_back(FeedEvent {
                    stream: stream.clone(),
                    key: event.key.clone(),
                    event: event.event.to_owned(),
                    position: self.next,
                    value: value.clone().flatten(),
                });
                self.next.1 += 1;
            }
        }
    }

    /// Lets go of the events up to `through`, which reached their
    /// streams.
    pub fn acked(&mut self, through: Position) {
        while self
            .outbox
            .front()
            .is_some_and(|event| event.position <= through)
        {
            self.outbox.pop_front();
        }
    }

    /// Returns the events of `events` not appended yet from `source`, and
    /// moves the marks past them.
    pub fn unseen(&mut self, source: u64, events: Vec<FeedEvent>) -> Vec<FeedEvent> {
        events
            .into_iter()
            .filter(|event| {
                let mark = self
                    .marks
                    .entry((event.stream.clone(), source))
                    .or_default();
                if event.position <= *mark {
                    return false;
                }
                *mark = event.position;
                true
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "feed_test.rs"]
mod tests;
