//! The queue workload: a stream used as a work queue by one consumer
//! group.
//!
//! Even-numbered clients produce (`XADD verify:queue * p <payload>`, every
//! payload unique); odd-numbered ones consume as `c<process>`: XREADGROUP
//! new entries, XACK them, now and then XAUTOCLAIM entries idle for long
//! (those of consumers that vanished) and sample the XPENDING summary. A
//! consumer whose operation ends unknown, or that drops a delivery
//! unacknowledged (a crash, simulated), goes on as a new process, hence a
//! new consumer, leaving its pending entries to be claimed.
//!
//! After healing, the final drain reads every known consumer's pending
//! entries (XREADGROUP from 0), then new entries until none is left, then
//! the whole stream (XRANGE).
//!
//! In the redeliver mode ([`QueueMode::Redeliver`]) the group has polis's
//! queue options instead: entries not acknowledged within the ack-wait go
//! to the next reader, and those delivered max-deliveries times to the
//! dead-letter stream. Consumers never claim; they crash more often (one
//! delivery in four is dropped), and now and then give entries back with
//! XNACK. The final drain reads new entries (redeliveries among them) and
//! acknowledges them until nothing is pending, then reads the stream and
//! the dead-letter stream: every acknowledged XADD must end acknowledged
//! by a consumer or dead-lettered.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::bail;
use polis_client::resp::{Client, Outcome};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;
use tokio::time::Instant;

use super::step::{self, call};
use super::ClientPlan;
use crate::history::{Entry, Kind, Op};
use crate::recorder::Recorder;

/// The stream.
pub const STREAM: &str = "verify:queue";
/// The stream of the redeliver mode and its dead-letter stream: one hash
/// tag, one slot, as the dead-letter option requires.
pub const REDELIVER_STREAM: &str = "{verify:queue}";
pub const DEAD_STREAM: &str = "{verify:queue}:dead";
/// The redeliver mode's group options.
const ACK_WAIT_MS: u64 = 1_000;
const MAX_DELIVERIES: u64 = 3;
/// In the redeliver mode, of every `REDELIVER_ROLLS` deliveries,
/// `CRASH_ROLLS` are dropped (the consumer crashed), `NACK_ROLLS` given
/// back with XNACK, the others acknowledged: about one entry in twenty
/// misses its three chances and is dead-lettered.
const REDELIVER_ROLLS: u32 = 8;
const CRASH_ROLLS: u32 = 2;
const NACK_ROLLS: u32 = 1;
/// How long the redeliver mode's drain waits for pending entries to come
/// back, at most, and how often it looks.
const DRAIN_REDELIVERY_MAX: Duration = Duration::from_secs(60);
const DRAIN_POLL: Duration = Duration::from_millis(200);

/// How the queue workload's consumers recover entries others left
/// pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMode {
    /// Redis's way: XAUTOCLAIM of entries idle for long.
    Claim,
    /// polis's group options: ack-wait redelivery to the next reader,
    /// max deliveries and a dead-letter stream, XNACK.
    Redeliver,
}

impl QueueMode {
    /// Returns the stream the mode uses.
    pub fn stream(self) -> &'static str {
        match self {
            Self::Claim => STREAM,
            Self::Redeliver => REDELIVER_STREAM,
        }
    }
}
/// The consumer group.
pub const GROUP: &str = "g";
/// Entries one XREADGROUP or XAUTOCLAIM asks for.
const COUNT: usize = 5;
/// How long an XREADGROUP waits for new entries.
const BLOCK_MS: u64 = 100;
/// How long an entry stays pending before another consumer claims it.
const CLAIM_IDLE_MS: u64 = 1_000;
/// One consumer step in this many claims; one in `PENDING_EVERY` samples
/// XPENDING.
const CLAIM_EVERY: u64 = 5;
const PENDING_EVERY: u64 = 7;
/// One delivery in this many is dropped unacknowledged, the consumer
/// going on under a new name, as if it had crashed.
const CRASH_ONE_IN: u32 = 25;
/// Entries one final read asks for, and final reads at most.
const DRAIN_COUNT: usize = 200;
const DRAIN_CALLS_MAX: usize = 10_000;
/// Attempts at each final read before the drain gives up.
const ATTEMPTS_MAX: usize = 20;

