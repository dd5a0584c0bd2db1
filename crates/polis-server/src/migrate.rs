//! Carrying slot migrations out. The leader of a migration's source shard
//! drives it; every step is a log entry of the source, the target or the
//! meta group, so whichever node leads the source next resumes it from
//! what the map and the source's state say:
//!
//! 1. `Track` on the source: changes to the moving slots are recorded;
//! 2. the copy: every key of the slots, in pages, staged on the target
//!    (`Stage` entries of the target's leader; the first resets what an
//!    earlier attempt staged);
//! 3. rounds: the keys changed since the last look, until few are left;
//! 4. `Freeze` on the source: commands on the slots are refused at apply;
//!    the last changes are staged; within `--migration-pause-max-ms` the
//!    meta group is asked for the switch (`SwitchMigration`, at this
//!    attempt). Past the bound, `RetryMigration` first makes any switch
//!    of this attempt impossible, then `Thaw` lets writes in again and the
//!    rounds go on. A migration that does not converge is cancelled;
//! 5. after the switch: once the target serves the slots (it made its
//!    staged keys live when it applied its new ownership; the source
//!    dropped its copy when it applied its own), `EndMigration`.
//!
//! A cancelled migration's leftovers (tracking on the source, staged keys
//! on the target) are dropped by each shard's leader ([`clean_up`]).

use std::sync::Arc;
use std::time::Duration;

use polis_cluster::{MapChange, Migration, MigrationPhase};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::controller::{lock, spawn_exclusive};
use crate::machine::{Applied, Op};
use crate::migrating::ShippedKey;
use crate::node::{Node, ShardGroup};
use crate::rpc::{NodeAnswer, NodeRequest};
use crate::shipping::Sender;

/// Copy rounds before the slots are frozen even if keys keep changing.
const ROUNDS_MAX: usize = 8;
/// A round that ships this few keys is the last before the freeze.
const FREEZE_WHEN_FEWER: usize = 256;
/// Freezes that may outlast their bound before the migration is
/// cancelled as unable to converge.
const FREEZES_MAX: u32 = 10;
/// How long the driver waits for the target to serve after the switch.
const SERVE_WAIT: Duration = Duration::from_millis(200);
/// Tries of a step that meets a leader change (the meta group's or the
/// target's) before the driver gives up and starts over.
pub(crate) const ATTEMPTS_MAX: usize = 50;
/// Pause between two tries.
pub(crate) const RETRY_AFTER: Duration = Duration::from_millis(200);

/// What a migration driver did so far, for `/status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    pub step: String,
    pub keys_sent: u64,
    pub bytes_sent: u64,
    pub rounds: u64,
    pub freezes: u32,
    pub started_ms_ago: u64,
    /// The share of the source's keyspace the bulk copy has read, 0 to 1
    /// (it reads in hash order, over which keys spread evenly).
    pub copied: f64,
    /// Bytes shipped per second since the start.
    pub bytes_per_sec: u64,
    /// Seconds until the bulk copy ends at the pace so far; `None` before
    /// it can be told, 0 once the copy is done (what follows is catching up
    /// with the latest writes and the switch, usually under a second).
    pub secs_left: Option<u64>,
    #[serde(skip)]
    started: Option<Instant>,
}

impl Progress {
    /// Fills in the figures that depend on the time now.
    fn at(mut self, now: Instant) -> Self {
        let elapsed = self
            .started
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        self.started_ms_ago = elapsed.as_millis() as u64;
        let secs = elapsed.as_secs_f64();
        if secs > 0.0 {
            self.bytes_per_sec = (self.bytes_sent as f64 / secs) as u64;
        }
        self.secs_left = if self.copied >= 1.0 {
            Some(0)
        } else if self.copied > 0.0 {
            Some((secs * (1.0 - self.copied) / self.copied).ceil() as u64)
        } else {
            None
        };
        self
    }
}

