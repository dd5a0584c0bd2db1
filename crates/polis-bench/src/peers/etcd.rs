//! etcd 3.4 as benchmarked: a static three-member cluster on loopback,
//! each member with its own data directory (etcd fsyncs its WAL before
//! acknowledging a write, and serves linearizable reads by default).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::process::{free_ports, wait_until, ServerProcess};
use crate::spec::Target;

/// Members of the benchmarked cluster.
pub const MEMBERS: usize = 3;

/// How long the members may take to form a cluster with a leader.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running etcd cluster.
pub struct EtcdCluster {
    processes: Vec<ServerProcess>,
    client_addrs: Vec<String>,
    _ports: polis_client::ports::PortLease,
}

impl EtcdCluster {
    /// Starts `MEMBERS` members of `exe` under `dir` and waits until every
    /// one reports itself healthy (which needs a leader).
    ///
    /// # Errors
    /// Returns an error if a member cannot be started or is not healthy in time.
    pub async fn start(exe: &Path, dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let (ports, lease) = free_ports(2 * MEMBERS)?;
        let (client_ports, peer_ports) = ports.split_at(MEMBERS);
        let name = |index: usize| format!("etcd-{}", index + 1);
        let initial_cluster = peer_ports
            .iter()
            .enumerate()
            .map(|(index, port)| format!("{}=http://127.0.0.1:{port}", name(index)))
            .collect::<Vec<_>>()
            .join(",");
        let mut processes = Vec::new();
        for index in 0..MEMBERS {
            let client_url = format!("http://127.0.0.1:{}", client_ports[index]);
            let peer_url = format!("http://127.0.0.1:{}", peer_ports[index]);
            let args = vec![
                format!("--name={}", name(index)),
                format!("--data-dir={}", dir.join(name(index)).display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster={initial_cluster}"),
                "--initial-cluster-state=new".to_owned(),
                "--initial-cluster-token=polis-bench".to_owned(),
                "--logger=zap".to_owned(),
                "--log-level=warn".to_owned(),
            ];
            let log = dir.join(format!("{}.log", name(index)));
            processes.push(ServerProcess::spawn(&name(index), exe, &args, log)?);
        }
        let client_addrs: Vec<String> = client_ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let mut cluster = Self {
            processes,
            client_addrs,
            _ports: lease,
        };
        let addrs = cluster.client_addrs.clone();
        let ready = wait_until("etcd", &mut cluster.processes, READY_TIMEOUT, || {
            all_healthy(&addrs)
        })
        .await;
        if let Err(error) = ready {
            cluster.stop().await;
            return Err(error);
        }
        Ok(cluster)
    }

    /// Returns the client endpoints (`http://127.0.0.1:port`).
    pub fn endpoints(&self) -> Vec<String> {
        self.client_addrs
            .iter()
            .map(|addr| format!("http://{addr}"))
            .collect()
    }

    /// Returns the target: every member (etcd forwards writes to its leader).
    pub fn target(&self) -> Target {
        Target::Etcd {
            endpoints: self.endpoints(),
        }
    }

    /// Returns the process ids.
    pub fn pids(&mut self) -> Vec<u32> {
        self.processes
            .iter_mut()
            .filter_map(ServerProcess::pid)
            .collect()
    }

    /// Returns an error if a member has exited.
    ///
    /// # Errors
    /// Names the member that exited and its log.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        self.processes
            .iter_mut()
            .try_for_each(ServerProcess::check_running)
    }

    /// Stops every member.
    pub async fn stop(&mut self) {
        for process in &mut self.processes {
            process.stop().await;
        }
    }
}

/// Returns true if every member answers `GET /health` with health true.
async fn all_healthy(addrs: &[String]) -> bool {
    for addr in addrs {
        let healthy = match polis_client::admin::get(addr, "/health", Duration::from_secs(2)).await
        {
            Ok((200, body)) => is_healthy(&body),
            _ => false,
        };
        if !healthy {
            return false;
        }
    }
    true
}

/// Reads etcd's `/health` body: `{"health":"true"}` (3.4 may add a reason).
fn is_healthy(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .is_some_and(|value| value["health"] == "true")
}

#[cfg(test)]
mod tests {
    use super::is_healthy;

    #[test]
    fn health_bodies() {
        assert!(is_healthy(br#"{"health":"true"}"#));
        assert!(is_healthy(br#"{"health":"true","reason":""}"#));
        assert!(!is_healthy(
            br#"{"health":"false","reason":"RAFT NO LEADER"}"#
        ));
        assert!(!is_healthy(b"not json"));
    }
}
