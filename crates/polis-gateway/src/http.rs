//! The HTTP/JSON API, for services that do not speak Redis: keys, counters,
//! publishing, and streams, described by the OpenAPI document it serves at
//! `/openapi.json`.
//!
//! Each HTTP request is a short RESP session of the gateway's own (see
//! [`crate::loopback`]): HTTP Basic credentials become `AUTH`, and the
//! command then goes through the same ACL check, rate limits, request log
//! and routing as over RESP. A Redis error becomes a JSON error with a
//! fitting status (`WRONGTYPE` 409, `NOPERM` 403, `RATELIMITED` 429,
//! `CLUSTERDOWN` 503, ...).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use polis_resp::Reply;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use polis_types::limits::{HTTP_BODY_BYTES_MAX, HTTP_STREAM_READ_COUNT_MAX, HTTP_TTL_MS_MAX};

use crate::cluster::Cluster;
use crate::loopback::Loopback;
use crate::policy::Policy;

/// The OpenAPI description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");
/// How long one HTTP request may wait for the cluster.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Shared {
    cluster: Arc<Cluster>,
    policy: Arc<Policy>,
}

/// Serves the API on `listener` until the task is aborted.
pub(crate) async fn serve(
    cluster: Arc<Cluster>,
    policy: Arc<Policy>,
    listener: tokio::net::TcpListener,
) {
    let app = Router::new()
        .route("/openapi.json", get(openapi))
        .route(
            "/v1/keys/{key}",
            get(get_key).put(put_key).delete(delete_key),
        )
        .route("/v1/counters/{key}", get(get_counter))
        .route("/v1/counters/{key}/increment", post(increment))
        .route("/v1/channels/{channel}/messages", post(publish))
        .route(
            "/v1/streams/{key}/entries",
            get(read_stream).post(append_stream),
        )
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(HTTP_BODY_BYTES_MAX))
        .with_state(Shared { cluster, policy });
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(error) = axum::serve(listener, service).await {
        tracing::error!(%error, "the gateway's HTTP API stopped");
    }
}

/// An answer other than success: a status and a message, as JSON.
struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A Redis error line, with the status its code calls for.
    fn redis(line: String) -> Self {
        let code = line.split_whitespace().next().unwrap_or_default();
        let status = match code {
            "WRONGTYPE" => StatusCode::CONFLICT,
            "NOAUTH" | "WRONGPASS" => StatusCode::UNAUTHORIZED,
            "NOPERM" => StatusCode::FORBIDDEN,
            "RATELIMITED" => StatusCode::TOO_MANY_REQUESTS,
            "CLUSTERDOWN" | "TRYAGAIN" | "LOADING" | "BUSY" | "MASTERDOWN" => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            "OOM" => StatusCode::INSUFFICIENT_STORAGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, line)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, axum::Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"polis\""),
            );
        }
        response
    }
}

type Answer = Result<Response, Failure>;

fn ok(status: StatusCode, body: Value) -> Answer {
    Ok((status, axum::Json(body)).into_response())
}

/// What every operation starts from: the key or channel its path names,
/// and a session for the request, authenticated with its HTTP Basic
/// credentials if it sent any.
struct Named {
    name: String,
    session: Loopback,
}

impl FromRequestParts<Shared> for Named {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, shared: &Shared) -> Result<Self, Failure> {
        let Path(name) = Path::<String>::from_request_parts(parts, shared)
            .await
            .map_err(|rejection| Failure::new(StatusCode::BAD_REQUEST, rejection.body_text()))?;
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, shared)
            .await
            .map_err(|rejection| {
                Failure::new(StatusCode::INTERNAL_SERVER_ERROR, rejection.body_text())
            })?;
        let mut session = Loopback::open(shared.cluster.clone(), shared.policy.clone(), peer);
        if let Some((user, password)) = basic_credentials(&parts.headers)? {
            call(
                &mut session,
                &[b"AUTH", user.as_bytes(), password.as_bytes()],
            )
            .await?;
        }
        Ok(Self { name, session })
    }
}

/// Reads `Authorization: Basic ...`, if present.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, Failure> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let unreadable = || {
        Failure::new(
            StatusCode::UNAUTHORIZED,
            "the Authorization header is not Basic user:password",
        )
    };
    let value = value.to_str().map_err(|_| unreadable())?;
    let encoded = value.strip_prefix("Basic ").ok_or_else(unreadable)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| unreadable())?;
    let text = String::from_utf8(decoded).map_err(|_| unreadable())?;
    let (user, password) = text.split_once(':').ok_or_else(unreadable)?;
    Ok(Some((user.to_owned(), password.to_owned())))
}

/// Sends one command; a Redis error becomes a [`Failure`].
async fn call(session: &mut Loopback, args: &[&[u8]]) -> Result<Reply, Failure> {
    let reply = tokio::time::timeout(CALL_TIMEOUT, session.call(args))
        .await
        .map_err(|_| {
            Failure::new(
                StatusCode::GATEWAY_TIMEOUT,
                "the cluster did not answer in 10 s",
            )
        })?
        .map_err(|error| Failure::new(StatusCode::BAD_GATEWAY, error.to_string()))?;
    match reply {
        Reply::Error(error) => Err(Failure::redis(error.to_string())),
        reply => Ok(reply),
    }
}

