//! The replicas this node hosts, kept in step with the cluster map: its
//! meta replica, and one replica of each shard the map places here.
//!
//! A replica's life follows the map: created when the map places it here
//! (a shard's first replicas start the group with its first membership,
//! later ones wait for the leader to add them), opened at start-up from
//! storage, stopped and destroyed (data removed last) when the map no
//! longer places it here and the group no longer counts it (a replica
//! moving away serves until its successor took its place; a retired
//! shard's at once, since it owns nothing). Stored groups
//! the map does not give this node, or gives under another replica id,
//! are destroyed before anything starts: an old replica id never answers
//! again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use polis_cluster::{ClusterMap, MetaMachine, ShardRecord, ShardReplica};
use polis_raft::{GroupSpec, PeerAddr, PeerNode};
use polis_types::{GroupId, NodeId, ReplicaId, META_GROUP};
use tokio::sync::watch;

use crate::balance;
use crate::bootstrap::{self, Identity};
use crate::machine::DataMachine;
use crate::node::{Node, ServerError};

/// Elections the replica meant to lead a shard stands for at its start.
const ELECTION_TRIES_MAX: usize = 5;

/// Returns how `node` is reached, for a group membership.
pub fn peer_node(map: &ClusterMap, node: NodeId) -> PeerNode {
    let addrs = map.node(node).map(|record| record.addrs.clone());
    PeerNode {
        node_id: node,
        peer_addr: addrs.as_ref().map(|a| a.peer.clone()).unwrap_or_default(),
        resp_addr: addrs.as_ref().map(|a| a.resp.clone()).unwrap_or_default(),
        admin_addr: addrs.map(|a| a.admin).unwrap_or_default(),
    }
}

/// Returns the replica the map gives `node` in `group`, if any.
fn placed(map: &ClusterMap, node: NodeId, group: GroupId) -> Option<ReplicaId> {
    if group == META_GROUP {
        return map.node(node).map(|record| record.meta_replica);
    }
    map.shards
        .get(&group)?
        .replica_on(node)
        .map(|replica| replica.replica)
}

/// Opens the node's replicas at start-up, after destroying stored groups
/// the map does not give it.
///
/// # Errors
/// Returns an error if storage fails or a group cannot start.
pub async fn open(node: &Arc<Node>, identity: &Identity) -> Result<(), ServerError> {
    let view = node
        .view()
        .ok_or_else(|| ServerError::Bootstrap("no cluster map after bootstrap".into()))?;
    let map = view.map();
    let me = node.config.node_id;
    for (group, replica) in node.host.stored_groups().map_err(ServerError::Storage)? {
        if placed(map, me, group) != Some(replica) {
            tracing::warn!(%group, %replica, "stored replica not in the map: destroying it");
            node.host
                .destroy_group(group)
                .await
                .map_err(ServerError::Storage)?;
        }
    }
    start_meta(node, map, identity).await?;
    reconcile(node).await;
    Ok(())
}

async fn start_meta(
    node: &Arc<Node>,
    map: &ClusterMap,
    identity: &Identity,
) -> Result<(), ServerError> {
    let me = node.config.node_id;
    let replica = placed(map, me, META_GROUP)
        .ok_or_else(|| ServerError::Bootstrap(format!("node {me} is not in the cluster map")))?;
    // The nodes registered in the first map start the group with its
    // voters (every one alike: openraft makes that idempotent); the others
    // are added by the meta leader once they registered.
    let voters = map.meta_voters();
    let bootstrap = (map.version == 1
        && identity.incarnation == 1
        && voters.contains_key(&replica))
    .then(|| {
        voters
            .iter()
            .map(|(voter, node)| (*voter, peer_node(map, *node)))
            .collect()
    });
    let (machine, published) = MetaMachine::new();
    let spec = GroupSpec {
        group: META_GROUP,
        replica,
        bootstrap,
    };
    let group = node
        .host
        .start_group(spec, machine)
        .await
        .map_err(ServerError::Storage)?;
    node.set_meta(group);
    tokio::spawn(adopt_published(node.clone(), published));
    Ok(())
}

/// Adopts every map the meta replica applies, while the node runs.
async fn adopt_published(node: Arc<Node>, mut published: watch::Receiver<Option<Arc<ClusterMap>>>) {
    loop {
        let map = published.borrow_and_update().clone();
        if let Some(map) = map {
            adopt(&node, (*map).clone()).await;
        }
        if published.changed().await.is_err() {
            return;
        }
    }
}

/// Takes `map` if it is newer than the node's and brings the replicas in
/// step with it. The map is saved before the node routes from it, so a
/// restart never routes from an older version than one routed from.
pub async fn adopt(node: &Arc<Node>, map: ClusterMap) {
    let version = map.version;
    {
        let _serial = node.work.adopting.lock().await;
        if version <= node.map.version() {
            return;
        }
        if let Err(error) = bootstrap::save_map(node, &map).await {
            tracing::error!(%error, version, "cannot save the cluster map; not adopting it");
            return;
        }
        node.map.adopt(map);
    }
    tracing::info!(version, "cluster map adopted");
    reconcile(node).await;
}

/// Waits for new maps and reconciles, until the node stops (a backstop to
/// [`adopt`], which reconciles on every new map).
pub async fn follow_map(node: Arc<Node>) {
    let mut versions = node.map.subscribe();
    while versions.changed().await.is_ok() {
        reconcile(&node).await;
        drop_lost_shard_channels(&node);
    }
}

