//! Cache namespaces: a strong namespace with cache limits keeps its keys
//! on every node within its own `maxmemory`, by its own policy, beside
//! the node's `maxmemory` (which still bounds every key, the namespace's
//! too).
//!
//! ```text
//!  map: "cache:" strong, maxmemory 64mb, allkeys-lru
//!   every replica's keyspace counts the bytes of its "cache:" keys
//!   (polis_store::namespace_usage); the node's footprint sums them
//!
//!  DENYOOM write of a "cache:" key ──> "cache:" over 64mb here?
//!     ├─ no ───────────────────────────────────────────> on
//!     ├─ noeviction ───────────────────────────────────> -OOM
//!     ├─ over by <= 64mb/64 ──> wake the loop ─────────> on
//!     └─ a round: evict "cache:" keys of the shards led here,
//!        by its policy ──> freed some, or under now ──> on; else -OOM
//!  background, every 100 ms: rounds for each namespace over its limit
//! ```
//!
//! As with the node's limit, a node evicts from the shards it leads its
//! share of what the namespace is over (see [`crate::eviction`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use polis_cluster::{CacheLimits, ClusterMap};
use polis_resp::{Reply, ReplyError};
use polis_store::{Evictor, NamespaceTable};

use crate::eviction::{denies_oom, evict_round, Scope, HEADROOM_DIVISOR};
use crate::machine::Op;
use crate::node::Node;

/// Rounds per namespace the background loop runs per tick at most.
const ROUNDS_PER_TICK_MAX: usize = 16;

/// A node's cache namespaces: the table its keyspaces count by, and an
/// evictor (pool and random state) per namespace.
pub struct CacheNamespaces {
    table: RwLock<Option<Arc<NamespaceTable>>>,
    evictors: tokio::sync::Mutex<BTreeMap<Bytes, Evictor>>,
    seed: u64,
}

