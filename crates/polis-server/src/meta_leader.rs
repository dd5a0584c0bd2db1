//! Requests to the meta leader, wherever it is: this node answers them
//! when it leads, otherwise they go to the leader it knows of, following
//! redirects while leadership moves.

use std::sync::Arc;
use std::time::Duration;

use crate::node::Node;
use crate::rpc::{self, NodeAnswer, NodeRequest};

/// How many redirects one request follows.
const REDIRECTS_MAX: usize = 3;

/// How long a request to the meta leader waits out an election.
const META_WAIT: Duration = Duration::from_secs(10);

/// Asks the meta leader, wherever it is, to answer `request`, asking
/// again while the meta group elects or its leadership moves (for up to
/// 10 s): what an operator's request should wait out rather than fail on.
pub async fn ask_patiently(node: &Arc<Node>, request: NodeRequest) -> NodeAnswer {
    let deadline = tokio::time::Instant::now() + META_WAIT;
    loop {
        let answer = ask(node, request.clone()).await;
        let electing = matches!(
            answer,
            NodeAnswer::Retry(_) | NodeAnswer::NotMetaLeader { .. }
        );
        if !electing || tokio::time::Instant::now() >= deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Cancels every migration that has not switched yet, asking the meta
/// leader wherever it is (its map is the newest: this node's may not
/// show a migration begun a moment ago). Returns the migrations
/// cancelled.
///
/// # Errors
/// Returns why they could not be cancelled: try again.
pub async fn cancel_migrations(node: &Arc<Node>) -> Result<Vec<u64>, String> {
    match ask_patiently(node, NodeRequest::CancelMigrations).await {
        NodeAnswer::Cancelled(ids) => Ok(ids),
        NodeAnswer::Refused(reason) => Err(reason),
        other => Err(format!("the migrations were not cancelled ({other:?})")),
    }
}

/// Asks the meta leader, wherever it is, to answer `request` (this node
/// when it leads), following up to a few redirects.
pub async fn ask(node: &Arc<Node>, request: NodeRequest) -> NodeAnswer {
    let me = node.config.node_id;
    let mut leader = node.meta_leader();
    for _ in 0..REDIRECTS_MAX {
        let answer = match leader {
            None => return NodeAnswer::Retry("the meta group has no leader now".into()),
            Some(leader) if leader == me => rpc::answer(node, me, request.clone()).await,
            Some(leader) => match node.peer_addr(leader) {
                Some(addr) => rpc::call(node, &addr, &request)
                    .await
                    .unwrap_or_else(NodeAnswer::Retry),
                None => NodeAnswer::Retry(format!("no address for node {leader}")),
            },
        };
        match answer {
            NodeAnswer::NotMetaLeader { leader: next } if next != leader => leader = next,
            answer => return answer,
        }
    }
    NodeAnswer::Retry("the meta group's leadership is moving".into())
}
