//! Keyed reads: linearizable after a ReadIndex round (shared by a
//! pipeline's reads of one shard), or this replica's copy after READONLY.

use std::sync::Arc;

use polis_commands::Command;
use polis_resp::{Reply, ReplyError};
use polis_store::Db;
use polis_types::{GroupId, Slot};

use super::{
    context, frozen, no_map, not_owned, refused, to_leader, wait_out_freeze, WRITE_ATTEMPTS_MAX,
};
use crate::connection::Session;
use crate::node::Node;
use crate::stats::Stats;

/// Reads `slot` of `shard`: linearizably on the leader, or from this
/// replica (leader or not) after READONLY.
pub(super) async fn read(
    node: &Arc<Node>,
    session: &mut Session,
    shard: GroupId,
    slot: Slot,
    command: &Command,
) -> Reply {
    let ctx = context(session);
    let freshness = if session.readonly {
        Freshness::Local
    } else {
        Freshness::Pipelined(&mut session.confirmed)
    };
    read_with(node, freshness, shard, slot, |db| {
        command.execute_read(db, &ctx)
    })
    .await
}

/// How fresh a read must be.
pub enum Freshness<'a> {
    /// This replica's copy, whatever its role (READONLY).
    Local,
    /// Linearizable: a ReadIndex round that started after the read
    /// arrived (shared with concurrent reads).
    Linearizable,
    /// Linearizable, in a pipeline: the shards listed had such a round
    /// after the pipeline arrived, which serves its every read (each was
    /// sent before the round started); a round run here is listed.
    Pipelined(&'a mut Vec<GroupId>),
}

/// Runs `read` on the keyspace of `shard` once it is as fresh as asked
/// and the shard owns `slot`.
pub async fn read_with(
    node: &Arc<Node>,
    mut freshness: Freshness<'_>,
    shard: GroupId,
    slot: Slot,
    read: impl Fn(&Db) -> Reply,
) -> Reply {
    let Some(view) = node.view() else {
        return no_map();
    };
    let Some(group) = node.shard(shard) else {
        return to_leader(node, &view, shard, slot);
    };
    for attempt in 0..WRITE_ATTEMPTS_MAX {
        // READONLY accepts this replica's copy, whatever its role, as a
        // Redis Cluster master serves reads: no quorum round even on the
        // leader (which is at least as fresh as its followers).
        let round = match &freshness {
            Freshness::Local => false,
            Freshness::Linearizable => true,
            // After a wait for a migration, a new round.
            Freshness::Pipelined(confirmed) => attempt > 0 || !confirmed.contains(&shard),
        };
        if matches!(freshness, Freshness::Local) {
            Stats::bump(&node.stats.local_reads);
        } else {
            if round {
                if let Err(error) = group.linearizable_read().await {
                    return refused(node, shard, Some(slot), error);
                }
                if let Freshness::Pipelined(confirmed) = &mut freshness {
                    if !confirmed.contains(&shard) {
                        confirmed.push(shard);
                    }
                }
            }
            Stats::bump(&node.stats.linearizable_reads);
        }
        let version = {
            let state = group.state().read();
            if state.app.migrations.frozen(Some(slot)) {
                None
            } else if state.app.owns(Some(slot)) {
                return read(&state.app.db);
            } else {
                Some(state.app.ownership.version)
            }
        };
        let Some(version) = version else {
            if !wait_out_freeze(node, &group, slot).await {
                return frozen(Some(slot));
            }
            continue;
        };
        if let Some(reply) = not_owned(node, &group, slot, version).await {
            return reply;
        }
    }
    Reply::Error(ReplyError::TryAgain(
        "the shard's slots kept changing; try again".into(),
    ))
}
