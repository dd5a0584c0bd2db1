//! The admin endpoint's namespaces: listed, set and removed
//! (`polis namespace`). A change that would move existing keys from one
//! consistency to the other is refused unless no node holds such a key:
//! strong keys live in Raft and eventual keys beside it, and neither side
//! reads the other's.
//!
//! The check and the change are two steps: a key written under the prefix
//! between them is not seen by the check (stop writers to the prefix
//! before changing its consistency).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use bytes::Bytes;
use polis_cluster::{CacheLimits, Consistency, MapChange, Namespace, Namespaces, Quorums};
use polis_types::EvictionPolicy;
use serde::{Deserialize, Serialize};

use crate::node::{now_ms, Node};
use crate::rpc::{self, NodeAnswer, NodeRequest};

/// A namespace as the admin API shows and takes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamespaceView {
    pub prefix: String,
    pub consistency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_quorum: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_quorum: Option<u8>,
    /// A strong namespace's cache limit per node, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxmemory_bytes: Option<u64>,
    /// Its eviction policy (Redis's names; noeviction when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxmemory_policy: Option<String>,
    /// What the namespace's keys take on the node that answered, in
    /// bytes (shown for namespaces with cache limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_bytes: Option<u64>,
}

impl NamespaceView {
    fn of(namespace: &Namespace, cache: Option<CacheLimits>) -> Self {
        Self {
            maxmemory_bytes: cache.map(|limits| limits.maxmemory_bytes),
            maxmemory_policy: cache.map(|limits| limits.policy.name().to_owned()),
            used_bytes: None,
            prefix: String::from_utf8_lossy(&namespace.prefix).into_owned(),
            consistency: namespace.consistency.name().to_owned(),
            replicas: namespace.quorums.map(|quorums| quorums.replicas),
            write_quorum: namespace.quorums.map(|quorums| quorums.write),
            read_quorum: namespace.quorums.map(|quorums| quorums.read),
        }
    }

    fn namespace(&self) -> Result<Namespace, String> {
        let consistency = Consistency::parse(&self.consistency).ok_or_else(|| {
            format!(
                "unknown consistency '{}': use strong or eventual",
                self.consistency
            )
        })?;
        let quorums = match (self.replicas, self.write_quorum, self.read_quorum) {
            (None, None, None) => None,
            (Some(replicas), Some(write), Some(read)) => Some(Quorums {
                replicas,
                write,
                read,
            }),
            _ => {
                return Err("give --replicas, --write-quorum and --read-quorum together".to_owned())
            }
        };
        Ok(Namespace {
            prefix: Bytes::from(self.prefix.clone().into_bytes()),
            consistency,
            quorums,
        })
    }

    fn cache(&self) -> Result<Option<CacheLimits>, String> {
        let policy = match &self.maxmemory_policy {
            None => EvictionPolicy::NoEviction,
            Some(name) => EvictionPolicy::parse(&name.to_ascii_lowercase()).ok_or_else(|| {
                let names: Vec<&str> = EvictionPolicy::ALL
                    .iter()
                    .map(|policy| policy.name())
                    .collect();
                format!(
                    "unknown --maxmemory-policy '{name}': use one of {}",
                    names.join(", ")
                )
            })?,
        };
        match self.maxmemory_bytes {
            Some(maxmemory_bytes) => Ok(Some(CacheLimits {
                maxmemory_bytes,
                policy,
            })),
            None if self.maxmemory_policy.is_some() => {
                Err("--maxmemory-policy needs --maxmemory".to_owned())
            }
            None => Ok(None),
        }
    }
}

/// What DELETE /namespaces takes.
#[derive(Debug, Deserialize)]
pub(crate) struct RemoveRequest {
    prefix: String,
}

