//! The systems compared, each started fresh on loopback with ports the OS
//! picks and stopped by the PIDs started here:
//!
//! | system | what | why |
//! |---|---|---|
//! | `polis` | 3 nodes, 3 shards (one leader per node), strong, fsync on a majority | the system under test |
//! | `polis-one-group` | 3 nodes, one Raft group for every slot | what sharding gains over one group |
//! | `etcd` | etcd 3.4, 3 members | a linearizable, fsyncing Raft store |
//! | `redis-replicated` | primary + 2 replicas, `appendfsync always`, `WAIT 2` | Redis's closest to a replicated durable write |
//! | `redis-fsync` | 1 node, `appendfsync always` | one durable node |
//! | `redis-memory` | 1 node, no persistence | the upper bound of the protocol path |

pub mod etcd;
pub mod polis;
pub mod process;
pub mod redis;
pub mod usage;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use self::etcd::EtcdCluster;
use self::polis::PolisCluster;
use self::redis::{RedisServers, RedisSetup};
use crate::spec::Target;

/// One of the systems compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SystemKind {
    Polis,
    PolisOneGroup,
    Etcd,
    RedisReplicated,
    RedisFsync,
    RedisMemory,
}

impl SystemKind {
    /// Every system, in report order.
    pub const ALL: [Self; 6] = [
        Self::Polis,
        Self::PolisOneGroup,
        Self::Etcd,
        Self::RedisReplicated,
        Self::RedisFsync,
        Self::RedisMemory,
    ];

    /// Returns the name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Polis => "polis",
            Self::PolisOneGroup => "polis-one-group",
            Self::Etcd => "etcd",
            Self::RedisReplicated => "redis-replicated",
            Self::RedisFsync => "redis-fsync",
            Self::RedisMemory => "redis-memory",
        }
    }

    /// Returns a one-line description for reports.
    pub fn description(self) -> &'static str {
        match self {
            Self::Polis => {
                "polis, 3 nodes, 3 shards (one leader per node), strong (Raft), fsync on a majority before each reply"
            }
            Self::PolisOneGroup => {
                "polis, 3 nodes, one Raft group for every slot (--shards 1), fsync on a majority before each reply"
            }
            Self::Etcd => "etcd 3.4, 3 members (Raft), fsync before each reply",
            Self::RedisReplicated => {
                "Redis 7, primary + 2 replicas, appendfsync always on all, WAIT 2 after each write"
            }
            Self::RedisFsync => "Redis 7, 1 node, appendfsync always",
            Self::RedisMemory => "Redis 7, 1 node, no persistence (upper bound)",
        }
    }

    /// Returns true for polis in any shape.
    pub fn is_polis(self) -> bool {
        matches!(self, Self::Polis | Self::PolisOneGroup)
    }

    /// Returns how many shards polis runs with, for polis.
    pub fn polis_shards(self) -> Option<usize> {
        match self {
            Self::Polis => Some(polis::SHARDS),
            Self::PolisOneGroup => Some(1),
            _ => None,
        }
    }

    /// Parses a name from [`Self::name`].
    ///
    /// # Errors
    /// Returns an error listing the names if `name` is none of them.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == name.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|kind| kind.name()).collect();
                anyhow::anyhow!("unknown system {name:?}; one of {}", names.join(", "))
            })
    }
}

/// Where the binaries are and where data goes.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The polis binary (`polis server` is started from it).
    pub polis: PathBuf,
    pub etcd: PathBuf,
    pub redis_server: PathBuf,
    /// Extra flags for every `polis server`.
    pub polis_server_args: Vec<String>,
}

/// A started system.
pub struct RunningSystem {
    kind: SystemKind,
    servers: Servers,
}

enum Servers {
    Polis(PolisCluster),
    Etcd(EtcdCluster),
    Redis(RedisServers),
}

impl RunningSystem {
    /// Starts `kind` fresh with its data under `dir`.
    ///
    /// # Errors
    /// Returns an error if it cannot be started or is not ready in time.
    pub async fn start(
        kind: SystemKind,
        config: &PeerConfig,
        dir: PathBuf,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let servers = match kind {
            SystemKind::Polis | SystemKind::PolisOneGroup => {
                let shards = kind.polis_shards().unwrap_or(polis::SHARDS);
                Servers::Polis(
                    PolisCluster::start(&config.polis, dir, shards, &config.polis_server_args)
                        .await?,
                )
            }
            SystemKind::Etcd => Servers::Etcd(EtcdCluster::start(&config.etcd, dir).await?),
            SystemKind::RedisReplicated => Servers::Redis(
                RedisServers::start(&config.redis_server, dir, RedisSetup::Replicated).await?,
            ),
            SystemKind::RedisFsync => Servers::Redis(
                RedisServers::start(&config.redis_server, dir, RedisSetup::Fsync).await?,
            ),
            SystemKind::RedisMemory => Servers::Redis(
                RedisServers::start(&config.redis_server, dir, RedisSetup::Memory).await?,
            ),
        };
        Ok(Self { kind, servers })
    }

    /// Returns which system this is.
    pub fn kind(&self) -> SystemKind {
        self.kind
    }

    /// Returns where writes and linearizable (or primary) reads go.
    pub fn target(&self) -> Target {
        match &self.servers {
            Servers::Polis(cluster) => cluster.target(),
            Servers::Etcd(cluster) => cluster.target(),
            Servers::Redis(servers) => servers.target(),
        }
    }

    /// Returns where the keyspace is loaded (for Redis with replicas: the
    /// primary without WAIT; [`Self::settle`] waits for the replicas).
    pub fn load_target(&self) -> Target {
        match &self.servers {
            Servers::Redis(servers) => servers.load_target(),
            _ => self.target(),
        }
    }

    /// Waits until the system is in a steady state after the load: every
    /// Redis replica has caught up with its primary.
    ///
    /// # Errors
    /// Returns an error if it does not settle within `timeout`.
    pub async fn settle(&mut self, timeout: std::time::Duration) -> anyhow::Result<()> {
        match &mut self.servers {
            Servers::Redis(servers) => servers.wait_caught_up(timeout).await,
            _ => Ok(()),
        }
    }

    /// Returns where reads from followers or replicas go, if the system
    /// has them and serves them: polis's followers with READONLY, Redis's
    /// replicas.
    pub fn follower_target(&self) -> Option<Target> {
        match &self.servers {
            Servers::Polis(cluster) => Some(cluster.follower_target()),
            Servers::Etcd(_) => None,
            Servers::Redis(servers) => servers.replica_target(),
        }
    }

    /// Returns the process ids of the servers.
    pub fn pids(&mut self) -> Vec<u32> {
        match &mut self.servers {
            Servers::Polis(cluster) => cluster.pids(),
            Servers::Etcd(cluster) => cluster.pids(),
            Servers::Redis(servers) => servers.pids(),
        }
    }

    /// Returns an error if a server process has exited.
    ///
    /// # Errors
    /// Names the process that exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        match &mut self.servers {
            Servers::Polis(cluster) => cluster.check_running(),
            Servers::Etcd(cluster) => cluster.check_running(),
            Servers::Redis(servers) => servers.check_running(),
        }
    }

    /// Stops every server process.
    pub async fn stop(&mut self) {
        match &mut self.servers {
            Servers::Polis(cluster) => cluster.stop().await,
            Servers::Etcd(cluster) => cluster.stop().await,
            Servers::Redis(servers) => servers.stop().await,
        }
    }
}
