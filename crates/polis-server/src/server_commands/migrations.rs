//! Valkey 9's slot migration commands, over polis's migrations, so its
//! tools and scripts work:
//!
//! - `CLUSTER MIGRATESLOTS SLOTSRANGE start end [start end ...] NODE id`:
//!   the target is the shard the named node leads (the lowest-numbered,
//!   if it leads several);
//! - `CLUSTER GETSLOTMIGRATIONS`: the migrations under way (polis keeps no
//!   log of finished ones);
//! - `CLUSTER CANCELSLOTMIGRATIONS`: cancels every migration that has not
//!   switched yet.

use std::sync::Arc;

use bytes::Bytes;
use polis_cluster::{MapChange, MigrationPhase};
use polis_resp::{Reply, ReplyError};
use polis_types::{GroupId, NodeId, Slot, SlotRange};

use super::lower;
use crate::node::{node_name, Node};
use crate::rpc::{NodeAnswer, NodeRequest};

/// Returns true for the CLUSTER subcommands this module answers.
pub fn handles(subcommand: &[u8]) -> bool {
    matches!(
        lower(subcommand).as_str(),
        "migrateslots" | "getslotmigrations" | "cancelslotmigrations"
    )
}

/// Answers a CLUSTER subcommand for which [`handles`] is true.
pub async fn answer(node: &Arc<Node>, args: &[Bytes]) -> Result<Reply, ReplyError> {
    match lower(&args[1]).as_str() {
        "migrateslots" => migrate_slots(node, args).await,
        "getslotmigrations" => get_slot_migrations(node),
        _ => cancel_slot_migrations(node).await,
    }
}

fn slot(arg: &[u8]) -> Result<Slot, ReplyError> {
    polis_commands::args::parse_i64(arg)
        .and_then(|slot| u16::try_from(slot).ok())
        .and_then(Slot::new)
        .ok_or_else(|| {
            ReplyError::err(format!(
                "Invalid or out of range slot {}",
                String::from_utf8_lossy(arg)
            ))
        })
}

/// Reads `SLOTSRANGE start end [start end ...] NODE id`.
fn parse(args: &[Bytes]) -> Result<(Vec<SlotRange>, String), ReplyError> {
    let mut rest = args[2..].iter();
    if rest.next().map(|arg| lower(arg)) != Some("slotsrange".into()) {
        return Err(ReplyError::Syntax);
    }
    let mut ranges = Vec::new();
    let mut node = None;
    while let Some(arg) = rest.next() {
        if lower(arg) == "node" {
            node = rest
                .next()
                .map(|id| String::from_utf8_lossy(id).into_owned());
            if rest.next().is_some() {
                return Err(ReplyError::Syntax);
            }
            break;
        }
        let start = slot(arg)?;
        let end = slot(rest.next().ok_or(ReplyError::Syntax)?)?;
        let range = SlotRange::new(start, end).ok_or_else(|| {
            ReplyError::err(format!("start slot {start} is greater than end slot {end}"))
        })?;
        ranges.push(range);
    }
    match node {
        Some(node) if !ranges.is_empty() => Ok((ranges, node)),
        _ => Err(ReplyError::Syntax),
    }
}

async fn migrate_slots(node: &Arc<Node>, args: &[Bytes]) -> Result<Reply, ReplyError> {
    let (ranges, name) = parse(args)?;
    let view = node
        .view()
        .ok_or_else(|| ReplyError::ClusterDown("this node has no cluster map yet".into()))?;
    let target_node = view
        .map()
        .nodes
        .keys()
        .copied()
        .find(|id| node_name(*id) == name.to_ascii_lowercase())
        .ok_or_else(|| ReplyError::err(format!("Unknown node {name}")))?;
    let leaders = node.leaders();
    let target = view
        .map()
        .shards
        .keys()
        .copied()
        .find(|shard| leaders.get(shard) == Some(&target_node))
        .ok_or_else(|| {
            ReplyError::err(format!(
                "node {name} leads no shard: name a node that CLUSTER NODES shows as a master"
            ))
        })?;
    let change = MapChange::BeginMigration {
        slots: ranges,
        target,
    };
    answered(
        crate::meta_leader::ask_patiently(
            node,
            NodeRequest::ChangeMap {
                changes: vec![change],
            },
        )
        .await,
    )
}

fn answered(answer: NodeAnswer) -> Result<Reply, ReplyError> {
    match answer {
        NodeAnswer::Changed(_) => Ok(Reply::ok()),
        NodeAnswer::Refused(reason) => Err(ReplyError::err(reason)),
        NodeAnswer::Retry(reason) => Err(ReplyError::TryAgain(reason)),
        other => Err(ReplyError::err(format!("unexpected answer {other:?}"))),
    }
}

fn get_slot_migrations(node: &Arc<Node>) -> Result<Reply, ReplyError> {
    let Some(view) = node.view() else {
        return Ok(Reply::Array(Vec::new()));
    };
    let leaders = node.leaders();
    let me = node.config.node_id;
    let progress: std::collections::BTreeMap<u64, crate::migrate::Progress> =
        crate::migrate::progress(node).into_iter().collect();
    let leader_name = |shard: GroupId| {
        leaders
            .get(&shard)
            .map_or_else(String::new, |leader: &NodeId| node_name(*leader))
    };
    let entries = view
        .map()
        .migrations
        .values()
        .map(|migration| {
            let operation = if leaders.get(&migration.target) == Some(&me) {
                "IMPORT"
            } else {
                "EXPORT"
            };
            let ranges: Vec<String> = migration
                .slots
                .iter()
                .map(|range| format!("{}-{}", range.start, range.end))
                .collect();
            let state = match migration.phase {
                MigrationPhase::Copying => progress
                    .get(&migration.id)
                    .map_or("copying", |progress| progress.step.as_str())
                    .to_owned(),
                MigrationPhase::Switched => "switched".to_owned(),
            };
            let sent = progress.get(&migration.id);
            let field = |name: &str, value: Reply| (Reply::bulk(name), value);
            Reply::Map(vec![
                field("name", Reply::bulk(format!("{:040x}", migration.id))),
                field("operation", Reply::bulk(operation)),
                field("slot_ranges", Reply::bulk(ranges.join(" "))),
                field("source_node", Reply::bulk(leader_name(migration.source))),
                field("target_node", Reply::bulk(leader_name(migration.target))),
                field(
                    "source_shard",
                    Reply::Integer(migration.source.get() as i64),
                ),
                field(
                    "target_shard",
                    Reply::Integer(migration.target.get() as i64),
                ),
                field("state", Reply::bulk(state)),
                field(
                    "keys_sent",
                    Reply::Integer(sent.map_or(0, |sent| sent.keys_sent) as i64),
                ),
            ])
        })
        .collect();
    Ok(Reply::Array(entries))
}

async fn cancel_slot_migrations(node: &Arc<Node>) -> Result<Reply, ReplyError> {
    crate::meta_leader::cancel_migrations(node)
        .await
        .map_err(ReplyError::TryAgain)?;
    Ok(Reply::ok())
}
