//! The node's copy of the cluster map: the newest version it has seen,
//! with its slot table. A node routes from it and never goes back to an
//! older version; a stale copy is corrected by the owner's `MOVED`, never
//! by guessing.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use polis_cluster::{ClusterMap, MapView};
use tokio::sync::watch;

/// The node's map.
pub struct MapState {
    current: RwLock<Option<Arc<MapView>>>,
    version: watch::Sender<u64>,
}

impl Default for MapState {
    fn default() -> Self {
        Self {
            current: RwLock::new(None),
            version: watch::channel(0).0,
        }
    }
}

impl MapState {
    /// Returns the map the node routes from, once it has one.
    pub fn current(&self) -> Option<Arc<MapView>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Returns the version of the current map (0 before the first).
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Takes `map` if it is newer than the current one; returns whether it
    /// did. An older or equal version changes nothing.
    pub fn adopt(&self, map: ClusterMap) -> bool {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if current
            .as_ref()
            .is_some_and(|view| view.version() >= map.version)
        {
            return false;
        }
        let version = map.version;
        *current = Some(Arc::new(MapView::new(map)));
        drop(current);
        self.version.send_replace(version);
        true
    }

    /// Waits until the map is at `version` or later, at most `timeout`;
    /// returns whether it got there.
    pub async fn wait_for(&self, version: u64, timeout: Duration) -> bool {
        let mut receiver = self.version.subscribe();
        let reached =
            tokio::time::timeout(timeout, receiver.wait_for(|current| *current >= version))
                .await
                .is_ok_and(|waited| waited.is_ok());
        reached
    }

    /// Returns a receiver that sees every new version.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use polis_cluster::{Layout, NodeAddrs};
    use polis_types::NodeId;

    use super::*;

    fn map(version: u64) -> ClusterMap {
        let nodes: BTreeMap<NodeId, NodeAddrs> = [(
            NodeId(1),
            NodeAddrs {
                peer: "p".into(),
                resp: "r".into(),
                admin: "a".into(),
            },
        )]
        .into();
        let mut map = Layout {
            cluster_id: 1,
            nodes,
            shards: 2,
            replication: 1,
            creator: NodeId(1),
            registered: polis_cluster::layout::creator_only(NodeId(1)),
        }
        .map()
        .unwrap_or_else(|error| panic!("{error}"));
        map.version = version;
        map
    }

    #[tokio::test]
    async fn the_map_never_goes_back_to_an_older_version() {
        let state = MapState::default();
        assert!(state.current().is_none());
        assert!(state.adopt(map(3)));
        assert!(!state.adopt(map(2)), "older");
        assert!(!state.adopt(map(3)), "the same");
        assert_eq!(state.version(), 3);
        assert!(state.wait_for(3, Duration::from_millis(1)).await);
        assert!(!state.wait_for(4, Duration::from_millis(10)).await);
        assert!(state.adopt(map(5)));
        assert_eq!(state.current().map(|view| view.version()), Some(5));
    }
}
