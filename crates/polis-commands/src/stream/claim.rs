//! XPENDING, XCLAIM and XAUTOCLAIM: the pending entries lists of a
//! consumer group. Idle times are differences with `now_ms` (the read's
//! time, or the leader's time in the log entry for the claims).

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::stream::DueState;
use polis_store::{event_class, Db, StreamId, StreamValue};

use super::group::has_consumer;
use super::id::{
    entry_reply, id_reply, int_or, no_such_key_or_group, parse_range_end, parse_range_start,
    parse_strict_id,
};
use crate::access::{bulk, stream_at, update_stream};
use crate::args::{arg, int_arg, is};
use crate::command::{ReadCommand, ReadContext, WriteCommand};

/// The extended form of XPENDING.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRange {
    pub min_idle_ms: i64,
    /// DUE (polis's queue extension): only entries due for redelivery,
    /// which the next read of new entries takes.
    pub due: bool,
    pub start: StreamId,
    pub end: StreamId,
    pub count: u64,
    pub consumer: Option<Bytes>,
}

/// `XPENDING key group [[IDLE min-idle-time] [DUE] start end count
/// [consumer]]` (DUE is polis's).
#[derive(Debug, Clone, PartialEq)]
pub struct XPending {
    pub key: Bytes,
    pub group: Bytes,
    /// None: the summary form.
    pub range: Option<PendingRange>,
}

impl ReadCommand for XPending {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let group = arg(args, 2)?.clone();
        let argc = args.len();
        let due_at = if args.get(3).is_some_and(|arg| is(arg, "idle")) {
            5
        } else {
            3
        };
        let due = args.get(due_at).is_some_and(|arg| is(arg, "due"));
        if due && argc - due_at - 1 != 3 && argc - due_at - 1 != 4 {
            return Err(ReplyError::Syntax);
        }
        if !due && argc != 3 && !(6..=9).contains(&argc) {
            return Err(ReplyError::Syntax);
        }
        if argc == 3 {
            return Ok(Self {
                key,
                group,
                range: None,
            });
        }
        let mut at = 3;
        let mut min_idle_ms = 0;
        if is(&args[3], "idle") {
            min_idle_ms = int_arg(&args[4])?;
            if argc < 8 {
                return Err(ReplyError::Syntax);
            }
            at = 5;
        }
        if due {
            at += 1;
        }
        let count = u64::try_from(int_arg(arg(args, at + 2)?)?).unwrap_or(0);
        let start = parse_range_start(arg(args, at)?)?;
        let end = parse_range_end(arg(args, at + 1)?)?;
        let consumer = args.get(at + 3).cloned();
        Ok(Self {
            key,
            group,
            range: Some(PendingRange {
                min_idle_ms,
                due,
                start,
                end,
                count,
                consumer,
            }),
        })
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let group = match stream_at(db, &self.key, ctx.now_ms) {
            Err(error) => return Reply::Error(error),
            Ok(stream) => stream.and_then(|stream| stream.groups.get(&self.group)),
        };
        let Some(group) = group else {
            return Reply::Error(no_such_key_or_group(&self.key, &self.group, ""));
        };
        let Some(range) = &self.range else {
            let (Some(first), Some(last)) = (
                group.pending.keys().next(),
                group.pending.keys().next_back(),
            ) else {
                return Reply::Array(vec![
                    Reply::Integer(0),
                    Reply::Null,
                    Reply::Null,
                    Reply::NullArray,
                ]);
            };
            let consumers = group
                .consumers
                .iter()
                .filter(|(_, consumer)| !consumer.pending.is_empty())
                .map(|(name, consumer)| {
                    Reply::Array(vec![
                        bulk(name),
                        Reply::bulk(consumer.pending.len().to_string()),
                    ])
                })
                .collect();
            return Reply::Array(vec![
                Reply::Integer(group.pending.len() as i64),
                id_reply(*first),
                id_reply(*last),
                Reply::Array(consumers),
            ]);
        };
        if range.start > range.end {
            return Reply::Array(Vec::new());
        }
        let ids: Vec<StreamId> = match &range.consumer {
            Some(name) => match group.consumers.get(name) {
                Some(consumer) => consumer
                    .pending
                    .range(range.start..=range.end)
                    .copied()
                    .collect(),
                None => return Reply::Array(Vec::new()),
            },
            None => group
                .pending
                .range(range.start..=range.end)
                .map(|(id, _)| *id)
                .collect(),
        };
        let now = ctx.now_ms as i64;
        let limit = usize::try_from(range.count).unwrap_or(usize::MAX);
        let replies = ids
            .into_iter()
            .filter_map(|id| group.pending.get(&id).map(|entry| (id, entry)))
            .filter(|(_, entry)| {
                range.min_idle_ms == 0
                    || now.wrapping_sub(entry.delivered_ms as i64) >= range.min_idle_ms
            })
            .filter(|(id, entry)| {
                !range.due
                    || matches!(
                        group.due_state(*id, entry, ctx.now_ms),
                        DueState::Due | DueState::Exhausted
                    )
            })
            .take(limit)
            .map(|(id, entry)| {
                Reply::Array(vec![
                    id_reply(id),
                    bulk(&entry.consumer),
                    Reply::Integer(now.wrapping_sub(entry.delivered_ms as i64).max(0)),
                    Reply::Integer(entry.deliveries as i64),
                ])
            })
            .collect();
        Reply::Array(replies)
    }
}

