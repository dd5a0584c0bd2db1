//! What the web dashboard ([`polis_client::dashboard`]) reads beyond
//! `/status`: the cluster's command totals, added up over every node's
//! `/metrics` (this node's own read directly, the others' asked for with
//! the page's own credentials), so its throughput chart is the
//! cluster's, not one node's.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Json;
use polis_client::admin::{self, Method};
use polis_client::dashboard::Totals;
use serde::Serialize;

use crate::node::Node;

/// How long another node's `/metrics` may take: the page asks every
/// second or two, and a node that is down must not hold it up.
const ASK_TIMEOUT: Duration = Duration::from_millis(800);

/// What GET /dashboard/throughput answers.
#[derive(Debug, Serialize)]
pub(crate) struct ClusterTotals {
    /// The nodes of the map (removed ones left out), and those whose
    /// totals are in the sums.
    nodes: usize,
    answered: usize,
    #[serde(flatten)]
    totals: Totals,
}

/// GET /dashboard/throughput.
pub(crate) async fn throughput(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
) -> Json<ClusterTotals> {
    let me = node.config.node_id;
    let others: Vec<String> = node
        .view()
        .map(|view| {
            view.map()
                .nodes
                .values()
                .filter(|record| !record.removed() && record.id != me)
                .map(|record| record.addrs.admin.clone())
                .collect()
        })
        .unwrap_or_default();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let asked = others.iter().map(|addr| async move {
        let (code, _, body) = admin::exchange_as(
            Method::GET,
            addr,
            "/metrics",
            authorization,
            None,
            ASK_TIMEOUT,
        )
        .await
        .ok()?;
        (code == 200).then(|| Totals::from_metrics(&String::from_utf8_lossy(&body)))
    });
    let mut totals = Totals::from_metrics(&crate::metrics::render(&node));
    let mut answered = 1;
    for other in futures::future::join_all(asked).await.into_iter().flatten() {
        totals.add(other);
        answered += 1;
    }
    Json(ClusterTotals {
        nodes: others.len() + 1,
        answered,
        totals,
    })
}