/// Starts driving the migrations whose source this node leads, and drops
/// the leftovers of ended ones on the shards it leads.
pub(crate) fn tick(node: &Arc<Node>, group: &ShardGroup, map: &polis_cluster::ClusterMap) {
    clean_up(node, group, map);
    let Some(migration) = map
        .migrations
        .values()
        .find(|migration| migration.source == group.id())
        .cloned()
    else {
        return;
    };
    if !lock(&node.work.migrating).insert(migration.id) {
        return;
    }
    let node = node.clone();
    let group = group.clone();
    tokio::spawn(async move {
        let id = migration.id;
        let result = drive(&node, &group, migration).await;
        if let Err(reason) = result {
            tracing::info!(migration = id, %reason, "migration paused; it resumes from the map");
        }
        lock(&node.work.migrating).remove(&id);
    });
}

/// Returns the progress of the migrations this node drives.
pub fn progress(node: &Node) -> Vec<(u64, Progress)> {
    lock(&node.work.migration_progress)
        .iter()
        .map(|(id, progress)| (*id, progress.clone().at(Instant::now())))
        .collect()
}

pub(crate) fn note(node: &Node, id: u64, update: impl FnOnce(&mut Progress)) {
    let mut all = lock(&node.work.migration_progress);
    let progress = all.entry(id).or_insert_with(|| Progress {
        started: Some(Instant::now()),
        ..Progress::default()
    });
    update(progress);
}

/// Drops tracking and staging of migrations that ended, on a shard this
/// node leads.
fn clean_up(node: &Arc<Node>, group: &ShardGroup, map: &polis_cluster::ClusterMap) {
    let (outgoing, incoming): (Option<u64>, Vec<u64>) = {
        let state = group.state().read();
        let migrations = &state.app.migrations;
        (
            migrations
                .outgoing
                .as_ref()
                .map(|outgoing| outgoing.migration),
            migrations.incoming.keys().copied().collect(),
        )
    };
    let mut ops: Vec<Op> = Vec::new();
    // Tracking ends once this shard applied the ownership of the map it
    // reads (for a migration that switched: gave its slots away).
    if let Some(migration) = outgoing
        .filter(|id| map.migration_ended(*id))
        .filter(|_| gave_away_in(group, map))
    {
        ops.push(Op::Untrack { migration });
    }
    for migration in incoming.into_iter().filter(|id| map.migration_ended(*id)) {
        ops.push(Op::Unstage { migration });
    }
    if ops.is_empty() {
        return;
    }
    let group = group.clone();
    spawn_exclusive(node, group.id(), async move {
        for op in ops {
            tracing::info!(shard = %group.id(), ?op, "dropping what an ended migration left");
            if let Err(error) = propose(&group, &op).await {
                tracing::debug!(%error, "migration leftovers not dropped");
                return;
            }
        }
    });
}

pub(crate) async fn propose(group: &ShardGroup, op: &Op) -> Result<Applied, String> {
    let payload = op.encode().map_err(|error| error.to_string())?;
    let answer = group
        .propose(payload)
        .await
        .map_err(|error| error.to_string())?;
    Ok(Applied::decode(&answer))
}

/// Returns the migration as the node's map has it now.
pub(crate) fn current(node: &Node, id: u64) -> Option<Migration> {
    node.view()?.map().migrations.get(&id).cloned()
}

async fn drive(node: &Arc<Node>, group: &ShardGroup, migration: Migration) -> Result<(), String> {
    let id = migration.id;
    if migration.phase == MigrationPhase::Copying {
        copy_and_switch(node, group, &migration).await?;
    }
    // Switched: end it once the target serves the slots.
    note(node, id, |progress| progress.step = "switched".into());
    loop {
        let Some(migration) = current(node, id) else {
            return Ok(());
        };
        if !group.is_leader() {
            return Err("this node no longer leads the source".into());
        }
        if migration.phase == MigrationPhase::Switched
            && target_serves(node, &migration)
            && gave_away(node, group)
        {
            break;
        }
        tokio::time::sleep(SERVE_WAIT).await;
    }
    meta_change(
        node,
        MapChange::EndMigration {
            id,
            cancelled: false,
        },
    )
    .await?;
    tracing::info!(migration = id, "migration done");
    lock(&node.work.migration_progress).remove(&id);
    Ok(())
}