/// The options of XCLAIM after the ids.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimOptions {
    pub min_idle_ms: i64,
    pub ids: Vec<StreamId>,
    /// IDLE as given (a time before now) or TIME.
    pub delivery: Option<Delivery>,
    pub retry_count: Option<i64>,
    pub force: bool,
    pub just_id: bool,
    pub last_id: StreamId,
}

/// When XCLAIM dates the claimed deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    IdleMs(i64),
    AtMs(i64),
}

/// `XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME
/// unix-time-milliseconds] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID
/// lastid]`.
#[derive(Debug, Clone, PartialEq)]
pub struct XClaim {
    pub key: Bytes,
    pub group: Bytes,
    pub consumer: Bytes,
    /// The options, or their error, which Redis reports only once the key
    /// and group are found.
    pub options: Result<ClaimOptions, ReplyError>,
}

fn parse_claim_options(args: &[Bytes]) -> Result<ClaimOptions, ReplyError> {
    let min_idle_ms = int_or(arg(args, 4)?, "Invalid min-idle-time argument for XCLAIM")?.max(0);
    let mut index = 5;
    let mut ids = Vec::new();
    while let Some(id) = args.get(index).and_then(|id| parse_strict_id(id).ok()) {
        ids.push(id);
        index += 1;
    }
    let mut options = ClaimOptions {
        min_idle_ms,
        ids,
        delivery: None,
        retry_count: None,
        force: false,
        just_id: false,
        last_id: StreamId::MIN,
    };
    // Bounded by the arguments: every round consumes one or two.
    while index < args.len() {
        let more = args.len() - 1 - index;
        let option = &args[index];
        if is(option, "force") {
            options.force = true;
        } else if is(option, "justid") {
            options.just_id = true;
        } else if is(option, "idle") && more > 0 {
            index += 1;
            let idle = int_or(&args[index], "Invalid IDLE option argument for XCLAIM")?;
            options.delivery = Some(Delivery::IdleMs(idle));
        } else if is(option, "time") && more > 0 {
            index += 1;
            let time = int_or(&args[index], "Invalid TIME option argument for XCLAIM")?;
            options.delivery = Some(Delivery::AtMs(time));
        } else if is(option, "retrycount") && more > 0 {
            index += 1;
            let count = int_or(
                &args[index],
                "Invalid RETRYCOUNT option argument for XCLAIM",
            )?;
            options.retry_count = Some(count);
        } else if is(option, "lastid") && more > 0 {
            index += 1;
            options.last_id = parse_strict_id(&args[index])?;
        } else {
            return Err(ReplyError::err(format!(
                "Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(option)
            )));
        }
        index += 1;
    }
    Ok(options)
}

