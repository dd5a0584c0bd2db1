//! How close a node's memory figure (INFO `used_memory`, the keyspace
//! footprint `maxmemory` bounds) is to what the process really grew by,
//! per data type.
//!
//! Each case starts one fresh single-node polis (one shard, snapshots
//! off so that no snapshot's buffers come and go), builds its data in two
//! halves, and compares the growth of `used_memory` with the growth of
//! the resident set (`VmRSS`) over the second half: the first half pays
//! the node's fixed costs (the log's memtable, buffers), the second is
//! what each further element costs. A fresh node per case, because freed
//! memory stays with the allocator and would hide the next case's growth.
//!
//! ```text
//!  case: start node ─> build half 1 ─> (rss1, used1) ─> build half 2 ─> (rss2, used2)
//!        estimate ÷ real = (used2 - used1) ÷ (rss2 - rss1)
//! ```
//!
//! Types: strings (100-byte values), and hashes, lists, sets, sorted sets
//! and streams both as many small keys (8 elements each) and as one
//! large key.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::Value;
use serde::{Deserialize, Serialize};

use crate::driver::resp::open;
use crate::limits::REQUEST_TIMEOUT;
use crate::peers::redis::{info_field, query_text};
use crate::peers::usage::sample;
use crate::peers::PeerConfig;
use polis_client::local::{free_addrs, LocalCluster, LocalClusterConfig};

/// Elements per small key.
const SMALL_KEY_ELEMENTS: u64 = 8;
/// Elements one command of a large key adds (one for streams).
const LARGE_KEY_BATCH: u64 = 100;
/// Commands per pipeline.
const PIPELINE: usize = 64;
/// Bytes of a string's value.
const STRING_VALUE_BYTES: usize = 100;
/// Most elements one case may build.
pub const ELEMENTS_MAX: u64 = 10_000_000;
/// How long the node may take to serve.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    String,
    Hash,
    List,
    Set,
    SortedSet,
    Stream,
}

/// How a case lays its elements out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Many keys of [`SMALL_KEY_ELEMENTS`] elements (strings: one each).
    SmallKeys,
    /// One key holding every element.
    OneKey,
}

/// One case: a type in a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub kind: Kind,
    pub layout: Layout,
}

impl Case {
    /// Every case measured by default.
    pub const ALL: [Case; 11] = [
        Case::new(Kind::String, Layout::SmallKeys),
        Case::new(Kind::Hash, Layout::SmallKeys),
        Case::new(Kind::Hash, Layout::OneKey),
        Case::new(Kind::List, Layout::SmallKeys),
        Case::new(Kind::List, Layout::OneKey),
        Case::new(Kind::Set, Layout::SmallKeys),
        Case::new(Kind::Set, Layout::OneKey),
        Case::new(Kind::SortedSet, Layout::SmallKeys),
        Case::new(Kind::SortedSet, Layout::OneKey),
        Case::new(Kind::Stream, Layout::SmallKeys),
        Case::new(Kind::Stream, Layout::OneKey),
    ];

    const fn new(kind: Kind, layout: Layout) -> Self {
        Self { kind, layout }
    }

    /// Returns the case's name in reports.
    pub fn name(self) -> String {
        let kind = match self.kind {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::SortedSet => "sorted set",
            Kind::Stream => "stream",
        };
        match (self.kind, self.layout) {
            (Kind::String, _) => "strings (100-byte values)".to_owned(),
            (_, Layout::SmallKeys) => format!("{kind}: keys of {SMALL_KEY_ELEMENTS} elements"),
            (_, Layout::OneKey) => format!("{kind}: one key"),
        }
    }

    /// Returns the elements one command adds.
    fn per_command(self) -> u64 {
        match (self.kind, self.layout) {
            (Kind::String | Kind::Stream, _) => 1,
            (_, Layout::SmallKeys) => SMALL_KEY_ELEMENTS,
            (_, Layout::OneKey) => LARGE_KEY_BATCH,
        }
    }

