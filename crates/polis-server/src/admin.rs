//! The admin HTTP endpoint: health, status (what `polis status` shows),
//! Prometheus metrics, cluster changes ([`crate::cluster_ops`]) and change
//! feeds ([`crate::admin_feeds`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use axum::Router;
use polis_raft::{GroupStatus, Leadership, NetworkFaults};
use polis_types::{GroupId, NodeId, ReplicaId, META_GROUP};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::node::Node;
use crate::{
    admin_auth, admin_backup, admin_dashboard, admin_feeds, admin_namespaces, cluster_ops,
};

/// One node of the map, as this node sees it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSummary {
    pub id: NodeId,
    pub resp_addr: String,
    pub admin_addr: String,
    pub peer_addr: String,
    /// It beats (or it is this node).
    pub up: bool,
    pub incarnation: u64,
    /// `active`, `leaving` (being drained) or `removed`.
    pub state: String,
    /// Shard replicas the map places on it.
    pub replicas: usize,
    /// Shards it leads, as this node knows.
    pub leads: usize,
    pub meta_voter: bool,
}

/// One replica of a shard.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaSummary {
    pub replica_id: ReplicaId,
    pub node_id: NodeId,
    /// Highest log index the leader knows it holds.
    pub matched: Option<u64>,
    /// Entries behind the leader's last.
    pub lag: Option<u64>,
}

/// One shard: the map's view and its leader's figures (from the leader's
/// beats, or this node's own replica when it leads).
#[derive(Debug, Clone, Serialize)]
pub struct ShardSummary {
    pub id: GroupId,
    pub slots: Vec<String>,
    pub slot_count: usize,
    pub preferred_leader: NodeId,
    pub leader_node: Option<NodeId>,
    pub leader_resp_addr: Option<String>,
    pub term: Option<u64>,
    pub last_log_index: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    pub keys: Option<u64>,
    /// The bytes the leader's keyspace holds, as it estimates them.
    pub bytes: Option<u64>,
    /// The map version of the slot ownership the leader applied.
    pub owned_version: Option<u64>,
    /// The map version of the shard's slots: the shard serves once its
    /// leader's `owned_version` reaches it.
    pub slots_version: u64,
    pub serving: bool,
    pub parked: Option<bool>,
    pub replicas: Vec<ReplicaSummary>,
}

/// One slot migration under way.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationSummary {
    pub id: u64,
    pub source: GroupId,
    pub target: GroupId,
    pub slots: String,
    pub slot_count: usize,
    /// `copying` or `switched`.
    pub phase: String,
    pub attempt: u32,
    /// The driver's progress, when the asked node drives it (it leads
    /// the source shard).
    pub progress: Option<crate::migrate::Progress>,
}

/// A replica joining or leaving its shard's group: the map and the
/// group's members (as its leader counts them) differ.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaMoveSummary {
    pub shard: GroupId,
    pub replica_id: ReplicaId,
    pub node_id: Option<NodeId>,
    /// `adding` (in the map, not yet in the group), `catching-up` (in both,
    /// lagging) or `leaving` (in the group, no longer in the map).
    pub phase: String,
    pub lag: Option<u64>,
    /// Entries per second by which the lag shrank since this node first
    /// reported the move, once it shrank.
    pub entries_per_sec: Option<u64>,
    /// Seconds until the replica catches up at that pace.
    pub secs_left: Option<u64>,
}

/// What GET /status returns.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub node_id: NodeId,
    /// `starting` (no map yet), `ok` (every shard serves) or `degraded`.
    pub state: String,
    pub cluster_id: Option<String>,
    pub map_version: u64,
    pub cluster_version: u32,
    pub meta_leader: Option<NodeId>,
    /// On the meta leader: how many shard leaders its balancer still
    /// wants to move (0 when the spread is even); elsewhere absent.
    pub leader_moves_pending: Option<usize>,
    pub nodes: Vec<NodeSummary>,
    pub shards: Vec<ShardSummary>,
    pub migrations: Vec<MigrationSummary>,
    /// Replicas joining or leaving their shards, as the shard leaders'
    /// beats show them.
    pub replica_moves: Vec<ReplicaMoveSummary>,
    /// On the meta leader: what the scheduler and the balancers still
    /// want; elsewhere absent.
    pub scheduler: Option<crate::schedule::SchedulerReport>,
    /// This node's own replicas (the meta group's first), as it sees them.
    pub replicas: Vec<GroupStatus>,
}

