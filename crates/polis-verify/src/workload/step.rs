//! One recorded operation of the queue and blocking-pop workloads: the
//! invocation, the command, and the completion made from the reply.

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
