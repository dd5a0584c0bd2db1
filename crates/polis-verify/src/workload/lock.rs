//! The lock workload: clients take a few locks with short leases and
//! write, through FENCED, to the list each lock guards; now and then a
//! holder stalls past its lease before its next write, as a client
//! paused by a garbage collector or a stopped VM would, and then goes on
//! as if it still held the lock.
//!
//! A client that holds no lock acquires a random one of [`LOCKS`]
//! (`LOCK ACQUIRE verify:{lk<n>} c<process> <LEASE_MS>`); once it holds
//! one, each tick is a `FENCED verify:{lk<n>} <token> RPUSH
//! verify:{lk<n>}:log <element>` of a unique element, up to
//! [`WRITES_MAX`] of them, now and then a `LOCK REFRESH` first; then `LOCK
//! RELEASE`, or (one hold in four) nothing, letting the lease lapse. One
//! hold in [`PAUSE_ONE_IN`] sleeps past its lease before one of its
//! writes. A refusal (`FENCED ...`) ends the hold; an unknown outcome
//! makes the client a new process, hence a new owner.
//!
//! After healing, LRANGE reads each guarded list: the checker
//! (`check/locks.rs`) finds every element's token from its write.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use polis_client::resp::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;
use tokio::time::Instant;

use super::step::{self, call};
use super::ClientPlan;
use crate::history::{Kind, Op};
use crate::recorder::Recorder;

/// Locks the clients compete for.
pub const LOCKS: u32 = 3;
/// The lease every ACQUIRE and REFRESH asks for.
pub const LEASE_MS: u64 = 600;
/// Writes one hold makes at most.
const WRITES_MAX: u32 = 4;
/// One hold in this many stalls past its lease before a write.
const PAUSE_ONE_IN: u32 = 4;
/// How far past its lease a stalled holder sleeps.
const PAUSE_PAST_LEASE_MS: u64 = 300;
/// One write in this many is preceded by a LOCK REFRESH.
const REFRESH_ONE_IN: u32 = 5;
/// One hold in this many ends without a RELEASE.
const WALK_AWAY_ONE_IN: u32 = 4;

/// Returns the name of lock `index`.
pub fn lock_name(index: u32) -> String {
    format!("verify:{{lk{index}}}")
}

/// Returns the list `lock` guards (in the lock's slot).
pub fn guarded_list(lock: &str) -> String {
    format!("{lock}:log")
}

/// A lock a client believes it holds.
struct Hold {
    lock: String,
    token: u64,
    writes_left: u32,
    /// Stall past the lease before the write made with this many left.
    stall_at: Option<u32>,
}

/// Runs one lock client until the deadline.
pub async fn run_client(plan: ClientPlan, recorder: Recorder, values: &AtomicU64) {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ plan.client.wrapping_mul(0x9e37_79b9));
    let mut client = Client::new(plan.addrs.clone(), plan.client as usize, plan.timeout);
    let mut process = plan.client;
    let mut hold: Option<Hold> = None;
    let mut ticker = tokio::time::interval(plan.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < plan.deadline && !recorder.is_full() {
        ticker.tick().await;
        let (kind, next) = match hold.take() {
            None => {
                let lock = lock_name(rng.random_range(0..LOCKS));
                let (kind, token) = acquire(&mut client, &recorder, process, &lock).await;
                let next = token.map(|token| {
                    let writes = rng.random_range(1..=WRITES_MAX);
                    Hold {
                        lock,
                        token,
                        writes_left: writes,
                        stall_at: rng
                            .random_ratio(1, PAUSE_ONE_IN)
                            .then(|| rng.random_range(1..=writes)),
                    }
                });
                (kind, next)
            }
            Some(held) if held.writes_left == 0 => {
                if rng.random_ratio(1, WALK_AWAY_ONE_IN) {
                    continue;
                }
                let op = Op::LockRelease {
                    lock: held.lock.clone(),
                    token: held.token,
                };
                let mut cmd = redis::cmd("LOCK");
                cmd.arg("RELEASE").arg(&held.lock).arg(held.token);
                (
                    simple(&mut client, &recorder, process, op, &cmd).await,
                    None,
                )
            }
            Some(mut held) => {
                let stall = held.stall_at == Some(held.writes_left);
                if stall {
                    held.stall_at = None;
                    tokio::time::sleep(Duration::from_millis(LEASE_MS + PAUSE_PAST_LEASE_MS)).await;
                }
                // A stalled holder writes at once, believing it still
                // holds the lock.
                let refresh = !stall && rng.random_ratio(1, REFRESH_ONE_IN);
                let kind = if refresh {
                    let op = Op::LockRefresh {
                        lock: held.lock.clone(),
                        token: held.token,
                    };
                    let mut cmd = redis::cmd("LOCK");
                    cmd.arg("REFRESH")
                        .arg(&held.lock)
                        .arg(held.token)
                        .arg(LEASE_MS);
                    simple(&mut client, &recorder, process, op, &cmd).await
                } else {
                    let element = values.fetch_add(1, Ordering::Relaxed);
                    held.writes_left -= 1;
                    fenced_push(&mut client, &recorder, process, &held, element).await
                };
                (kind, (kind == Kind::Ok).then_some(held))
            }
        };
        hold = next;
        if kind == Kind::Info {
            // The operation stays open forever; this client goes on as a
            // new process (and owner), leaving whatever it held.
            process += plan.clients;
            hold = None;
        }
    }
}

