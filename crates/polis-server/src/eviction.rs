//! Keeping a node within `maxmemory`, as Redis does, with Raft.
//!
//! The limit is per node: the memory compared is the keyspace footprint
//! of every shard replica the node holds ([`Footprint`], kept up to date
//! at apply). A node over its limit evicts from the shards it leads: it
//! chooses victims (`polis_store::Evictor`: Redis's sampling and
//! eviction pool) and proposes their deletion as one [`Op::Evict`] entry
//! per shard, so every replica deletes the same keys at the same log
//! position.
//!
//! A DENYOOM write is admitted by [`crate::admission`]: within the
//! limit at once, over it after eviction makes room.
//!
//! ```text
//!  background loop, every 100 ms or woken: over maxmemory? ──> rounds until under
//! ```
//!
//! A round frees what the node is over plus a little headroom
//! ([`HEADROOM_DIVISOR`]), so the writes after it do not each wait for
//! one, and at most [`EVICT_BATCH_KEYS_MAX`] keys: the node's share of
//! it, as the part of its bytes in the shards it leads, since every
//! leader of its other replicas is a node over the same limit (when the
//! replicas are spread evenly) that frees its own share.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use polis_cluster::version::{self, EntryFormat};
use polis_resp::{Reply, ReplyError};
use polis_store::{Choice, Db, EvictionPolicy, Evictor, Tracking};
use polis_types::limits::EVICT_BATCH_KEYS_MAX;
use polis_types::GroupId;

use crate::blocking::Touched;
use crate::machine::Op;
use crate::node::{now_ms, Node};

/// How often the background loop looks (Redis's default `hz` 10).
const TICK: Duration = Duration::from_millis(100);
/// Rounds the background loop runs per tick at most, so eviction never
/// starves clients.
const ROUNDS_PER_TICK_MAX: usize = 16;
/// A round frees what the node is over plus `maxmemory / 64`, so that the
/// writes that follow find room; and writes go ahead while eviction runs
/// as long as the node is over by at most that much.
pub const HEADROOM_DIVISOR: u64 = 64;

/// What eviction works with (CONFIG `maxmemory*`, `lfu-*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvictionConfig {
    /// 0: no limit.
    pub maxmemory_bytes: u64,
    pub policy: EvictionPolicy,
    pub samples: usize,
    pub lfu_log_factor: u32,
    pub lfu_decay_minutes: u32,
}

impl EvictionConfig {
    /// Returns how keys' access words are kept under this configuration.
    pub fn tracking(&self) -> Tracking {
        polis_store::tracking_of(self.policy, self.lfu_log_factor, self.lfu_decay_minutes)
    }
}

/// The keyspace bytes of every shard replica a node holds, in all and per
/// cache namespace: each replica adds what its keyspace grew by since it
/// last reported (at the end of every apply and restore, see
/// [`Reported`]), and takes its share back when it goes.
#[derive(Debug, Default)]
pub struct Footprint {
    bytes: AtomicI64,
    /// Bytes per cache namespace, by prefix.
    namespaces: Mutex<BTreeMap<Bytes, i64>>,
}

