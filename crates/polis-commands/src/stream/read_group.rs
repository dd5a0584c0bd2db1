//! XREADGROUP: a group's reads, which are writes (they move the group's
//! last delivered id, fill the pending entries lists, create consumers),
//! applied with the leader's time from the log entry.
//!
//! A read of new entries (`>`) of a group with queue options first takes
//! the group's pending entries that are due again (see
//! [`super::queue`]): those delivered max-deliveries times move to the
//! dead-letter stream, the others are claimed for the reader, their
//! delivery count incremented, and come before new entries in the reply,
//! within its COUNT. A plain Redis group has none due, ever.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{event_class, Db, StreamId, StreamValue};
use polis_types::limits::QUEUE_DEAD_LETTER_MOVES_MAX;

use super::group::has_consumer;
use super::id::{entry_reply, id_reply, no_such_key_or_group, parse_strict_id};
use super::queue::move_to_dead_letter;
use super::read::{count_limit, parse_read_args, streams_reply, ReadArgs};
use crate::access::{stream_at, update_stream};
use crate::command::{Protocol, WriteCommand};

/// Where a group read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupStart {
    /// `>`: entries due again, then entries never delivered to the group.
    New,
    /// An id: the consumer's own pending entries after it.
    History(StreamId),
}

/// `XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds]
/// [NOACK] STREAMS key [key ...] id [id ...]`. BLOCK is parsed but not
/// waited on here.
///
/// The reply has RESP2's shape (`[[key, entries], ...]`) for every
/// client: a write's reply is computed at apply, where the client's
/// protocol is not known.
#[derive(Debug, Clone, PartialEq)]
pub struct XReadGroup {
    pub args: ReadArgs,
}

impl WriteCommand for XReadGroup {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            args: parse_read_args(args, true)?,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        crate::access::reply(self.run(db, now_ms))
    }
}

