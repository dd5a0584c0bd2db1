//! The eventual workload: the run first sets an eventual namespace
//! (`ev:`, N=3 with the W and R asked for) through the admin API and
//! waits until every node lists it; when the hint-window fault is among
//! the faults, it also sets `eventual-hint-window-ms` to
//! [`HINT_WINDOW_MS`]. Then each client draws from the seed, for every
//! step, a node to send it to (so that a SET and the DEL after it, or an
//! SADD and its SREM, often meet different coordinators; a connection to
//! a node that fails moves on to the next node), and one of:
//!
//! - SET of a unique value to one of `keys` registers (`ev:r:<n>`);
//! - INCRBY of a positive delta to one of `keys` counters (`ev:c:<n>`);
//! - SADD of a unique element to one of `keys` sets (`ev:s:<n>`), and now
//!   and then SREM of an element this client saw added, recording what
//!   SREM answered (1, or 0 when its node had not received the add);
//! - SET of a key it alone writes (`ev:d:<client>:<n>`), then, a later
//!   step, DEL of it, recording what DEL answered; never written again.
//!
//! A reply `OUTCOMEUNKNOWN` (fewer than W replicas acknowledged in time:
//! the write is kept on its coordinator and spreads later) is unknown,
//! like a timeout or a broken connection; TRYAGAIN and other refusals
//! come before anything is applied, so they are failures. After healing,
//! [`super::eventual_final`] waits for the nodes to converge and reads
//! every key from every node.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use polis_client::admin_namespaces::{self, NamespaceSettings};
use polis_client::resp::{Client, Outcome};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::{Cmd, Value};
use tokio::time::Instant;

use super::ClientPlan;
use crate::history::{Kind, Op};
use crate::recorder::Recorder;

/// The eventual namespace's prefix: every key of the workload.
pub const PREFIX: &str = "ev:";

/// Replicas of every eventual key (N).
pub const REPLICAS: u8 = 3;

/// The hint window the workload sets when the hint-window fault runs: a
/// node isolated longer than this gets no hints.
pub const HINT_WINDOW_MS: u64 = 500;

/// The largest delta one INCRBY adds.
const DELTA_MAX: u64 = 100;

/// Elements a client keeps as candidates for SREM at most (past it,
/// new adds are not kept).
const ADDED_KEPT_MAX: usize = 10_000;

/// Attempts at a namespace change before the run gives up.
const ATTEMPTS_MAX: usize = 20;

/// Returns register `index`'s key.
pub fn register_key(index: u32) -> String {
    format!("{PREFIX}r:{index}")
}

/// Returns counter `index`'s key.
pub fn counter_key(index: u32) -> String {
    format!("{PREFIX}c:{index}")
}

/// Returns set `index`'s key.
pub fn set_key(index: u32) -> String {
    format!("{PREFIX}s:{index}")
}

/// Returns the `n`th key `client` sets and then deletes.
pub fn deleted_key(client: u64, n: u64) -> String {
    format!("{PREFIX}d:{client}:{n}")
}

/// What one client remembers between steps.
struct ClientState {
    process: u64,
    /// Elements this client saw added, not yet removed: (set, element).
    added: Vec<(String, u64)>,
    /// The key this client set and has yet to delete.
    to_delete: Option<String>,
    /// Keys set to be deleted so far.
    deleted: u64,
}

/// Runs one client until the deadline.
pub async fn run_client(plan: ClientPlan, keys: u32, recorder: Recorder, values: Arc<AtomicU64>) {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ plan.client.wrapping_mul(0x9e37_79b9));
    // One client per node, each starting there.
    let mut clients: Vec<Client> = (0..plan.addrs.len().max(1))
        .map(|start| Client::new(plan.addrs.clone(), start, plan.timeout))
        .collect();
    let mut state = ClientState {
        process: plan.client,
        added: Vec::new(),
        to_delete: None,
        deleted: 0,
    };
    let keys = keys.max(1);
    let mut ticker = tokio::time::interval(plan.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < plan.deadline && !recorder.is_full() {
        ticker.tick().await;
        let op = next_op(&mut rng, keys, &values, &mut state, plan.client);
        let at = rng.random_range(0..clients.len());
        let (kind, seen) = call(&mut clients[at], &recorder, state.process, op).await;
        if let (Kind::Ok, Op::EventualSadd { key, element, .. }) = (kind, seen) {
            if state.added.len() < ADDED_KEPT_MAX {
                state.added.push((key, element));
            }
        }
        if kind == Kind::Info {
            // The operation stays open forever; this client goes on as a
            // new process, as a real client would with a new connection.
            state.process += plan.clients;
        }
    }
}

