//! polis as benchmarked: three `polis server` processes on loopback,
//! strong consistency, every write fsynced on a majority (the defaults),
//! with as many shards as asked (3 by default: each node leads one).

use std::path::{Path, PathBuf};
use std::time::Duration;

use polis_client::local::{free_addrs, LocalCluster, LocalClusterConfig};

use crate::spec::Target;

/// Nodes of the benchmarked cluster.
pub const NODES: u64 = 3;
/// Shards of the benchmarked cluster, unless asked otherwise.
pub const SHARDS: usize = 3;

/// How long the cluster may take to elect a leader.
const LEADER_TIMEOUT: Duration = Duration::from_secs(60);

/// A running three-node polis cluster.
pub struct PolisCluster {
    cluster: LocalCluster,
    leader_id: u64,
    leader_resp: String,
    /// The ports of nodes added later, held while they run.
    added: Vec<std::sync::Arc<polis_client::ports::PortLease>>,
}

impl PolisCluster {
    /// Starts `NODES` nodes of `exe` with `shards` shards under `dir`
    /// and waits until every shard serves.
    ///
    /// # Errors
    /// Returns an error if a node cannot be started or no leader is elected.
    pub async fn start(
        exe: &Path,
        dir: PathBuf,
        shards: usize,
        server_args: &[String],
    ) -> anyhow::Result<Self> {
        let (nodes, ports) = free_addrs(NODES)?;
        let mut args = vec!["--shards".to_owned(), shards.to_string()];
        args.extend(server_args.iter().cloned());
        let config = LocalClusterConfig {
            exe: exe.to_path_buf(),
            data_dir: dir,
            nodes,
            server_args: args,
            node_args: Default::default(),
            ports: Some(ports),
        };
        let mut cluster = LocalCluster::start(config)?;
        match cluster.wait_for_leader(LEADER_TIMEOUT).await {
            Ok((leader_id, leader_resp)) => Ok(Self {
                cluster,
                leader_id,
                leader_resp,
                added: Vec::new(),
            }),
            Err(error) => {
                let logs = cluster.log_path(1);
                cluster.stop_all(super::process::STOP_GRACE).await;
                Err(error.context(format!(
                    "polis elected no leader; node logs next to {}",
                    logs.display()
                )))
            }
        }
    }

    /// Starts one more node, which joins the running cluster through the
    /// first node; returns its id.
    ///
    /// # Errors
    /// Returns an error if no port is free or the node cannot start.
    pub fn add_node(&mut self) -> anyhow::Result<u64> {
        let id = self.cluster.ids().into_iter().max().unwrap_or(0) + 1;
        let seed = self
            .cluster
            .nodes()
            .first()
            .map(|node| node.peer.clone())
            .ok_or_else(|| anyhow::anyhow!("no node to join through"))?;
        let (mut addrs, lease) = free_addrs(1)?;
        let mut node = addrs
            .pop()
            .ok_or_else(|| anyhow::anyhow!("no free address"))?;
        node.id = id;
        self.cluster.add_node(node, &seed)?;
        self.added.push(lease);
        Ok(id)
    }

    /// Returns each node's id and addresses, in id order.
    pub fn nodes(&self) -> &[polis_client::local::NodeAddrs] {
        self.cluster.nodes()
    }

    /// Returns the nodes' admin addresses.
    pub fn admin_addrs(&self) -> Vec<String> {
        self.cluster.admin_addrs().into_values().collect()
    }

    /// Returns the RESP address of the leader found at the start.
    pub fn leader_resp(&self) -> &str {
        &self.leader_resp
    }

    /// Returns where writes and linearizable reads go: every node, the
    /// leader first (the client follows MOVED should it change).
    pub fn target(&self) -> Target {
        let mut addrs = vec![self.leader_resp.clone()];
        addrs.extend(
            self.cluster
                .resp_addrs()
                .into_iter()
                .filter(|addr| *addr != self.leader_resp),
        );
        Target::Resp {
            addrs,
            readonly: false,
            wait_replicas: None,
        }
    }

    /// Returns the followers with READONLY: reads served locally, possibly stale.
    pub fn follower_target(&self) -> Target {
        Target::Resp {
            addrs: self
                .cluster
                .resp_addrs()
                .into_iter()
                .filter(|addr| *addr != self.leader_resp)
                .collect(),
            readonly: true,
            wait_replicas: None,
        }
    }

    /// Returns the process ids: the leader's first.
    pub fn pids(&mut self) -> Vec<u32> {
        let pids = self.cluster.pids();
        let leader = pids.get(&self.leader_id).copied();
        leader
            .into_iter()
            .chain(
                pids.iter()
                    .filter(|(id, _)| **id != self.leader_id)
                    .map(|(_, pid)| *pid),
            )
            .collect()
    }

    /// Returns the leader's process id.
    pub fn leader_pid(&mut self) -> Option<u32> {
        self.cluster.pids().get(&self.leader_id).copied()
    }

    /// Returns the process id of the node listening for RESP on `resp`.
    pub fn pid_of(&mut self, resp: &str) -> Option<u32> {
        let id = self
            .cluster
            .nodes()
            .iter()
            .find(|node| node.resp == resp)?
            .id;
        self.cluster.pids().get(&id).copied()
    }

    /// Returns an error if a node has exited.
    ///
    /// # Errors
    /// Names the node that exited and its log.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some((id, status)) = self.cluster.exited().into_iter().next() {
            anyhow::bail!(
                "polis node {id} exited ({status}); see {}",
                self.cluster.log_path(id).display()
            );
        }
        Ok(())
    }

    /// Stops every node.
    pub async fn stop(&mut self) {
        self.cluster.stop_all(super::process::STOP_GRACE).await;
    }
}