/// LOCK ACQUIRE of `lock` by this process; returns the completion's kind
/// and the token when granted.
async fn acquire(
    client: &mut Client,
    recorder: &Recorder,
    process: u64,
    lock: &str,
) -> (Kind, Option<u64>) {
    let owner = format!("c{process}");
    let mut cmd = redis::cmd("LOCK");
    cmd.arg("ACQUIRE").arg(lock).arg(&owner).arg(LEASE_MS);
    let op = |token| Op::LockAcquire {
        lock: lock.to_owned(),
        owner: owner.clone(),
        token,
    };
    let parse = |reply: Value| match reply {
        Value::Int(token) => u64::try_from(token)
            .map(|token| op(Some(token)))
            .map_err(|_| format!("a negative token {token}")),
        Value::Nil => Ok(op(None)),
        other => Err(format!("unexpected ACQUIRE reply {other:?}")),
    };
    match call(client, recorder, process, op(None), &cmd, parse).await {
        (Kind::Ok, Op::LockAcquire { token, .. }) => (Kind::Ok, token),
        (kind, _) => (kind, None),
    }
}

/// FENCED RPUSH of `element` to the list `held` guards.
async fn fenced_push(
    client: &mut Client,
    recorder: &Recorder,
    process: u64,
    held: &Hold,
    element: u64,
) -> Kind {
    let op = Op::FencedPush {
        lock: held.lock.clone(),
        token: held.token,
        element,
    };
    let mut cmd = redis::cmd("FENCED");
    cmd.arg(&held.lock).arg(held.token).arg("RPUSH");
    cmd.arg(guarded_list(&held.lock)).arg(element);
    let parse = |reply: Value| match reply {
        Value::Int(_) => Ok(op.clone()),
        other => Err(format!("unexpected FENCED RPUSH reply {other:?}")),
    };
    call(client, recorder, process, op.clone(), &cmd, parse)
        .await
        .0
}

/// A command answered `OK` (REFRESH, RELEASE).
async fn simple(
    client: &mut Client,
    recorder: &Recorder,
    process: u64,
    op: Op,
    cmd: &redis::Cmd,
) -> Kind {
    let parse = |reply: Value| match reply {
        Value::Okay => Ok(op.clone()),
        Value::SimpleString(text) if text == "OK" => Ok(op.clone()),
        other => Err(format!("unexpected reply {other:?}")),
    };
    call(client, recorder, process, op.clone(), cmd, parse)
        .await
        .0
}

/// Reads every guarded list whole, by processes numbered from
/// `process_base`.
///
/// # Errors
/// Returns an error if a list's read never succeeds.
pub async fn final_read(
    client: &mut Client,
    recorder: &Recorder,
    process_base: u64,
) -> anyhow::Result<()> {
    let lists: Vec<String> = (0..LOCKS).map(|n| guarded_list(&lock_name(n))).collect();
    let lists: Vec<&str> = lists.iter().map(String::as_str).collect();
    step::read_lists(client, recorder, process_base, &lists).await
}
