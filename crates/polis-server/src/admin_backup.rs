//! The admin endpoint's backup and restore requests, answered by the
//! leader of the shard they name (any other node answers 421 and names
//! the leader it knows):
//!
//! - `GET /backup/shards/{id}`: the shard's snapshot at a log index that
//!   holds every write acknowledged before the request (the index, its
//!   term and the group's clock in `x-polis-*` headers);
//! - `GET /backup/meta`: the same for the meta group (the cluster map);
//! - `GET /backup/shards/{id}/digest?at_ms=T`: the digest of each slot
//!   the shard owns, over keys live at `T` (see [`crate::backup`]);
//! - `POST /restore/shards/{id}`: restored keys ([`RestoreChunk`], in
//!   postcard), written through the shard's log.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use polis_cluster::version::{self, EntryFormat};
use polis_raft::{Group, GroupBackup, ProposeError, StateMachine};
use polis_resp::Reply;
use polis_types::GroupId;
use serde::{Deserialize, Serialize};

use crate::backup::{slot_digests, RestoreChunk, SlotDigest};
use crate::machine::{Applied, Op};
use crate::node::{Node, ShardGroup};

/// How long a snapshot for a backup may take to build.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(600);

/// Bytes a restore request may carry: a chunk of keys, or one large
/// value (a list or stream travels whole).
pub(crate) const RESTORE_BODY_MAX: usize = 64 << 20;

/// GET /backup/shards/{id}.
pub(crate) async fn shard(State(node): State<Arc<Node>>, Path(id): Path<u64>) -> Response {
    match led_shard(&node, id) {
        Ok(group) => backup_response(&group, id).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// GET /backup/meta.
pub(crate) async fn meta(State(node): State<Arc<Node>>) -> Response {
    let Some(group) = node.meta() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the meta group is not running yet",
        )
            .into_response();
    };
    backup_response(&group, polis_types::META_GROUP.0).await
}

async fn backup_response<S: StateMachine>(group: &Group<S>, id: u64) -> Response {
    match group.backup(BACKUP_TIMEOUT).await {
        Ok(GroupBackup {
            index,
            term,
            time_ms,
            app,
        }) => (
            [
                ("x-polis-index", index.to_string()),
                ("x-polis-term", term.to_string()),
                ("x-polis-time-ms", time_ms.to_string()),
            ],
            app,
        )
            .into_response(),
        Err(error) => refused(id, &error),
    }
}

/// The query of GET /backup/shards/{id}/digest.
#[derive(Debug, Deserialize)]
pub(crate) struct DigestQuery {
    at_ms: u64,
}

/// What GET /backup/shards/{id}/digest answers.
#[derive(Debug, Serialize)]
pub(crate) struct ShardDigests {
    shard: u64,
    /// The log index the digests were taken at.
    index: u64,
    /// The slots the shard owns, as ranges.
    owned: String,
    /// (slot, keys, digest) of each owned slot holding live keys.
    slots: Vec<(u16, u64, u64)>,
}

/// GET /backup/shards/{id}/digest.
pub(crate) async fn digest(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
    Query(query): Query<DigestQuery>,
) -> Response {
    let group = match led_shard(&node, id) {
        Ok(group) => group,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(error) = group.linearizable_read().await {
        return refused(id, &error);
    }
    let state = group.state().read();
    let index = state.last_applied.map_or(0, |log_id| log_id.index);
    let owned = state.app.ownership.slots.clone();
    let digests = slot_digests(&state.app.db, &owned, query.at_ms);
    drop(state);
    Json(ShardDigests {
        shard: id,
        index,
        owned: polis_cluster::migration::render(&owned.ranges()),
        slots: digests
            .into_iter()
            .map(|(slot, SlotDigest { keys, digest })| (slot, keys, digest))
            .collect(),
    })
    .into_response()
}

/// POST /restore/shards/{id}: answers `{"written": N}`, N being the keys
/// (or parts) written; 409 when a key's slot is not the shard's or is
/// frozen for a moment (ask the owner, or again).
pub(crate) async fn restore(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let group = match led_shard(&node, id) {
        Ok(group) => group,
        Err(refusal) => return refusal.into_response(),
    };
    let chunk: RestoreChunk = match postcard::from_bytes(&body) {
        Ok(chunk) => chunk,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not a restore request: {error}"),
            )
                .into_response()
        }
    };
    let cluster_version = node.view().map_or(0, |view| view.map().cluster_version);
    if let Err(error) = version::check_enabled(EntryFormat::V10, cluster_version) {
        return (StatusCode::CONFLICT, error.to_string()).into_response();
    }
    let op = match chunk {
        RestoreChunk::Keys(keys) => Op::Restore(keys),
        RestoreChunk::Parts(parts) => Op::RestoreParts(parts),
    };
    match crate::migrate::propose(&group, &op).await {
        Ok(Applied::Reply(Reply::Integer(written))) => {
            Json(serde_json::json!({ "written": written })).into_response()
        }
        Ok(Applied::NotOwned { slot, version }) => (
            StatusCode::CONFLICT,
            format!("shard {id} does not own slot {slot} (map version {version}): ask its owner"),
        )
            .into_response(),
        Ok(Applied::Frozen { slot }) => (
            StatusCode::CONFLICT,
            format!("slot {slot:?} of shard {id} is moving to another shard: try again"),
        )
            .into_response(),
        Ok(other) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected answer: {other:?}"),
        )
            .into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error).into_response(),
    }
}

/// This node's replica of shard `id`, when it leads it.
fn led_shard(node: &Node, id: u64) -> Result<ShardGroup, Refusal> {
    let Some(group) = node.shard(GroupId(id)) else {
        return Err((
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "node {} holds no replica of shard {id}: ask its leader",
                node.config.node_id
            ),
        ));
    };
    if !group.is_leader() {
        return Err(not_leader(id, group.leader().map(|(_, peer)| peer.node_id)));
    }
    Ok(group)
}

fn refused(id: u64, error: &ProposeError) -> Response {
    match error {
        ProposeError::NotLeader { leader } => {
            not_leader(id, leader.as_ref().map(|(_, peer)| peer.node_id)).into_response()
        }
        ProposeError::Unavailable(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("group {id}: {reason}"),
        )
            .into_response(),
    }
}

/// A status and the reason, for a request this node does not answer.
type Refusal = (StatusCode, String);

fn not_leader(id: u64, leader: Option<polis_types::NodeId>) -> Refusal {
    let leader = leader.map_or("not known".to_owned(), |node| format!("node {node}"));
    (
        StatusCode::MISDIRECTED_REQUEST,
        format!("this node does not lead group {id}; its leader is {leader}"),
    )
}
