//! Memory per element of the collection types: one list, one set, one
//! sorted set and one hash of `elements` elements each, built with
//! pipelined variadic writes into a fresh 3-node polis and into one Redis
//! without persistence, one collection after the other.
//!
//! For Redis, the growth of `used_memory` (`INFO memory`) per element; for
//! polis, the growth of the resident set (`VmRSS`) of the node serving the
//! collections' slot (the four keys share one hash tag, so one shard and
//! one leader), which also counts the Raft log still in memory and every
//! buffer, with polis's own `used_memory` estimate beside it. The divisor
//! is the length the server reports afterwards (LLEN, SCARD, ZCARD, HLEN).
//!
//! Elements are `element:{n:010}` (18 bytes); sorted-set scores are `n`;
//! hash values are `value:{n}`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::driver::resp::{open, owner_of};
use crate::limits::{
    ELEMENTS_MAX, ELEMENT_BATCH, ELEMENT_LOADERS, ELEMENT_PIPELINE, REQUEST_TIMEOUT,
};
use crate::peers::polis::PolisCluster;
use crate::peers::redis::{info_field, query_text, RedisServers, RedisSetup};
use crate::peers::usage::sample;
use crate::peers::PeerConfig;

/// What the measurement needs.
#[derive(Debug, Clone)]
pub struct ElementMemoryConfig {
    /// Elements per collection.
    pub elements: u64,
    pub peers: PeerConfig,
    pub data_dir: PathBuf,
}

/// One of the collection types measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Collection {
    List,
    Set,
    SortedSet,
    Hash,
}

impl Collection {
    pub const ALL: [Self; 4] = [Self::List, Self::Set, Self::SortedSet, Self::Hash];

    /// Returns the name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Set => "set",
            Self::SortedSet => "sorted set",
            Self::Hash => "hash",
        }
    }

    /// Returns the key: one hash tag for all four, so one shard holds them.
    fn key(self) -> &'static str {
        match self {
            Self::List => "{elements}:list",
            Self::Set => "{elements}:set",
            Self::SortedSet => "{elements}:zset",
            Self::Hash => "{elements}:hash",
        }
    }

    /// Returns the command adding elements `first..last`.
    fn add(self, first: u64, last: u64) -> redis::Cmd {
        let mut cmd = redis::cmd(match self {
            Self::List => "RPUSH",
            Self::Set => "SADD",
            Self::SortedSet => "ZADD",
            Self::Hash => "HSET",
        });
        cmd.arg(self.key());
        for n in first..last {
            let element = format!("element:{n:010}");
            match self {
                Self::List | Self::Set => cmd.arg(element),
                Self::SortedSet => cmd.arg(n).arg(element),
                Self::Hash => cmd.arg(element).arg(format!("value:{n}")),
            };
        }
        cmd
    }

    /// Returns the command that counts the elements.
    fn length(self) -> redis::Cmd {
        let mut cmd = redis::cmd(match self {
            Self::List => "LLEN",
            Self::Set => "SCARD",
            Self::SortedSet => "ZCARD",
            Self::Hash => "HLEN",
        });
        cmd.arg(self.key());
        cmd
    }
}

/// One collection on one system.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Growth {
    /// Elements the server holds afterwards.
    pub elements: u64,
    pub load_s: f64,
    /// Resident set growth per element (polis: the serving node).
    pub rss_per_element_bytes: f64,
    /// `used_memory` growth per element (polis: its keyspace estimate).
    pub used_memory_per_element_bytes: Option<f64>,
}

/// One collection on both systems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionMemory {
    pub collection: Collection,
    pub polis: Option<Growth>,
    pub redis: Option<Growth>,
}

impl CollectionMemory {
    /// Returns polis's RSS per element over Redis's `used_memory` per element.
    pub fn ratio(&self) -> Option<f64> {
        let polis = self.polis.as_ref()?.rss_per_element_bytes;
        let redis = self.redis.as_ref()?.used_memory_per_element_bytes?;
        (redis > 0.0).then(|| polis / redis)
    }
}

/// Every collection, and what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ElementMemoryReport {
    pub elements: u64,
    pub collections: Vec<CollectionMemory>,
    pub errors: Vec<String>,
}

