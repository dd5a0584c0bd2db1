//! Namespaces through a node's admin endpoint (`GET`, `PUT` and `DELETE
//! /namespaces`).

use std::time::Duration;

use hyper::Method;

use crate::admin::{get, send};

/// How long a namespace change may take: it asks every node first.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// The settings of one namespace: strong (with cache limits, if any), or
/// eventual with N, W and R.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceSettings<'a> {
    pub prefix: &'a str,
    pub consistency: &'a str,
    /// (replicas, write quorum, read quorum), for eventual namespaces.
    pub quorums: Option<(u8, u8, u8)>,
    /// The cache limit per node in bytes, for strong namespaces.
    pub maxmemory_bytes: Option<u64>,
    /// The eviction policy over that limit (Redis's names).
    pub maxmemory_policy: Option<&'a str>,
}

/// Returns the namespaces of the node at `addr`, as JSON objects
/// (`prefix`, `consistency`, and `replicas`, `write_quorum`,
/// `read_quorum` for eventual ones, `maxmemory_bytes` and
/// `maxmemory_policy` for strong ones with cache limits).
///
/// # Errors
/// Returns why the node did not answer.
pub async fn namespaces(addr: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let (code, body) = get(addr, "/namespaces", Duration::from_secs(5)).await?;
    anyhow::ensure!(
        code == 200,
        "GET /namespaces answered {code}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(serde_json::from_slice(&body)?)
}

/// Sets a namespace through the node at `addr`; returns what it answered.
///
/// # Errors
/// Returns the refusal (bad settings, keys that would change consistency,
/// a node that did not answer), or why the node could not be asked.
pub async fn set_namespace(addr: &str, settings: NamespaceSettings<'_>) -> anyhow::Result<String> {
    let mut body = serde_json::json!({
        "prefix": settings.prefix,
        "consistency": settings.consistency,
    });
    if let Some((replicas, write, read)) = settings.quorums {
        body["replicas"] = replicas.into();
        body["write_quorum"] = write.into();
        body["read_quorum"] = read.into();
    }
    if let Some(bytes) = settings.maxmemory_bytes {
        body["maxmemory_bytes"] = bytes.into();
    }
    if let Some(policy) = settings.maxmemory_policy {
        body["maxmemory_policy"] = policy.into();
    }
    change(Method::PUT, addr, &body).await
}

/// Removes the namespace of `prefix` through the node at `addr`.
///
/// # Errors
/// Returns the refusal, or why the node could not be asked.
pub async fn remove_namespace(addr: &str, prefix: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "prefix": prefix });
    change(Method::DELETE, addr, &body).await
}

/// Sends a namespace change and returns what the node answered.
async fn change(method: Method, addr: &str, body: &serde_json::Value) -> anyhow::Result<String> {
    let (code, answer) = send(method, addr, "/namespaces", Some(body), CHANGE_TIMEOUT).await?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    anyhow::ensure!(code == 200, "{text}");
    Ok(text)
}
