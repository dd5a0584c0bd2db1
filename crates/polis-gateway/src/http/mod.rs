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
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use polis_resp::Reply;
use polis_types::limits::HTTP_BODY_BYTES_MAX;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::cluster::Cluster;
use crate::loopback::Loopback;
use crate::policy::Policy;

mod operations;

use operations::{
    append_stream, delete_key, get_counter, get_key, increment, publish, put_key, read_stream,
};

/// The OpenAPI description of this API.
pub const OPENAPI: &str = include_str!("../openapi.json");
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
struct Target {
    name: String,
    session: Loopback,
}

impl FromRequestParts<Shared> for Target {
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
    polis_commands::acl::basic_credentials(value.as_bytes())
        .map(Some)
        .ok_or_else(|| Failure::new(StatusCode::UNAUTHORIZED, polis_commands::acl::BAD_BASIC))
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

/// A JSON object body (whatever its content type says), read into `T`.
/// An array is refused though serde would read a struct from one; a body
/// over `HTTP_BODY_BYTES_MAX` gets 413.
struct Body<T>(T);

impl<T: DeserializeOwned> FromRequest<Shared> for Body<T> {
    type Rejection = Failure;

    async fn from_request(request: Request, shared: &Shared) -> Result<Self, Failure> {
        let bytes = Bytes::from_request(request, shared)
            .await
            .map_err(|rejection| Failure::new(rejection.status(), rejection.body_text()))?;
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
        serde_json::from_value(value)
            .map(Body)
            .map_err(|error| refused(error.to_string()))
    }
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
