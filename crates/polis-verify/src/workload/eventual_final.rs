//! The eventual workload's end, after healing: how long until the nodes
//! converge, and every key read from every node alone.
//!
//! ```text
//!  healed ─┬─ wait until every node's GET /eventual shows the same keys
//!          │  and digest (polled every 100 ms, at most the recovery
//!          │  timeout): one recorded operation, `eventual-converge`
//!          └─ read quorum set to 1 (each node answers from its own state)
//!             ─> every key from every node: the reads before converging
//!  converged ─> every key from every node again: the final reads
//! ```
//!
//! Strings (registers, counters, deleted keys) are read with GET, sets
//! with SMEMBERS, each from one node through a client that talks to that
//! node only.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{bail, Context};
use polis_client::admin;
use polis_client::resp::{Client, Outcome};
use redis::Value;
use tokio::time::Instant;

use super::eventual::set_quorums;
use crate::final_read::FINAL_PROCESS_BASE;
use crate::history::{Kind, Op};
use crate::recorder::Recorder;

/// Process of the wait for convergence, after the final reads' processes
/// (`FINAL_PROCESS_BASE + converged << 36 + node << 32 + attempt << 24 + key`).
const CONVERGE_PROCESS: u64 = FINAL_PROCESS_BASE + (1 << 38);

/// Nodes read at most (the process numbers leave room for 16).
const NODES_MAX: usize = 16;

/// Keys read at most from each node (the process numbers leave room for
/// 2^24).
const KEYS_MAX: usize = 1 << 24;

/// Attempts at each final read before the run gives up.
const ATTEMPTS_MAX: u64 = 20;

/// Attempts at each read before converging (they only count divergence).
const ATTEMPTS_BEFORE_MAX: u64 = 3;

/// How often the nodes' digests are compared.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// How long one node's `GET /eventual` may take.
const VIEW_TIMEOUT: Duration = Duration::from_secs(2);

/// What the run needs for the final phase.
pub struct FinalPlan {
    /// RESP addresses, one per node.
    pub nodes: Vec<String>,
    /// Admin addresses, one per node.
    pub admins: Vec<String>,
    /// The namespace's (W, R).
    pub quorums: (u8, u8),
    /// How long a read may take.
    pub timeout: Duration,
    /// How long the nodes may take to converge.
    pub recovery_timeout: Duration,
}

/// Waits for convergence and reads every key the history wrote from
/// every node, as described in the module documentation.
///
/// # Errors
/// Returns an error if the read quorum cannot be set or a final read
/// never succeeds; not converging is the checker's to report.
pub async fn run(plan: &FinalPlan, recorder: &Recorder) -> anyhow::Result<()> {
    anyhow::ensure!(
        !plan.nodes.is_empty() && plan.nodes.len() <= NODES_MAX,
        "the eventual workload reads from 1 to {NODES_MAX} nodes, not {}",
        plan.nodes.len()
    );
    let keys = written_keys(recorder);
    anyhow::ensure!(keys.len() <= KEYS_MAX, "{} keys to read", keys.len());
    let converging = tokio::spawn(wait_converged(
        plan.admins.clone(),
        recorder.clone(),
        plan.recovery_timeout,
    ));
    let (write_quorum, read_quorum) = plan.quorums;
    if read_quorum != 1 {
        set_quorums(&plan.admins, (write_quorum, 1), plan.recovery_timeout)
            .await
            .context("setting the read quorum to 1 for the final reads")?;
    }
    // Only counted: a node may not answer yet.
    let _ = read_every_node(plan, &keys, recorder, false).await;
    let converged = converging
        .await
        .context("the wait for convergence failed")?;
    if !converged {
        println!("polis verify: the nodes' eventual digests still differ; reading anyway");
    }
    read_every_node(plan, &keys, recorder, true).await
}

/// Returns every key the history wrote, and whether it is a set.
fn written_keys(recorder: &Recorder) -> Vec<(String, bool)> {
    let keys: BTreeSet<(String, bool)> = recorder
        .events()
        .into_iter()
        .filter(|event| event.kind == Kind::Invoke)
        .filter_map(|event| match event.op {
            Op::EventualSet { key, .. }
            | Op::EventualIncrby { key, .. }
            | Op::EventualDel { key, .. } => Some((key, false)),
            Op::EventualSadd { key, .. } | Op::EventualSrem { key, .. } => Some((key, true)),
            _ => None,
        })
        .collect();
    keys.into_iter().collect()
}

