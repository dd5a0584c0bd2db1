//! Redis 7 as benchmarked, in three set-ups: a primary with two replicas,
//! every process with `appendfsync always`, each write followed by
//! `WAIT 2` (the closest Redis gets to a replicated, durable write); one
//! node with `appendfsync always`; one node without persistence (the
//! upper bound of the protocol path).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::process::{free_ports, wait_until, ServerProcess};
use crate::spec::Target;

/// How long the processes may take to start (and replicas to sync).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many replicas must acknowledge a write, and how long to wait for them.
pub const WAIT_REPLICAS: (u32, u64) = (2, 1000);

/// Which Redis set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisSetup {
    /// Primary and two replicas, AOF with fsync on every write everywhere.
    Replicated,
    /// One node, AOF with fsync on every write.
    Fsync,
    /// One node, no RDB, no AOF.
    Memory,
}

/// A running set of redis-server processes; the first is the primary.
pub struct RedisServers {
    setup: RedisSetup,
    processes: Vec<ServerProcess>,
    addrs: Vec<String>,
    _ports: polis_client::ports::PortLease,
}

impl RedisServers {
    /// Starts `setup` with `exe` under `dir` and waits until it serves
    /// (for replicas: until each has synced with the primary).
    ///
    /// # Errors
    /// Returns an error if a process cannot be started or is not ready in time.
    pub async fn start(exe: &Path, dir: PathBuf, setup: RedisSetup) -> anyhow::Result<Self> {
        let count = if setup == RedisSetup::Replicated {
            3
        } else {
            1
        };
        let (ports, lease) = free_ports(count)?;
        let mut processes = Vec::new();
        for (index, port) in ports.iter().enumerate() {
            let name = if index == 0 {
                "redis-primary".to_owned()
            } else {
                format!("redis-replica-{index}")
            };
            let process_dir = dir.join(&name);
            std::fs::create_dir_all(&process_dir)?;
            let mut args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
                "--save",
                "",
            ]
            .iter()
            .map(|arg| (*arg).to_owned())
            .collect();
            args.push("--dir".to_owned());
            args.push(process_dir.display().to_string());
            match setup {
                RedisSetup::Replicated | RedisSetup::Fsync => {
                    args.extend(
                        ["--appendonly", "yes", "--appendfsync", "always"].map(String::from),
                    );
                }
                RedisSetup::Memory => args.extend(["--appendonly", "no"].map(String::from)),
            }
            // Replicas sync at once instead of waiting 5 s for company.
            args.extend(["--repl-diskless-sync-delay", "0"].map(String::from));
            if index > 0 {
                args.extend([
                    "--replicaof".to_owned(),
                    "127.0.0.1".to_owned(),
                    ports[0].to_string(),
                ]);
            }
            let log = dir.join(format!("{name}.log"));
            processes.push(ServerProcess::spawn(&name, exe, &args, log)?);
        }
        let addrs: Vec<String> = ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let mut servers = Self {
            setup,
            processes,
            addrs,
            _ports: lease,
        };
        let addrs = servers.addrs.clone();
        let ready = wait_until("redis", &mut servers.processes, READY_TIMEOUT, || {
            all_ready(&addrs)
        })
        .await;
        if let Err(error) = ready {
            servers.stop().await;
            return Err(error);
        }
        Ok(servers)
    }

    /// Returns the primary's address.
    pub fn primary_addr(&self) -> &str {
        &self.addrs[0]
    }

    /// Returns where writes and reads go: the primary; with replicas,
    /// every write is followed by `WAIT 2 1000`.
    pub fn target(&self) -> Target {
        Target::Resp {
            addrs: vec![self.addrs[0].clone()],
            readonly: false,
            wait_replicas: (self.setup == RedisSetup::Replicated).then_some(WAIT_REPLICAS),
        }
    }

    /// Returns where the keyspace is loaded: the primary, without WAIT
    /// (loading is set-up, not measured; [`Self::wait_caught_up`] follows).
    pub fn load_target(&self) -> Target {
        Target::Resp {
            addrs: vec![self.addrs[0].clone()],
            readonly: false,
            wait_replicas: None,
        }
    }

    /// Waits until every replica has acknowledged the primary's whole
    /// replication stream (replicas acknowledge once a second).
    ///
    /// # Errors
    /// Returns an error if they have not within `timeout`.
    pub async fn wait_caught_up(&mut self, timeout: Duration) -> anyhow::Result<()> {
        if self.addrs.len() < 2 {
            return Ok(());
        }
        let primary = self.addrs[0].clone();
        let replicas = self.addrs.len() - 1;
        wait_until(
            "redis replicas catching up",
            &mut self.processes,
            timeout,
            || caught_up(&primary, replicas),
        )
        .await
    }

    /// Returns the replicas as a read target (asynchronously replicated,
    /// possibly stale), if there are any.
    pub fn replica_target(&self) -> Option<Target> {
        (self.addrs.len() > 1).then(|| Target::Resp {
            addrs: self.addrs[1..].to_vec(),
            readonly: false,
            wait_replicas: None,
        })
    }

    /// Returns the process ids: the primary's first.
    pub fn pids(&mut self) -> Vec<u32> {
        self.processes
            .iter_mut()
            .filter_map(ServerProcess::pid)
            .collect()
    }

    /// Returns an error if a process has exited.
    ///
    /// # Errors
    /// Names the process that exited and its log.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        self.processes
            .iter_mut()
            .try_for_each(ServerProcess::check_running)
    }

    /// Stops every process, the replicas first.
    pub async fn stop(&mut self) {
        for process in self.processes.iter_mut().rev() {
            process.stop().await;
        }
    }
}

