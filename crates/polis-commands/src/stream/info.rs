//! XINFO STREAM [FULL [COUNT n]], XINFO GROUPS, XINFO CONSUMERS and
//! XINFO HELP.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::stream::DueState;
use polis_store::{ConsumerGroup, Db, StreamId, StreamValue};

use super::id::{entry_reply, help_reply, id_reply, no_such_group, subcommand_syntax, text};
use super::read::range_entries;
use crate::access::{bulk, stream_at};
use crate::args::{arg, int_arg, is};
use crate::command::{ReadCommand, ReadContext};

const XINFO_HELP: &[&str] = &[
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
];

/// Default COUNT of XINFO STREAM FULL.
const FULL_COUNT_DEFAULT: u64 = 10;

/// What XINFO reports.
#[derive(Debug, Clone, PartialEq)]
pub enum XInfoAction {
    Help,
    /// STREAM, with FULL's COUNT (0: everything) when FULL is given.
    Stream {
        full: Option<u64>,
    },
    Groups,
    Consumers(Bytes),
    /// A subcommand Redis refuses only once the key is found.
    Unknown(ReplyError),
}

/// `XINFO STREAM|GROUPS|CONSUMERS|HELP ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct XInfo {
    pub key: Bytes,
    pub action: XInfoAction,
}

impl ReadCommand for XInfo {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let sub = arg(args, 1)?;
        if is(sub, "help") {
            if args.len() != 2 {
                return Err(subcommand_syntax(args));
            }
            return Ok(Self {
                key: Bytes::new(),
                action: XInfoAction::Help,
            });
        }
        if args.len() < 3 {
            return Err(subcommand_syntax(args));
        }
        let key = args[2].clone();
        let action = if is(sub, "consumers") && args.len() == 4 {
            XInfoAction::Consumers(args[3].clone())
        } else if is(sub, "groups") && args.len() == 3 {
            XInfoAction::Groups
        } else if is(sub, "stream") {
            match parse_stream_options(args) {
                Ok(full) => XInfoAction::Stream { full },
                Err(error) => XInfoAction::Unknown(error),
            }
        } else {
            XInfoAction::Unknown(subcommand_syntax(args))
        };
        Ok(Self { key, action })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        if self.action == XInfoAction::Help {
            return help_reply("XINFO", XINFO_HELP);
        }
        let stream = match stream_at(db, &self.key, ctx.now_ms) {
            Err(error) => return Reply::Error(error),
            Ok(None) => return Reply::Error(ReplyError::NoSuchKey),
            Ok(Some(stream)) => stream,
        };
        match &self.action {
            XInfoAction::Help => help_reply("XINFO", XINFO_HELP),
            XInfoAction::Unknown(error) => Reply::Error(error.clone()),
            XInfoAction::Stream { full: None } => stream_summary(stream),
            XInfoAction::Stream { full: Some(count) } => stream_full(stream, *count, ctx.now_ms),
            XInfoAction::Groups => Reply::Array(
                stream
                    .groups
                    .iter()
                    .map(|(name, group)| group_summary(stream, name, group, ctx.now_ms))
                    .collect(),
            ),
            XInfoAction::Consumers(name) => match stream.groups.get(name) {
                None => Reply::Error(no_such_group(&self.key, name)),
                Some(group) => Reply::Array(
                    group
                        .consumers
                        .iter()
                        .map(|(name, consumer)| {
                            let idle = (ctx.now_ms as i64).wrapping_sub(consumer.seen_ms as i64);
                            Reply::Map(vec![
                                (text("name"), bulk(name)),
                                (
                                    text("pending"),
                                    Reply::Integer(consumer.pending.len() as i64),
                                ),
                                (text("idle"), Reply::Integer(idle.max(0))),
                            ])
                        })
                        .collect(),
                ),
            },
        }
    }
}