/// What each node showed: its address and keys and digest, or why not.
type Views = Vec<(String, Result<(u64, String), String>)>;

/// Asks every node of `admins` for its `GET /eventual` at once.
async fn views(admins: &[String]) -> Views {
    let asks: Vec<_> = admins
        .iter()
        .map(|addr| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let (code, body) = admin::get(&addr, "/eventual", VIEW_TIMEOUT)
                    .await
                    .map_err(|error| format!("{error:#}"))?;
                if code != 200 {
                    return Err(format!("GET /eventual answered {code}"));
                }
                let view: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|error| error.to_string())?;
                match (view["keys"].as_u64(), view["digest"].as_str()) {
                    (Some(keys), Some(digest)) => Ok((keys, digest.to_owned())),
                    _ => Err(format!("GET /eventual answered {view}")),
                }
            })
        })
        .collect();
    let mut views = Vec::with_capacity(asks.len());
    for (addr, ask) in admins.iter().zip(asks) {
        let view = ask.await.unwrap_or_else(|error| Err(error.to_string()));
        views.push((addr.clone(), view));
    }
    views
}

/// Returns the keys and digest every node showed, if they all showed the
/// same.
fn agreed(views: &Views) -> Option<(u64, String)> {
    let mut shown = views.iter().map(|(_, view)| view.as_ref().ok());
    let first = shown.next()??;
    shown.all(|view| view == Some(first)).then(|| first.clone())
}

/// Renders what each node showed, for a report.
fn describe(views: &Views) -> String {
    let shown: Vec<String> = views
        .iter()
        .map(|(addr, view)| match view {
            Ok((keys, digest)) => format!("{addr}: {keys} keys, digest {digest}"),
            Err(error) => format!("{addr}: {error}"),
        })
        .collect();
    shown.join("; ")
}

/// Polls every node's `GET /eventual` until they show the same keys and
/// digest, recorded as one operation; returns whether they did within
/// `timeout`.
async fn wait_converged(admins: Vec<String>, recorder: Recorder, timeout: Duration) -> bool {
    let op = |keys, digest| Op::EventualConverge { keys, digest };
    recorder.record(CONVERGE_PROCESS, Kind::Invoke, op(None, None), None);
    let deadline = Instant::now() + timeout;
    let mut poll = tokio::time::interval(POLL_EVERY);
    loop {
        poll.tick().await;
        let views = views(&admins).await;
        if let Some((keys, digest)) = agreed(&views) {
            let converged = op(Some(keys), Some(digest));
            recorder.record(CONVERGE_PROCESS, Kind::Ok, converged, None);
            return true;
        }
        if Instant::now() >= deadline {
            let error = format!(
                "the nodes' digests still differed after {timeout:?}: {}",
                describe(&views)
            );
            recorder.record(CONVERGE_PROCESS, Kind::Fail, op(None, None), Some(error));
            return false;
        }
    }
}