/// Draws the next operation.
fn next_op(
    rng: &mut StdRng,
    keys: u32,
    values: &AtomicU64,
    state: &mut ClientState,
    client: u64,
) -> Op {
    let unique = || values.fetch_add(1, Ordering::Relaxed);
    let roll = rng.random_range(0..20);
    match roll {
        0..=5 => Op::EventualSet {
            key: register_key(rng.random_range(0..keys)),
            value: unique(),
            node: None,
        },
        6..=10 => Op::EventualIncrby {
            key: counter_key(rng.random_range(0..keys)),
            delta: rng.random_range(1..=DELTA_MAX),
            value: None,
            node: None,
        },
        15..=16 if !state.added.is_empty() => {
            let (key, element) = state
                .added
                .swap_remove(rng.random_range(0..state.added.len()));
            Op::EventualSrem {
                key,
                element,
                removed: None,
                node: None,
            }
        }
        17..=19 => match state.to_delete.take() {
            Some(key) => Op::EventualDel {
                key,
                removed: None,
                node: None,
            },
            None => {
                state.deleted += 1;
                let key = deleted_key(client, state.deleted);
                state.to_delete = Some(key.clone());
                Op::EventualSet {
                    key,
                    value: unique(),
                    node: None,
                }
            }
        },
        _ => Op::EventualSadd {
            key: set_key(rng.random_range(0..keys)),
            element: unique(),
            node: None,
        },
    }
}

/// Returns the command that runs `op`.
fn command(op: &Op) -> Option<Cmd> {
    let mut cmd;
    match op {
        Op::EventualSet { key, value, .. } => {
            cmd = redis::cmd("SET");
            cmd.arg(key).arg(value.to_string());
        }
        Op::EventualIncrby { key, delta, .. } => {
            cmd = redis::cmd("INCRBY");
            cmd.arg(key).arg(*delta);
        }
        Op::EventualSadd { key, element, .. } => {
            cmd = redis::cmd("SADD");
            cmd.arg(key).arg(element.to_string());
        }
        Op::EventualSrem { key, element, .. } => {
            cmd = redis::cmd("SREM");
            cmd.arg(key).arg(element.to_string());
        }
        Op::EventualDel { key, .. } => {
            cmd = redis::cmd("DEL");
            cmd.arg(key);
        }
        _ => return None,
    }
    Some(cmd)
}

/// Returns `op` with the node it went to, `node`.
fn sent_to(op: &Op, node: Option<String>) -> Op {
    let mut op = op.clone();
    match &mut op {
        Op::EventualSet { node: at, .. }
        | Op::EventualIncrby { node: at, .. }
        | Op::EventualSadd { node: at, .. }
        | Op::EventualSrem { node: at, .. }
        | Op::EventualDel { node: at, .. } => *at = node,
        _ => {}
    }
    op
}

/// Returns `op` (already naming its node) completed with what `reply`
/// says, or why the reply is not what the command answers.
fn complete(op: Op, reply: Value) -> Result<Op, String> {
    let integer = |reply: &Value| match reply {
        Value::Int(number) => Some(*number),
        _ => None,
    };
    let count = |reply: &Value| integer(reply).and_then(|n| u64::try_from(n).ok());
    let mut op = op;
    let fits = match (&mut op, &reply) {
        (Op::EventualSet { .. }, Value::Okay) => true,
        (Op::EventualSet { .. }, Value::SimpleString(text)) => text == "OK",
        (Op::EventualSadd { .. }, reply) => count(reply).is_some(),
        (Op::EventualIncrby { value, .. }, reply) => {
            *value = integer(reply);
            value.is_some()
        }
        (Op::EventualSrem { removed, .. } | Op::EventualDel { removed, .. }, reply) => {
            *removed = count(reply);
            removed.is_some()
        }
        _ => false,
    };
    if fits {
        Ok(op)
    } else {
        Err(format!("unexpected reply {reply:?}"))
    }
}

