//! The operations of the HTTP API: each the Redis command its summary in
//! the OpenAPI description names, its reply made JSON.

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::StatusCode;
use polis_resp::Reply;
use polis_types::limits::{HTTP_STREAM_READ_COUNT_MAX, HTTP_TTL_MS_MAX};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{call, integer, ok, text, Answer, Body, Failure, Target};

pub(super) async fn get_key(target: Target) -> Answer {
    let (key, mut session) = (target.name, target.session);
    match call(&mut session, &[b"GET", key.as_bytes()]).await? {
        Reply::Null => Err(Failure::new(
            StatusCode::NOT_FOUND,
            format!("no key {key:?}"),
        )),
        reply => ok(
            StatusCode::OK,
            json!({ "key": key, "value": text(&reply, "the value")? }),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PutKey {
    value: String,
    ttl_ms: Option<u64>,
}

pub(super) async fn put_key(target: Target, Body(put): Body<PutKey>) -> Answer {
    let (key, mut session) = (target.name, target.session);
    match put.ttl_ms {
        Some(ttl_ms) if !(1..=HTTP_TTL_MS_MAX).contains(&ttl_ms) => {
            return Err(Failure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("ttl_ms is between 1 and {HTTP_TTL_MS_MAX}"),
            ))
        }
        Some(ttl_ms) => {
            let ttl_ms = ttl_ms.to_string();
            let args: [&[u8]; 5] = [
                b"SET",
                key.as_bytes(),
                put.value.as_bytes(),
                b"PX",
                ttl_ms.as_bytes(),
            ];
            call(&mut session, &args).await?
        }
        None => {
            call(
                &mut session,
                &[b"SET", key.as_bytes(), put.value.as_bytes()],
            )
            .await?
        }
    };
    ok(StatusCode::OK, json!({ "key": key, "stored": true }))
}

pub(super) async fn delete_key(target: Target) -> Answer {
    let (key, mut session) = (target.name, target.session);
    let deleted = integer(&call(&mut session, &[b"DEL", key.as_bytes()]).await?)?;
    ok(StatusCode::OK, json!({ "key": key, "deleted": deleted }))
}

pub(super) async fn get_counter(target: Target) -> Answer {
    let (key, mut session) = (target.name, target.session);
    let value = match call(&mut session, &[b"GET", key.as_bytes()]).await? {
        Reply::Null => 0,
        reply => text(&reply, "the counter")?.parse::<i64>().map_err(|_| {
            Failure::new(
                StatusCode::CONFLICT,
                format!("the value of {key:?} is not a counter"),
            )
        })?,
    };
    ok(StatusCode::OK, json!({ "key": key, "value": value }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Increment {
    #[serde(default = "one")]
    by: i64,
}

fn one() -> i64 {
    1
}

pub(super) async fn increment(target: Target, Body(increment): Body<Increment>) -> Answer {
    let (key, mut session) = (target.name, target.session);
    let by = increment.by.to_string();
    let reply = call(&mut session, &[b"INCRBY", key.as_bytes(), by.as_bytes()])
        .await
        .map_err(|failure| {
            // Any `by` is a valid increment: an ERR here is the key's
            // value (not an integer, or one that would overflow).
            if failure.status == StatusCode::BAD_REQUEST {
                Failure::new(StatusCode::CONFLICT, failure.message)
            } else {
                failure
            }
        })?;
    let value = integer(&reply)?;
    ok(StatusCode::OK, json!({ "key": key, "value": value }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Publish {
    message: String,
}

pub(super) async fn publish(target: Target, Body(publish): Body<Publish>) -> Answer {
    let (channel, mut session) = (target.name, target.session);
    let args: [&[u8]; 3] = [b"PUBLISH", channel.as_bytes(), publish.message.as_bytes()];
    let receivers = integer(&call(&mut session, &args).await?)?;
    ok(
        StatusCode::OK,
        json!({ "channel": channel, "receivers": receivers }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Append {
    fields: Map<String, Value>,
}

pub(super) async fn append_stream(target: Target, Body(append): Body<Append>) -> Answer {
    let (key, mut session) = (target.name, target.session);
    if append.fields.is_empty() {
        return Err(Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "an entry has one field at least",
        ));
    }
    let mut pairs = Vec::with_capacity(append.fields.len());
    for (field, value) in &append.fields {
        let Value::String(value) = value else {
            return Err(Failure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the value of field {field:?} is not a string"),
            ));
        };
        pairs.push((field.as_str(), value.as_str()));
    }
    let mut args: Vec<&[u8]> = vec![b"XADD", key.as_bytes(), b"*"];
    for (field, value) in &pairs {
        args.push(field.as_bytes());
        args.push(value.as_bytes());
    }
    let id = text(&call(&mut session, &args).await?, "the entry's id")?;
    ok(StatusCode::CREATED, json!({ "key": key, "id": id }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Range {
    after: Option<String>,
    count: Option<u64>,
}

pub(super) async fn read_stream(
    target: Target,
    range: Result<Query<Range>, QueryRejection>,
) -> Answer {
    let (key, mut session) = (target.name, target.session);
    let Query(range) =
        range.map_err(|rejection| Failure::new(StatusCode::BAD_REQUEST, rejection.body_text()))?;
    let count = range.count.unwrap_or(100);
    if !(1..=HTTP_STREAM_READ_COUNT_MAX).contains(&count) {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            format!("count is between 1 and {HTTP_STREAM_READ_COUNT_MAX}"),
        ));
    }
    let start = match range.after.as_deref().map(next_id).transpose()? {
        None => "-".to_owned(),
        Some(Some(start)) => start,
        // After the largest id there can be nothing.
        Some(None) => return ok(StatusCode::OK, json!({ "key": key, "entries": [] })),
    };
    let count = count.to_string();
    let args: [&[u8]; 6] = [
        b"XRANGE",
        key.as_bytes(),
        start.as_bytes(),
        b"+",
        b"COUNT",
        count.as_bytes(),
    ];
    let reply = call(&mut session, &args).await?;
    let Reply::Array(items) = reply else {
        return Err(Failure::new(
            StatusCode::BAD_GATEWAY,
            "XRANGE did not answer an array",
        ));
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in &items {
        let Reply::Array(parts) = item else { continue };
        let [id, Reply::Array(pairs)] = parts.as_slice() else {
            continue;
        };
        let mut fields = Map::new();
        for pair in pairs.chunks(2) {
            if let [field, value] = pair {
                fields.insert(
                    text(field, "a field")?,
                    Value::String(text(value, "a value")?),
                );
            }
        }
        entries.push(json!({ "id": text(id, "an id")?, "fields": fields }));
    }
    ok(StatusCode::OK, json!({ "key": key, "entries": entries }))
}

/// Returns the first stream id after `after` (`MS` or `MS-SEQ`, `MS`
/// meaning `MS-0`), or None when no id can follow it (it is the largest,
/// or larger than any).
fn next_id(after: &str) -> Result<Option<String>, Failure> {
    let refused = || {
        Failure::new(
            StatusCode::BAD_REQUEST,
            format!("after={after:?} is not a stream id (MS or MS-SEQ, digits)"),
        )
    };
    let (ms, seq) = after.split_once('-').unwrap_or((after, "0"));
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    if !digits(ms) || !digits(seq) {
        return Err(refused());
    }
    // Digits only: a parse fails only past u64::MAX.
    let Ok(ms) = ms.parse::<u64>() else {
        return Ok(None);
    };
    let next = match seq.parse::<u64>().ok().and_then(|seq| seq.checked_add(1)) {
        Some(seq) => Some((ms, seq)),
        None => ms.checked_add(1).map(|ms| (ms, 0)),
    };
    Ok(next.map(|(ms, seq)| format!("{ms}-{seq}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_after_an_id_carries_into_the_milliseconds() {
        let next = |after: &str| next_id(after).ok().flatten();
        assert_eq!(next("5"), Some("5-1".to_owned()));
        assert_eq!(next("5-7"), Some("5-8".to_owned()));
        assert_eq!(next("5-18446744073709551615"), Some("6-0".to_owned()));
        assert_eq!(next("5-99999999999999999999"), Some("6-0".to_owned()));
        assert_eq!(next("18446744073709551615-18446744073709551615"), None);
        assert_eq!(next("99999999999999999999"), None);
        for bad in ["", "-", "a", "5-", "-5", "5-x", "1-2-3", "+5"] {
            assert!(next_id(bad).is_err(), "{bad:?} was read");
        }
    }
}