/// Reads a JSON object body (whatever its content type says). An array
/// is refused though serde would read a struct from one; a body over
/// `HTTP_BODY_BYTES_MAX` gets 413.
fn body<T: DeserializeOwned>(bytes: Result<Bytes, BytesRejection>) -> Result<T, Failure> {
    let bytes =
        bytes.map_err(|rejection| Failure::new(rejection.status(), rejection.body_text()))?;
    let refused = |error: String| {
        Failure::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the body: {error}"),
        )
    };
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|error| refused(error.to_string()))?;
    if !value.is_object() {
        return Err(refused("not a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|error| refused(error.to_string()))
}

fn text(reply: &Reply, what: &str) -> Result<String, Failure> {
    match reply {
        Reply::Bulk(bytes) => String::from_utf8(bytes.to_vec()).map_err(|_| {
            Failure::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{what} is not UTF-8 text; read it over RESP"),
            )
        }),
        Reply::Simple(line) => Ok(line.clone()),
        other => Err(Failure::new(
            StatusCode::BAD_GATEWAY,
            format!("unexpected reply for {what}: {other:?}"),
        )),
    }
}

fn integer(reply: &Reply) -> Result<i64, Failure> {
    match reply {
        Reply::Integer(value) => Ok(*value),
        other => Err(Failure::new(
            StatusCode::BAD_GATEWAY,
            format!("expected an integer, the cluster answered {other:?}"),
        )),
    }
}

async fn no_route() -> Failure {
    Failure::new(
        StatusCode::NOT_FOUND,
        "no such route; the API is described at /openapi.json",
    )
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn get_key(
    Named {
        name: key,
        mut session,
    }: Named,
) -> Answer {
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
struct PutKey {
    value: String,
    ttl_ms: Option<u64>,
}

async fn put_key(
    Named {
        name: key,
        mut session,
    }: Named,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let put: PutKey = body(bytes)?;
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

async fn delete_key(
    Named {
        name: key,
        mut session,
    }: Named,
) -> Answer {
    let deleted = integer(&call(&mut session, &[b"DEL", key.as_bytes()]).await?)?;
    ok(StatusCode::OK, json!({ "key": key, "deleted": deleted }))
}

async fn get_counter(
    Named {
        name: key,
        mut session,
    }: Named,
) -> Answer {
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
struct Increment {
    #[serde(default = "one")]
    by: i64,
}

fn one() -> i64 {
    1
}

async fn increment(
    Named {
        name: key,
        mut session,
    }: Named,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let increment: Increment = body(bytes)?;
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
struct Publish {
    message: String,
}

async fn publish(
    Named {
        name: channel,
        mut session,
    }: Named,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let publish: Publish = body(bytes)?;
    let args: [&[u8]; 3] = [b"PUBLISH", channel.as_bytes(), publish.message.as_bytes()];
    let receivers = integer(&call(&mut session, &args).await?)?;
    ok(
        StatusCode::OK,
        json!({ "channel": channel, "receivers": receivers }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Append {
    fields: Map<String, Value>,
}

async fn append_stream(
    Named {
        name: key,
        mut session,
    }: Named,
    bytes: Result<Bytes, BytesRejection>,
) -> Answer {
    let append: Append = body(bytes)?;
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
struct Range {
    after: Option<String>,
    count: Option<u64>,
}

async fn read_stream(
    Named {
        name: key,
        mut session,
    }: Named,
    range: Result<Query<Range>, QueryRejection>,
) -> Answer {
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
    fn the_openapi_document_describes_every_route() {
        let document: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert_eq!(document["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        let paths = document["paths"].as_object().expect("paths");
        let described: Vec<(&str, Vec<&str>)> = paths
            .iter()
            .map(|(path, item)| {
                let methods = item
                    .as_object()
                    .expect("a path item")
                    .keys()
                    .map(String::as_str)
                    .collect();
                (path.as_str(), methods)
            })
            .collect();
        let served = [
            ("/openapi.json", vec!["get"]),
            ("/v1/channels/{channel}/messages", vec!["post"]),
            ("/v1/counters/{key}", vec!["get"]),
            ("/v1/counters/{key}/increment", vec!["post"]),
            ("/v1/keys/{key}", vec!["delete", "get", "put"]),
            ("/v1/streams/{key}/entries", vec!["get", "post"]),
        ];
        for (path, methods) in served {
            let found = described.iter().find(|(described, _)| *described == path);
            let mut found = found
                .unwrap_or_else(|| panic!("{path} is not described"))
                .1
                .clone();
            found.retain(|method| *method != "parameters");
            found.sort_unstable();
            assert_eq!(found, methods, "the methods of {path}");
        }
        assert_eq!(described.len(), 6, "a described path is not served");
    }

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

    #[test]
    fn redis_errors_get_their_status() {
        let status = |line: &str| Failure::redis(line.to_owned()).status;
        assert_eq!(
            status("WRONGTYPE Operation against a key"),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status("NOPERM User bob has no permissions"),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status("NOAUTH Authentication required."),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status("RATELIMITED slow down"),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            status("CLUSTERDOWN no leader"),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status("ERR value is not an integer"),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn basic_credentials_are_read_or_refused() {
        let mut headers = HeaderMap::new();
        assert!(matches!(basic_credentials(&headers), Ok(None)));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YWxpY2U6cHc6eA=="),
        );
        let read = basic_credentials(&headers).ok().flatten();
        assert_eq!(read, Some(("alice".to_owned(), "pw:x".to_owned())));
        for bad in ["Bearer abc", "Basic !!!", "Basic YWxpY2U="] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert!(basic_credentials(&headers).is_err(), "{bad} was read");
        }
    }
}
