//! Who may use the admin HTTP endpoint: the cluster's own ACL users, as
//! on the RESP ports. A request names its user with HTTP Basic
//! credentials (`Authorization: Basic base64(user:password)`), or is the
//! default user without them; the user must be on, take the password,
//! and be allowed every `@admin` command (`+@all` or `+@admin`).
//!
//! The health probes (`/health/live`, `/health/ready`) stay open: they
//! say nothing but up or down, and orchestrators call them without
//! credentials. While the default user is `on nopass +@all` (a cluster
//! nobody secured), the endpoint is as open as its RESP ports.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use polis_commands::acl::{BAD_BASIC, DEFAULT_USER, NOAUTH, WRONGPASS};

use crate::acl::Reason;
use crate::node::Node;

/// Lets the request through when its user may administer the cluster;
/// answers 401 (who are you?) or 403 (not allowed) otherwise, logged in
/// ACL LOG as RESP refusals are.
pub async fn authorize(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/health/") {
        return next.run(request).await;
    }
    let client = format!("admin-api addr={peer}");
    match check(&node, request.headers(), client) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// Why a request was refused, in the words of the RESP error.
enum Refusal {
    /// 401: who is calling is not known (or the password is wrong).
    Unauthorized(String),
    /// 403: the user may not administer the cluster.
    Forbidden(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthorized(text) => {
                let mut response = (StatusCode::UNAUTHORIZED, text).into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"polis admin\""),
                );
                response
            }
            Self::Forbidden(text) => (StatusCode::FORBIDDEN, text).into_response(),
        }
    }
}

fn check(node: &Node, headers: &HeaderMap, client: String) -> Result<(), Refusal> {
    let credentials = basic_credentials(headers)?;
    let (name, password) = match &credentials {
        Some((name, password)) => (name.as_str(), Some(password.as_bytes())),
        None => (DEFAULT_USER, None),
    };
    let user = node.view().and_then(|view| view.user(name).cloned());
    let accepted = user.as_ref().is_some_and(|user| match password {
        Some(password) => user.accepts(password),
        None => user.enabled && user.nopass,
    });
    let Some(user) = user.filter(|_| accepted) else {
        if credentials.is_some() {
            node.acl_log
                .record(Reason::Auth, "toplevel", "AUTH".into(), name, client);
            return Err(Refusal::Unauthorized(WRONGPASS.to_owned()));
        }
        return Err(Refusal::Unauthorized(format!(
            "{NOAUTH} The admin API takes a user's credentials as HTTP Basic \
             (polis commands read POLIS_USER and POLIS_PASSWORD)."
        )));
    };
    if !user.allows_category("admin") {
        node.acl_log.record(
            Reason::Command,
            "toplevel",
            "admin-api".into(),
            &user.name,
            client,
        );
        let text = format!(
            "NOPERM User {} has no permissions to use the admin API: it needs every @admin command (+@admin)",
            user.name
        );
        return Err(Refusal::Forbidden(text));
    }
    Ok(())
}

/// Reads `Authorization: Basic ...`, if present.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, Refusal> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    match polis_commands::acl::basic_credentials(value.as_bytes()) {
        Some(credentials) => Ok(Some(credentials)),
        None => Err(Refusal::Unauthorized(BAD_BASIC.to_owned())),
    }
}
