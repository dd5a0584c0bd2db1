//! A local cluster: one `polis server` process per node on loopback, with
//! the process faults a test or a nemesis needs (kill -9, pause, restart).
//! Every process is stopped by its own PID, never by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::admin;
use crate::ports::{self, PortLease};

/// Where one node listens.
#[derive(Debug, Clone)]
pub struct NodeAddrs {
    pub id: u64,
    pub resp: String,
    pub admin: String,
    pub peer: String,
}

/// How to start the nodes of a local cluster.
#[derive(Debug, Clone)]
pub struct LocalClusterConfig {
    /// The polis binary.
    pub exe: PathBuf,
    /// One subdirectory and one log file per node under it.
    pub data_dir: PathBuf,
    pub nodes: Vec<NodeAddrs>,
    /// Flags passed to every `polis server` (`--shards`, timings...).
    pub server_args: Vec<String>,
    /// Flags passed to one node's `polis server` only, by node id (a TLS
    /// port of its own).
    pub node_args: BTreeMap<u64, Vec<String>>,
    /// The lease on the nodes' ports, held as long as the cluster may use
    /// them (see [`crate::ports`]).
    pub ports: Option<Arc<PortLease>>,
}

/// A running local cluster. Dropping it kills every node it started.
pub struct LocalCluster {
    config: LocalClusterConfig,
    children: BTreeMap<u64, Child>,
    /// Nodes added to the running cluster, with the peer address they
    /// join through (`--join`).
    joined: BTreeMap<u64, String>,
}

/// Returns `nodes` sets of addresses on leased ports (see
/// [`crate::ports`]), with the lease: keep it while the nodes run.
///
/// # Errors
/// Returns an error if not enough ports are free.
pub fn free_addrs(nodes: u64) -> anyhow::Result<(Vec<NodeAddrs>, Arc<PortLease>)> {
    let lease = ports::reserve(3 * nodes as usize)?;
    let addrs = lease.addrs();
    let nodes = (1..=nodes)
        .zip(addrs.chunks(3))
        .map(|(id, chunk)| NodeAddrs {
            id,
            resp: chunk[0].clone(),
            admin: chunk[1].clone(),
            peer: chunk[2].clone(),
        })
        .collect();
    Ok((nodes, Arc::new(lease)))
}

