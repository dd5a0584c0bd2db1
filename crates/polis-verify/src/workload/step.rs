//! One recorded operation of the queue, blocking-pop and lock
//! workloads: the invocation, the command, and the completion made from
//! the reply; and the final reads of lists.

use std::time::Duration;

use anyhow::bail;
use polis_client::resp::{Client, Outcome};
use redis::{Cmd, Value};

use crate::history::{Entry, Kind, Op};
use crate::recorder::Recorder;

/// Records `op` invoked by `process`, sends `cmd`, and records how it
/// ended: `ok` with what `parse` made of the reply, `fail`, or `info`
/// (also when the reply is not what the command answers). Returns the
/// completion's kind and op.
pub async fn call(
    client: &mut Client,
    recorder: &Recorder,
    process: u64,
    op: Op,
    cmd: &Cmd,
    parse: impl FnOnce(Value) -> Result<Op, String>,
) -> (Kind, Op) {
    recorder.record(process, Kind::Invoke, op.clone(), None);
    let (kind, completed, error) = match client.call(cmd).await {
        Outcome::Ok(reply) => match parse(reply) {
            Ok(seen) => (Kind::Ok, seen, None),
            Err(error) => (Kind::Info, op, Some(error)),
        },
        Outcome::Fail(error) => (Kind::Fail, op, Some(error)),
        Outcome::Unknown(error) => (Kind::Info, op, Some(error)),
    };
    recorder.record(process, kind, completed.clone(), error);
    (kind, completed)
}

/// Returns a bulk or simple string reply as text.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// Returns a string reply holding a number as the number.
pub fn number(value: &Value) -> Option<u64> {
    text(value)?.parse().ok()
}

/// Parses stream entries, `[[id, [field, value, ...]], ...]`, whose one
/// field holds the payload.
///
/// # Errors
/// Returns the reply, described, when it is not such a list.
pub fn entries(value: &Value) -> Result<Vec<Entry>, String> {
    let unexpected = || format!("unexpected stream entries {value:?}");
    let Value::Array(items) = value else {
        return Err(unexpected());
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(parts) = item else {
            return Err(unexpected());
        };
        let [id, Value::Array(fields)] = parts.as_slice() else {
            return Err(unexpected());
        };
        let (Some(id), [_field, payload]) = (text(id), fields.as_slice()) else {
            return Err(unexpected());
        };
        let payload = number(payload).ok_or_else(unexpected)?;
        entries.push(Entry { id, payload });
    }
    Ok(entries)
}

/// Parses an XREADGROUP reply of one stream: nil (nothing came) or
/// `[[stream, entries]]` (RESP3: a map from the stream to its entries).
///
/// # Errors
/// Returns the reply, described, when it is neither.
pub fn read_reply(value: &Value) -> Result<Vec<Entry>, String> {
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Array(streams) => match streams.as_slice() {
            [] => Ok(Vec::new()),
            [Value::Array(stream)] => match stream.as_slice() {
                [_name, found] => entries(found),
                _ => Err(format!("unexpected XREADGROUP reply {value:?}")),
            },
            _ => Err(format!("unexpected XREADGROUP reply {value:?}")),
        },
        Value::Map(streams) => match streams.as_slice() {
            [] => Ok(Vec::new()),
            [(_name, found)] => entries(found),
            _ => Err(format!("unexpected XREADGROUP reply {value:?}")),
        },
        other => Err(format!("unexpected XREADGROUP reply {other:?}")),
    }
}

/// Attempts at each final read of a list before the run gives up.
const LIST_READ_ATTEMPTS_MAX: usize = 20;

/// Reads `lists` whole (LRANGE, elements that are numbers), one after
/// the other, by processes numbered from `process_base`.
///
/// # Errors
/// Returns an error if a list's read never succeeds.
pub async fn read_lists(
    client: &mut Client,
    recorder: &Recorder,
    process_base: u64,
    lists: &[&str],
) -> anyhow::Result<()> {
    let mut process = process_base;
    for list in lists {
        let mut cmd = redis::cmd("LRANGE");
        cmd.arg(*list).arg(0).arg(-1);
        let op = |elements| Op::Lrange {
            list: (*list).to_owned(),
            elements,
        };
        let parse = |reply: Value| match &reply {
            Value::Array(items) => items
                .iter()
                .map(number)
                .collect::<Option<Vec<u64>>>()
                .map(|elements| op(Some(elements)))
                .ok_or_else(|| format!("unexpected LRANGE reply {reply:?}")),
            _ => Err(format!("unexpected LRANGE reply {reply:?}")),
        };
        let mut read = false;
        for _ in 0..LIST_READ_ATTEMPTS_MAX {
            let (kind, _) = call(client, recorder, process, op(None), &cmd, parse).await;
            process += 1;
            if kind == Kind::Ok {
                read = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if !read {
            bail!("the final LRANGE of {list} never succeeded");
        }
    }
    Ok(())
}