impl WriteCommand for XClaim {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        Ok(Self {
            key: arg(args, 1)?.clone(),
            group: arg(args, 2)?.clone(),
            consumer: arg(args, 3)?.clone(),
            options: parse_claim_options(args),
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        match stream_at(db, &self.key, now_ms) {
            Err(error) => return Reply::Error(error),
            Ok(Some(stream)) if stream.groups.contains_key(&self.group) => {}
            Ok(_) => {
                return Reply::Error(no_such_key_or_group(&self.key, &self.group, ""));
            }
        }
        let options = match &self.options {
            Ok(options) => options,
            Err(error) => return Reply::Error(error.clone()),
        };
        let had_consumer = has_consumer(db, &self.key, &self.group, &self.consumer, now_ms);
        let result = update_stream(db, &self.key, now_ms, |stream| {
            self.claim(stream, options, now_ms)
        });
        if !had_consumer && has_consumer(db, &self.key, &self.group, &self.consumer, now_ms) {
            db.notify(event_class::STREAM, "xgroup-createconsumer", &self.key);
        }
        crate::access::reply(result.map(Reply::Array))
    }
}

impl XClaim {
    fn claim(&self, stream: &mut StreamValue, options: &ClaimOptions, now_ms: u64) -> Vec<Reply> {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let delivered = match options.delivery {
            Some(Delivery::IdleMs(idle)) => now.wrapping_sub(idle),
            Some(Delivery::AtMs(time)) => time,
            None => now,
        };
        let delivered_ms = if (0..=now).contains(&delivered) {
            delivered as u64
        } else {
            now_ms
        };
        if let Some(group) = stream.groups.get_mut(&self.group) {
            if options.last_id > group.last_delivered {
                group.last_delivered = options.last_id;
            }
        }
        let mut replies = Vec::new();
        let mut consumer_touched = false;
        for &id in &options.ids {
            let exists = stream.get(id).is_some();
            let Some(group) = stream.groups.get_mut(&self.group) else {
                break;
            };
            if !exists {
                group.ack(id);
                continue;
            }
            let forced = options.force && !group.pending.contains_key(&id);
            let Some(entry) = group.pending.get(&id) else {
                if !forced {
                    continue;
                }
                // A FORCE-created entry starts at one delivery and has no
                // owner, so the idle check does not apply.
                self.take(group, id, now_ms, consumer_touched, 1);
                consumer_touched = true;
                self.finish(stream, id, options, delivered_ms, &mut replies);
                continue;
            };
            if options.min_idle_ms != 0
                && now.wrapping_sub(entry.delivered_ms as i64) < options.min_idle_ms
            {
                continue;
            }
            let deliveries = entry.deliveries;
            self.take(group, id, now_ms, consumer_touched, deliveries);
            consumer_touched = true;
            self.finish(stream, id, options, delivered_ms, &mut replies);
        }
        replies
    }

    /// Moves `id` to the claiming consumer (looked up, and its seen time
    /// refreshed, once per command, as Redis does).
    fn take(
        &self,
        group: &mut polis_store::ConsumerGroup,
        id: StreamId,
        now_ms: u64,
        consumer_touched: bool,
        deliveries: u64,
    ) {
        if !consumer_touched {
            group.touch_consumer(&self.consumer, now_ms);
        }
        group.assign(id, &self.consumer, now_ms).deliveries = deliveries;
    }