impl CacheNamespaces {
    /// Returns a node's cache namespaces before it knows a map; random
    /// picks follow from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            table: RwLock::new(None),
            evictors: tokio::sync::Mutex::new(BTreeMap::new()),
            seed,
        }
    }

    /// Returns the table the node's keyspaces count by (None: the map has
    /// no cache limits).
    pub fn table(&self) -> Option<Arc<NamespaceTable>> {
        self.table
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// Returns the table of `map`'s namespaces, when any has cache limits.
fn table_of(map: &ClusterMap) -> Option<NamespaceTable> {
    let namespaces = &map.namespaces;
    namespaces.caches().next()?;
    Some(NamespaceTable::new(namespaces.iter().map(|namespace| {
        let limited = namespaces.cache(&namespace.prefix).is_some();
        (namespace.prefix.clone(), limited)
    })))
}

/// Brings the node's table in step with `map` and, when it changed, has
/// every replica here count by the new one (each counts its keys afresh).
/// Called with the node's reconciliation, so a replica started meanwhile
/// takes the table it finds.
pub fn follow(node: &Node, map: &ClusterMap) {
    let wanted = table_of(map);
    {
        let mut table = node
            .eviction
            .caches
            .table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if table.as_deref() == wanted.as_ref() {
            return;
        }
        *table = wanted.map(Arc::new);
    }
    let table = node.eviction.caches.table();
    tracing::info!(
        namespaces = table.as_ref().map_or(0, |table| table.limited().len()),
        "cache namespaces changed: counting their keys"
    );
    for (_, group) in node.shards() {
        group.state().configure(|machine| {
            machine.db.set_namespaces(table.clone());
            machine.report_footprint();
        });
    }
}

/// Redis's reply to a DENYOOM command over a limit, naming the namespace.
pub fn oom(prefix: &[u8]) -> Reply {
    Reply::Error(ReplyError::Other(format!(
        "OOM command not allowed when used memory > 'maxmemory' of namespace '{}' (raise it with `polis namespace set`, or choose an evicting --maxmemory-policy)",
        String::from_utf8_lossy(prefix)
    )))
}

/// Returns the cache namespaces (prefix and limits) the keys of `args`
/// count in.
fn namespaces_of(node: &Node, args: &[Bytes]) -> Vec<(Bytes, CacheLimits)> {
    let Some(table) = node.eviction.caches.table() else {
        return Vec::new();
    };
    let Some(view) = node.view() else {
        return Vec::new();
    };
    let Some(spec) = args
        .first()
        .and_then(|name| polis_commands::lookup(name))
        .map(|spec| polis_commands::resolve(spec, args))
    else {
        return Vec::new();
    };
    let places: BTreeSet<usize> = polis_commands::command_keys(spec, args)
        .iter()
        .filter_map(|key| table.limited_of(key))
        .collect();
    places
        .into_iter()
        .filter_map(|place| {
            let prefix = table.limited().get(place)?;
            let limits = view.map().namespaces.cache(prefix)?;
            Some((prefix.clone(), limits))
        })
        .collect()
}

/// Returns the bytes the namespace of `prefix` is over its limit here.
fn over(node: &Node, prefix: &[u8], limits: CacheLimits) -> u64 {
    node.eviction
        .footprint()
        .namespace_bytes(prefix)
        .saturating_sub(limits.maxmemory_bytes)
}

/// Admits a DENYOOM write `args` as far as the cache namespaces of its
/// keys go: each within its limit, or made room in by its policy.
///
/// # Errors
/// The -OOM reply naming the first namespace that has no room.
pub async fn admit(node: &Arc<Node>, args: &[Bytes]) -> Result<(), Reply> {
    for (prefix, limits) in namespaces_of(node, args) {
        let over = over(node, &prefix, limits);
        if over == 0 {
            continue;
        }
        if !limits.policy.evicts() {
            return Err(oom(&prefix));
        }
        if over <= limits.maxmemory_bytes / HEADROOM_DIVISOR {
            node.eviction.wake();
            continue;
        }
        if make_room(node, &prefix, limits).await == 0 && self::over(node, &prefix, limits) > 0 {
            return Err(oom(&prefix));
        }
    }
    Ok(())
}

/// Admits the DENYOOM commands of `op` as [`admit`] does.
///
/// # Errors
/// The -OOM reply naming the first namespace that has no room.
pub async fn admit_op(node: &Arc<Node>, op: &Op) -> Result<(), Reply> {
    if node.eviction.caches.table().is_none() {
        return Ok(());
    }
    let commands: Vec<&[Bytes]> = match op {
        Op::Command(logged) => vec![&logged.args],
        Op::Batch(batch) => batch.iter().map(|logged| &logged.args[..]).collect(),
        Op::Exec(transaction) => transaction.commands.iter().map(Vec::as_slice).collect(),
        _ => Vec::new(),
    };
    for args in commands {
        if denies_oom(args) {
            admit(node, args).await?;
        }
    }
    Ok(())
}

/// Returns the -OOM reply when a key of `args` is in a cache namespace
/// over its limit under noeviction (a queued MULTI command is then
/// refused, as over the node's limit).
pub fn refusing(node: &Node, args: &[Bytes]) -> Option<Reply> {
    namespaces_of(node, args)
        .into_iter()
        .find(|(prefix, limits)| !limits.policy.evicts() && over(node, prefix, *limits) > 0)
        .map(|(prefix, _)| oom(&prefix))
}

/// Runs a round of eviction in the namespace of `prefix`, if it is still
/// over its limit; returns how many keys went.
async fn make_room(node: &Arc<Node>, prefix: &Bytes, limits: CacheLimits) -> usize {
    let caches = &node.eviction.caches;
    let mut evictors = caches.evictors.lock().await;
    let over = over(node, prefix, limits);
    if over == 0 {
        return 0;
    }
    let seed = caches.seed ^ u64::from(polis_types::slot::crc16(prefix));
    let evictor = evictors
        .entry(prefix.clone())
        .or_insert_with(|| Evictor::new(seed));
    let scope = Scope {
        within: Some(prefix),
        policy: limits.policy,
        over,
        maxmemory_bytes: limits.maxmemory_bytes,
        node_bytes: node.eviction.footprint().namespace_bytes(prefix),
    };
    evict_round(node, evictor, scope).await
}

/// One tick of the background loop: rounds for every cache namespace over
/// its limit, until it is within it or a round frees nothing.
pub async fn tick(node: &Arc<Node>) {
    let Some(view) = node.view() else {
        return;
    };
    let caches: Vec<(Bytes, CacheLimits)> = view
        .map()
        .namespaces
        .caches()
        .map(|(prefix, limits)| (prefix.clone(), *limits))
        .collect();
    node.eviction
        .caches
        .evictors
        .lock()
        .await
        .retain(|prefix, _| caches.iter().any(|(cached, _)| cached == prefix));
    for (prefix, limits) in caches {
        if !limits.policy.evicts() {
            continue;
        }
        for _ in 0..ROUNDS_PER_TICK_MAX {
            if make_room(node, &prefix, limits).await == 0 {
                break;
            }
        }
    }
}