/// Returns whether a refusal says the write's outcome is unknown: it
/// reached fewer replicas than W in time, yet stays on its coordinator
/// and may spread.
pub fn outcome_unknown(error: &str) -> bool {
    error.contains("OUTCOMEUNKNOWN")
}

/// Records `op` invoked by `process`, runs it, and records how it ended;
/// returns the completion's kind and op.
async fn call(client: &mut Client, recorder: &Recorder, process: u64, op: Op) -> (Kind, Op) {
    recorder.record(process, Kind::Invoke, op.clone(), None);
    let first = client.current_addr().map(str::to_owned);
    let outcome = match command(&op) {
        Some(cmd) => client.call(&cmd).await,
        None => Outcome::Fail(format!("no command runs {op:?}")),
    };
    // After a reply the client is still on the node that gave it.
    let answered = sent_to(&op, client.current_addr().map(str::to_owned));
    let op = sent_to(&op, first);
    let (kind, completed, error) = match outcome {
        Outcome::Ok(reply) => match complete(answered, reply) {
            Ok(seen) => (Kind::Ok, seen, None),
            Err(error) => (Kind::Info, op, Some(error)),
        },
        // polis-client counts an error it does not know as a refusal.
        Outcome::Fail(error) if outcome_unknown(&error) => (Kind::Info, op, Some(error)),
        Outcome::Fail(error) => (Kind::Fail, op, Some(error)),
        Outcome::Unknown(error) => (Kind::Info, op, Some(error)),
    };
    recorder.record(process, kind, completed.clone(), error);
    (kind, completed)
}

/// Sets the workload's namespace (N=3, `write_quorum`, `read_quorum`)
/// through any node of `admins` and waits until every node lists it;
/// then, if `hint_window`, sets the hint window through `resp`.
///
/// # Errors
/// Returns an error if that does not happen within `timeout`.
pub async fn configure(
    resp: &[String],
    admins: &[String],
    (write_quorum, read_quorum): (u8, u8),
    hint_window: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    set_quorums(admins, (write_quorum, read_quorum), timeout).await?;
    if hint_window {
        set_hint_window(resp, HINT_WINDOW_MS)
            .await
            .context("setting the hint window")?;
    }
    Ok(())
}