impl Footprint {
    /// Returns the bytes of every replica.
    pub fn bytes(&self) -> u64 {
        u64::try_from(self.bytes.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Adds `delta` (negative: shrank).
    pub fn add(&self, delta: i64) {
        self.bytes.fetch_add(delta, Ordering::Relaxed);
    }

    /// Returns the bytes every replica holds in the cache namespace of
    /// `prefix`.
    pub fn namespace_bytes(&self, prefix: &[u8]) -> u64 {
        let namespaces = self
            .namespaces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        namespaces
            .get(prefix)
            .map_or(0, |bytes| u64::try_from(*bytes).unwrap_or(0))
    }

    fn add_namespace(&self, prefix: &Bytes, delta: i64) {
        let mut namespaces = self
            .namespaces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let bytes = namespaces.entry(prefix.clone()).or_default();
        *bytes += delta;
        if *bytes == 0 {
            namespaces.remove(prefix);
        }
    }
}

/// What one replica last added to its node's [`Footprint`].
#[derive(Debug, Default)]
pub struct Reported {
    bytes: u64,
    namespaces: BTreeMap<Bytes, u64>,
}

impl Reported {
    /// Brings `footprint` up to date with `db`.
    pub fn report(&mut self, footprint: &Footprint, db: &Db) {
        let bytes = db.used_memory() as u64;
        footprint.add(bytes as i64 - self.bytes as i64);
        self.bytes = bytes;
        if self.namespaces.is_empty() && db.namespace_table().is_none() {
            return;
        }
        let now: BTreeMap<Bytes, u64> = db
            .namespace_usage()
            .map(|(prefix, bytes)| (prefix.clone(), bytes as u64))
            .collect();
        for (prefix, before) in &self.namespaces {
            let after = now.get(prefix).copied().unwrap_or(0);
            if after != *before {
                footprint.add_namespace(prefix, after as i64 - *before as i64);
            }
        }
        for (prefix, after) in &now {
            if !self.namespaces.contains_key(prefix) && *after != 0 {
                footprint.add_namespace(prefix, *after as i64);
            }
        }
        self.namespaces = now;
    }

    /// Takes back from `footprint` all this replica added (it goes).
    pub fn withdraw(&mut self, footprint: &Footprint) {
        footprint.add(-(self.bytes as i64));
        for (prefix, bytes) in std::mem::take(&mut self.namespaces) {
            footprint.add_namespace(&prefix, -(bytes as i64));
        }
        self.bytes = 0;
    }
}

/// A node's eviction: its configuration, its footprint and the evictor
/// whose rounds writers share.
pub struct Eviction {
    config: RwLock<EvictionConfig>,
    footprint: Arc<Footprint>,
    evictor: tokio::sync::Mutex<Evictor>,
    /// Rounds finished, so a writer that waited for another's round does
    /// not run one more.
    pub(crate) rounds: AtomicU64,
    /// Whether the last round evicted anything.
    pub(crate) last_round_freed: AtomicBool,
    /// Wakes the background loop (a lower limit was set).
    wake: tokio::sync::Notify,
    /// Bytes of writes admitted and not yet applied
    /// ([`crate::admission::Admitted`]).
    pub(crate) pending: AtomicU64,
    /// The entry format was not enabled when a round wanted to evict
    /// (logged once).
    format_warned: AtomicBool,
    /// The cache namespaces' limits, kept by the same loop.
    pub caches: crate::cache_namespaces::CacheNamespaces,
}

impl Eviction {
    /// Returns a node's eviction with `config`, whose random picks follow
    /// from `seed`.
    pub fn new(config: EvictionConfig, seed: u64) -> Self {
        Self {
            config: RwLock::new(config),
            footprint: Arc::new(Footprint::default()),
            evictor: tokio::sync::Mutex::new(Evictor::new(seed)),
            rounds: AtomicU64::new(0),
            last_round_freed: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            pending: AtomicU64::new(0),
            format_warned: AtomicBool::new(false),
            caches: crate::cache_namespaces::CacheNamespaces::new(seed.rotate_left(32)),
        }
    }

    /// Returns the configuration.
    pub fn config(&self) -> EvictionConfig {
        *self
            .config
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets the configuration, and wakes the background loop in case the
    /// node is now over its limit.
    pub fn configure(&self, config: EvictionConfig) {
        *self
            .config
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = config;
        self.wake.notify_one();
    }

    /// Wakes the background loop (a limit is exceeded).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Returns the footprint the node's shard replicas report to.
    pub fn footprint(&self) -> Arc<Footprint> {
        self.footprint.clone()
    }

    /// Returns the keyspace bytes of every shard replica on the node
    /// (INFO `used_memory`, compared with `maxmemory`).
    pub fn used_memory(&self) -> u64 {
        self.footprint.bytes()
    }

    /// Returns the bytes over the limit (0 when within it or unlimited).
    pub(crate) fn over(&self, config: &EvictionConfig) -> u64 {
        if config.maxmemory_bytes == 0 {
            return 0;
        }
        self.used_memory().saturating_sub(config.maxmemory_bytes)
    }
}

/// Returns true when this node is over `maxmemory` under noeviction: a
/// write is then refused for certain (other policies evict first, and
/// [`admit`] judges).
pub fn refusing_writes(node: &Node) -> bool {
    let config = node.eviction.config();
    !config.policy.evicts() && node.eviction.over(&config) > 0
}

/// Redis's reply to an EXEC refused for memory: its transaction is gone.
pub fn exec_oom() -> Reply {
    Reply::Error(ReplyError::Other(
        "EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'.".into(),
    ))
}

/// Redis's reply to a DENYOOM command over the limit.
pub fn oom() -> Reply {
    Reply::Error(ReplyError::Other(
        "OOM command not allowed when used memory > 'maxmemory'.".into(),
    ))
}

/// Returns true when the command `args` may grow memory (DENYOOM).
pub fn denies_oom(args: &[Bytes]) -> bool {
    args.first()
        .and_then(|name| polis_commands::lookup(name))
        .map(|spec| polis_commands::resolve(spec, args))
        .is_some_and(|spec| spec.flags & polis_commands::spec::DENYOOM != 0)
}

/// Returns true when `op` holds a command that may grow memory: a
/// DENYOOM command, or a transaction with one (Redis refuses such an
/// EXEC whole).
pub fn op_denies_oom(op: &Op) -> bool {
    match op {
        Op::Command(logged) => denies_oom(&logged.args),
        Op::Batch(batch) => batch.iter().any(|logged| denies_oom(&logged.args)),
        Op::Exec(transaction) => transaction.commands.iter().any(|args| denies_oom(args)),
        _ => false,
    }
}

/// Returns how far over the limit writes go ahead while eviction runs.
pub fn slack(config: &EvictionConfig) -> u64 {
    config.maxmemory_bytes / HEADROOM_DIVISOR
}

/// Runs a round of eviction, or waits for the one under way and takes
/// its outcome; returns true when the round evicted something.
pub async fn make_room(node: &Arc<Node>) -> bool {
    let eviction = &node.eviction;
    let seen = eviction.rounds.load(Ordering::Acquire);
    let mut evictor = eviction.evictor.lock().await;
    if eviction.rounds.load(Ordering::Acquire) != seen {
        // Another writer's round ended while this one waited.
        return eviction.last_round_freed.load(Ordering::Acquire);
    }
    let freed = round(node, &mut evictor).await > 0;
    eviction.last_round_freed.store(freed, Ordering::Release);
    eviction.rounds.fetch_add(1, Ordering::AcqRel);
    freed
}

/// Chooses victims on the shards this node leads and proposes their
/// eviction; returns how many keys went.
async fn round(node: &Arc<Node>, evictor: &mut Evictor) -> usize {
    let config = node.eviction.config();
    let over = node.eviction.over(&config);
    if over == 0 || !config.policy.evicts() {
        return 0;
    }
    let scope = Scope {
        within: None,
        policy: config.policy,
        over,
        maxmemory_bytes: config.maxmemory_bytes,
        node_bytes: node.eviction.used_memory(),
    };
    evict_round(node, evictor, scope).await
}

/// What a round evicts: any key or only one cache namespace's, by which
/// policy, and how far over which limit the node is.
pub(crate) struct Scope<'a> {
    pub within: Option<&'a [u8]>,
    pub policy: EvictionPolicy,
    pub over: u64,
    pub maxmemory_bytes: u64,
    /// What the limit bounds on this node: all its keys, or the
    /// namespace's.
    pub node_bytes: u64,
}

/// Chooses victims of `scope` on the shards this node leads and proposes
/// their eviction; returns how many keys went.
pub(crate) async fn evict_round(
    node: &Arc<Node>,
    evictor: &mut Evictor,
    scope: Scope<'_>,
) -> usize {
    let Some(view) = node.view() else {
        return 0;
    };
    if version::check_enabled(EntryFormat::V5, view.map().cluster_version).is_err() {
        if !node.eviction.format_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "over maxmemory, but eviction needs every node upgraded (entry format 5)"
            );
        }
        return 0;
    }
    let samples = node.eviction.config().samples.max(1);
    // Led shards come in shard order: their read guards are taken in one
    // order everywhere.
    let led = node.led_shards();
    let victims = {
        let guards: Vec<_> = led.iter().map(|group| group.state().read()).collect();
        let sources: Vec<(u64, &Db)> = led
            .iter()
            .zip(&guards)
            .map(|(group, guard)| (group.id().0, &guard.app.db))
            .collect();
        let led_bytes: u64 = sources
            .iter()
            .map(|(_, db)| match scope.within {
                None => db.used_memory() as u64,
                Some(prefix) => db.namespace_bytes(prefix) as u64,
            })
            .sum();
        let choice = Choice {
            within: scope.within,
            policy: scope.policy,
            samples,
            bytes: share_to_free(
                scope.over + scope.maxmemory_bytes / HEADROOM_DIVISOR,
                led_bytes,
                scope.node_bytes,
            ),
            keys_max: EVICT_BATCH_KEYS_MAX,
            now_ms: now_ms(),
        };
        evictor.choose(&sources, choice)
    };
    let mut by_shard: BTreeMap<u64, Vec<Bytes>> = BTreeMap::new();
    for victim in victims {
        by_shard.entry(victim.source).or_default().push(victim.key);
    }
    let proposals = by_shard
        .into_iter()
        .map(|(shard, keys)| evict_on(node, GroupId(shard), keys));
    futures::future::join_all(proposals).await.into_iter().sum()
}