impl ElementMemoryReport {
    /// Returns the row of `collection`, if it was measured.
    pub fn row(&self, collection: Collection) -> Option<&CollectionMemory> {
        self.collections
            .iter()
            .find(|row| row.collection == collection)
    }
}

/// Returns the time building one collection may take.
fn build_timeout(elements: u64) -> Duration {
    Duration::from_secs(120) + Duration::from_millis(elements / 10)
}

/// Adds `elements` elements to `collection` on `addr`: [`ELEMENT_LOADERS`]
/// connections, each sending pipelines of [`ELEMENT_PIPELINE`] commands of
/// [`ELEMENT_BATCH`] elements. Logs progress every few seconds.
async fn build(
    addr: &str,
    collection: Collection,
    elements: u64,
    log: &dyn Fn(&str),
) -> anyhow::Result<()> {
    let added = Arc::new(AtomicU64::new(0));
    let per_pipeline = (ELEMENT_BATCH * ELEMENT_PIPELINE) as u64;
    let mut loaders = JoinSet::new();
    for loader in 0..ELEMENT_LOADERS as u64 {
        let addr = addr.to_owned();
        let added = added.clone();
        loaders.spawn(async move {
            let mut connection = open(&addr).await?;
            let mut first = loader * per_pipeline;
            while first < elements {
                let last = (first + per_pipeline).min(elements);
                let mut pipe = redis::pipe();
                let mut start = first;
                while start < last {
                    let end = (start + ELEMENT_BATCH as u64).min(last);
                    pipe.add_command(collection.add(start, end)).ignore();
                    start = end;
                }
                tokio::time::timeout(REQUEST_TIMEOUT, pipe.query_async::<Value>(&mut connection))
                    .await
                    .map_err(|_| format!("adding elements took over {REQUEST_TIMEOUT:?}"))?
                    .map_err(|error| format!("adding elements on {addr}: {error}"))?;
                added.fetch_add(last - first, Ordering::Relaxed);
                first += per_pipeline * ELEMENT_LOADERS as u64;
            }
            Ok::<_, String>(())
        });
    }
    let deadline = Instant::now() + build_timeout(elements);
    while !loaders.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "building the {} timed out",
            collection.name()
        );
        match tokio::time::timeout(Duration::from_secs(5), loaders.join_next()).await {
            Ok(Some(joined)) => joined?.map_err(|error| anyhow::anyhow!(error))?,
            Ok(None) => break,
            Err(_) => log(&format!(
                "element memory: {} {} of {elements} elements",
                collection.name(),
                added.load(Ordering::Relaxed)
            )),
        }
    }
    Ok(())
}

async fn length(addr: &str, collection: Collection) -> anyhow::Result<u64> {
    let mut connection = open(addr).await.map_err(|error| anyhow::anyhow!(error))?;
    Ok(collection.length().query_async(&mut connection).await?)
}

async fn used_memory(addr: &str) -> Option<u64> {
    let info = query_text(addr, &["INFO", "memory"]).await.ok()?;
    info_field(&info, "used_memory")
}

fn per_element(before: u64, after: u64, elements: u64) -> f64 {
    after.saturating_sub(before) as f64 / elements.max(1) as f64
}

/// Builds `collection` on `addr` (served by process `pid`) and measures
/// what it grew by.
async fn measure_one(
    addr: &str,
    pid: Option<u32>,
    collection: Collection,
    elements: u64,
    log: &dyn Fn(&str),
) -> anyhow::Result<Growth> {
    let rss = || pid.and_then(sample).map_or(0, |s| s.rss_bytes);
    let rss_before = rss();
    let used_before = used_memory(addr).await;
    let started = Instant::now();
    build(addr, collection, elements, log).await?;
    let load_s = started.elapsed().as_secs_f64();
    let held = length(addr, collection).await?;
    let used_after = used_memory(addr).await;
    Ok(Growth {
        elements: held,
        load_s,
        rss_per_element_bytes: per_element(rss_before, rss(), held),
        used_memory_per_element_bytes: used_before
            .zip(used_after)
            .map(|(before, after)| per_element(before, after, held)),
    })
}

