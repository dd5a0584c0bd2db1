//! A node removed from the cluster stops, and says why. It learns of its
//! removal from the map: the one its meta replica applies while it leaves,
//! or, for a node that was down meanwhile, the newer map its peers hold
//! (they answer a removed node's request for the map, and refuse it
//! anything else).

use std::sync::Arc;
use std::time::Duration;

use polis_cluster::{ClusterMap, NodeState};
use polis_types::NodeId;

use crate::node::Node;
use crate::replicas;

/// How often a leaving node asks its peers whether it was removed (its
/// meta replica may leave the group before it applies its removal).
const ASK_EVERY: Duration = Duration::from_secs(2);

/// Returns what a removed node says, when `map` removed `node`.
pub fn said(map: &ClusterMap, node: NodeId) -> Option<String> {
    map.node(node).filter(|record| record.removed()).map(|_| {
        format!(
            "node {node} was removed from the cluster (map version {}): it stops. To bring \
             this machine back, start it with an empty data directory, a new --node-id and \
             --join",
            map.version
        )
    })
}

/// Resolves once the node learns it was removed, with what it says. It
/// asks its peers once at start (it may have been removed while down),
/// then every few seconds while it is leaving.
pub async fn watch(node: Arc<Node>) -> String {
    let me = node.config.node_id;
    let mut versions = node.map.subscribe();
    let mut ask = true;
    loop {
        let Some(view) = node.view() else {
            let _ = versions.changed().await;
            continue;
        };
        if let Some(removed) = said(view.map(), me) {
            return removed;
        }
        if ask {
            if let Some(newer) = bootstrap_map(&node).await {
                if said(&newer, me).is_some() {
                    replicas::adopt(&node, newer).await;
                    continue;
                }
            }
        }
        let leaving = view
            .map()
            .node(me)
            .is_some_and(|record| record.state == NodeState::Leaving);
        tokio::select! {
            _ = versions.changed() => ask = false,
            () = tokio::time::sleep(ASK_EVERY), if leaving => ask = true,
        }
    }
}

async fn bootstrap_map(node: &Arc<Node>) -> Option<ClusterMap> {
    let newer = crate::bootstrap::newest_peer_map(node).await?;
    (newer.version > node.map.version()).then_some(newer)
}
