//! The admin HTTP endpoint: health, status (what `polis status` shows) and
//! Prometheus metrics.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use axum::Router;
use polis_raft::{GroupStatus, MemberStatus, NetworkFaults};
use polis_types::NodeId;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::node::Node;
use crate::stats::Stats;

/// What GET /status returns.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub node_id: u64,
    pub state: String,
    /// The leader's node.
    pub leader_id: Option<u64>,
    pub leader_resp_addr: Option<String>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub keys: usize,
    pub members: Vec<MemberStatus>,
}

/// Returns the node's status.
pub fn status(node: &Node) -> NodeStatus {
    let GroupStatus {
        node_id,
        state,
        term,
        leader_node,
        last_log_index,
        committed,
        applied,
        snapshot_index,
        purged_index,
        members,
        ..
    } = node.group.status();
    let leader_resp_addr = leader_node
        .and_then(|leader| members.iter().find(|member| member.node_id == leader))
        .map(|member| member.resp_addr.clone());
    let keys = node.group.state().read().app.db.len();
    NodeStatus {
        node_id: node_id.get(),
        state,
        leader_id: leader_node.map(NodeId::get),
        leader_resp_addr,
        term,
        last_log_index,
        committed,
        applied,
        snapshot_index,
        purged_index,
        keys,
        members,
    }
}

/// Serves the admin endpoint on `listener` until aborted.
pub async fn serve(node: Arc<Node>, listener: TcpListener) {
    let mut app = Router::new()
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .route(
            "/status",
            get(|State(node): State<Arc<Node>>| async move { Json(status(&node)) }),
        )
        .route("/metrics", get(metrics));
    if node.config.enable_fault_injection {
        app = app
            .route("/faults/fsync-error", post(inject_fsync_error))
            .route("/faults", get(get_faults).put(put_faults))
            .route("/faults/heal", post(heal));
    }
    let app = app.with_state(node);
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "admin server stopped");
    }
}

/// Makes every later fsync of this node fail: the node must stop before
/// acknowledging anything more (crash-stop).
async fn inject_fsync_error() -> &'static str {
    tracing::warn!("fault injection: every later fsync fails");
    polis_raft::group_commit::faults::fail_fsync();
    "fsync errors injected"
}

async fn get_faults(State(node): State<Arc<Node>>) -> Json<NetworkFaults> {
    Json(node.faults.faults())
}

async fn put_faults(State(node): State<Arc<Node>>, Json(faults): Json<NetworkFaults>) -> Response {
    match node.faults.set(faults) {
        Ok(()) => (StatusCode::OK, Json(node.faults.faults())).into_response(),
        Err(message) => (StatusCode::BAD_REQUEST, message).into_response(),
    }
}

async fn heal(State(node): State<Arc<Node>>) -> Response {
    put_faults(State(node), Json(NetworkFaults::default())).await
}

async fn ready(State(node): State<Arc<Node>>) -> Response {
    if node.group.status().leader_id.is_some() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no leader").into_response()
    }
}

async fn metrics(State(node): State<Arc<Node>>) -> String {
    let status = status(&node);
    let stats = &node.stats;
    let (syncs, synced_appends) = polis_raft::group_commit::metrics::totals();
    let mut text = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, value: u64| {
        let _ = write!(
            text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    };
    gauge(
        "polis_raft_term",
        "Current Raft term of the data group.",
        "gauge",
        status.term,
    );
    gauge(
        "polis_raft_is_leader",
        "1 when this node leads the data group.",
        "gauge",
        u64::from(status.state == "Leader"),
    );
    gauge(
        "polis_raft_last_log_index",
        "Last log index.",
        "gauge",
        status.last_log_index.unwrap_or(0),
    );
    gauge(
        "polis_raft_committed_index",
        "Committed log index.",
        "gauge",
        status.committed.unwrap_or(0),
    );
    gauge(
        "polis_raft_applied_index",
        "Applied log index.",
        "gauge",
        status.applied.unwrap_or(0),
    );
    gauge(
        "polis_keys",
        "Keys in the keyspace.",
        "gauge",
        status.keys as u64,
    );
    gauge(
        "polis_connected_clients",
        "Connected clients.",
        "gauge",
        node.clients.len() as u64,
    );
    gauge(
        "polis_commands_total",
        "Commands processed.",
        "counter",
        Stats::get(&stats.commands_processed),
    );
    gauge(
        "polis_writes_proposed_total",
        "Writes proposed to Raft.",
        "counter",
        Stats::get(&stats.writes_proposed),
    );
    gauge(
        "polis_error_replies_total",
        "Error replies sent.",
        "counter",
        Stats::get(&stats.error_replies),
    );
    gauge(
        "polis_redirects_total",
        "MOVED and other redirect replies.",
        "counter",
        Stats::get(&stats.redirects),
    );
    gauge(
        "polis_fsyncs_total",
        "Log fsyncs (group commits).",
        "counter",
        syncs,
    );
    gauge(
        "polis_fsync_appends_total",
        "Log appends made durable by those fsyncs.",
        "counter",
        synced_appends,
    );
    text
}