/// Reads every key from every node, the nodes at once.
///
/// # Errors
/// Returns an error naming a key some node never answered for.
async fn read_every_node(
    plan: &FinalPlan,
    keys: &[(String, bool)],
    recorder: &Recorder,
    converged: bool,
) -> anyhow::Result<()> {
    let reads: Vec<_> = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(position, node)| {
            let reader = NodeReader {
                client: Client::new(vec![node.clone()], 0, plan.timeout),
                node: node.clone(),
                recorder: recorder.clone(),
                converged,
                process_base: FINAL_PROCESS_BASE
                    + (u64::from(converged) << 36)
                    + ((position as u64) << 32),
            };
            let keys = keys.to_vec();
            tokio::spawn(reader.read_all(keys))
        })
        .collect();
    let mut first_error = None;
    for read in reads {
        let outcome = read.await.context("a final read task failed")?;
        if let Err(error) = outcome {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Reads keys from one node.
struct NodeReader {
    client: Client,
    node: String,
    recorder: Recorder,
    converged: bool,
    process_base: u64,
}

impl NodeReader {
    async fn read_all(mut self, keys: Vec<(String, bool)>) -> anyhow::Result<()> {
        let attempts = if self.converged {
            ATTEMPTS_MAX
        } else {
            ATTEMPTS_BEFORE_MAX
        };
        for (number, (key, set)) in keys.iter().enumerate() {
            let mut done = false;
            for attempt in 0..attempts {
                let process = self.process_base + (attempt << 24) + number as u64;
                if self.read(process, key, *set).await {
                    done = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if !done {
                bail!("node {} never answered the final read of {key}", self.node);
            }
        }
        Ok(())
    }

    /// Reads `key` once, recorded; returns whether it succeeded.
    async fn read(&mut self, process: u64, key: &str, set: bool) -> bool {
        let (node, converged) = (self.node.clone(), self.converged);
        let (op, cmd) = if set {
            let mut cmd = redis::cmd("SMEMBERS");
            cmd.arg(key);
            let op = Op::EventualMembers {
                key: key.to_owned(),
                node,
                converged,
                members: None,
            };
            (op, cmd)
        } else {
            let mut cmd = redis::cmd("GET");
            cmd.arg(key);
            let op = Op::EventualGet {
                key: key.to_owned(),
                node,
                converged,
                value: None,
            };
            (op, cmd)
        };
        self.recorder
            .record(process, Kind::Invoke, op.clone(), None);
        let (kind, completed, error) = match self.client.call(&cmd).await {
            Outcome::Ok(reply) => match answered(op.clone(), reply) {
                Ok(seen) => (Kind::Ok, seen, None),
                Err(error) => (Kind::Fail, op, Some(error)),
            },
            Outcome::Fail(error) => (Kind::Fail, op, Some(error)),
            Outcome::Unknown(error) => (Kind::Info, op, Some(error)),
        };
        self.recorder.record(process, kind, completed, error);
        kind == Kind::Ok
    }
}

/// Returns a read completed with its reply, or why the reply is not what
/// GET or SMEMBERS answers.
fn answered(op: Op, reply: Value) -> Result<Op, String> {
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    };
    match (op, &reply) {
        (
            Op::EventualGet {
                key,
                node,
                converged,
                ..
            },
            Value::Nil,
        ) => Ok(Op::EventualGet {
            key,
            node,
            converged,
            value: None,
        }),
        (
            Op::EventualGet {
                key,
                node,
                converged,
                ..
            },
            value,
        ) if text(value).is_some() => Ok(Op::EventualGet {
            key,
            node,
            converged,
            value: text(value),
        }),
        (
            Op::EventualMembers {
                key,
                node,
                converged,
                ..
            },
            Value::Array(items) | Value::Set(items),
        ) => {
            let members: Option<Vec<String>> = items.iter().map(text).collect();
            let members = members.ok_or_else(|| format!("unexpected SMEMBERS reply {reply:?}"))?;
            Ok(Op::EventualMembers {
                key,
                node,
                converged,
                members: Some(members),
            })
        }
        _ => Err(format!("unexpected reply {reply:?}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn view(keys: u64, digest: &str) -> Result<(u64, String), String> {
        Ok((keys, digest.to_owned()))
    }

    #[test]
    fn nodes_agree_only_when_every_one_shows_the_same() {
        let same: Views = vec![("a".into(), view(3, "ab")), ("b".into(), view(3, "ab"))];
        assert_eq!(agreed(&same), Some((3, "ab".to_owned())));
        let digest: Views = vec![("a".into(), view(3, "ab")), ("b".into(), view(3, "cd"))];
        assert_eq!(agreed(&digest), None);
        let keys: Views = vec![("a".into(), view(3, "ab")), ("b".into(), view(2, "ab"))];
        assert_eq!(agreed(&keys), None);
        let down: Views = vec![
            ("a".into(), view(3, "ab")),
            ("b".into(), Err("down".into())),
        ];
        assert_eq!(agreed(&down), None);
        assert!(describe(&down).contains("b: down"));
        assert_eq!(agreed(&Vec::new()), None);
    }

    #[test]
    fn replies_become_reads() {
        let get = Op::EventualGet {
            key: super::super::eventual::register_key(0),
            node: "n1".into(),
            converged: true,
            value: None,
        };
        let bulk = Value::BulkString(b"12".to_vec());
        assert!(matches!(
            answered(get.clone(), bulk).unwrap(),
            Op::EventualGet { value: Some(v), .. } if v == "12"
        ));
        assert_eq!(answered(get.clone(), Value::Nil).unwrap(), get);
        assert!(answered(get, Value::Int(1)).is_err());
        let members = Op::EventualMembers {
            key: super::super::eventual::set_key(0),
            node: "n1".into(),
            converged: false,
            members: None,
        };
        let reply = Value::Set(vec![Value::BulkString(b"4".to_vec())]);
        assert!(matches!(
            answered(members, reply).unwrap(),
            Op::EventualMembers { members: Some(m), .. } if m == ["4"]
        ));
    }
}
