//! The admin endpoint's requests that change the cluster: removing a
//! node, moving slots, cancelling migrations, splitting and merging
//! shards, asking for a balancing pass. Each is answered by the meta
//! leader, wherever it is.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use polis_types::{GroupId, NodeId};

use crate::node::Node;
use crate::rpc::NodeAnswer;

/// Starts removing a node: the meta leader marks it leaving, and drains
/// it (`polis cluster remove-node`).
pub(crate) async fn remove_node(State(node): State<Arc<Node>>, Path(id): Path<u64>) -> Response {
    let leaving = NodeId(id);
    let answer = crate::meta_leader::ask_patiently(
        &node,
        crate::rpc::NodeRequest::RemoveNode { node: leaving },
    )
    .await;
    answer_response(answer, |version| {
        format!(
            "node {leaving} is leaving (map version {version}): its leaderships and replicas \
             move to the other nodes, then it is removed and stops"
        )
    })
}

/// What POST /cluster/migrations takes.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct MigrateRequest {
    /// Slot ranges, as `0-99,200`.
    slots: String,
    to_shard: u64,
}

/// Begins moving slots to a shard (`polis cluster migrate`).
pub(crate) async fn begin_migration(
    State(node): State<Arc<Node>>,
    Json(request): Json<MigrateRequest>,
) -> Response {
    let slots = match polis_cluster::migration::parse_ranges(&request.slots) {
        Ok(slots) => slots,
        Err(reason) => return (StatusCode::BAD_REQUEST, reason).into_response(),
    };
    let target = GroupId(request.to_shard);
    let change = polis_cluster::MapChange::BeginMigration {
        slots: slots.clone(),
        target,
    };
    let answer = crate::meta_leader::ask_patiently(
        &node,
        crate::rpc::NodeRequest::ChangeMap {
            changes: vec![change],
        },
    )
    .await;
    answer_response(answer, |version| {
        format!(
            "moving slots {} to shard {target} (map version {version})",
            polis_cluster::migration::render(&slots)
        )
    })
}

/// Cancels every migration that has not switched yet.
pub(crate) async fn cancel_migrations(State(node): State<Arc<Node>>) -> Response {
    match crate::meta_leader::cancel_migrations(&node).await {
        Ok(ids) => {
            let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
            (
                StatusCode::OK,
                format!("cancelled {} migrations: {}", ids.len(), ids.join(",")),
            )
                .into_response()
        }
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{reason}; try again"),
        )
            .into_response(),
    }
}

/// Asks the meta leader for a scheduler pass now.
pub(crate) async fn rebalance(State(node): State<Arc<Node>>) -> Response {
    let answer = crate::meta_leader::ask_patiently(&node, crate::rpc::NodeRequest::Rebalance).await;
    answer_response(answer, |version| {
        format!("rebalancing from map version {version}")
    })
}

/// Splits a shard: half its slots move to a new shard.
pub(crate) async fn split_shard(State(node): State<Arc<Node>>, Path(id): Path<u64>) -> Response {
    let request = crate::rpc::NodeRequest::Split { shard: GroupId(id) };
    let answer = crate::meta_leader::ask_patiently(&node, request).await;
    answer_response(answer, |version| {
        format!("splitting shard {id} (map version {version})")
    })
}

/// What POST /cluster/shards/{id}/merge takes.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct MergeRequest {
    into: u64,
}

/// Merges a shard into another: every slot of it moves there, and the
/// emptied shard is retired.
pub(crate) async fn merge_shard(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
    Json(request): Json<MergeRequest>,
) -> Response {
    let into = request.into;
    let request = crate::rpc::NodeRequest::Merge {
        from: GroupId(id),
        into: GroupId(into),
    };
    let answer = crate::meta_leader::ask_patiently(&node, request).await;
    answer_response(answer, |version| {
        format!("merging shard {id} into shard {into} (map version {version})")
    })
}

/// Returns the HTTP form of a meta leader's answer to a map change.
pub(crate) fn answer_response(answer: NodeAnswer, done: impl FnOnce(u64) -> String) -> Response {
    match answer {
        NodeAnswer::Changed(version) => (StatusCode::OK, done(version)).into_response(),
        NodeAnswer::Refused(reason) => (StatusCode::CONFLICT, reason).into_response(),
        NodeAnswer::Retry(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{reason}; try again"),
        )
            .into_response(),
        other => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unexpected answer from the meta leader: {other:?}; try again"),
        )
            .into_response(),
    }
}
