//! Active expiry: the leader of each shard finds keys whose deadline
//! passed and proposes their deletion, so every replica deletes the same
//! keys at the same log position. Reads never see an expired key either
//! way.

use std::sync::Arc;
use std::time::Duration;

use polis_types::limits::EXPIRE_BATCH_KEYS_MAX;

use crate::blocking::Touched;
use crate::machine::Op;
use crate::node::{now_ms, Node};

/// How often the leaders look for expired keys (Redis's default `hz` 10).
const TICK: Duration = Duration::from_millis(100);
/// Batches proposed per shard per tick at most, so expiry never starves
/// clients.
const BATCHES_PER_TICK_MAX: usize = 16;

/// Runs active expiry for the shards this node leads until aborted.
pub async fn run(node: Arc<Node>) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        for group in node.shards().into_values() {
            // Looking costs no Raft traffic: a parked group stays parked
            // unless it has expired keys to delete.
            if !group.is_leader() {
                continue;
            }
            for _ in 0..BATCHES_PER_TICK_MAX {
                let keys = group
                    .state()
                    .read()
                    .app
                    .db
                    .expired_keys(now_ms(), EXPIRE_BATCH_KEYS_MAX);
                if keys.is_empty() {
                    break;
                }
                let full = keys.len() == EXPIRE_BATCH_KEYS_MAX;
                // A blocked XREADGROUP whose stream expires ends, as when
                // it is deleted.
                let waited = (!node.blocking.is_empty()).then(|| keys.clone());
                let Ok(payload) = Op::Expire(keys).encode() else {
                    break;
                };
                if let Err(error) = group.propose(payload).await {
                    tracing::debug!(%error, shard = %group.id(), "expiry proposal not applied");
                    break;
                }
                if let Some(keys) = waited {
                    // Nobody waits for the waiters' tries here.
                    drop(
                        node.blocking
                            .readied(group.id(), &Touched::Keys(keys), None),
                    );
                }
                if !full {
                    break;
                }
            }
        }
    }
}