/// Returns what this node frees of `to_free`: its share, as the part of
/// the node's bytes in shards it leads (`led_bytes` of `node_bytes`). The
/// leaders of the node's other replicas, on other nodes over the same
/// limit, free theirs; a node whose other replicas' leaders are not over
/// frees the rest in its next rounds. At least one byte: a round that
/// runs evicts something.
fn share_to_free(to_free: u64, led_bytes: u64, node_bytes: u64) -> usize {
    let share = if node_bytes == 0 || led_bytes >= node_bytes {
        to_free
    } else {
        (u128::from(to_free) * u128::from(led_bytes) / u128::from(node_bytes)) as u64
    };
    usize::try_from(share.max(1)).unwrap_or(usize::MAX)
}

/// Proposes the eviction of `keys` on `shard`; returns how many went.
async fn evict_on(node: &Arc<Node>, shard: GroupId, keys: Vec<Bytes>) -> usize {
    let Some(group) = node.shard(shard) else {
        return 0;
    };
    // A blocked XREADGROUP whose stream is evicted ends, as when it is
    // deleted.
    let waited = (!node.blocking.is_empty()).then(|| keys.clone());
    let Ok(payload) = Op::Evict(keys).encode() else {
        return 0;
    };
    let evicted = match group.propose(payload).await {
        Ok(answer) => match crate::machine::Applied::decode(&answer) {
            crate::machine::Applied::Reply(Reply::Integer(count)) => {
                usize::try_from(count).unwrap_or(0)
            }
            _ => 0,
        },
        Err(error) => {
            tracing::debug!(%error, %shard, "eviction proposal not applied");
            0
        }
    };
    if let Some(keys) = waited {
        drop(node.blocking.readied(shard, &Touched::Keys(keys), None));
    }
    evicted
}

