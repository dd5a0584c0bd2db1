//! The gateway's admin address: `/metrics` for Prometheus, and the probes
//! `/health/live` (the process answers) and `/health/ready` (it knows the
//! cluster's shards and reaches a node). It shows no key and takes no
//! command; bind it where only operators reach it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::cluster::Cluster;

/// Serves the admin endpoints on `listener` until the task is aborted.
pub(crate) async fn serve(cluster: Arc<Cluster>, listener: tokio::net::TcpListener) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .with_state(cluster);
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