/// Parses `[FULL [COUNT count]]` after `XINFO STREAM key`.
fn parse_stream_options(args: &[Bytes]) -> Result<Option<u64>, ReplyError> {
    let options = args.get(3..).unwrap_or_default();
    match options {
        [] => Ok(None),
        [full] if is(full, "full") => Ok(Some(FULL_COUNT_DEFAULT)),
        [full, count_word, count] if is(full, "full") && is(count_word, "count") => {
            let count = int_arg(count)?;
            Ok(Some(u64::try_from(count).unwrap_or(FULL_COUNT_DEFAULT)))
        }
        _ => Err(subcommand_syntax(args)),
    }
}

/// The fields XINFO STREAM starts with, in Redis's order.
fn stream_header(stream: &StreamValue) -> Vec<(Reply, Reply)> {
    vec![
        (text("length"), Reply::Integer(stream.len() as i64)),
        (
            text("radix-tree-keys"),
            Reply::Integer(stream.nodes().len() as i64),
        ),
        (
            text("radix-tree-nodes"),
            Reply::Integer(radix_tree_nodes(stream) as i64),
        ),
        (text("last-generated-id"), id_reply(stream.last_id)),
        (
            text("max-deleted-entry-id"),
            id_reply(stream.max_deleted_id),
        ),
        (
            text("entries-added"),
            Reply::Integer(stream.entries_added as i64),
        ),
        (text("recorded-first-entry-id"), id_reply(stream.first_id)),
    ]
}

fn stream_summary(stream: &StreamValue) -> Reply {
    let mut fields = stream_header(stream);
    let edge = |entry: Option<(&StreamId, &Vec<Bytes>)>| {
        entry.map_or(Reply::Null, |(id, values)| entry_reply(*id, values))
    };
    fields.push((text("groups"), Reply::Integer(stream.groups.len() as i64)));
    fields.push((text("first-entry"), edge(stream.entries().iter().next())));
    fields.push((
        text("last-entry"),
        edge(stream.entries().iter().next_back()),
    ));
    Reply::Map(fields)
}

fn stream_full(stream: &StreamValue, count: u64, now_ms: u64) -> Reply {
    let limit = if count == 0 {
        usize::MAX
    } else {
        usize::try_from(count).unwrap_or(usize::MAX)
    };
    let mut fields = stream_header(stream);
    fields.push((
        text("entries"),
        Reply::Array(range_entries(
            stream,
            StreamId::MIN,
            StreamId::MAX,
            limit,
            false,
        )),
    ));
    let groups = stream
        .groups
        .iter()
        .map(|(name, group)| {
            let pending = group
                .pending
                .iter()
                .take(limit)
                .map(|(id, entry)| {
                    Reply::Array(vec![
                        id_reply(*id),
                        bulk(&entry.consumer),
                        Reply::Integer(entry.delivered_ms as i64),
                        Reply::Integer(entry.deliveries as i64),
                    ])
                })
                .collect();
            let consumers = group
                .consumers
                .iter()
                .map(|(name, consumer)| {
                    let pending = consumer
                        .pending
                        .iter()
                        .take(limit)
                        .filter_map(|id| group.pending.get(id).map(|entry| (id, entry)))
                        .map(|(id, entry)| {
                            Reply::Array(vec![
                                id_reply(*id),
                                Reply::Integer(entry.delivered_ms as i64),
                                Reply::Integer(entry.deliveries as i64),
                            ])
                        })
                        .collect();
                    Reply::Map(vec![
                        (text("name"), bulk(name)),
                        (text("seen-time"), Reply::Integer(consumer.seen_ms as i64)),
                        (
                            text("pel-count"),
                            Reply::Integer(consumer.pending.len() as i64),
                        ),
                        (text("pending"), Reply::Array(pending)),
                    ])
                })
                .collect();
            let mut fields = vec![
                (text("name"), bulk(name)),
                (text("last-delivered-id"), id_reply(group.last_delivered)),
                (text("entries-read"), entries_read_reply(group)),
                (text("lag"), lag_reply(stream, group)),
                (
                    text("pel-count"),
                    Reply::Integer(group.pending.len() as i64),
                ),
                (text("pending"), Reply::Array(pending)),
                (text("consumers"), Reply::Array(consumers)),
            ];
            fields.extend(queue_fields(group, now_ms));
            Reply::Map(fields)
        })
        .collect();
    fields.push((text("groups"), Reply::Array(groups)));
    Reply::Map(fields)
}