/// Returns the cluster as this node sees it.
pub fn status(node: &Node) -> Status {
    let me = node.config.node_id;
    let mut replicas: Vec<GroupStatus> =
        node.meta().map(|meta| meta.status()).into_iter().collect();
    replicas.extend(node.shards().values().map(|group| group.status()));
    let Some(view) = node.view() else {
        return Status {
            node_id: me,
            state: "starting".into(),
            cluster_id: None,
            map_version: 0,
            cluster_version: 0,
            meta_leader: node.meta_leader(),
            leader_moves_pending: None,
            nodes: Vec::new(),
            shards: Vec::new(),
            migrations: Vec::new(),
            replica_moves: Vec::new(),
            scheduler: None,
            replicas,
        };
    };
    let map = view.map();
    let leaderships = node.host.leaders();
    let known = node.leaders();
    let beats = node.host.beats();
    let voters = map.meta_voters();
    let shards: Vec<ShardSummary> = map
        .shards
        .values()
        .map(|shard| {
            let leader_node = known.get(&shard.id).copied();
            let lead: Option<&Leadership> = leaderships.get(&shard.id).map(|(_, lead)| lead);
            let replicas = shard
                .replicas
                .iter()
                .map(|replica| {
                    let matched = lead.and_then(|lead| {
                        if lead.replica == replica.replica {
                            return Some(lead.last_log_index);
                        }
                        lead.matched
                            .iter()
                            .find(|(id, _)| *id == replica.replica)
                            .map(|(_, index)| *index)
                    });
                    ReplicaSummary {
                        replica_id: replica.replica,
                        node_id: replica.node,
                        matched,
                        lag: matched
                            .zip(lead)
                            .map(|(matched, lead)| lead.last_log_index.saturating_sub(matched)),
                    }
                })
                .collect();
            let owned_version = lead.map(|lead| lead.version);
            ShardSummary {
                id: shard.id,
                slots: shard.slots.iter().map(ToString::to_string).collect(),
                slot_count: shard.slots.iter().map(|range| range.len()).sum(),
                preferred_leader: shard.preferred_leader,
                leader_node,
                leader_resp_addr: leader_node
                    .and_then(|leader| map.resp_addr(leader).map(str::to_owned)),
                term: lead.map(|lead| lead.term),
                last_log_index: lead.map(|lead| lead.last_log_index),
                committed: lead.map(|lead| lead.committed),
                applied: lead.map(|lead| lead.applied),
                keys: lead.map(|lead| lead.items),
                bytes: lead.map(|lead| lead.bytes),
                owned_version,
                slots_version: shard.slots_version,
                serving: leader_node.is_some()
                    && owned_version.is_some_and(|owned| owned >= shard.slots_version),
                parked: lead.map(|lead| lead.parked),
                replicas,
            }
        })
        .collect();
    let nodes = map
        .nodes
        .values()
        .map(|record| NodeSummary {
            id: record.id,
            resp_addr: record.addrs.resp.clone(),
            admin_addr: record.addrs.admin.clone(),
            peer_addr: record.addrs.peer.clone(),
            up: beats.is_alive(record.id),
            incarnation: record.incarnation,
            state: record.state.name().into(),
            replicas: map.replicas_on(record.id).len(),
            leads: shards
                .iter()
                .filter(|shard| shard.leader_node == Some(record.id))
                .count(),
            meta_voter: voters.values().any(|voter| *voter == record.id),
        })
        .collect();
    let progress: std::collections::BTreeMap<u64, crate::migrate::Progress> =
        crate::migrate::progress(node).into_iter().collect();
    let migrations = map
        .migrations
        .values()
        .map(|migration| MigrationSummary {
            id: migration.id,
            source: migration.source,
            target: migration.target,
            slots: polis_cluster::migration::render(&migration.slots),
            slot_count: migration.slots.iter().map(|range| range.len()).sum(),
            phase: migration.phase.name().into(),
            attempt: migration.attempt,
            progress: progress.get(&migration.id).cloned(),
        })
        .collect();
    let state = if shards.iter().all(|shard| shard.serving) {
        "ok"
    } else {
        "degraded"
    };
    Status {
        node_id: me,
        state: state.into(),
        cluster_id: Some(format!("{:016x}", map.cluster_id)),
        map_version: map.version,
        cluster_version: map.cluster_version,
        meta_leader: known.get(&META_GROUP).copied(),
        leader_moves_pending: node.work.leader_moves_pending(),
        nodes,
        shards,
        migrations,
        replica_moves: paced(node, replica_moves(map, &leaderships)),
        scheduler: crate::schedule::report(node),
        replicas,
    }
}

