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
pub async fn run_client(plan: ClientPlan, recorder: Recorder, values: &AtomicU64) {
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
            xadd(&mut client, &recorder, process, payload).await
        } else if !group_ready {
            group_ready = create_group(&mut client).await;
            Kind::Ok
        } else if step % PENDING_EVERY == PENDING_EVERY - 1 {
            xpending(&mut client, &recorder, process).await
        } else {
            let claim = step % CLAIM_EVERY == CLAIM_EVERY - 1;
            let (kind, entries) = consume(&mut client, &recorder, process, claim).await;
            if kind == Kind::Ok && !entries.is_empty() {
                if rng.random_ratio(1, CRASH_ONE_IN) {
                    process += plan.clients;
                    continue;
                }
                xack(&mut client, &recorder, process, &entries).await
            } else {
                kind
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
/// delivered too); returns whether it exists now.
async fn create_group(client: &mut Client) -> bool {
    let mut cmd = redis::cmd("XGROUP");
    cmd.arg("CREATE")
        .arg(STREAM)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM");
    match client.call(&cmd).await {
        Outcome::Ok(_) => true,
        Outcome::Fail(error) => error.contains("BUSYGROUP"),
        Outcome::Unknown(_) => false,
    }
}

async fn xadd(client: &mut Client, recorder: &Recorder, process: u64, payload: u64) -> Kind {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(STREAM).arg("*").arg("p").arg(payload.to_string());
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
        cmd.arg("STREAMS").arg(STREAM).arg(">");
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

async fn xack(client: &mut Client, recorder: &Recorder, process: u64, entries: &[Entry]) -> Kind {
    let ids: Vec<String> = entries.iter().map(|entry| entry.id.clone()).collect();
    let mut cmd = redis::cmd("XACK");
    cmd.arg(STREAM).arg(GROUP).arg(&ids);
    let op = Op::Xack { ids };
    let parse = |reply: Value| match reply {
        Value::Int(_) => Ok(op.clone()),
        other => Err(format!("unexpected XACK reply {other:?}")),
    };
    call(client, recorder, process, op.clone(), &cmd, parse)
        .await
        .0
}

async fn xpending(client: &mut Client, recorder: &Recorder, process: u64) -> Kind {
    let mut cmd = redis::cmd("XPENDING");
    cmd.arg(STREAM).arg(GROUP);
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
    call(client, recorder, process, op, &cmd, parse).await.0
}

/// The final drain, by processes numbered from `process_base`: the pending
/// entries of every consumer the history names, then new entries until
/// none is left, then the whole stream.
///
/// # Errors
/// Returns an error if a final read never succeeds.
pub async fn final_drain(
    client: &mut Client,
    recorder: &Recorder,
    process_base: u64,
) -> anyhow::Result<()> {
    let mut process = process_base;
    for _ in 0..ATTEMPTS_MAX {
        if create_group(client).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
            let cmd = drain_read(consumer, &after);
            let found = drain_step(client, recorder, &mut process, consumer, "0", &cmd).await?;
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
        let cmd = drain_read(consumer, ">");
        let found = drain_step(client, recorder, &mut process, consumer, ">", &cmd).await?;
        if found.is_empty() {
            break;
        }
    }
    let mut cmd = redis::cmd("XRANGE");
    cmd.arg(STREAM).arg("-").arg("+");
    for _ in 0..ATTEMPTS_MAX {
        let parse = |reply: Value| step::entries(&reply).map(|e| Op::Xrange { entries: Some(e) });
        let op = Op::Xrange { entries: None };
        let (kind, _) = call(client, recorder, process, op, &cmd, parse).await;
        if kind == Kind::Ok {
            return Ok(());
        }
        process += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the final XRANGE never succeeded")
}

fn drain_read(consumer: &str, from: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP").arg(GROUP).arg(consumer);
    cmd.arg("COUNT").arg(DRAIN_COUNT);
    cmd.arg("STREAMS").arg(STREAM).arg(from);
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