/// Sets the namespace of [`PREFIX`] with `quorums` (W, R) and waits until
/// every node of `admins` lists it so.
///
/// # Errors
/// Returns an error if that does not happen within `timeout`.
pub async fn set_quorums(
    admins: &[String],
    (write_quorum, read_quorum): (u8, u8),
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let settings = NamespaceSettings {
        prefix: PREFIX,
        consistency: "eventual",
        quorums: Some((REPLICAS, write_quorum, read_quorum)),
        maxmemory_bytes: None,
        maxmemory_policy: None,
    };
    let mut last_error = String::from("no node to ask");
    let mut set = false;
    for attempt in 0..ATTEMPTS_MAX {
        let Some(addr) = admins.get(attempt % admins.len().max(1)) else {
            break;
        };
        match admin_namespaces::set_namespace(addr, settings).await {
            Ok(_) => {
                set = true;
                break;
            }
            Err(error) => last_error = format!("{error:#}"),
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !set {
        bail!("setting the namespace {PREFIX}: {last_error}");
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let listed = polis_client::poll::until(left, Duration::from_millis(100), || async {
        for addr in admins {
            let namespaces = admin_namespaces::namespaces(addr).await.ok()?;
            namespaces
                .iter()
                .any(|namespace| {
                    namespace["prefix"] == PREFIX
                        && namespace["consistency"] == "eventual"
                        && namespace["replicas"] == REPLICAS
                        && namespace["write_quorum"] == write_quorum
                        && namespace["read_quorum"] == read_quorum
                })
                .then_some(())?;
        }
        Some(())
    })
    .await;
    listed.with_context(|| {
        format!("not every node listed {PREFIX} with W={write_quorum} R={read_quorum} in time")
    })
}

/// Sets `eventual-hint-window-ms` to `window_ms` with CONFIG SET through
/// any node of `resp`, which sets it on every node (OK only when each
/// took it).
///
/// # Errors
/// Returns the last refusal if no node set it everywhere.
pub async fn set_hint_window(resp: &[String], window_ms: u64) -> anyhow::Result<()> {
    let mut client = Client::new(resp.to_vec(), 0, Duration::from_secs(5));
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("SET").arg("eventual-hint-window-ms").arg(window_ms);
    let mut last_error = String::new();
    for _ in 0..resp.len().max(1) * 2 {
        match client.call(&cmd).await {
            Outcome::Ok(_) => return Ok(()),
            Outcome::Fail(error) | Outcome::Unknown(error) => last_error = error,
        }
        client.rotate();
    }
    bail!("CONFIG SET eventual-hint-window-ms {window_ms}: {last_error}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn replies_complete_the_operations() {
        let at = |op: &Op| sent_to(op, Some("n1".into()));
        let srem = Op::EventualSrem {
            key: set_key(1),
            element: 7,
            removed: None,
            node: None,
        };
        let completed = complete(at(&srem), Value::Int(0)).unwrap();
        assert!(matches!(
            completed,
            Op::EventualSrem { removed: Some(0), node: Some(ref n), .. } if n == "n1"
        ));
        let incrby = Op::EventualIncrby {
            key: counter_key(0),
            delta: 3,
            value: None,
            node: None,
        };
        let completed = complete(at(&incrby), Value::Int(42)).unwrap();
        assert!(matches!(
            completed,
            Op::EventualIncrby {
                value: Some(42),
                ..
            }
        ));
        let set = Op::EventualSet {
            key: register_key(2),
            value: 9,
            node: None,
        };
        assert_eq!(complete(at(&set), Value::Okay).unwrap(), at(&set));
        assert!(complete(at(&set), Value::Int(1)).is_err());
        assert!(complete(at(&srem), Value::Nil).is_err());
        let del = Op::EventualDel {
            key: deleted_key(3, 4),
            removed: None,
            node: None,
        };
        assert!(matches!(
            complete(at(&del), Value::Int(1)).unwrap(),
            Op::EventualDel {
                removed: Some(1),
                ..
            }
        ));
    }

    #[test]
    fn a_short_quorum_is_unknown_and_every_key_is_in_the_namespace() {
        assert!(outcome_unknown(
            "OUTCOMEUNKNOWN: the write reached 1 of the 2 replicas its write quorum needs"
        ));
        assert!(!outcome_unknown(
            "TRYAGAIN: the read reached 1 of the 2 replicas"
        ));
        for key in [
            register_key(1),
            counter_key(1),
            set_key(1),
            deleted_key(1, 1),
        ] {
            assert!(key.starts_with(PREFIX), "{key}");
        }
        assert_ne!(deleted_key(1, 12), deleted_key(11, 2));
    }

    #[test]
    fn a_client_removes_only_what_it_saw_added_and_deletes_what_it_set() {
        let mut rng = StdRng::seed_from_u64(5);
        let values = AtomicU64::new(1);
        let mut state = ClientState {
            process: 0,
            added: Vec::new(),
            to_delete: None,
            deleted: 0,
        };
        let mut set_then_deleted = 0;
        for _ in 0..2_000 {
            match next_op(&mut rng, 3, &values, &mut state, 4) {
                Op::EventualSrem { .. } => panic!("an SREM of nothing this client added"),
                Op::EventualDel { key, .. } => {
                    assert!(key.starts_with("ev:d:4:"));
                    set_then_deleted += 1;
                }
                _ => {}
            }
        }
        assert!(set_then_deleted > 50);
        state.added.push((set_key(0), 77));
        let removed = (0..200).find_map(|_| match next_op(&mut rng, 3, &values, &mut state, 4) {
            Op::EventualSrem { key, element, .. } => Some((key, element)),
            _ => None,
        });
        assert_eq!(removed, Some((set_key(0), 77)));
        assert!(state.added.is_empty());
    }
}