    /// Returns the key of element `n`.
    fn key(self, n: u64) -> String {
        let prefix = match self.kind {
            Kind::String => "s",
            Kind::Hash => "h",
            Kind::List => "l",
            Kind::Set => "t",
            Kind::SortedSet => "z",
            Kind::Stream => "x",
        };
        match self.layout {
            Layout::SmallKeys if self.kind == Kind::String => format!("{prefix}:{n:010}"),
            Layout::SmallKeys => format!("{prefix}:{:010}", n / SMALL_KEY_ELEMENTS),
            Layout::OneKey => format!("{prefix}:large"),
        }
    }

    /// Returns the command adding elements `first..last` (all of one key:
    /// `first..last` never crosses a small key's elements).
    fn add(self, first: u64, last: u64) -> redis::Cmd {
        let key = self.key(first);
        let mut cmd = redis::cmd(match self.kind {
            Kind::String => "SET",
            Kind::Hash => "HSET",
            Kind::List => "RPUSH",
            Kind::Set => "SADD",
            Kind::SortedSet => "ZADD",
            Kind::Stream => "XADD",
        });
        cmd.arg(key);
        match self.kind {
            Kind::String => {
                cmd.arg(vec![b'v'; STRING_VALUE_BYTES]);
            }
            Kind::Stream => {
                cmd.arg("*").arg("field").arg(format!("value:{first:010}"));
            }
            _ => {
                for n in first..last {
                    let element = format!("element:{n:010}");
                    match self.kind {
                        Kind::Hash => cmd.arg(element).arg(format!("value:{n}")),
                        Kind::SortedSet => cmd.arg(n).arg(element),
                        _ => cmd.arg(element),
                    };
                }
            }
        }
        cmd
    }
}

/// What one case measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseFootprint {
    pub case: Case,
    pub name: String,
    /// Elements of the second half (the divisor).
    pub elements: u64,
    pub rss_per_element_bytes: f64,
    pub used_memory_per_element_bytes: f64,
    /// `used_memory` growth over resident set growth: 1.0 is exact.
    pub estimate_to_real: f64,
    pub load_s: f64,
}

/// What the measurement needs.
#[derive(Debug, Clone)]
pub struct FootprintConfig {
    /// Elements per case (halved for streams, one command each).
    pub elements: u64,
    pub cases: Vec<Case>,
    pub peers: PeerConfig,
    pub data_dir: PathBuf,
}

async fn used_memory(addr: &str) -> anyhow::Result<u64> {
    let info = query_text(addr, &["INFO", "memory"]).await?;
    info_field(&info, "used_memory").ok_or_else(|| anyhow::anyhow!("no used_memory in INFO"))
}

/// Sends the commands adding elements `first..last`, in pipelines.
async fn build(
    connection: &mut MultiplexedConnection,
    case: Case,
    first: u64,
    last: u64,
) -> anyhow::Result<()> {
    let step = case.per_command();
    let mut next = first;
    while next < last {
        let mut pipe = redis::pipe();
        for _ in 0..PIPELINE {
            if next >= last {
                break;
            }
            let end = (next + step).min(last);
            pipe.add_command(case.add(next, end)).ignore();
            next = end;
        }
        tokio::time::timeout(REQUEST_TIMEOUT, pipe.query_async::<Value>(connection))
            .await
            .map_err(|_| anyhow::anyhow!("a pipeline took over {REQUEST_TIMEOUT:?}"))??;
    }
    Ok(())
}