/// Runs one queue client until the deadline.
pub async fn run_client(plan: ClientPlan, mode: QueueMode, recorder: Recorder, values: &AtomicU64) {
    let stream = mode.stream();
    let mut rng = StdRng::seed_from_u64(plan.seed ^ plan.client.wrapping_mul(0x9e37_79b9));
    let mut client = Client::new(plan.addrs.clone(), plan.client as usize, plan.timeout);
    let mut process = plan.client;
    let producer = plan.client.is_multiple_of(2);
    let mut group_ready = false;
    let mut ticker = tokio::time::interval(plan.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for step in 0u64.. {
        if Instant::now() >= plan.deadline || recorder.is_full() {
            break;
        }
        ticker.tick().await;
        let kind = if producer {
            let payload = values.fetch_add(1, Ordering::Relaxed);
            xadd(&mut client, &recorder, stream, process, payload).await
        } else if !group_ready {
            group_ready = create_group(&mut client, mode).await;
            Kind::Ok
        } else if step % PENDING_EVERY == PENDING_EVERY - 1 {
            xpending(&mut client, &recorder, stream, process).await.0
        } else {
            let claim = mode == QueueMode::Claim && step % CLAIM_EVERY == CLAIM_EVERY - 1;
            let (kind, entries) = consume(&mut client, &recorder, stream, process, claim).await;
            if kind != Kind::Ok || entries.is_empty() {
                kind
            } else {
                let (crashed, nacked) = match mode {
                    QueueMode::Claim => (rng.random_ratio(1, CRASH_ONE_IN), false),
                    QueueMode::Redeliver => {
                        let roll = rng.random_range(0..REDELIVER_ROLLS);
                        (roll < CRASH_ROLLS, roll < CRASH_ROLLS + NACK_ROLLS)
                    }
                };
                if crashed {
                    process += plan.clients;
                    continue;
                }
                let ids: Vec<String> = entries.iter().map(|entry| entry.id.clone()).collect();
                if nacked {
                    xnack(&mut client, &recorder, process, &ids).await
                } else {
                    xack(&mut client, &recorder, stream, process, ids).await
                }
            }
        };
        if kind == Kind::Info {
            // The operation stays open forever; this client goes on as a
            // new process (and consumer), as a restarted one would.
            process += plan.clients;
        }
    }
}

/// Creates the group at the stream's start (entries added before it are
/// delivered too), with the mode's options; returns whether it exists now.
async fn create_group(client: &mut Client, mode: QueueMode) -> bool {
    let mut cmd = redis::cmd("XGROUP");
    cmd.arg("CREATE")
        .arg(mode.stream())
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM");
    if mode == QueueMode::Redeliver {
        cmd.arg("ACKWAIT").arg(ACK_WAIT_MS);
        cmd.arg("MAXDELIVERIES").arg(MAX_DELIVERIES);
        cmd.arg("DEADLETTER").arg(DEAD_STREAM);
    }
    match client.call(&cmd).await {
        Outcome::Ok(_) => true,
        Outcome::Fail(error) => error.contains("BUSYGROUP"),
        Outcome::Unknown(_) => false,
    }
}

async fn xadd(
    client: &mut Client,
    recorder: &Recorder,
    stream: &str,
    process: u64,
    payload: u64,
) -> Kind {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("*").arg("p").arg(payload.to_string());
    let op = Op::Xadd { payload, id: None };
    let parse = |reply: Value| match step::text(&reply) {
        Some(id) => Ok(Op::Xadd {
            payload,
            id: Some(id),
        }),
        None => Err(format!("unexpected XADD reply {reply:?}")),
    };
    call(client, recorder, process, op, &cmd, parse).await.0
}

/// Reads new entries, or (`claim`) claims idle ones; returns the kind of
/// the completion and the entries delivered.
async fn consume(
    client: &mut Client,
    recorder: &Recorder,
    stream: &str,
    process: u64,
    claim: bool,
) -> (Kind, Vec<Entry>) {
    let consumer = format!("c{process}");
    let (kind, seen) = if claim {
        xautoclaim(client, recorder, process, &consumer, CLAIM_IDLE_MS, "0-0").await
    } else {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(GROUP).arg(&consumer);
        cmd.arg("COUNT").arg(COUNT).arg("BLOCK").arg(BLOCK_MS);
        cmd.arg("STREAMS").arg(stream).arg(">");
        xreadgroup(client, recorder, process, &consumer, ">", &cmd).await
    };
    let entries = match seen {
        Op::Xreadgroup {
            entries: Some(entries),
            ..
        }
        | Op::Xautoclaim {
            entries: Some(entries),
            ..
        } => entries,
        _ => Vec::new(),
    };
    (kind, entries)
}

async fn xreadgroup(
    client: &mut Client,
    recorder: &Recorder,
    process: u64,
    consumer: &str,
    from: &str,
    cmd: &redis::Cmd,
) -> (Kind, Op) {
    let op = |entries| Op::Xreadgroup {
        consumer: consumer.to_owned(),
        from: from.to_owned(),
        entries,
    };
    let parse = |reply: Value| step::read_reply(&reply).map(|found| op(Some(found)));
    call(client, recorder, process, op(None), cmd, parse).await
}

/// XAUTOCLAIM of entries idle for `idle_ms` from `cursor`; in an `ok`
/// completion, the entries claimed.
async fn xautoclaim(
    client: &mut Client,
    recorder: &Recorder,
    process: u64,
    consumer: &str,
    idle_ms: u64,
    cursor: &str,
) -> (Kind, Op) {
    let mut cmd = redis::cmd("XAUTOCLAIM");
    cmd.arg(STREAM)
        .arg(GROUP)
        .arg(consumer)
        .arg(idle_ms)
        .arg(cursor);
    cmd.arg("COUNT").arg(COUNT);
    let op = |entries| Op::Xautoclaim {
        consumer: consumer.to_owned(),
        entries,
    };
    let parse = |reply: Value| match &reply {
        Value::Array(parts) if parts.len() >= 2 => step::entries(&parts[1]).map(|e| op(Some(e))),
        _ => Err(format!("unexpected XAUTOCLAIM reply {reply:?}")),
    };
    call(client, recorder, process, op(None), &cmd, parse).await
}

async fn xack(
    client: &mut Client,
    recorder: &Recorder,
    stream: &str,
    process: u64,
    ids: Vec<String>,
) -> Kind {
    let mut cmd = redis::cmd("XACK");
    cmd.arg(stream).arg(GROUP).arg(&ids);
    let op = Op::Xack { ids };
    let parse = |reply: Value| match reply {
        Value::Int(_) => Ok(op.clone()),
        other => Err(format!("unexpected XACK reply {other:?}")),
    };
    call(client, recorder, process, op.clone(), &cmd, parse)
        .await
        .0
}

/// XNACK of `ids` (the redeliver mode): due again at once.
async fn xnack(client: &mut Client, recorder: &Recorder, process: u64, ids: &[String]) -> Kind {
    let mut cmd = redis::cmd("XNACK");
    cmd.arg(REDELIVER_STREAM).arg(GROUP).arg(ids);
    let op = Op::Xnack { ids: ids.to_vec() };
    let parse = |reply: Value| match reply {
        Value::Int(_) => Ok(op.clone()),
        other => Err(format!("unexpected XNACK reply {other:?}")),
    };
    call(client, recorder, process, op.clone(), &cmd, parse)
        .await
        .0
}

/// XPENDING's summary; returns the outcome and, when it is `ok`, the
/// count of pending entries.
async fn xpending(
    client: &mut Client,
    recorder: &Recorder,
    stream: &str,
    process: u64,
) -> (Kind, Option<u64>) {
    let mut cmd = redis::cmd("XPENDING");
    cmd.arg(stream).arg(GROUP);
    let parse = |reply: Value| match &reply {
        Value::Array(parts) => match parts.first() {
            Some(Value::Int(count)) => Ok(Op::Xpending {
                count: u64::try_from(*count).ok(),
            }),
            _ => Err(format!("unexpected XPENDING reply {reply:?}")),
        },
        _ => Err(format!("unexpected XPENDING reply {reply:?}")),
    };
    let op = Op::Xpending { count: None };
    match call(client, recorder, process, op, &cmd, parse).await {
        (kind, Op::Xpending { count }) => (kind, count),
        (kind, _) => (kind, None),
    }
}

/// The final drain, by processes numbered from `process_base`, in the
/// mode's way ([`claim_drain`] or [`redeliver_drain`]), then the whole
/// stream (and in the redeliver mode, the whole dead-letter stream).
///
/// # Errors
/// Returns an error if a final read never succeeds.
pub async fn final_drain(
    client: &mut Client,
    mode: QueueMode,
    recorder: &Recorder,
    process_base: u64,
) -> anyhow::Result<()> {
    let mut process = process_base;
    for _ in 0..ATTEMPTS_MAX {
        if create_group(client, mode).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    match mode {
        QueueMode::Claim => claim_drain(client, recorder, &mut process).await?,
        QueueMode::Redeliver => redeliver_drain(client, recorder, &mut process).await?,
    }
    let stream = mode.stream();
    final_range(client, recorder, &mut process, stream, |entries| {
        Op::Xrange { entries }
    })
    .await?;
    if mode == QueueMode::Redeliver {
        final_range(client, recorder, &mut process, DEAD_STREAM, |entries| {
            Op::XrangeDead { entries }
        })
        .await?;
    }
    Ok(())
}

/// The claim mode's drain: the pending entries of every consumer the
/// history names (XREADGROUP from 0), then new entries until none is
/// left.
async fn claim_drain(
    client: &mut Client,
    recorder: &Recorder,
    process: &mut u64,
) -> anyhow::Result<()> {
    let mut consumers: BTreeSet<String> = BTreeSet::new();
    for event in recorder.events() {
        if let Op::Xreadgroup { consumer, .. } | Op::Xautoclaim { consumer, .. } = event.op {
            consumers.insert(consumer);
        }
    }
    let mut calls = 0;
    for consumer in &consumers {
        let mut after = "0".to_owned();
        loop {
            calls += 1;
            anyhow::ensure!(calls <= DRAIN_CALLS_MAX, "the final drain never ended");
            let cmd = drain_read(STREAM, consumer, &after);
            let found = drain_step(client, recorder, process, consumer, "0", &cmd).await?;
            match found.last() {
                Some(last) => after.clone_from(&last.id),
                None => break,
            }
        }
    }
    let consumer = "drain";
    loop {
        calls += 1;
        anyhow::ensure!(calls <= DRAIN_CALLS_MAX, "the final drain never ended");
        let cmd = drain_read(STREAM, consumer, ">");
        let found = drain_step(client, recorder, process, consumer, ">", &cmd).await?;
        if found.is_empty() {
            return Ok(());
        }
    }
}

/// The redeliver mode's drain: reads new entries as one consumer and
/// acknowledges them, until a read finds nothing and nothing is pending.
/// Entries other consumers left pending come back after the ack-wait (or
/// move to the dead-letter stream), so the drain waits for them, up to
/// [`DRAIN_REDELIVERY_MAX`].
async fn redeliver_drain(
    client: &mut Client,
    recorder: &Recorder,
    process: &mut u64,
) -> anyhow::Result<()> {
    let consumer = "drain";
    let deadline = Instant::now() + DRAIN_REDELIVERY_MAX;
    let mut poll = tokio::time::interval(DRAIN_POLL);
    for _ in 0..DRAIN_CALLS_MAX {
        let cmd = drain_read(REDELIVER_STREAM, consumer, ">");
        let found = drain_step(client, recorder, process, consumer, ">", &cmd).await?;
        if !found.is_empty() {
            let ids: Vec<String> = found.into_iter().map(|entry| entry.id).collect();
            drain_ack(client, recorder, process, ids).await?;
            continue;
        }
        let mut pending = None;
        for _ in 0..ATTEMPTS_MAX {
            if let (Kind::Ok, count) = xpending(client, recorder, REDELIVER_STREAM, *process).await
            {
                pending = count;
                break;
            }
            *process += 1;
        }
        if pending == Some(0) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "entries still pending {DRAIN_REDELIVERY_MAX:?} into the final drain"
        );
        poll.tick().await;
    }
    bail!("the final drain never ended")
}

/// Acknowledges what the drain read, until an XACK succeeds (XACK is
/// idempotent: trying again is safe).
async fn drain_ack(
    client: &mut Client,
    recorder: &Recorder,
    process: &mut u64,
    ids: Vec<String>,
) -> anyhow::Result<()> {
    for _ in 0..ATTEMPTS_MAX {
        if xack(client, recorder, REDELIVER_STREAM, *process, ids.clone()).await == Kind::Ok {
            return Ok(());
        }
        // A new process: an `info` leaves the old one open.
        *process += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("a final XACK never succeeded")
}

/// Reads the whole of `stream` until a read succeeds, recorded as `op`.
async fn final_range(
    client: &mut Client,
    recorder: &Recorder,
    process: &mut u64,
    stream: &str,
    op: fn(Option<Vec<Entry>>) -> Op,
) -> anyhow::Result<()> {
    let mut cmd = redis::cmd("XRANGE");
    cmd.arg(stream).arg("-").arg("+");
    let dead = stream == DEAD_STREAM;
    for _ in 0..ATTEMPTS_MAX {
        let parse = |reply: Value| {
            let entries = if dead {
                dead_entries(&reply)
            } else {
                step::entries(&reply)
            };
            entries.map(|entries| op(Some(entries)))
        };
        let (kind, _) = call(client, recorder, *process, op(None), &cmd, parse).await;
        if kind == Kind::Ok {
            return Ok(());
        }
        *process += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the final XRANGE of {stream} never succeeded")
}

/// Parses the dead-letter stream's entries as the entries they came
/// from: each one's `source-id` and the payload of its last field (the
/// original entry's one field comes after the fields naming the source).
///
/// # Errors
/// Returns the reply, described, when it is not such a list.
pub fn dead_entries(value: &Value) -> Result<Vec<Entry>, String> {
    let unexpected = || format!("unexpected dead-letter entries {value:?}");
    let Value::Array(items) = value else {
        return Err(unexpected());
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(parts) = item else {
            return Err(unexpected());
        };
        let [_id, Value::Array(fields)] = parts.as_slice() else {
            return Err(unexpected());
        };
        let texts: Vec<Option<String>> = fields.iter().map(step::text).collect();
        let source = texts
            .chunks(2)
            .find(|pair| pair[0].as_deref() == Some("source-id"))
            .and_then(|pair| pair.get(1).cloned().flatten())
            .ok_or_else(unexpected)?;
        let payload = fields
            .last()
            .and_then(step::number)
            .ok_or_else(unexpected)?;
        entries.push(Entry {
            id: source,
            payload,
        });
    }
    Ok(entries)
}

fn drain_read(stream: &str, consumer: &str, from: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP").arg(GROUP).arg(consumer);
    cmd.arg("COUNT").arg(DRAIN_COUNT);
    cmd.arg("STREAMS").arg(stream).arg(from);
    cmd
}
/// Runs one final XREADGROUP until it succeeds; returns what it delivered.
async fn drain_step(
    client: &mut Client,
    recorder: &Recorder,
    process: &mut u64,
    consumer: &str,
    from: &str,
    cmd: &redis::Cmd,
) -> anyhow::Result<Vec<Entry>> {
    for _ in 0..ATTEMPTS_MAX {
        match xreadgroup(client, recorder, *process, consumer, from, cmd).await {
            (
                Kind::Ok,
                Op::Xreadgroup {
                    entries: Some(entries),
                    ..
                },
            ) => return Ok(entries),
            _ => {
                // A new process: an `info` leaves the old one open.
                *process += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    bail!("a final XREADGROUP by {consumer} never succeeded")
}