/// Keeps the node within `maxmemory`, and its cache namespaces within
/// theirs, in the background, until aborted.
pub async fn run(node: Arc<Node>) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = node.eviction.wake.notified() => {}
        }
        for _ in 0..ROUNDS_PER_TICK_MAX {
            let config = node.eviction.config();
            if !config.policy.evicts() || node.eviction.over(&config) == 0 {
                break;
            }
            if !make_room(&node).await {
                break;
            }
        }
        crate::cache_namespaces::tick(&node).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|word| Bytes::from(word.to_string()))
            .collect()
    }

    #[test]
    fn denyoom_follows_the_command_table() {
        assert!(denies_oom(&args(&["SET", "k", "v"])));
        assert!(denies_oom(&args(&["lpush", "k", "v"])));
        assert!(!denies_oom(&args(&["DEL", "k"])));
        assert!(!denies_oom(&args(&["GET", "k"])));
        assert!(!denies_oom(&args(&["EXPIRE", "k", "10"])));
        assert!(!denies_oom(&args(&["nosuchcommand"])));
        let Reply::Error(error) = oom() else {
            panic!("OOM is an error reply");
        };
        assert_eq!(
            error.render(),
            "OOM command not allowed when used memory > 'maxmemory'."
        );
    }

    #[test]
    fn a_node_frees_its_share_of_what_it_is_over() {
        // Leading every byte it holds: all of it.
        assert_eq!(share_to_free(900, 3_000, 3_000), 900);
        // Leading a third (3 nodes, 3 shards, one led each): a third.
        assert_eq!(share_to_free(900, 1_000, 3_000), 300);
        // Always something, once a round runs.
        assert_eq!(share_to_free(900, 1, 3_000_000), 1);
        assert_eq!(share_to_free(900, 0, 0), 900);
    }

    #[test]
    fn the_footprint_sums_what_replicas_report() {
        let footprint = Footprint::default();
        footprint.add(1_000);
        footprint.add(500);
        footprint.add(-300);
        assert_eq!(footprint.bytes(), 1_200);
        footprint.add(-5_000);
        assert_eq!(footprint.bytes(), 0, "never negative");
    }
}