impl XReadGroup {
    fn run(&self, db: &mut Db, now_ms: u64) -> Result<Reply, ReplyError> {
        let Some((group, consumer)) = &self.args.group else {
            return Err(ReplyError::err("Missing GROUP option for XREADGROUP"));
        };
        let mut starts = Vec::with_capacity(self.args.keys.len());
        for (key, id) in self.args.keys.iter().zip(&self.args.ids) {
            let stream = stream_at(db, key, now_ms)?;
            if !stream.is_some_and(|stream| stream.groups.contains_key(group)) {
                return Err(no_such_key_or_group(
                    key,
                    group,
                    " in XREADGROUP with GROUP option",
                ));
            }
            let start = match id.as_ref() {
                b"$" => {
                    return Err(ReplyError::err(
                        "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                    ))
                }
                b">" => GroupStart::New,
                id => match parse_strict_id(id)? {
                    StreamId::MAX => GroupStart::New,
                    id => GroupStart::History(id),
                },
            };
            starts.push(start);
        }
        let mut served = Vec::new();
        for (key, start) in self.args.keys.iter().zip(starts) {
            let had_consumer = has_consumer(db, key, group, consumer, now_ms);
            let due = match start {
                GroupStart::New => self.take_due(db, key, group, now_ms)?,
                GroupStart::History(_) => Vec::new(),
            };
            let entries = update_stream(db, key, now_ms, |stream| {
                self.serve(stream, group, consumer, start, &due, now_ms)
            })?;
            if !had_consumer && has_consumer(db, key, group, consumer, now_ms) {
                db.notify(event_class::STREAM, "xgroup-createconsumer", key);
            }
            if let Some(entries) = entries {
                served.push((key.clone(), entries));
            }
        }
        Ok(streams_reply(served, Protocol::Resp2))
    }

    /// Returns the pending entries of `group` due again at `now_ms` for
    /// this read (at most its COUNT), after moving the exhausted ones to
    /// the dead-letter stream.
    fn take_due(
        &self,
        db: &mut Db,
        key: &Bytes,
        group: &Bytes,
        now_ms: u64,
    ) -> Result<Vec<StreamId>, ReplyError> {
        let Some(stream) = stream_at(db, key, now_ms)? else {
            return Ok(Vec::new());
        };
        let Some(consumer_group) = stream.groups.get(group) else {
            return Ok(Vec::new());
        };
        let due = consumer_group.due_entries(
            now_ms,
            count_limit(self.args.count),
            QUEUE_DEAD_LETTER_MOVES_MAX,
        );
        if !due.dead.is_empty() {
            move_to_dead_letter(db, key, group, &due.dead, now_ms)?;
        }
        Ok(due.redeliver)
    }

    /// Serves one stream, or returns None when it has nothing for the
    /// group (then the consumer is not created either). `due` are the
    /// pending entries to deliver again first (reads of new entries).
    fn serve(
        &self,
        stream: &mut StreamValue,
        group_name: &Bytes,
        consumer: &Bytes,
        start: GroupStart,
        due: &[StreamId],
        now_ms: u64,
    ) -> Option<Vec<Reply>> {
        let limit = count_limit(self.args.count);
        match start {
            GroupStart::History(after) => {
                let from = after.next()?;
                let group = stream.groups.get_mut(group_name)?;
                let owned: Vec<StreamId> = group
                    .touch_consumer(consumer, now_ms)
                    .pending
                    .range(from..)
                    .take(limit)
                    .copied()
                    .collect();
                let mut replies = Vec::with_capacity(owned.len());
                for id in owned {
                    match stream.get(id) {
                        Some(fields) => {
                            replies.push(entry_reply(id, fields));
                            if let Some(group) = stream.groups.get_mut(group_name) {
                                group.redelivered_in_place(id, now_ms);
                            }
                        }
                        None => replies.push(Reply::Array(vec![id_reply(id), Reply::NullArray])),
                    }
                }
                Some(replies)
            }
            GroupStart::New => {
                let mut replies = self.redeliver(stream, group_name, consumer, due, now_ms);
                let last = stream.groups.get(group_name)?.last_delivered;
                let room = limit.saturating_sub(replies.len());
                let has_new = stream.last_entry_id().is_some_and(|top| top > last);
                if room == 0 || !has_new {
                    return (!replies.is_empty()).then_some(replies);
                }
                let from = last.next()?;
                let ids: Vec<StreamId> = stream
                    .entries()
                    .range(from..)
                    .take(room)
                    .map(|(id, _)| *id)
                    .collect();
                stream
                    .groups
                    .get_mut(group_name)?
                    .touch_consumer(consumer, now_ms);
                replies.reserve(ids.len());
                for id in ids {
                    stream.advance_group(group_name, id);
                    if let Some(fields) = stream.get(id) {
                        replies.push(entry_reply(id, fields));
                    }
                    if !self.args.no_ack {
                        let group = stream.groups.get_mut(group_name)?;
                        let entry = group.assign(id, consumer, now_ms);
                        entry.delivered_ms = now_ms;
                        entry.deliveries = 1;
                    }
                }
                Some(replies)
            }
        }
    }

    /// Claims the due entries `due` for `consumer` and returns them: one
    /// more delivery each, at `now_ms` (with NOACK, acknowledged at once,
    /// as NOACK reads acknowledge new entries). Entries deleted from the
    /// stream leave the pending entries list, as XAUTOCLAIM drops them.
    fn redeliver(
        &self,
        stream: &mut StreamValue,
        group_name: &Bytes,
        consumer: &Bytes,
        due: &[StreamId],
        now_ms: u64,
    ) -> Vec<Reply> {
        let mut replies = Vec::with_capacity(due.len());
        for &id in due {
            let fields = stream.get(id).cloned();
            let Some(group) = stream.groups.get_mut(group_name) else {
                break;
            };
            let Some(fields) = fields else {
                group.ack(id);
                continue;
            };
            if replies.is_empty() {
                group.touch_consumer(consumer, now_ms);
            }
            let entry = group.assign(id, consumer, now_ms);
            entry.delivered_ms = now_ms;
            entry.deliveries += 1;
            // A group whose only state was this entry's nack is a plain
            // Redis group again: it counts nothing.
            if let Some(queue) = group.queue.as_deref_mut() {
                queue.redeliveries += 1;
            }
            if self.args.no_ack {
                group.ack(id);
            }
            replies.push(entry_reply(id, &fields));
        }
        replies
    }
}
