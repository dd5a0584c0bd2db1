//! The change feed's part of a shard's state machine (see
//! [`crate::feed`]): recording events into the outbox at apply, refusing
//! writes to feed prefixes while the outbox is full, and the feed entries.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_types::GroupId;

use crate::feed::{FeedEvent, Feeds, Position, VALUE_BYTES_MAX};
use crate::machine::{Applied, DataMachine};

impl DataMachine {
    /// Returns the refusal of a write to a feed prefix while the outbox is
    /// full, if `args` is one.
    pub(crate) fn feed_refusal(&self, args: &[Bytes]) -> Option<Applied> {
        if !self.feed.is_full() {
            return None;
        }
        let keys = args
            .first()
            .and_then(|name| polis_commands::spec::lookup(name))
            .map(|spec| polis_commands::spec::command_keys(spec, args))
            .unwrap_or_default();
        let fed = keys
            .iter()
            .any(|key| self.feed.feeds.streams_of(key).next().is_some());
        fed.then(|| {
            Applied::Reply(Reply::Error(ReplyError::TryAgain(
                "the change feed's backlog is full: retry once the feed streams take events again"
                    .into(),
            )))
        })
    }

    /// Takes the key events the entry at `index` recorded: the feed's into
    /// the outbox; all of them to the notification sink.
    pub(crate) fn take_events(&mut self, index: u64, time_ms: u64) {
        if self.db.events_mask() == 0 {
            return;
        }
        let events = self.db.take_events();
        if events.is_empty() {
            return;
        }
        let db = &self.db;
        self.feed
            .record(index, &events, |key| match db.get(key, time_ms) {
                Some(polis_store::Value::String(value)) if value.len() <= VALUE_BYTES_MAX => {
                    Some(value.clone())
                }
                _ => None,
            });
        if let Some(sink) = &self.events {
            sink.emit(self.group(), self.entry_term, events);
        }
    }

    /// The classes the keyspace records: the notifications' and, with a
    /// feed, every class.
    pub(crate) fn refresh_events_mask(&mut self) {
        let feed = if self.feed.feeds.feeds.is_empty() {
            0
        } else {
            polis_store::event_class::ALL | polis_store::event_class::NEW
        };
        self.db.set_events_mask(self.notify_mask | feed);
    }

    /// Sets the classes the node's notifications want.
    pub fn set_notify_mask(&mut self, mask: u16) {
        self.notify_mask = mask;
        self.refresh_events_mask();
    }

    /// `Op::Feeds`: takes `feeds` if newer than the shard's.
    pub(crate) fn set_feeds(&mut self, feeds: Feeds) -> Applied {
        if feeds.version > self.feed.feeds.version {
            self.feed.feeds = feeds;
            self.refresh_events_mask();
        }
        Applied::Reply(Reply::Integer(self.feed.feeds.version as i64))
    }

    /// `Op::FeedAppend` at log index `index`: appends to their streams the
    /// events of `source` not appended before. Refused whole when the
    /// shard does not own a stream's slot (its owner takes them). A stream
    /// whose slot is being copied away is noted as changed, like any
    /// write, so that the copy ships its new entries.
    pub(crate) fn feed_append(
        &mut self,
        source: GroupId,
        events: Vec<FeedEvent>,
        index: u64,
        time_ms: u64,
    ) -> Applied {
        for event in &events {
            let slot = polis_types::key_hash_slot(&event.stream);
            if let Some(refused) = self.refusal(Some(slot)) {
                return refused;
            }
        }
        let fresh = self.feed.unseen(source.0, events);
        let mut appended = 0;
        for event in fresh {
            let mut args = vec![
                Bytes::from_static(b"XADD"),
                event.stream.clone(),
                Bytes::from_static(b"*"),
            ];
            args.extend(event.fields(source.0));
            self.migrations.note_changed([&event.stream], index);
            let reply = polis_commands::execute_write(&mut self.db, &args, time_ms);
            if reply.is_error() {
                // Not a stream (someone wrote another type there): the
                // event is dropped rather than block the feed for good.
                tracing::warn!(stream = %String::from_utf8_lossy(&event.stream), ?reply, "a feed event was not appended");
            } else {
                appended += 1;
            }
        }
        Applied::Reply(Reply::Integer(appended))
    }

    /// `Op::FeedAcked`: the outbox lets go of what reached its streams.
    pub(crate) fn feed_acked(&mut self, through: Position) -> Applied {
        self.feed.acked(through);
        Applied::Reply(Reply::Integer(self.feed.outbox.len() as i64))
    }
}

#[cfg(test)]
#[path = "machine_feed_test.rs"]
mod tests;