/// GET /namespaces: the namespaces of this node's map, in prefix order.
pub(crate) async fn list(State(node): State<Arc<Node>>) -> Response {
    match node.view() {
        Some(view) => Json(
            view.map()
                .namespaces
                .iter()
                .map(|namespace| {
                    let cache = view.map().namespaces.cache(&namespace.prefix);
                    let mut shown = NamespaceView::of(namespace, cache);
                    if cache.is_some() {
                        let footprint = node.eviction.footprint();
                        shown.used_bytes = Some(footprint.namespace_bytes(&namespace.prefix));
                    }
                    shown
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "this node has no cluster map yet; try again",
        )
            .into_response(),
    }
}

/// PUT /namespaces: sets a namespace (adds it or replaces its settings).
pub(crate) async fn set(
    State(node): State<Arc<Node>>,
    Json(request): Json<NamespaceView>,
) -> Response {
    let (namespace, cache) = match request
        .namespace()
        .and_then(|namespace| request.cache().map(|cache| (namespace, cache)))
    {
        Ok(settings) => settings,
        Err(reason) => return (StatusCode::BAD_REQUEST, reason).into_response(),
    };
    let Some(view) = node.view() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no cluster map yet; try again",
        )
            .into_response();
    };
    let before = view.map().namespaces.clone();
    let mut after = before.clone();
    let prefix = namespace.prefix.clone();
    if let Err(error) = after
        .set(namespace.clone())
        .and_then(|()| after.set_cache(&prefix, cache))
    {
        return (StatusCode::BAD_REQUEST, error.to_string()).into_response();
    }
    let mut changes = vec![MapChange::SetNamespace(namespace)];
    if cache.is_some() {
        changes.push(MapChange::SetNamespaceCache {
            prefix: prefix.clone(),
            limits: cache,
        });
    }
    change(&node, &prefix, before, after, changes).await
}

/// DELETE /namespaces: removes a namespace; its keys fall under the next
/// shorter namespace, or are strong.
pub(crate) async fn remove(
    State(node): State<Arc<Node>>,
    Json(request): Json<RemoveRequest>,
) -> Response {
    let Some(view) = node.view() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no cluster map yet; try again",
        )
            .into_response();
    };
    let prefix = Bytes::from(request.prefix.into_bytes());
    let before = view.map().namespaces.clone();
    let mut after = before.clone();
    if after.remove(&prefix).is_none() {
        return (
            StatusCode::NOT_FOUND,
            format!(
                "no namespace has the prefix '{}' (see `polis namespace list`)",
                String::from_utf8_lossy(&prefix)
            ),
        )
            .into_response();
    }
    let change_of = MapChange::RemoveNamespace {
        prefix: prefix.clone(),
    };
    change(&node, &prefix, before, after, vec![change_of]).await
}

async fn change(
    node: &Arc<Node>,
    prefix: &Bytes,
    before: Namespaces,
    after: Namespaces,
    changes: Vec<MapChange>,
) -> Response {
    // Keys under the prefix change consistency only where the namespace
    // governing the prefix itself did; longer ones stay as they are.
    if before.consistency(prefix) != after.consistency(prefix) {
        if let Err(refusal) = check_no_key_changes(node, prefix, &before, &after).await {
            return (StatusCode::CONFLICT, refusal).into_response();
        }
    }
    let shown = String::from_utf8_lossy(prefix).into_owned();
    let answer = crate::meta_leader::ask_patiently(node, NodeRequest::ChangeMap { changes }).await;
    // Answer once every node routes by the new map, so a key written
    // right after is taken by the new rule wherever it lands.
    let lagging = match answer {
        NodeAnswer::Changed(version) => nodes_behind(node, version, MAP_WAIT).await,
        _ => Vec::new(),
    };
    crate::cluster_ops::answer_response(answer, |version| {
        let mut said = format!("namespace '{shown}' changed (map version {version})");
        if !lagging.is_empty() {
            let names: Vec<String> = lagging.iter().map(ToString::to_string).collect();
            said.push_str(&format!(
                "; nodes {} did not show that version within {} s (they route by their \
                 older map until it reaches them)",
                names.join(","),
                MAP_WAIT.as_secs()
            ));
        }
        said
    })
}