/// Sends one command to `addr` and returns its reply as text, if any.
///
/// # Errors
/// Returns an error if the server cannot be reached or rejects the command.
pub async fn query_text(addr: &str, args: &[&str]) -> anyhow::Result<String> {
    let timeout = Duration::from_secs(5);
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let mut connection = tokio::time::timeout(timeout, client.get_multiplexed_async_connection())
        .await
        .map_err(|_| anyhow::anyhow!("connecting to {addr} timed out"))??;
    let mut cmd = redis::cmd(args.first().copied().unwrap_or("PING"));
    for arg in args.iter().skip(1) {
        cmd.arg(*arg);
    }
    let value: redis::Value = tokio::time::timeout(timeout, cmd.query_async(&mut connection))
        .await
        .map_err(|_| anyhow::anyhow!("{} on {addr} timed out", args.join(" ")))??;
    Ok(match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        redis::Value::VerbatimString { text, .. } => text,
        redis::Value::SimpleString(text) => text,
        redis::Value::Okay => "OK".to_owned(),
        redis::Value::Int(number) => number.to_string(),
        other => format!("{other:?}"),
    })
}

/// Returns the integer field `name` of an INFO reply.
pub fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines().find_map(|line| {
        let (key, value) = line.trim().split_once(':')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

/// Returns how many replicas the primary's `INFO replication` lists as online.
fn online_replicas(info: &str) -> usize {
    info.lines()
        .filter(|line| line.starts_with("slave") && line.contains("state=online"))
        .count()
}

/// Returns the replication offsets the primary's `INFO replication`
/// lists for its replicas.
fn replica_offsets(info: &str) -> Vec<u64> {
    info.lines()
        .filter(|line| line.starts_with("slave"))
        .filter_map(|line| {
            line.split(',')
                .find_map(|field| field.strip_prefix("offset="))
                .and_then(|offset| offset.trim().parse().ok())
        })
        .collect()
}

/// Returns true if `replicas` replicas have acknowledged everything the primary sent.
async fn caught_up(primary: &str, replicas: usize) -> bool {
    let Ok(info) = query_text(primary, &["INFO", "replication"]).await else {
        return false;
    };
    let Some(sent) = info_field(&info, "master_repl_offset") else {
        return false;
    };
    let offsets = replica_offsets(&info);
    offsets.len() == replicas && offsets.iter().all(|offset| *offset >= sent)
}

/// Returns true once every process answers and every replica has synced.
async fn all_ready(addrs: &[String]) -> bool {
    for (index, addr) in addrs.iter().enumerate() {
        let Ok(info) = query_text(addr, &["INFO", "replication"]).await else {
            return false;
        };
        let ready = if index == 0 {
            // `online`: past the initial sync and acknowledging, so WAIT
            // counts the replica.
            online_replicas(&info) == addrs.len() - 1
        } else {
            info.contains("master_link_status:up")
        };
        if !ready {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::info_field;

    #[test]
    fn only_online_replicas_count() {
        let info = "role:master\r\nconnected_slaves:2\r\n\
            slave0:ip=127.0.0.1,port=1,state=online,offset=9,lag=0\r\n\
            slave1:ip=127.0.0.1,port=2,state=wait_bgsave,offset=0,lag=0\r\n";
        assert_eq!(super::online_replicas(info), 1);
    }

    #[test]
    fn replica_offsets_are_read_from_the_slave_lines() {
        let info = "master_repl_offset:450\r\n\
            slave0:ip=127.0.0.1,port=1,state=online,offset=450,lag=0\r\n\
            slave1:ip=127.0.0.1,port=2,state=online,offset=17,lag=1\r\n";
        assert_eq!(super::replica_offsets(info), [450, 17]);
    }

    #[test]
    fn info_fields() {
        let info = "# Memory\r\nused_memory:123456\r\nused_memory_human:120.56K\r\n";
        assert_eq!(info_field(info, "used_memory"), Some(123_456));
        assert_eq!(info_field(info, "used_memory_human"), None);
        assert_eq!(info_field(info, "used"), None);
    }
}