fn group_summary(stream: &StreamValue, name: &Bytes, group: &ConsumerGroup, now_ms: u64) -> Reply {
    let mut fields = vec![
        (text("name"), bulk(name)),
        (
            text("consumers"),
            Reply::Integer(group.consumers.len() as i64),
        ),
        (text("pending"), Reply::Integer(group.pending.len() as i64)),
        (text("last-delivered-id"), id_reply(group.last_delivered)),
        (text("entries-read"), entries_read_reply(group)),
        (text("lag"), lag_reply(stream, group)),
    ];
    fields.extend(queue_fields(group, now_ms));
    Reply::Map(fields)
}

/// The fields polis adds after Redis's for a group with queue state
/// (none for a plain Redis group, whose reply keeps Redis's shape):
/// the options (null when unset), the entries negatively acknowledged,
/// those due for redelivery at `now_ms`, and the redeliveries and
/// dead-letter moves so far.
fn queue_fields(group: &ConsumerGroup, now_ms: u64) -> Vec<(Reply, Reply)> {
    let Some(queue) = group.queue() else {
        return Vec::new();
    };
    let number =
        |value: Option<u64>| value.map_or(Reply::Null, |value| Reply::Integer(value as i64));
    let due = group
        .pending
        .iter()
        .filter(|(id, entry)| {
            matches!(
                group.due_state(**id, entry, now_ms),
                DueState::Due | DueState::Exhausted
            )
        })
        .count();
    vec![
        (text("ack-wait"), number(queue.options.ack_wait_ms)),
        (text("max-deliveries"), number(queue.options.max_deliveries)),
        (
            text("dead-letter"),
            queue.options.dead_letter.as_ref().map_or(Reply::Null, bulk),
        ),
        (text("nacked"), Reply::Integer(queue.nacked.len() as i64)),
        (text("due"), Reply::Integer(due as i64)),
        (
            text("redeliveries"),
            Reply::Integer(queue.redeliveries as i64),
        ),
        (
            text("dead-lettered"),
            Reply::Integer(queue.dead_lettered as i64),
        ),
    ]
}

fn entries_read_reply(group: &ConsumerGroup) -> Reply {
    group
        .entries_read
        .map_or(Reply::Null, |read| Reply::Integer(read as i64))
}

fn lag_reply(stream: &StreamValue, group: &ConsumerGroup) -> Reply {
    stream
        .lag(group)
        .map_or(Reply::Null, |lag| Reply::Integer(lag as i64))
}

/// Returns the number of nodes Redis's radix tree would have for the
/// stream's node keys (its 128-bit master ids, big endian): a compressed
/// node per shared run of bytes, a branch node per fork, a node per key.
/// An estimate of Redis's `rax->numnodes`, which also depends on the
/// order of insertions and deletions.
fn radix_tree_nodes(stream: &StreamValue) -> usize {
    let keys: Vec<[u8; 16]> = stream
        .nodes()
        .keys()
        .map(|id| {
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&id.ms.to_be_bytes());
            key[8..].copy_from_slice(&id.seq.to_be_bytes());
            key
        })
        .collect();
    if keys.is_empty() {
        return 1;
    }
    subtree_nodes(&keys, 0)
}

/// Nodes of the subtree holding `keys` (sorted, sharing `depth` bytes).
fn subtree_nodes(keys: &[[u8; 16]], depth: usize) -> usize {
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        return 0;
    };
    if depth >= 16 {
        return 1;
    }
    // Sorted keys share a byte when the first and last do.
    let mut fork = depth;
    while fork < 16 && first[fork] == last[fork] {
        fork += 1;
    }
    if fork == 16 {
        return 2;
    }
    let chain = usize::from(fork > depth);
    let mut children = 0;
    let mut start = 0;
    // Bounded by the keys: each group is at least one.
    while start < keys.len() {
        let byte = keys[start][fork];
        let end = start
            + keys[start..]
                .iter()
                .take_while(|key| key[fork] == byte)
                .count();
        children += subtree_nodes(&keys[start..end], fork + 1);
        start = end;
    }
    chain + 1 + children
}
