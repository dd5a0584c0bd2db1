//! The reads after healing: every register once, the whole set, the
//! queue's drain, the pop workload's lists, every list of the append
//! workload, every list the lock workload's locks guard, every key of the
//! change-feed workload and its feed, every key of the eventual workload
//! from every node once they converged.
//! They are ordinary operations in the history, so the checkers judge
//! them like any other.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::bail;
use polis_client::resp::{Client, Outcome};
use redis::Value;

use crate::history::{Kind, Op};
use crate::recorder::Recorder;
use crate::run::RunConfig;
use crate::target::Target;
use crate::workload::eventual_final::{self, FinalPlan};
use crate::workload::{self, changefeed, lock, pop, queue, register_key, Workload, SET_PREFIX};

/// Final reads run as processes numbered from here, apart from clients.
pub const FINAL_PROCESS_BASE: u64 = 1 << 40;

/// Attempts at a final read before the run gives up on it.
const ATTEMPTS_MAX: usize = 20;

/// Elements asked for in one MGET.
const MGET_BATCH: usize = 1_000;

/// Reads back what the workload wrote, through `leader` first.
///
/// # Errors
/// Returns an error if the target never answers a final read.
pub async fn run(
    config: &RunConfig,
    target: &Target,
    leader: &str,
    recorder: &Recorder,
) -> anyhow::Result<()> {
    let mut addrs = vec![leader.to_owned()];
    addrs.extend(target.client_addrs().into_iter().filter(|a| a != leader));
    let mut client = Client::new(addrs.clone(), 0, config.timeout);
    match config.workload {
        Workload::Register { keys, .. } => {
            for (index, key) in (0..keys).map(|k| (u64::from(k), register_key(k))) {
                let process = FINAL_PROCESS_BASE + index;
                read_register(&mut client, recorder, process, &key).await?;
            }
            Ok(())
        }
        Workload::Set => read_set(&mut client, recorder).await,
        Workload::Queue { mode } => {
            queue::final_drain(&mut client, mode, recorder, FINAL_PROCESS_BASE).await
        }
        Workload::Pop => pop::final_read(&mut client, recorder, FINAL_PROCESS_BASE).await,
        Workload::Lock => lock::final_read(&mut client, recorder, FINAL_PROCESS_BASE).await,
        Workload::Append { .. } => {
            workload::append::final_read(addrs, config.timeout, recorder, FINAL_PROCESS_BASE).await
        }
        Workload::Changefeed { .. } => {
            let admins = target.admin_addrs().unwrap_or_default();
            let deadline = tokio::time::Instant::now() + config.recovery_timeout;
            if !changefeed::wait_drained(&admins, deadline).await {
                println!("polis verify: change feed outboxes still hold events; reading anyway");
            }
            let stream = changefeed::FEED_STREAM;
            changefeed::final_read(&mut client, recorder, stream, FINAL_PROCESS_BASE).await
        }
        Workload::Eventual {
            write_quorum,
            read_quorum,
            ..
        } => {
            let plan = FinalPlan {
                nodes: target.client_addrs(),
                admins: target.admin_addrs().unwrap_or_default(),
                quorums: (write_quorum, read_quorum),
                timeout: config.timeout,
                recovery_timeout: config.recovery_timeout,
            };
            eventual_final::run(&plan, recorder).await
        }
    }
}

async fn read_register(
    client: &mut Client,
    recorder: &Recorder,
    process: u64,
    key: &str,
) -> anyhow::Result<()> {
    let mut cmd = redis::cmd("GET");
    cmd.arg(key);
    for attempt in 0..ATTEMPTS_MAX {
        let invoke = Op::Read {
            key: key.to_owned(),
            value: None,
        };
        let process = process + (attempt as u64) * (1 << 20);
        recorder.record(process, Kind::Invoke, invoke.clone(), None);
        match client.call(&cmd).await {
            Outcome::Ok(reply) => {
                let value = match reply {
                    Value::Nil => None,
                    Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).parse().ok(),
                    other => bail!("final read of {key}: unexpected reply {other:?}"),
                };
                let read = Op::Read {
                    key: key.to_owned(),
                    value,
                };
                recorder.record(process, Kind::Ok, read, None);
                return Ok(());
            }
            Outcome::Fail(error) => recorder.record(process, Kind::Fail, invoke, Some(error)),
            Outcome::Unknown(error) => recorder.record(process, Kind::Info, invoke, Some(error)),
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the final read of {key} never succeeded")
}

/// Reads the set: MGET of every element ever attempted (keyed reads are
/// linearizable in polis and follow MOVED), plus KEYS to find elements
/// that no client wrote.
async fn read_set(client: &mut Client, recorder: &Recorder) -> anyhow::Result<()> {
    let attempted: Vec<u64> = recorder
        .events()
        .iter()
        .filter_map(|event| match (&event.kind, &event.op) {
            (Kind::Invoke, Op::Add { element }) => Some(*element),
            _ => None,
        })
        .collect();
    let process = FINAL_PROCESS_BASE;
    recorder.record(process, Kind::Invoke, Op::ReadAll { elements: None }, None);
    let mut found = BTreeSet::new();
    for batch in attempted.chunks(MGET_BATCH) {
        let mut cmd = redis::cmd("MGET");
        for element in batch {
            cmd.arg(format!("{SET_PREFIX}{element}"));
        }
        let Value::Array(values) = call_until_ok(client, &cmd).await? else {
            bail!("MGET did not answer an array");
        };
        for (element, value) in batch.iter().zip(values) {
            if value != Value::Nil {
                found.insert(*element);
            }
        }
    }
    let mut cmd = redis::cmd("KEYS");
    cmd.arg(format!("{SET_PREFIX}*"));
    if let Value::Array(keys) = call_until_ok(client, &cmd).await? {
        for key in keys {
            let Value::BulkString(bytes) = key else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            match text.strip_prefix(SET_PREFIX).and_then(|e| e.parse().ok()) {
                Some(element) => {
                    found.insert(element);
                }
                None => bail!("the set holds a key no client wrote: {text}"),
            }
        }
    }
    let read = Op::ReadAll {
        elements: Some(found.into_iter().collect()),
    };
    recorder.record(process, Kind::Ok, read, None);
    Ok(())
}

async fn call_until_ok(client: &mut Client, cmd: &redis::Cmd) -> anyhow::Result<Value> {
    let mut last = String::new();
    for _ in 0..ATTEMPTS_MAX {
        match client.call(cmd).await {
            Outcome::Ok(value) => return Ok(value),
            Outcome::Fail(error) | Outcome::Unknown(error) => last = error,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("final read failed {ATTEMPTS_MAX} times: {last}")
}
