//! A small client of a node's admin HTTP endpoint.

use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Returns the body of `GET http://{addr}{path}` and its status code.
pub async fn get(addr: &str, path: &str, timeout: Duration) -> anyhow::Result<(u16, Bytes)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: hyper::Uri = format!("http://{addr}{path}")
        .parse()
        .context("bad admin address")?;
    let response = tokio::time::timeout(timeout, client.get(uri))
        .await
        .context("admin request timed out")??;
    let status = response.status().as_u16();
    let body = tokio::time::timeout(timeout, response.into_body().collect())
        .await
        .context("admin response timed out")??
        .to_bytes();
    Ok((status, body))
}

/// Sends `POST http://{addr}{path}` with an empty body; returns the
/// status code and body.
pub async fn post(addr: &str, path: &str, timeout: Duration) -> anyhow::Result<(u16, Bytes)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let request = hyper::Request::post(format!("http://{addr}{path}"))
        .body(Empty::new())
        .context("bad admin request")?;
    let response = tokio::time::timeout(timeout, client.request(request))
        .await
        .context("admin request timed out")??;
    let status = response.status().as_u16();
    let body = tokio::time::timeout(timeout, response.into_body().collect())
        .await
        .context("admin response timed out")??
        .to_bytes();
    Ok((status, body))
}

/// Sends `PUT http://{addr}{path}` with a JSON body; returns the status
/// code and body.
pub async fn put_json(
    addr: &str,
    path: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> anyhow::Result<(u16, Bytes)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::put(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(body)?)))
        .context("bad admin request")?;
    let response = tokio::time::timeout(timeout, client.request(request))
        .await
        .context("admin request timed out")??;
    let status = response.status().as_u16();
    let body = tokio::time::timeout(timeout, response.into_body().collect())
        .await
        .context("admin response timed out")??
        .to_bytes();
    Ok((status, body))
}

/// Returns a node's /status as JSON.
pub async fn status(addr: &str) -> anyhow::Result<serde_json::Value> {
    let (code, body) = get(addr, "/status", Duration::from_secs(2)).await?;
    anyhow::ensure!(code == 200, "GET /status answered {code}");
    Ok(serde_json::from_slice(&body)?)
}