/// Measures one case on a fresh node.
async fn measure_case(
    config: &FootprintConfig,
    case: Case,
    index: usize,
) -> anyhow::Result<CaseFootprint> {
    let (nodes, ports) = free_addrs(1)?;
    let mut args: Vec<String> = [
        "--shards",
        "1",
        "--replicas",
        "1",
        "--snapshot-every-entries",
        "1000000000",
        "--snapshot-log-bytes-min",
        "1000000000000",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    args.extend(config.peers.polis_server_args.iter().cloned());
    let mut cluster = LocalCluster::start(LocalClusterConfig {
        exe: config.peers.polis.clone(),
        data_dir: config.data_dir.join(format!("case-{index}")),
        nodes,
        server_args: args,
        node_args: Default::default(),
        ports: Some(ports),
    })?;
    let result = async {
        let (_, addr) = cluster.wait_for_leader(READY_TIMEOUT).await?;
        let pid = cluster
            .pids()
            .into_values()
            .next()
            .ok_or_else(|| anyhow::anyhow!("the node is not running"))?;
        let rss = || sample(pid).map_or(0, |usage| usage.rss_bytes);
        let mut connection = open(&addr).await.map_err(|error| anyhow::anyhow!(error))?;
        let elements = match case.kind {
            Kind::Stream => config.elements / 2,
            _ => config.elements,
        };
        // Halves end on a small key's last element.
        let half = (elements / 2).div_ceil(SMALL_KEY_ELEMENTS) * SMALL_KEY_ELEMENTS;
        let started = Instant::now();
        build(&mut connection, case, 0, half).await?;
        let (rss_half, used_half) = (rss(), used_memory(&addr).await?);
        build(&mut connection, case, half, 2 * half).await?;
        let (rss_end, used_end) = (rss(), used_memory(&addr).await?);
        let rss_growth = rss_end.saturating_sub(rss_half) as f64;
        let used_growth = used_end.saturating_sub(used_half) as f64;
        anyhow::Ok(CaseFootprint {
            case,
            name: case.name(),
            elements: half,
            rss_per_element_bytes: rss_growth / half as f64,
            used_memory_per_element_bytes: used_growth / half as f64,
            estimate_to_real: if rss_growth > 0.0 {
                used_growth / rss_growth
            } else {
                0.0
            },
            load_s: started.elapsed().as_secs_f64(),
        })
    }
    .await;
    cluster.stop_all(crate::peers::process::STOP_GRACE).await;
    result
}

/// Measures every case of `config`, logging each; a case that fails is
/// reported and left out.
///
/// # Errors
/// When `config.elements` is 0 or past [`ELEMENTS_MAX`].
pub async fn measure(
    config: &FootprintConfig,
    log: &dyn Fn(&str),
) -> anyhow::Result<Vec<CaseFootprint>> {
    anyhow::ensure!(
        (16..=ELEMENTS_MAX).contains(&config.elements),
        "elements must be 16 to {ELEMENTS_MAX}"
    );
    let mut measured = Vec::new();
    for (index, case) in config.cases.iter().enumerate() {
        match measure_case(config, *case, index).await {
            Ok(footprint) => {
                log(&format!(
                    "footprint: {}: RSS {:.0} B/element, used_memory {:.0} B/element, estimate ÷ real {:.2} ({:.1} s)",
                    footprint.name,
                    footprint.rss_per_element_bytes,
                    footprint.used_memory_per_element_bytes,
                    footprint.estimate_to_real,
                    footprint.load_s
                ));
                measured.push(footprint);
            }
            Err(error) => log(&format!("footprint: {} FAILED: {error:#}", case.name())),
        }
    }
    Ok(measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_keys_hold_their_elements_and_commands_stay_in_one_key() {
        let hash = Case::new(Kind::Hash, Layout::SmallKeys);
        assert_eq!(hash.key(0), hash.key(SMALL_KEY_ELEMENTS - 1));
        assert_ne!(hash.key(0), hash.key(SMALL_KEY_ELEMENTS));
        let strings = Case::new(Kind::String, Layout::SmallKeys);
        assert_ne!(strings.key(0), strings.key(1));
        let large = Case::new(Kind::SortedSet, Layout::OneKey);
        assert_eq!(large.key(0), large.key(1_000_000));
        assert_eq!(large.per_command(), LARGE_KEY_BATCH);
        // A command adds to one key only.
        for case in Case::ALL {
            let step = case.per_command();
            for first in (0..64).step_by(step as usize) {
                assert_eq!(case.key(first), case.key(first + step - 1), "{case:?}");
            }
        }
    }
}