impl LocalCluster {
    /// Starts every node.
    ///
    /// # Errors
    /// Returns an error if a directory or a process cannot be created.
    pub fn start(config: LocalClusterConfig) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        let mut cluster = Self {
            config,
            children: BTreeMap::new(),
            joined: BTreeMap::new(),
        };
        for id in cluster.ids() {
            cluster.start_node(id)?;
        }
        Ok(cluster)
    }

    /// Returns the node ids.
    pub fn ids(&self) -> Vec<u64> {
        self.config.nodes.iter().map(|node| node.id).collect()
    }

    /// Returns the addresses of the nodes.
    pub fn nodes(&self) -> &[NodeAddrs] {
        &self.config.nodes
    }

    /// Returns the log file of node `id`.
    pub fn log_path(&self, id: u64) -> PathBuf {
        self.config.data_dir.join(format!("node-{id}.log"))
    }

    /// Returns the data directory of node `id`.
    pub fn node_dir(&self, id: u64) -> PathBuf {
        self.config.data_dir.join(format!("node-{id}"))
    }

    /// Returns the data directory of the cluster.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    fn addrs(&self, id: u64) -> anyhow::Result<&NodeAddrs> {
        self.config
            .nodes
            .iter()
            .find(|node| node.id == id)
            .with_context(|| format!("node {id} is not in the cluster"))
    }

    /// Returns the admin addresses, by node id.
    pub fn admin_addrs(&self) -> BTreeMap<u64, String> {
        self.config
            .nodes
            .iter()
            .map(|node| (node.id, node.admin.clone()))
            .collect()
    }

    /// Returns the RESP addresses in node order.
    pub fn resp_addrs(&self) -> Vec<String> {
        self.config
            .nodes
            .iter()
            .map(|node| node.resp.clone())
            .collect()
    }

    /// Starts node `id` (again, after a kill or stop; its data stays).
    ///
    /// # Errors
    /// Returns an error if the node runs already or cannot be started.
    pub fn start_node(&mut self, id: u64) -> anyhow::Result<()> {
        if self.is_running(id) {
            bail!("node {id} is running already");
        }
        let node = self.addrs(id)?.clone();
        let join = self.joined.get(&id).cloned();
        let members: Vec<String> = self
            .config
            .nodes
            .iter()
            .filter(|n| match &join {
                Some(_) => n.id == id,
                None => !self.joined.contains_key(&n.id),
            })
            .map(|n| format!("{}={}/{}/{}", n.id, n.peer, n.resp, n.admin))
            .collect();
        let log_path = self.log_path(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let child = Command::new(&self.config.exe)
            .arg("server")
            .args(["--node-id", &id.to_string()])
            .arg("--data-dir")
            .arg(self.node_dir(id))
            .args(["--resp-addr", &node.resp])
            .args(["--admin-addr", &node.admin])
            .args(["--peer-addr", &node.peer])
            .args(["--member", &members.join(",")])
            .args(join.iter().flat_map(|seed| ["--join", seed.as_str()]))
            .args(&self.config.server_args)
            .args(self.config.node_args.get(&id).into_iter().flatten())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting node {id}"))?;
        self.children.insert(id, child);
        Ok(())
    }

    /// Adds a node to the running cluster and starts it: it joins through
    /// `seed`, the peer address of any member (`--join`).
    ///
    /// # Errors
    /// Returns an error if the id is taken here or the node cannot start.
    pub fn add_node(&mut self, node: NodeAddrs, seed: &str) -> anyhow::Result<()> {
        if self.config.nodes.iter().any(|known| known.id == node.id) {
            bail!("node {} is in this cluster already", node.id);
        }
        let id = node.id;
        self.config.nodes.push(node);
        self.joined.insert(id, seed.to_owned());
        self.start_node(id)
    }

    /// Returns true if node `id`'s process is alive (running or paused).
    pub fn is_running(&mut self, id: u64) -> bool {
        match self.children.get_mut(&id) {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Returns the process id of every node whose process is alive, by
    /// node id (for measuring a node's CPU time and memory from `/proc`).
    pub fn pids(&mut self) -> BTreeMap<u64, u32> {
        self.children
            .iter_mut()
            .filter_map(|(id, child)| match child.try_wait() {
                Ok(None) => child.id().map(|pid| (*id, pid)),
                _ => None,
            })
            .collect()
    }

    fn pid(&mut self, id: u64) -> anyhow::Result<Pid> {
        let child = self
            .children
            .get_mut(&id)
            .with_context(|| format!("node {id} was not started"))?;
        let pid = child
            .id()
            .with_context(|| format!("node {id} has exited"))?;
        Ok(Pid::from_raw(i32::try_from(pid)?))
    }

    /// Sends `signal` to node `id`'s process.
    ///
    /// # Errors
    /// Returns an error if the node is not running.
    pub fn signal(&mut self, id: u64, signal: Signal) -> anyhow::Result<()> {
        let pid = self.pid(id)?;
        kill(pid, signal).with_context(|| format!("signalling node {id}"))
    }

    /// Kills node `id` with SIGKILL and reaps it.
    ///
    /// # Errors
    /// Returns an error if the node is not running.
    pub async fn kill9(&mut self, id: u64) -> anyhow::Result<()> {
        self.signal(id, Signal::SIGKILL)?;
        if let Some(mut child) = self.children.remove(&id) {
            child.wait().await?;
        }
        Ok(())
    }

    /// Stops node `id` with SIGTERM (SIGCONT first, in case it is paused),
    /// then SIGKILL if it has not exited within `grace`.
    ///
    /// # Errors
    /// Returns an error if the node is not running.
    pub async fn stop(&mut self, id: u64, grace: Duration) -> anyhow::Result<()> {
        self.signal(id, Signal::SIGCONT)?;
        self.signal(id, Signal::SIGTERM)?;
        if let Some(mut child) = self.children.remove(&id) {
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                child.kill().await?;
            }
        }
        Ok(())
    }

    /// Pauses node `id` (SIGSTOP): alive, silent.
    ///
    /// # Errors
    /// Returns an error if the node is not running.
    pub fn pause(&mut self, id: u64) -> anyhow::Result<()> {
        self.signal(id, Signal::SIGSTOP)
    }

    /// Resumes a paused node (SIGCONT).
    ///
    /// # Errors
    /// Returns an error if the node is not running.
    pub fn resume(&mut self, id: u64) -> anyhow::Result<()> {
        self.signal(id, Signal::SIGCONT)
    }

    /// Waits until the cluster is ready (every shard has a leader serving
    /// its slots); returns the node leading shard 1 and its RESP address.
    ///
    /// # Errors
    /// Returns an error if it is not ready within `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> anyhow::Result<(u64, String)> {
        let admins: Vec<String> = self.admin_addrs().into_values().collect();
        admin::wait_for_leader(&admins, timeout).await
    }

    /// Waits until the cluster is ready; returns a ready node's /status.
    ///
    /// # Errors
    /// Returns an error if it is not ready within `timeout`.
    pub async fn wait_until_ready(&self, timeout: Duration) -> anyhow::Result<serde_json::Value> {
        let admins: Vec<String> = self.admin_addrs().into_values().collect();
        admin::wait_until_ready(&admins, timeout).await
    }

    /// Waits until every node serves and every shard is led from its
    /// preferred node (see [`admin::wait_until_settled`]).
    ///
    /// # Errors
    /// Returns an error if that does not happen within `timeout`.
    pub async fn wait_until_settled(&self, timeout: Duration) -> anyhow::Result<serde_json::Value> {
        let admins: Vec<String> = self.admin_addrs().into_values().collect();
        admin::wait_until_settled(&admins, timeout).await
    }

    /// Returns the node ids whose processes exited by themselves, with
    /// their exit status.
    pub fn exited(&mut self) -> Vec<(u64, std::process::ExitStatus)> {
        self.children
            .iter_mut()
            .filter_map(|(id, child)| match child.try_wait() {
                Ok(Some(status)) => Some((*id, status)),
                _ => None,
            })
            .collect()
    }

    /// Stops every node (SIGTERM, then SIGKILL after `grace`).
    pub async fn stop_all(&mut self, grace: Duration) {
        let ids: Vec<u64> = self.children.keys().copied().collect();
        for id in ids {
            if let Err(error) = self.stop(id, grace).await {
                eprintln!("stopping node {id}: {error:#}");
            }
        }
    }
}