/// How long a namespace change waits for every node to have its map.
const MAP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits (up to `wait`) until every node of the map holds map `version`;
/// returns those that did not.
pub(crate) async fn nodes_behind(
    node: &Arc<Node>,
    version: u64,
    wait: std::time::Duration,
) -> Vec<polis_types::NodeId> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let mut behind = Vec::new();
        let Some(view) = node.view() else {
            return behind;
        };
        for record in view.map().nodes.values().filter(|record| record.active()) {
            let reached = if record.id == node.config.node_id {
                view.version() >= version
            } else {
                match node.peer_addr(record.id) {
                    Some(addr) => matches!(
                        rpc::call_within(node, &addr, &NodeRequest::GetMap, MAP_WAIT).await,
                        Ok(NodeAnswer::Map { map: Some(map), .. }) if map.version >= version
                    ),
                    None => false,
                }
            };
            if !reached {
                behind.push(record.id);
            }
        }
        if behind.is_empty() || tokio::time::Instant::now() >= deadline {
            return behind;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Asks every node whether it holds a key under `prefix` whose
/// consistency differs between `before` and `after`.
async fn check_no_key_changes(
    node: &Arc<Node>,
    prefix: &Bytes,
    before: &Namespaces,
    after: &Namespaces,
) -> Result<(), String> {
    let Some(view) = node.view() else {
        return Err("no cluster map yet; try again".into());
    };
    let request = NodeRequest::KeysChanging {
        prefix: prefix.clone(),
        before: before.clone(),
        after: after.clone(),
    };
    let shown = String::from_utf8_lossy(prefix).into_owned();
    for record in view
        .map()
        .nodes
        .values()
        .filter(|record| record.started() && !record.removed())
    {
        let answer = if record.id == node.config.node_id {
            keys_changing(node, prefix, before, after)
        } else {
            let Some(addr) = node.peer_addr(record.id) else {
                return Err(format!("node {} has no address in the map", record.id));
            };
            rpc::call(node, &addr, &request).await.map_err(|error| {
                format!(
                    "node {} did not answer ({error}): changing the consistency of '{shown}' \
                     needs every node to confirm it holds no key there; try again when every \
                     node is up",
                    record.id
                )
            })?
        };
        match answer {
            NodeAnswer::KeysChanging { count: 0, .. } => {}
            NodeAnswer::KeysChanging { count, example } => {
                return Err(format!(
                    "node {} holds {count} keys under '{shown}' (such as '{}') that are {} now \
                     and would become {}: a namespace's consistency changes only while it holds \
                     no keys; delete them first, or use a new prefix",
                    record.id,
                    String::from_utf8_lossy(&example.unwrap_or_default()),
                    before.consistency(prefix).name(),
                    after.consistency(prefix).name(),
                ))
            }
            other => return Err(format!("node {} answered {other:?}; try again", record.id)),
        }
    }
    Ok(())
}

/// Counts the keys under `prefix` this node holds (in its shard replicas
/// and its eventual keys) whose consistency differs between `before` and
/// `after`.
pub(crate) fn keys_changing(
    node: &Arc<Node>,
    prefix: &[u8],
    before: &Namespaces,
    after: &Namespaces,
) -> NodeAnswer {
    let changes =
        |key: &[u8]| key.starts_with(prefix) && before.consistency(key) != after.consistency(key);
    let now = now_ms();
    let mut count = 0u64;
    let mut example = None;
    for group in node.shards().values() {
        let state = group.state().read();
        for (key, _) in state.app.db.iter(now) {
            if changes(key) {
                count += 1;
                example.get_or_insert_with(|| key.clone());
            }
        }
    }
    match crate::eventual::live_keys(node, &changes) {
        Ok((eventual, first)) => {
            count += eventual;
            if let Some(first) = first {
                example.get_or_insert(first);
            }
        }
        Err(error) => return NodeAnswer::Refused(format!("storage: {error}")),
    }
    NodeAnswer::KeysChanging { count, example }
}

/// GET /eventual: this node's eventual keys (how many it stores,
/// tombstones included, and one digest of their states: two nodes that
/// converged show the same) and its eventual figures.
pub(crate) async fn eventual(State(node): State<Arc<Node>>) -> Response {
    let (keys, digest) = match crate::eventual::whole_digest(&node) {
        Ok(found) => found,
        Err(error) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("storage: {error}"),
            )
                .into_response()
        }
    };
    let figures: serde_json::Map<String, serde_json::Value> = crate::eventual::figures(&node)
        .into_iter()
        .map(|figure| (figure.name.to_owned(), figure.value.into()))
        .collect();
    Json(serde_json::json!({
        "keys": keys,
        "digest": format!("{digest:016x}"),
        "figures": figures,
    }))
    .into_response()
}