/// Unsubscribes this node's clients from the shard channels whose slot
/// belongs to a shard with no replica here any more (see
/// `crate::pubsub::lost`).
fn drop_lost_shard_channels(node: &Node) {
    let Some(view) = node.view() else {
        return;
    };
    let me = node.config.node_id;
    let held: BTreeSet<GroupId> = view
        .map()
        .replicas_on(me)
        .into_iter()
        .map(|(shard, _)| shard.id)
        .collect();
    let ended = node.pubsub.drop_shard_channels(|channel| {
        let slot = polis_types::key_hash_slot(channel);
        !view
            .owner(slot)
            .is_some_and(|shard| held.contains(&shard.id))
    });
    if ended > 0 {
        tracing::info!(
            ended,
            "shard channel subscriptions ended: their slots left this node"
        );
    }
}

/// Starts the shard replicas the map places here and destroys those it no
/// longer does; points the node's beats at every node of the map.
pub async fn reconcile(node: &Arc<Node>) {
    let _serial = node.work.reconcile.lock().await;
    let Some(view) = node.view() else {
        return;
    };
    let map = view.map();
    let me = node.config.node_id;
    crate::cache_namespaces::follow(node, map);
    node.host.set_peers(
        map.nodes
            .values()
            .filter(|record| !record.removed())
            .map(|record| PeerAddr {
                node: record.id,
                addr: record.addrs.peer.clone(),
            }),
    );
    let mut leaders = None;
    for (shard, group) in node.shards() {
        if !map.shards.contains_key(&shard) {
            // Retired: the shard owns nothing and no migration needs it.
            tracing::info!(%shard, "the shard was retired: destroying its replica");
            node.remove_shard(shard);
            if let Err(error) = node.host.destroy_group(shard).await {
                tracing::error!(%shard, %error, "cannot destroy a replica");
            }
            continue;
        }
        if placed(map, me, shard) != Some(group.replica()) {
            // Its data goes last: once the group no longer counts it.
            let leaders = leaders.get_or_insert_with(|| node.host.leaders());
            let leader = leaders.get(&shard).map(|(_, leader)| leader);
            if balance::counts(leader, group.replica()) {
                continue;
            }
            tracing::info!(%shard, replica = %group.replica(), "the map moved this replica away");
            node.remove_shard(shard);
            if let Err(error) = node.host.destroy_group(shard).await {
                tracing::error!(%shard, %error, "cannot destroy a replica");
            }
        }
    }
    for (shard, replica) in map.replicas_on(me) {
        if node.shard(shard.id).is_some() {
            continue;
        }
        if let Err(error) = start_shard(node, map, shard, replica).await {
            tracing::error!(shard = %shard.id, %error, "cannot start a shard replica");
        }
    }
}

async fn start_shard(
    node: &Arc<Node>,
    map: &ClusterMap,
    shard: &ShardRecord,
    replica: ShardReplica,
) -> std::io::Result<()> {
    let bootstrap = replica.bootstrap.then(|| {
        shard
            .first_members
            .iter()
            .map(|(member, node)| (*member, peer_node(map, *node)))
            .collect::<BTreeMap<_, _>>()
    });
    let spec = GroupSpec {
        group: shard.id,
        replica: replica.replica,
        bootstrap,
    };
    let group = Arc::new(
        node.host
            .start_group(spec, {
                let mut machine = DataMachine::new(shard.id)
                    .with_events(crate::notify::publisher(node))
                    .with_footprint(node.eviction.footprint());
                machine.set_notify_mask(crate::notify::record_mask(node.key_events.flags()));
                machine
                    .db
                    .set_encoding_limits(node.settings.encoding_limits());
                machine.db.set_tracking(node.eviction.config().tracking());
                machine.db.set_namespaces(node.eviction.caches.table());
                machine
            })
            .await?,
    );
    node.insert_shard(group.clone());
    let settings = node.host.settings();
    let heartbeat = Duration::from_millis(settings.heartbeat_ms);
    let election_max = Duration::from_millis(settings.election_timeout_max_ms);
    if replica.bootstrap && shard.preferred_leader == node.config.node_id {
        tokio::spawn(async move {
            // Pre-vote elections: they never depose a leader a quorum still
            // hears from. They spare a new group (or a restarted cluster) an
            // election timeout, and leaders start where the map spreads
            // them; tried until a leader is known, a bounded number of times.
            for _ in 0..ELECTION_TRIES_MAX {
                tokio::time::sleep(heartbeat * 2).await;
                if group.leader().is_some() {
                    return;
                }
                if let Err(error) = group.elect().await {
                    tracing::debug!(%error, "no election stood for");
                    return;
                }
                tokio::time::sleep(election_max).await;
            }
        });
    } else if group.term() == 0 {
        // A brand-new group: the others let the preferred replica win,
        // unless it does not come within a few election timeouts; once a
        // leader is known they stand again, should it fail.
        group.set_electable(false);
        tokio::spawn(async move {
            let give_up = tokio::time::Instant::now() + election_max * 3;
            while group.leader().is_none() && tokio::time::Instant::now() < give_up {
                tokio::time::sleep(heartbeat).await;
            }
            group.set_electable(true);
        });
    }
    Ok(())
}
