//! A node with a `tls-port` publishes where it serves TLS clients in the
//! cluster map (`MapChange::SetTlsAddr`): the host it announces for RESP
//! and its TLS port. Then any node can redirect a TLS client to it.
//!
//! The node asks until the map shows the address, with a growing pause
//! (a few minutes at most): the cluster may still be forming, or run an
//! older entry format until every node is upgraded. A node without a TLS
//! port removes an address an earlier run of it published.

use std::sync::Arc;
use std::time::Duration;

use polis_cluster::change::MapChange;
use polis_cluster::EntryFormat;

use crate::node::Node;
use crate::rpc::{NodeAnswer, NodeRequest};

/// Attempts before giving up (each waits up to [`PAUSE_MAX`] first).
const ATTEMPTS_MAX: u32 = 60;
const PAUSE_MIN: Duration = Duration::from_millis(200);
const PAUSE_MAX: Duration = Duration::from_secs(5);

/// What the map says of this node's TLS address.
enum Published {
    /// The node has no map, or the map no record of it, yet, or the
    /// cluster's entry format cannot take the change yet.
    Unknown,
    /// The map has the address the node wants (or none, as wanted).
    Done,
    /// The map must change to this address (`None`: removed).
    Wanted(Option<String>),
}

/// Compares the map with the address `node` wants for its TLS port: the
/// host of its announced RESP address and the port.
fn published(node: &Node, tls_port: Option<u16>) -> Published {
    let Some(view) = node.view() else {
        return Published::Unknown;
    };
    let me = node.config.node_id;
    let Some(record) = view.map().nodes.get(&me) else {
        return Published::Unknown;
    };
    let wanted = tls_port.and_then(|port| {
        let (host, _) = record.addrs.resp.rsplit_once(':')?;
        Some(format!("{host}:{port}"))
    });
    if view.map().tls_addr(me) == wanted.as_deref() {
        Published::Done
    } else if view.map().cluster_version < EntryFormat::V9.number() {
        tracing::debug!("the cluster's entry format does not take TLS addresses yet");
        Published::Unknown
    } else {
        Published::Wanted(wanted)
    }
}

/// Publishes (or removes) this node's TLS address until the map has it.
pub async fn run(node: Arc<Node>, tls_port: Option<u16>) {
    let mut pause = PAUSE_MIN;
    for _ in 0..ATTEMPTS_MAX {
        match published(&node, tls_port) {
            Published::Done => return,
            Published::Unknown => {}
            Published::Wanted(addr) => {
                let request = NodeRequest::ChangeMap {
                    changes: vec![MapChange::SetTlsAddr {
                        node: node.config.node_id,
                        addr: addr.clone(),
                    }],
                };
                match crate::meta_leader::ask_patiently(&node, request).await {
                    NodeAnswer::Changed(_) => {
                        tracing::info!(tls = ?addr, "published this node's TLS address in the map");
                    }
                    other => tracing::debug!(?other, "the TLS address was not published yet"),
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(PAUSE_MAX);
    }
    if !matches!(published(&node, tls_port), Published::Done) {
        tracing::warn!(
            "this node's TLS address is not in the cluster map: TLS clients are redirected to \
             other nodes' plaintext ports until it is (restart the node to try again)"
        );
    }
}