/// Entries a replica may lag and still count as caught up, here.
const CAUGHT_UP_LAG: u64 = 16;

/// Returns the replicas joining or leaving each shard: where the map and
/// the members its leader counts differ, or a member lags.
fn replica_moves(
    map: &polis_cluster::ClusterMap,
    leaderships: &std::collections::BTreeMap<GroupId, (NodeId, Leadership)>,
) -> Vec<ReplicaMoveSummary> {
    let mut moves = Vec::new();
    for shard in map.shards.values() {
        let Some((_, lead)) = leaderships.get(&shard.id) else {
            continue;
        };
        let counted: std::collections::BTreeSet<ReplicaId> = lead.members().collect();
        let lag = |replica: ReplicaId| {
            lead.matched
                .iter()
                .find(|(member, _)| *member == replica)
                .map(|(_, matched)| lead.last_log_index.saturating_sub(*matched))
        };
        for replica in &shard.replicas {
            let phase = if !counted.contains(&replica.replica) {
                "adding"
            } else if lag(replica.replica).is_some_and(|lag| lag > CAUGHT_UP_LAG) {
                "catching-up"
            } else {
                continue;
            };
            moves.push(ReplicaMoveSummary {
                shard: shard.id,
                replica_id: replica.replica,
                node_id: Some(replica.node),
                phase: phase.into(),
                lag: lag(replica.replica),
                entries_per_sec: None,
                secs_left: None,
            });
        }
        for member in counted
            .iter()
            .filter(|member| shard.node_of(**member).is_none())
        {
            moves.push(ReplicaMoveSummary {
                shard: shard.id,
                replica_id: *member,
                node_id: None,
                phase: "leaving".into(),
                lag: lag(*member),
                entries_per_sec: None,
                secs_left: None,
            });
        }
    }
    moves
}

/// Fills in each replica move's pace: how fast its lag shrank since this
/// node first reported the move, and the time left at that pace.
fn paced(node: &Node, mut moves: Vec<ReplicaMoveSummary>) -> Vec<ReplicaMoveSummary> {
    let now = std::time::Instant::now();
    let mut seen = crate::controller::lock(&node.work.replica_moves_seen);
    seen.retain(|replica, _| moves.iter().any(|each| each.replica_id == *replica));
    for each in &mut moves {
        let Some(lag) = each.lag else {
            continue;
        };
        let first = *seen.entry(each.replica_id).or_insert((now, lag));
        if let Some((rate, left)) = pace(first, now, lag) {
            each.entries_per_sec = Some(rate);
            each.secs_left = Some(left);
        }
    }
    moves
}

