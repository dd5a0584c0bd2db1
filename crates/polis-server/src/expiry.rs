//! Active expiry: the leader finds keys whose deadline passed and proposes
//! their deletion, so every replica deletes the same keys at the same log
//! position. Reads never see an expired key either way.

use std::sync::Arc;
use std::time::Duration;

use polis_types::limits::EXPIRE_BATCH_KEYS_MAX;

use crate::machine::Op;
use crate::node::{now_ms, Node};

/// How often the leader looks for expired keys (Redis's default `hz` 10).
const TICK: Duration = Duration::from_millis(100);
/// Batches proposed per tick at most, so expiry never starves clients.
const BATCHES_PER_TICK_MAX: usize = 16;

/// Runs active expiry for the node's data group until aborted.
pub async fn run(node: Arc<Node>) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if !node.group.is_leader() {
            continue;
        }
        for _ in 0..BATCHES_PER_TICK_MAX {
            let keys = node
                .group
                .state()
                .read()
                .app
                .db
                .expired_keys(now_ms(), EXPIRE_BATCH_KEYS_MAX);
            if keys.is_empty() {
                break;
            }
            let full = keys.len() == EXPIRE_BATCH_KEYS_MAX;
            let Ok(payload) = Op::Expire(keys).encode() else {
                break;
            };
            if let Err(error) = node.group.propose(payload).await {
                tracing::debug!(%error, "expiry proposal not applied");
                break;
            }
            if !full {
                break;
            }
        }
    }
}