async fn measure_polis(
    config: &ElementMemoryConfig,
    log: &dyn Fn(&str),
) -> anyhow::Result<Vec<Growth>> {
    let mut cluster = PolisCluster::start(
        &config.peers.polis,
        config.data_dir.join("polis"),
        crate::peers::polis::SHARDS,
        &config.peers.polis_server_args,
    )
    .await?;
    let result = async {
        let crate::spec::Target::Resp { addrs, .. } = cluster.target() else {
            anyhow::bail!("polis has no RESP target");
        };
        let mut growths = Vec::new();
        for collection in Collection::ALL {
            // Asked again each time: the shard's leader may have moved.
            let addr = owner_of(&addrs, collection.key())
                .await
                .map_err(|error| anyhow::anyhow!(error))?;
            let pid = cluster.pid_of(&addr);
            growths.push(measure_one(&addr, pid, collection, config.elements, log).await?);
            cluster.check_running()?;
        }
        Ok(growths)
    }
    .await;
    cluster.stop().await;
    result
}

async fn measure_redis(
    config: &ElementMemoryConfig,
    log: &dyn Fn(&str),
) -> anyhow::Result<Vec<Growth>> {
    let dir = config.data_dir.join("redis");
    let mut servers =
        RedisServers::start(&config.peers.redis_server, dir, RedisSetup::Memory).await?;
    let result = async {
        let addr = servers.primary_addr().to_owned();
        let pid = servers.pids().first().copied();
        let mut growths = Vec::new();
        for collection in Collection::ALL {
            growths.push(measure_one(&addr, pid, collection, config.elements, log).await?);
            servers.check_running()?;
        }
        Ok(growths)
    }
    .await;
    servers.stop().await;
    result
}

/// Builds the collections in polis, then in Redis, and reports both; a
/// side that fails is left out with its error.
pub async fn measure(config: &ElementMemoryConfig, log: &dyn Fn(&str)) -> ElementMemoryReport {
    let mut report = ElementMemoryReport {
        elements: config.elements,
        ..ElementMemoryReport::default()
    };
    if config.elements == 0 || config.elements > ELEMENTS_MAX {
        report
            .errors
            .push(format!("elements must be 1 to {ELEMENTS_MAX}"));
        return report;
    }
    let mut sides: [Vec<Growth>; 2] = [Vec::new(), Vec::new()];
    for (index, name) in ["polis", "redis"].into_iter().enumerate() {
        log(&format!(
            "element memory: {name}, {} elements per collection",
            config.elements
        ));
        let measured = if index == 0 {
            measure_polis(config, log).await
        } else {
            measure_redis(config, log).await
        };
        match measured {
            Ok(growths) => sides[index] = growths,
            Err(error) => {
                log(&format!("element memory: {name} FAILED: {error:#}"));
                report.errors.push(format!("{name}: {error:#}"));
            }
        }
    }
    let [polis, redis] = sides;
    for (position, collection) in Collection::ALL.into_iter().enumerate() {
        let row = CollectionMemory {
            collection,
            polis: polis.get(position).cloned(),
            redis: redis.get(position).cloned(),
        };
        log(&format!(
            "element memory: {}: polis RSS {} B/element, redis used_memory {} B/element",
            collection.name(),
            row.polis.as_ref().map_or("-".to_owned(), |g| format!(
                "{:.0}",
                g.rss_per_element_bytes
            )),
            row.redis
                .as_ref()
                .and_then(|g| g.used_memory_per_element_bytes)
                .map_or("-".to_owned(), |b| format!("{b:.0}")),
        ));
        report.collections.push(row);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_share_one_slot() {
        let slots: Vec<u16> = Collection::ALL
            .iter()
            .map(|c| crate::driver::routes::slot(c.key().as_bytes()))
            .collect();
        assert!(slots.windows(2).all(|pair| pair[0] == pair[1]), "{slots:?}");
    }

    #[test]
    fn the_ratio_needs_both_sides() {
        let mut row = CollectionMemory {
            collection: Collection::Set,
            polis: Some(Growth {
                rss_per_element_bytes: 120.0,
                ..Growth::default()
            }),
            redis: None,
        };
        assert_eq!(row.ratio(), None);
        row.redis = Some(Growth {
            used_memory_per_element_bytes: Some(60.0),
            ..Growth::default()
        });
        assert_eq!(row.ratio(), Some(2.0));
    }
}