    /// Sets the delivery time and count of a claimed entry and adds it to
    /// the reply.
    fn finish(
        &self,
        stream: &mut StreamValue,
        id: StreamId,
        options: &ClaimOptions,
        delivered_ms: u64,
        replies: &mut Vec<Reply>,
    ) {
        if let Some(entry) = stream
            .groups
            .get_mut(&self.group)
            .and_then(|group| group.pending.get_mut(&id))
        {
            entry.delivered_ms = delivered_ms;
            match options.retry_count {
                Some(count) if count >= 0 => entry.deliveries = count as u64,
                _ if !options.just_id => entry.deliveries += 1,
                _ => {}
            }
        }
        if options.just_id {
            replies.push(id_reply(id));
        } else if let Some(fields) = stream.get(id) {
            replies.push(entry_reply(id, fields));
        }
    }
}

/// Largest XAUTOCLAIM COUNT, as Redis bounds it (`LONG_MAX / 16`).
const AUTOCLAIM_COUNT_MAX: i64 = i64::MAX / 16;
/// Entries XAUTOCLAIM examines per entry it may claim.
const AUTOCLAIM_ATTEMPTS_FACTOR: u64 = 10;

/// `XAUTOCLAIM key group consumer min-idle-time start [COUNT count]
/// [JUSTID]`.
#[derive(Debug, Clone, PartialEq)]
pub struct XAutoClaim {
    pub key: Bytes,
    pub group: Bytes,
    pub consumer: Bytes,
    pub min_idle_ms: i64,
    pub start: StreamId,
    pub count: u64,
    pub just_id: bool,
}

impl WriteCommand for XAutoClaim {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let key = arg(args, 1)?.clone();
        let group = arg(args, 2)?.clone();
        let consumer = arg(args, 3)?.clone();
        let min_idle_ms = int_or(
            arg(args, 4)?,
            "Invalid min-idle-time argument for XAUTOCLAIM",
        )?
        .max(0);
        let start = parse_range_start(arg(args, 5)?)?;
        let mut count = 100;
        let mut just_id = false;
        let mut index = 6;
        // Bounded by the arguments: every round consumes one or two.
        while index < args.len() {
            let option = &args[index];
            if is(option, "count") && index + 1 < args.len() {
                let value = crate::args::parse_i64(&args[index + 1])
                    .filter(|value| (1..=AUTOCLAIM_COUNT_MAX).contains(value))
                    .ok_or_else(|| ReplyError::err("COUNT must be > 0"))?;
                count = value as u64;
                index += 1;
            } else if is(option, "justid") {
                just_id = true;
            } else {
                return Err(ReplyError::Syntax);
            }
            index += 1;
        }
        Ok(Self {
            key,
            group,
            consumer,
            min_idle_ms,
            start,
            count,
            just_id,
        })
    }

    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply {
        match stream_at(db, &self.key, now_ms) {
            Err(error) => return Reply::Error(error),
            Ok(Some(stream)) if stream.groups.contains_key(&self.group) => {}
            Ok(_) => {
                return Reply::Error(no_such_key_or_group(&self.key, &self.group, ""));
            }
        }
        let had_consumer = has_consumer(db, &self.key, &self.group, &self.consumer, now_ms);
        let result = update_stream(db, &self.key, now_ms, |stream| self.claim(stream, now_ms));
        if !had_consumer && has_consumer(db, &self.key, &self.group, &self.consumer, now_ms) {
            db.notify(event_class::STREAM, "xgroup-createconsumer", &self.key);
        }
        crate::access::reply(result)
    }
}

impl XAutoClaim {
    fn claim(&self, stream: &mut StreamValue, now_ms: u64) -> Reply {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let mut attempts = self.count.saturating_mul(AUTOCLAIM_ATTEMPTS_FACTOR);
        let mut count = self.count;
        let mut claimed = Vec::new();
        let mut deleted = Vec::new();
        let mut cursor = Some(self.start);
        let mut consumer_touched = false;
        // Bounded by `attempts`.
        while attempts > 0 && count > 0 {
            attempts -= 1;
            let Some(from) = cursor else { break };
            let exists_next = stream
                .groups
                .get(&self.group)
                .and_then(|group| group.pending.range(from..).next())
                .map(|(id, entry)| (*id, entry.delivered_ms));
            let Some((id, delivered_ms)) = exists_next else {
                cursor = None;
                break;
            };
            cursor = id.next();
            let exists = stream.get(id).is_some();
            let Some(group) = stream.groups.get_mut(&self.group) else {
                break;
            };
            if !exists {
                group.ack(id);
                deleted.push(id_reply(id));
                count -= 1;
                continue;
            }
            if self.min_idle_ms != 0 && now.wrapping_sub(delivered_ms as i64) < self.min_idle_ms {
                continue;
            }
            if !consumer_touched {
                group.touch_consumer(&self.consumer, now_ms);
                consumer_touched = true;
            }
            let entry = group.assign(id, &self.consumer, now_ms);
            entry.delivered_ms = now_ms;
            if !self.just_id {
                entry.deliveries += 1;
            }
            if self.just_id {
                claimed.push(id_reply(id));
            } else if let Some(fields) = stream.get(id) {
                claimed.push(entry_reply(id, fields));
            }
            count -= 1;
        }
        let next = cursor.and_then(|from| {
            stream
                .groups
                .get(&self.group)
                .and_then(|group| group.pending.range(from..).next())
                .map(|(id, _)| *id)
        });
        Reply::Array(vec![
            id_reply(next.unwrap_or(StreamId::MIN)),
            Reply::Array(claimed),
            Reply::Array(deleted),
        ])
    }
}