/// Returns the entries per second by which a lag shrank from `first`
/// (when, and how much) to `lag` now, and the seconds left at that pace;
/// `None` until a second passed and the lag shrank.
fn pace(first: (std::time::Instant, u64), now: std::time::Instant, lag: u64) -> Option<(u64, u64)> {
    let (since, first_lag) = first;
    let secs = now.saturating_duration_since(since).as_secs_f64();
    if secs < 1.0 || first_lag <= lag {
        return None;
    }
    let rate = (first_lag - lag) as f64 / secs;
    Some((rate as u64, (lag as f64 / rate).ceil() as u64))
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
        .route("/metrics", get(metrics))
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/dashboard") }),
        )
        .route(
            "/dashboard",
            get(|| async { axum::response::Html(polis_client::dashboard::PAGE) }),
        )
        .route("/dashboard/throughput", get(admin_dashboard::throughput))
        .route("/cluster/nodes/{id}/remove", post(cluster_ops::remove_node))
        .route("/cluster/migrations", post(cluster_ops::begin_migration))
        .route(
            "/cluster/migrations/cancel",
            post(cluster_ops::cancel_migrations),
        )
        .route("/cluster/rebalance", post(cluster_ops::rebalance))
        .route("/cluster/shards/{id}/split", post(cluster_ops::split_shard))
        .route("/cluster/shards/{id}/merge", post(cluster_ops::merge_shard))
        .route(
            "/namespaces",
            get(admin_namespaces::list)
                .put(admin_namespaces::set)
                .delete(admin_namespaces::remove),
        )
        .route("/eventual", get(admin_namespaces::eventual))
        .route("/backup/meta", get(admin_backup::meta))
        .route("/backup/shards/{id}", get(admin_backup::shard))
        .route("/backup/shards/{id}/digest", get(admin_backup::digest))
        .route(
            "/restore/shards/{id}",
            post(admin_backup::restore).layer(axum::extract::DefaultBodyLimit::max(
                admin_backup::RESTORE_BODY_MAX,
            )),
        )
        .route(
            "/changefeeds",
            get(admin_feeds::get_feeds).put(admin_feeds::put_feeds),
        );
    if node.config.enable_fault_injection {
        app = app
            .route("/faults/fsync-error", post(inject_fsync_error))
            .route("/faults", get(get_faults).put(put_faults))
            .route("/faults/heal", post(heal));
    }
    let app = app
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            admin_auth::authorize,
        ))
        .with_state(node);
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
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
    let offset = faults.clock_offset_ms;
    match node.faults.set(faults) {
        Ok(()) => {
            node.eventual.clock.set_offset(offset);
            (StatusCode::OK, Json(node.faults.faults())).into_response()
        }
        Err(message) => (StatusCode::BAD_REQUEST, message).into_response(),
    }
}

async fn heal(State(node): State<Arc<Node>>) -> Response {
    put_faults(State(node), Json(NetworkFaults::default())).await
}

/// Ready when every shard of the map has a leader serving its slots.
async fn ready(State(node): State<Arc<Node>>) -> Response {
    let status = status(&node);
    if status.state == "ok" {
        (StatusCode::OK, "ready").into_response()
    } else {
        let waiting: Vec<String> = status
            .shards
            .iter()
            .filter(|shard| !shard.serving)
            .map(|shard| shard.id.to_string())
            .collect();
        let message = format!(
            "{}: shards not serving: {}",
            status.state,
            waiting.join(",")
        );
        (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
    }
}

async fn metrics(State(node): State<Arc<Node>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(&node),
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::pace;

    #[test]
    fn a_replica_move_is_paced_by_how_fast_its_lag_shrinks() {
        let since = Instant::now();
        let later = since + Duration::from_secs(4);
        // 8,000 entries caught up in 4 s: 2,000 a second, 2,000 left.
        assert_eq!(pace((since, 10_000), later, 2_000), Some((2_000, 1)));
        assert_eq!(pace((since, 10_000), since, 2_000), None, "too soon");
        assert_eq!(pace((since, 10_000), later, 12_000), None, "it grew");
    }
}
