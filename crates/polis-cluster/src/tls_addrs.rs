//! Where each node serves TLS clients: published by the node itself
//! (`MapChange::SetTlsAddr`) when it starts with a `tls-port`, so that
//! every node can send a client that came over TLS to another node's TLS
//! port (MOVED, ASK, CLUSTER SHARDS), as Redis does with `tls-cluster`.

use polis_types::NodeId;

use crate::change::TxnError;
use crate::map::{ClusterMap, NodeState};

/// Bytes of a TLS address, at most (a host name and a port).
pub const TLS_ADDR_BYTES_MAX: usize = 300;

impl ClusterMap {
    /// Returns the address node `node` serves TLS clients at, if it has
    /// one.
    pub fn tls_addr(&self, node: NodeId) -> Option<&str> {
        self.tls_addrs.get(&node).map(String::as_str)
    }

    /// Returns the TLS address of the node whose RESP address is
    /// `resp_addr` (a redirect's target), if it has one.
    pub fn tls_addr_of_resp(&self, resp_addr: &str) -> Option<&str> {
        let (node, _) = self
            .nodes
            .iter()
            .find(|(_, record)| record.addrs.resp == resp_addr)?;
        self.tls_addr(*node)
    }

    pub(crate) fn set_tls_addr(
        &mut self,
        node: NodeId,
        addr: Option<&str>,
    ) -> Result<(), TxnError> {
        match self.nodes.get(&node) {
            None => return Err(TxnError::Rejected(format!("no node {node} in the cluster"))),
            Some(record) if record.state == NodeState::Removed => {
                return Err(TxnError::Rejected(format!("node {node} was removed")))
            }
            Some(_) => {}
        }
        let Some(addr) = addr else {
            self.tls_addrs.remove(&node);
            return Ok(());
        };
        let port = addr.rsplit_once(':').map(|(_, port)| port.parse::<u16>());
        if addr.len() > TLS_ADDR_BYTES_MAX || !matches!(port, Some(Ok(port)) if port > 0) {
            return Err(TxnError::Rejected(format!(
                "{addr:?} is not HOST:PORT (of at most {TLS_ADDR_BYTES_MAX} bytes)"
            )));
        }
        self.tls_addrs.insert(node, addr.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly.

    use super::*;
    use crate::change::MapChange;
    use crate::test_support::map;

    fn set(map: &ClusterMap, node: u64, addr: Option<&str>) -> Result<ClusterMap, TxnError> {
        map.apply(
            map.version,
            &[MapChange::SetTlsAddr {
                node: NodeId(node),
                addr: addr.map(str::to_owned),
            }],
        )
    }

    #[test]
    fn a_node_sets_and_removes_its_tls_address() {
        let map = map(3, 3);
        assert_eq!(map.tls_addr(NodeId(2)), None);
        let map = set(&map, 2, Some("127.0.0.1:7401")).unwrap();
        assert_eq!(map.tls_addr(NodeId(2)), Some("127.0.0.1:7401"));
        assert_eq!(map.tls_addr(NodeId(1)), None);
        let map = set(&map, 2, None).unwrap();
        assert_eq!(map.tls_addr(NodeId(2)), None);
    }

    #[test]
    fn bad_addresses_and_unknown_nodes_are_refused() {
        let map = map(3, 3);
        for addr in [
            "no-port",
            "host:0",
            "host:99999",
            &format!("{}:1", "h".repeat(300)),
        ] {
            assert!(set(&map, 1, Some(addr)).is_err(), "{addr}");
        }
        assert!(set(&map, 9, Some("127.0.0.1:7401")).is_err());
        assert_eq!(
            MapChange::SetTlsAddr {
                node: NodeId(1),
                addr: None
            }
            .format(),
            crate::EntryFormat::V9
        );
    }
}