/// Returns true when `group` applied the ownership `map` gives it.
fn gave_away_in(group: &ShardGroup, map: &polis_cluster::ClusterMap) -> bool {
    map.shards
        .get(&group.id())
        .is_some_and(|shard| group.state().read().app.ownership.version >= shard.slots_version)
}

/// Returns true when the source applied the ownership of its map's slots
/// version: it gave the slots away. Until then its tracking must stay,
/// frozen: the migration ends only after, and its end drops the tracking
/// ([`clean_up`]); dropped before, it would let writes to the slots apply
/// here after the switch, and the ownership entry would then drop them.
fn gave_away(node: &Node, group: &ShardGroup) -> bool {
    node.view()
        .is_some_and(|view| gave_away_in(group, view.map()))
}

/// Returns true when the target's leader applied the ownership of the
/// map's slots version (it serves the slots), as its beats say.
fn target_serves(node: &Node, migration: &Migration) -> bool {
    let Some(view) = node.view() else {
        return false;
    };
    let Some(shard) = view.map().shards.get(&migration.target) else {
        return false;
    };
    let leaders = node.host.leaders();
    let beat = leaders
        .get(&migration.target)
        .map(|(_, leader)| leader.version);
    let local = node
        .shard(migration.target)
        .filter(|group| group.is_leader())
        .map(|group| group.state().read().app.ownership.version);
    local
        .or(beat)
        .is_some_and(|owned| owned >= shard.slots_version)
}

async fn copy_and_switch(
    node: &Arc<Node>,
    group: &ShardGroup,
    migration: &Migration,
) -> Result<(), String> {
    let id = migration.id;
    let slots = migration.slot_set();
    tracing::info!(migration = id, source = %migration.source, target = %migration.target, "migration copying");
    note(node, id, |progress| progress.step = "copying".into());
    propose(
        group,
        &Op::Track {
            migration: id,
            slots: slots.clone(),
        },
    )
    .await?;
    let frozen = group.state().read().app.migrations.frozen(None);
    if frozen {
        // A driver before this one froze the slots: make its switch
        // impossible before letting writes in.
        unfreeze(node, group, id).await?;
    }
    let mut sender = Sender::new(node, migration, slots.clone());
    let mut mark = sender.copy_all(group).await?;
    for round in 0.. {
        let (changed, at) = changed_after(group, mark);
        let count = changed.len();
        sender.send(changed, at).await?;
        mark = at;
        note(node, id, |progress| progress.rounds += 1);
        if count <= FREEZE_WHEN_FEWER || round + 1 >= ROUNDS_MAX {
            break;
        }
    }
    let pause_max = node.config.migration_pause_max;
    for freeze in 1..=FREEZES_MAX {
        let attempt = current(node, id)
            .filter(|migration| migration.phase == MigrationPhase::Copying)
            .ok_or("the migration ended or switched meanwhile")?
            .attempt;
        note(node, id, |progress| {
            progress.step = "frozen".into();
            progress.freezes = freeze;
        });
        let frozen_at = Instant::now();
        propose(group, &Op::Freeze { migration: id }).await?;
        let (changed, at) = changed_after(group, mark);
        sender.send(changed, at).await?;
        mark = at;
        // The target's change feed events for these keys must follow ours:
        // no switch while some of ours wait in the outbox.
        let drained = feed_drained(group, &slots, frozen_at + pause_max).await;
        if drained && frozen_at.elapsed() <= pause_max {
            match meta_change(node, MapChange::SwitchMigration { id, attempt }).await {
                Ok(()) => {
                    tracing::info!(
                        migration = id,
                        paused_ms = frozen_at.elapsed().as_millis() as u64,
                        "migration switched"
                    );
                    return Ok(());
                }
                Err(reason) => {
                    tracing::info!(migration = id, %reason, "switch refused");
                }
            }
        }
        // Too slow (or refused): no switch of this attempt may happen
        // once writes are let in again.
        unfreeze(node, group, id).await?;
        note(node, id, |progress| progress.step = "copying".into());
        for _ in 0..ROUNDS_MAX {
            let (changed, at) = changed_after(group, mark);
            let count = changed.len();
            sender.send(changed, at).await?;
            mark = at;
            if count <= FREEZE_WHEN_FEWER {
                break;
            }
        }
    }
    tracing::warn!(migration = id, "migration cancelled: the slots kept changing too fast to switch within --migration-pause-max-ms");
    meta_change(
        node,
        MapChange::EndMigration {
            id,
            cancelled: true,
        },
    )
    .await?;
    Err("cancelled: it did not converge".into())
}

