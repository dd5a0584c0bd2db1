//! The gateway's admin address: `/metrics` for Prometheus, the probes
//! `/health/live` (the process answers) and `/health/ready` (it knows the
//! cluster's shards and reaches a node), and the web dashboard at
//! `/dashboard`, whose requests (`/status`, `/namespaces`, `/faults`,
//! `/dashboard/throughput`) it passes on, with their credentials, to the
//! first of the nodes' admin addresses (`--admin-nodes`) that answers. It
//! shows no key and takes no command; bind it where only operators reach
//! it.

use std::sync::Arc;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use polis_client::admin;
use polis_client::dashboard::{API_PATHS, PAGE};

use crate::cluster::Cluster;

/// How long a node may take to answer a request of the dashboard.
const PASS_ON_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the admin endpoints on `listener` until the task is aborted;
/// the dashboard's requests go to `admin_nodes`.
pub(crate) async fn serve(
    cluster: Arc<Cluster>,
    listener: tokio::net::TcpListener,
    admin_nodes: Vec<String>,
) {
    let mut dashboard = Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/dashboard") }),
        )
        .route("/dashboard", get(page));
    for path in API_PATHS {
        dashboard = dashboard.route(path, any(pass_on));
    }
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .with_state(cluster)
        .merge(dashboard.with_state(Arc::new(admin_nodes)));
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "the gateway's admin address stopped");
    }
}

async fn metrics(State(cluster): State<Arc<Cluster>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        cluster.metrics.render(&cluster),
    )
}

/// Ready when the gateway knows the cluster's shards and a node of it is
/// healthy: a request then has somewhere to go.
async fn ready(State(cluster): State<Arc<Cluster>>) -> (StatusCode, &'static str) {
    let topology = cluster.topology();
    if topology.shards.is_empty() {
        return (StatusCode::SERVICE_UNAVAILABLE, "no shard known yet");
    }
    if cluster.any_node().is_none() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no node of the cluster is healthy",
        );
    }
    (StatusCode::OK, "ready")
}

async fn page(State(nodes): State<Arc<Vec<String>>>) -> Response {
    if nodes.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            "the gateway serves the dashboard when started with --admin-nodes \
             (the nodes' admin addresses)",
        )
            .into_response();
    }
    axum::response::Html(PAGE).into_response()
}

/// Passes one request of the dashboard on to the first node that
/// answers, and its answer back.
async fn pass_on(
    State(nodes): State<Arc<Vec<String>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map_or(uri.path(), |path| path.as_str());
    let text = |name: header::HeaderName| headers.get(name).and_then(|value| value.to_str().ok());
    let authorization = text(header::AUTHORIZATION);
    let content_type = text(header::CONTENT_TYPE).unwrap_or("application/octet-stream");
    let mut failures = Vec::new();
    for addr in nodes.iter() {
        let sent = (!body.is_empty()).then(|| (content_type, body.clone()));
        match admin::exchange_as(
            method.clone(),
            addr,
            path,
            authorization,
            sent,
            PASS_ON_TIMEOUT,
        )
        .await
        {
            Ok((code, answered, answer)) => {
                let mut response = (
                    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY),
                    answer,
                )
                    .into_response();
                for name in [header::CONTENT_TYPE, header::WWW_AUTHENTICATE] {
                    if let Some(value) = answered.get(&name) {
                        response.headers_mut().insert(name, value.clone());
                    }
                }
                return response;
            }
            Err(error) => failures.push(format!("{addr}: {error}")),
        }
    }
    (
        StatusCode::BAD_GATEWAY,
        format!(
            "no node's admin address answered ({}); check --admin-nodes",
            if failures.is_empty() {
                "none given".to_owned()
            } else {
                failures.join("; ")
            }
        ),
    )
        .into_response()
}
