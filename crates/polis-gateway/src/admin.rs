//! The gateway's admin address: `/metrics` for Prometheus. It shows no key
//! and takes no command; bind it where only operators reach it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::cluster::Cluster;

/// Serves the admin endpoints on `listener` until the task is aborted.
pub(crate) async fn serve(cluster: Arc<Cluster>, listener: tokio::net::TcpListener) {
    let app = Router::new()
        .route("/metrics", get(metrics))
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