/// Waits until the source's change feed outbox holds no event of a key in
/// `slots` (its leader sends them on meanwhile); returns false if it still
/// holds some at `deadline`.
async fn feed_drained(group: &ShardGroup, slots: &polis_types::SlotSet, deadline: Instant) -> bool {
    loop {
        let pending = group
            .state()
            .read()
            .app
            .feed
            .outbox
            .iter()
            .any(|event| slots.contains(polis_types::key_hash_slot(&event.key)));
        if !pending {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Thaws the source's frozen slots, once the meta group made the switch
/// of every earlier attempt impossible. Fails when the migration switched
/// (the slots stay frozen until the source gives them away).
async fn unfreeze(node: &Arc<Node>, group: &ShardGroup, id: u64) -> Result<(), String> {
    let migration = current(node, id).ok_or("the migration ended")?;
    if migration.phase != MigrationPhase::Copying {
        return Err("the migration switched".into());
    }
    meta_change(
        node,
        MapChange::RetryMigration {
            id,
            attempt: migration.attempt,
        },
    )
    .await?;
    propose(group, &Op::Thaw { migration: id }).await?;
    Ok(())
}

/// Returns the keys changed after log index `after` and the index they
/// are read at.
fn changed_after(group: &ShardGroup, after: u64) -> (Vec<ShippedKey>, u64) {
    let state = group.state().read();
    let at = state.last_applied.map_or(0, |log_id| log_id.index);
    (state.app.migrations.changed_after(&state.app.db, after), at)
}

/// Commits `change` on the meta leader, wherever it is, waiting out a
/// meta leader change.
async fn meta_change(node: &Arc<Node>, change: MapChange) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..ATTEMPTS_MAX {
        let request = NodeRequest::ChangeMap {
            changes: vec![change.clone()],
        };
        match crate::meta_leader::ask(node, request).await {
            NodeAnswer::Changed(version) => {
                node.map.wait_for(version, Duration::from_secs(5)).await;
                return Ok(());
            }
            NodeAnswer::Refused(reason) => return Err(reason),
            NodeAnswer::Retry(reason) => {
                tracing::debug!(?change, %reason, "map change tried again");
                last = reason;
            }
            other => last = format!("unexpected answer {other:?}"),
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_tells_the_rate_and_the_time_left_from_the_share_copied() {
        let started = Instant::now();
        let now = started + Duration::from_secs(10);
        let progress = Progress {
            bytes_sent: 50_000_000,
            copied: 0.25,
            started: Some(started),
            ..Progress::default()
        }
        .at(now);
        assert_eq!(progress.started_ms_ago, 10_000);
        assert_eq!(progress.bytes_per_sec, 5_000_000);
        // A quarter in 10 s: three quarters in 30 s more.
        assert_eq!(progress.secs_left, Some(30));
        let fresh = Progress {
            started: Some(started),
            ..Progress::default()
        }
        .at(now);
        assert_eq!(fresh.secs_left, None);
        let copied = Progress {
            copied: 1.0,
            started: Some(started),
            ..Progress::default()
        }
        .at(now);
        assert_eq!(copied.secs_left, Some(0));
    }
}
