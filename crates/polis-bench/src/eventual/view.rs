//! One node's eventual keys as its admin endpoint shows them (`GET
//! /eventual`): how many it stores (tombstones included), one digest of
//! their states (equal on two nodes holding the same states), and its
//! eventual figures.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use polis_client::admin;
use serde::{Deserialize, Serialize};

/// How long one `GET /eventual` may take: the node hashes every eventual
/// key it stores to answer.
const VIEW_TIMEOUT: Duration = Duration::from_secs(30);

/// The figure of the bytes anti-entropy sent and received.
pub const ANTI_ENTROPY_BYTES: &str = "anti_entropy_bytes_total";
/// The figure of the anti-entropy rounds run.
pub const ANTI_ENTROPY_ROUNDS: &str = "anti_entropy_rounds_total";

/// What one node said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    pub node: u64,
    pub keys: u64,
    pub digest: String,
    pub figures: BTreeMap<String, u64>,
}

impl NodeView {
    /// Returns figure `name` (0 if the node did not show it).
    pub fn figure(&self, name: &str) -> u64 {
        self.figures.get(name).copied().unwrap_or(0)
    }

    /// Returns whether this node holds the same eventual states as `other`.
    pub fn agrees_with(&self, other: &NodeView) -> bool {
        self.keys == other.keys && self.digest == other.digest
    }
}

/// Asks node `node` at admin address `admin` for its eventual keys.
///
/// # Errors
/// Fails if the node does not answer, answers an error, or answers
/// something else than the expected JSON.
pub async fn fetch(node: u64, admin: &str) -> anyhow::Result<NodeView> {
    let (code, body) = admin::get(admin, "/eventual", VIEW_TIMEOUT)
        .await
        .with_context(|| format!("GET /eventual on node {node}"))?;
    anyhow::ensure!(
        code == 200,
        "GET /eventual on node {node} answered {code}: {}",
        String::from_utf8_lossy(&body)
    );
    parse(node, &body)
}

fn parse(node: u64, body: &[u8]) -> anyhow::Result<NodeView> {
    let json: serde_json::Value =
        serde_json::from_slice(body).with_context(|| format!("node {node}'s /eventual"))?;
    let keys = json["keys"]
        .as_u64()
        .with_context(|| format!("no keys in node {node}'s /eventual: {json}"))?;
    let digest = json["digest"]
        .as_str()
        .with_context(|| format!("no digest in node {node}'s /eventual: {json}"))?
        .to_owned();
    let figures = json["figures"]
        .as_object()
        .map(|figures| {
            figures
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), value.as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    Ok(NodeView {
        node,
        keys,
        digest,
        figures,
    })
}

/// Asks every node of `admins` (id, admin address) for its view, in turn.
///
/// # Errors
/// Fails with the first node that cannot answer.
pub async fn fetch_all(admins: &[(u64, String)]) -> anyhow::Result<Vec<NodeView>> {
    let mut views = Vec::with_capacity(admins.len());
    for (node, admin) in admins {
        views.push(fetch(*node, admin).await?);
    }
    Ok(views)
}

/// Returns whether every view shows the same keys and digest.
pub fn all_agree(views: &[NodeView]) -> bool {
    views
        .split_first()
        .is_some_and(|(first, rest)| rest.iter().all(|view| view.agrees_with(first)))
}

/// Returns, per node, how much figure `name` grew from `before` to
/// `after` (nodes matched by id; a node missing from `before` counts from 0).
pub fn growth(before: &[NodeView], after: &[NodeView], name: &str) -> Vec<(u64, u64)> {
    after
        .iter()
        .map(|view| {
            let base = before
                .iter()
                .find(|old| old.node == view.node)
                .map_or(0, |old| old.figure(name));
            (view.node, view.figure(name).saturating_sub(base))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_answer_of_a_node_parses() {
        let body = br#"{"keys": 12, "digest": "00ab", "figures": {"anti_entropy_bytes_total": 300, "hints_pending": 0}}"#;
        let view = parse(2, body).unwrap();
        assert_eq!(view.node, 2);
        assert_eq!(view.keys, 12);
        assert_eq!(view.digest, "00ab");
        assert_eq!(view.figure(ANTI_ENTROPY_BYTES), 300);
        assert_eq!(view.figure("not_shown"), 0);
        assert!(parse(2, br#"{"digest": "00ab"}"#).is_err());
    }

    #[test]
    fn agreement_needs_the_same_keys_and_digest_everywhere() {
        let view = |node, keys, digest: &str| NodeView {
            node,
            keys,
            digest: digest.to_owned(),
            figures: BTreeMap::new(),
        };
        assert!(all_agree(&[
            view(1, 5, "aa"),
            view(2, 5, "aa"),
            view(3, 5, "aa")
        ]));
        assert!(!all_agree(&[
            view(1, 5, "aa"),
            view(2, 5, "aa"),
            view(3, 4, "aa")
        ]));
        assert!(!all_agree(&[view(1, 5, "aa"), view(2, 5, "ab")]));
        assert!(!all_agree(&[]));
    }

    #[test]
    fn growth_is_per_node_and_never_negative() {
        let view = |node, bytes| NodeView {
            node,
            figures: BTreeMap::from([(ANTI_ENTROPY_BYTES.to_owned(), bytes)]),
            ..NodeView::default()
        };
        let before = [view(1, 100), view(2, 50)];
        let after = [view(1, 400), view(2, 40), view(3, 7)];
        assert_eq!(
            growth(&before, &after, ANTI_ENTROPY_BYTES),
            [(1, 300), (2, 0), (3, 7)]
        );
    }
}
