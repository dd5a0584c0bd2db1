//! CONFIG, DEBUG and FUNCTION: what clients and Redis's test suite need.

use std::sync::Arc;

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};

use super::lower;
use crate::node::Node;

/// CONFIG GET/SET/RESETSTAT/REWRITE.
pub async fn config(node: &Arc<Node>, args: &[Bytes]) -> Result<Reply, ReplyError> {
    match lower(&args[1]).as_str() {
        "get" => {
            let patterns = &args[2..];
            let matches = |name: &str| {
                patterns.iter().any(|pattern| polis_commands::glob::glob_match(&pattern.to_ascii_lowercase(), name.as_bytes()))
            };
            let mut pairs = node.settings.get_matching(matches);
            if matches("requirepass") {
                pairs.push(("requirepass".to_owned(), super::acl::requirepass(node)));
            }
            if matches("changefeeds") {
                let feeds = crate::feed_forward::newest_feeds(node).unwrap_or_default();
                pairs.push(("changefeeds".to_owned(), feeds.to_text()));
            }
            let mut seen = std::collections::BTreeSet::new();
            Ok(Reply::Map(
                pairs
                    .into_iter()
                    .filter(|(name, _)| seen.insert(name.clone()))
                    .map(|(name, value)| (Reply::bulk(name), Reply::bulk(value)))
                    .collect(),
            ))
        }
        "set" => {
            let rest = &args[2..];
            if rest.is_empty() || !rest.len().is_multiple_of(2) {
                return Err(ReplyError::WrongArity("config|set".into()));
            }
            let pairs: Vec<(String, String)> = rest
                .chunks(2)
                .map(|pair| (String::from_utf8_lossy(&pair[0]).into_owned(), String::from_utf8_lossy(&pair[1]).into_owned()))
                .collect();
            let (feeds, pairs): (Vec<_>, Vec<_>) = pairs
                .into_iter()
                .partition(|(name, _)| name.eq_ignore_ascii_case("changefeeds"));
            let (passwords, pairs): (Vec<_>, Vec<_>) = pairs
                .into_iter()
                .partition(|(name, _)| name.eq_ignore_ascii_case("requirepass"));
            set_here(node, &pairs)?;
            if let Some((_, password)) = passwords.last() {
                super::acl::set_requirepass(node, password).await?;
            }
            if let Some((_, text)) = feeds.last() {
                crate::feed_forward::configure(node, text).await?;
            }
            set_on_peers(node, &pairs).await
        }
        "resetstat" => {
            node.stats.reset();
            Ok(Reply::ok())
        }
        "rewrite" => Err(ReplyError::err("CONFIG REWRITE is not supported: polis is configured by flags, environment and its TOML file")),
        "help" => Ok(Reply::Array(
            ["CONFIG <subcommand>", "GET <pattern>", "SET <directive> <value>", "RESETSTAT"]
                .iter()
                .map(|line| Reply::Simple((*line).into()))
                .collect(),
        )),
        _ => Err(ReplyError::err(format!(
            "unknown subcommand '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    }
}

/// The parameters a CONFIG SET changes on every node of the cluster, not
/// only on the node it was sent to: those that decide what a shard's
/// leader does, wherever the leader is.
const CLUSTER_WIDE: &[&str] = &[
    "notify-keyspace-events",
    "eventual-read-repair",
    "eventual-hints",
    "eventual-hint-window-ms",
    "eventual-anti-entropy-ms",
    "eventual-max-clock-ahead-ms",
];

/// Sets `pairs` on this node and applies what they change.
///
/// # Errors
/// Redis's error naming the first bad parameter; nothing is set then.
pub fn set_here(node: &Node, pairs: &[(String, String)]) -> Result<(), ReplyError> {
    node.settings.set_all(pairs)?;
    node.eventual.hlc.set_max_ahead_ms(
        u64::try_from(node.settings.integer("eventual-max-clock-ahead-ms")).unwrap_or(500),
    );
    node.pubsub
        .set_output_limit(node.settings.pubsub_output_limit());
    node.monitors
        .set_output_limit(node.settings.pubsub_output_limit());
    super::slowlog::configure(&node.settings, &node.slowlog, &node.latency);
    node.key_events
        .set_flags(node, node.settings.key_event_flags());
    let limits = node.settings.encoding_limits();
    let eviction = node.settings.eviction();
    node.eviction.configure(eviction);
    let tracking = eviction.tracking();
    for group in node.shards().into_values() {
        group.state().configure(|app| {
            app.db.set_encoding_limits(limits);
            app.db.set_tracking(tracking);
        });
    }
    Ok(())
}

/// Sends the cluster-wide ones of `pairs` (already set here) to every
/// other node; OK when each took them, else an error naming those that
/// did not (the others keep the new value).
async fn set_on_peers(node: &Arc<Node>, pairs: &[(String, String)]) -> Result<Reply, ReplyError> {
    let shared: Vec<(String, String)> = pairs
        .iter()
        .filter(|(name, _)| CLUSTER_WIDE.contains(&name.to_ascii_lowercase().as_str()))
        .cloned()
        .collect();
    let Some(view) = node.view().filter(|_| !shared.is_empty()) else {
        return Ok(Reply::ok());
    };
    let me = node.config.node_id;
    let request = crate::rpc::NodeRequest::SetConfig { pairs: shared };
    let calls = view
        .map()
        .nodes
        .values()
        .filter(|record| record.id != me && record.started() && !record.removed())
        .map(|record| {
            let (id, request) = (record.id, &request);
            async move {
                let answer = match node.peer_addr(id) {
                    Some(to) => crate::rpc::call(node, &to, request).await,
                    None => Err("no address".to_owned()),
                };
                match answer {
                    Ok(crate::rpc::NodeAnswer::Changed(_)) => None,
                    Ok(other) => Some(format!("node {id}: {other:?}")),
                    Err(error) => Some(format!("node {id}: {error}")),
                }
            }
        });
    let failed: Vec<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .flatten()
        .collect();
    if failed.is_empty() {
        return Ok(Reply::ok());
    }
    Err(ReplyError::err(format!(
        "set on this node, but not on every node ({}): run CONFIG SET again once they are reachable",
        failed.join("; ")
    )))
}

/// SAVE: every shard replica on this node builds a Raft snapshot now (the
/// log already makes every acknowledged write durable).
pub fn save(node: &Arc<Node>) -> Reply {
    for group in node.shards().into_values() {
        tokio::spawn(async move {
            if let Err(error) = group.trigger_snapshot().await {
                tracing::warn!(%error, "snapshot trigger failed");
            }
        });
    }
    Reply::ok()
}

/// The longest DEBUG SLEEP, in seconds: a typo must not hold a
/// connection for days.
const DEBUG_SLEEP_SECS_MAX: f64 = 3600.0;

/// DEBUG: the few subcommands clients and tests use; an error for the rest.
pub async fn debug(node: &Arc<Node>, args: &[Bytes]) -> Result<Reply, ReplyError> {
    match lower(&args[1]).as_str() {
        "sleep" => {
            // Redis sleeps the whole server; polis sleeps this client's
            // connection, which is what SLOWLOG and LATENCY see. A number
            // Redis's strtod would not read counts as 0, as there.
            let secs = args
                .get(2)
                .and_then(|secs| std::str::from_utf8(secs).ok())
                .and_then(|secs| secs.trim().parse::<f64>().ok())
                .filter(|secs| secs.is_finite() && *secs > 0.0)
                .map_or(0.0, |secs| secs.min(DEBUG_SLEEP_SECS_MAX));
            tokio::time::sleep(std::time::Duration::from_secs_f64(secs)).await;
            Ok(Reply::ok())
        }
        "log" => Ok(Reply::ok()),
        "set-active-expire" => Ok(Reply::ok()),
        // polis extension: build a Raft snapshot of every shard replica
        // on this node now.
        "snapshot" => Ok(save(node)),
        other => Err(ReplyError::err(format!(
            "DEBUG {other} is not supported by polis"
        ))),
    }
}

/// FUNCTION: no functions exist; FLUSH succeeds, LIST is empty.
pub fn function(args: &[Bytes]) -> Result<Reply, ReplyError> {
    match lower(&args[1]).as_str() {
        "flush" => Ok(Reply::ok()),
        "list" => Ok(Reply::Array(Vec::new())),
        _ => Err(ReplyError::err("Functions are not supported by polis")),
    }
}
