//! The blocking-pop workload: lists used as work queues.
//!
//! Clients take turns by number: producers RPUSH unique elements, two in
//! three to the jobs list and one to the BLPOP list; movers `BLMOVE jobs
//! processing LEFT RIGHT <timeout>`, then LREM the element from the
//! processing list once done; poppers BLPOP the BLPOP list. After healing,
//! LRANGE reads all three lists whole.

use std::sync::atomic::{AtomicU64, Ordering};

use polis_client::resp::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;
use tokio::time::Instant;

use super::step::{self, call};
use super::ClientPlan;
use crate::history::{Kind, Op};
use crate::recorder::Recorder;

/// The list BLMOVE takes from; one hash tag keeps the lists in one slot.
pub const JOBS: &str = "verify:{bq}jobs";
/// The list BLMOVE moves to, until the element is finished (LREM).
pub const PROCESSING: &str = "verify:{bq}processing";
/// The list BLPOP takes from.
pub const JOBS_BLPOP: &str = "verify:{bq}jobs2";
/// How long a blocking pop waits, in seconds (shorter than a client's
/// reply timeout).
const BLOCK_SECS: f64 = 0.5;

/// What a client of this workload does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Producer,
    Mover,
    Popper,
}

/// Runs one blocking-pop client until the deadline.
pub async fn run_client(plan: ClientPlan, recorder: Recorder, values: &AtomicU64) {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ plan.client.wrapping_mul(0x9e37_79b9));
    let mut client = Client::new(plan.addrs.clone(), plan.client as usize, plan.timeout);
    let mut process = plan.client;
    let role = match plan.client % 3 {
        0 => Role::Producer,
        1 => Role::Mover,
        _ => Role::Popper,
    };
    let mut ticker = tokio::time::interval(plan.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < plan.deadline && !recorder.is_full() {
        ticker.tick().await;
        let kind = match role {
            Role::Producer => {
                let list = if rng.random_ratio(1, 3) {
                    JOBS_BLPOP
                } else {
                    JOBS
                };
                let element = values.fetch_add(1, Ordering::Relaxed);
                rpush(&mut client, &recorder, process, list, element).await
            }
            Role::Mover => match blmove(&mut client, &recorder, process).await {
                (Kind::Ok, Some(element)) => lrem(&mut client, &recorder, process, element).await,
                (kind, _) => kind,
            },
            Role::Popper => blpop(&mut client, &recorder, process).await,
        };
        if kind == Kind::Info {
            // The operation stays open forever; this client goes on as a
            // new process, as a real client would with a new connection.
            process += plan.clients;
        }
    }
}

async fn rpush(
    client: &mut Client,
    recorder: &Recorder,
    process: u64,
    list: &str,
    element: u64,
) -> Kind {
    let mut cmd = redis::cmd("RPUSH");
    cmd.arg(list).arg(element.to_string());
    let op = Op::Rpush {
        list: list.to_owned(),
        element,
    };
    let parse = |reply: Value| match reply {
        Value::Int(_) => Ok(op.clone()),
        other => Err(format!("unexpected RPUSH reply {other:?}")),
    };
    call(client, recorder, process, op.clone(), &cmd, parse)
        .await
        .0
}

fn popped(list: &str, element: Option<u64>) -> Op {
    Op::Pop {
        list: list.to_owned(),
        element,
    }
}

/// BLMOVE from the jobs list to the processing list; returns how it
/// ended and the element moved, if one was.
async fn blmove(client: &mut Client, recorder: &Recorder, process: u64) -> (Kind, Option<u64>) {
    let mut cmd = redis::cmd("BLMOVE");
    cmd.arg(JOBS).arg(PROCESSING).arg("LEFT").arg("RIGHT");
    cmd.arg(BLOCK_SECS);
    let parse = |reply: Value| match &reply {
        Value::Nil => Ok(popped(JOBS, None)),
        other => match step::number(other) {
            Some(element) => Ok(popped(JOBS, Some(element))),
            None => Err(format!("unexpected BLMOVE reply {reply:?}")),
        },
    };
    let (kind, seen) = call(client, recorder, process, popped(JOBS, None), &cmd, parse).await;
    match seen {
        Op::Pop { element, .. } => (kind, element),
        _ => (kind, None),
    }
}

async fn blpop(client: &mut Client, recorder: &Recorder, process: u64) -> Kind {
    let mut cmd = redis::cmd("BLPOP");
    cmd.arg(JOBS_BLPOP).arg(BLOCK_SECS);
    let parse = |reply: Value| match &reply {
        Value::Nil => Ok(popped(JOBS_BLPOP, None)),
        Value::Array(parts) => match parts.as_slice() {
            [_list, element] => step::number(element)
                .map(|element| popped(JOBS_BLPOP, Some(element)))
                .ok_or_else(|| format!("unexpected BLPOP reply {reply:?}")),
            [] => Ok(popped(JOBS_BLPOP, None)),
            _ => Err(format!("unexpected BLPOP reply {reply:?}")),
        },
        _ => Err(format!("unexpected BLPOP reply {reply:?}")),
    };
    let op = popped(JOBS_BLPOP, None);
    call(client, recorder, process, op, &cmd, parse).await.0
}

async fn lrem(client: &mut Client, recorder: &Recorder, process: u64, element: u64) -> Kind {
    let mut cmd = redis::cmd("LREM");
    cmd.arg(PROCESSING).arg(1).arg(element.to_string());
    let op = Op::Lrem { element };
    let parse = |reply: Value| match reply {
        Value::Int(_) => Ok(op.clone()),
        other => Err(format!("unexpected LREM reply {other:?}")),
    };
    call(client, recorder, process, op.clone(), &cmd, parse)
        .await
        .0
}

/// Reads the three lists whole, by processes numbered from
/// `process_base`.
///
/// # Errors
/// Returns an error if a list's read never succeeds.
pub async fn final_read(
    client: &mut Client,
    recorder: &Recorder,
    process_base: u64,
) -> anyhow::Result<()> {
    step::read_lists(
        client,
        recorder,
        process_base,
        &[JOBS, PROCESSING, JOBS_BLPOP],
    )
    .await
}
