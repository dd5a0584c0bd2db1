//! A node started on another binary than it last ran with records the
//! log entry formats it understands in the cluster map (a `Register` with
//! its data directory's token changes only that), so that the meta leader
//! raises the cluster version once every node runs the new release (see
//! [`polis_cluster::version`]). A node that starts with empty storage
//! records them when it registers; this is for restarts.

use std::sync::Arc;
use std::time::Duration;

use crate::node::Node;
use crate::rpc::{NodeAnswer, NodeRequest};

/// Attempts before giving up (each waits up to [`PAUSE_MAX`] first).
const ATTEMPTS_MAX: u32 = 60;
const PAUSE_MIN: Duration = Duration::from_millis(200);
const PAUSE_MAX: Duration = Duration::from_secs(5);

/// The formats the map records for this node, when it has a record.
fn recorded(node: &Node) -> Option<u32> {
    let view = node.view()?;
    let record = view.map().nodes.get(&node.config.node_id)?;
    Some(record.entry_format_max)
}

/// Records this node's entry formats in the map until it shows them.
pub async fn run(node: Arc<Node>) {
    let wanted = node.config.entry_format_max;
    let mut pause = PAUSE_MIN;
    for _ in 0..ATTEMPTS_MAX {
        match recorded(&node) {
            Some(formats) if formats == wanted => return,
            Some(formats) => {
                let request = NodeRequest::Register {
                    node: node.config.node_id,
                    entry_format_max: wanted,
                    token: node.token(),
                };
                match crate::meta_leader::ask_patiently(&node, request).await {
                    NodeAnswer::Registered(_) => {
                        tracing::info!(
                            from = formats,
                            to = wanted,
                            "recorded the entry formats this binary understands in the map"
                        );
                    }
                    NodeAnswer::Refused(reason) => {
                        tracing::error!(%reason, "this binary's entry formats were refused");
                        return;
                    }
                    other => tracing::debug!(?other, "entry formats not recorded yet"),
                }
            }
            None => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(PAUSE_MAX);
    }
    tracing::warn!(
        "the cluster map does not record the entry formats this binary understands: the \
         cluster version will not rise past the older binary's (restart the node to try again)"
    );
}
