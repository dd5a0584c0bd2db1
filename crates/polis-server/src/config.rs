//! The configuration of one node, as the binary assembled it from flags,
//! environment and file.

use std::path::PathBuf;

use polis_raft::RaftSettings;
use polis_types::limits::SHARDS_MAX;
use polis_types::{limits, NodeId};
use serde::{Deserialize, Serialize};

/// One member of the initial cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSpec {
    pub id: NodeId,
    /// Peer RPC address.
    pub peer_addr: String,
    /// RESP address clients are redirected to.
    pub resp_addr: String,
    /// Admin HTTP address.
    pub admin_addr: String,
}

/// How a new cluster is laid out; used by the node that creates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterShape {
    pub shards: usize,
    /// Replicas per shard (at most the number of nodes).
    pub replicas: usize,
}

impl Default for ClusterShape {
    fn default() -> Self {
        Self {
            shards: 3,
            replicas: 3,
        }
    }
}

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub node_id: NodeId,
    pub data_dir: PathBuf,
    /// Where the RESP listener binds.
    pub resp_addr: String,
    /// Where the admin HTTP listener binds.
    pub admin_addr: String,
    /// Where the peer RPC listener binds.
    pub peer_addr: String,
    /// The initial members (this node included): the nodes of a new
    /// cluster, and where a node with empty storage looks for the map.
    pub members: Vec<MemberSpec>,
    /// This node creates the cluster map when no member has one. Without
    /// it, the member with the lowest id does, once a majority of the
    /// members answer that they have no data.
    pub init: bool,
    /// Peer addresses of members of a running cluster this node joins
    /// (`--join`): it asks them for the map and registers as a new node.
    pub join: Vec<String>,
    /// The layout of a cluster this node creates.
    pub shape: ClusterShape,
    pub raft: RaftSettings,
    /// Planned leader moves (balancing) per minute, at most.
    pub leader_moves_per_minute: u32,
    /// A node silent this long is taken for gone and its shard replicas
    /// are rebuilt on the other nodes.
    pub down_after: std::time::Duration,
    /// How long a migrating slot range may stay frozen (writes refused)
    /// before its switch; a switch that cannot make it thaws the range
    /// and copies again.
    pub migration_pause_max: std::time::Duration,
    /// Bytes per second a migration ships at most (0: no limit).
    pub migration_bytes_per_sec: u64,
    /// The meta leader splits and merges shards by itself.
    pub scheduler: bool,
    /// Past any of these a shard is split (0 turns one off).
    pub split_above: polis_cluster::reshape::SplitAbove,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: u64,
    pub maxclients: usize,
    /// CONFIG parameters set at start, as CONFIG SET would set them
    /// (`notify-keyspace-events`, `maxmemory`, `maxmemory-policy`, ...).
    pub parameters: Vec<(String, String)>,
    /// Starts the node with fault injection endpoints enabled.
    pub enable_fault_injection: bool,
    /// The newest log entry format the node says it understands when it
    /// registers: [`polis_cluster::ENTRY_FORMAT_MAX`], or lower to act as
    /// an older release in an upgrade test.
    pub entry_format_max: u32,
    /// A TLS listener for clients beside the plaintext one.
    pub tls: Option<polis_tls::TlsListen>,
    /// Mutual TLS on the peer port and to every peer (`tls-cluster yes`).
    pub peer_tls: Option<polis_tls::PeerFiles>,
    /// The master key of encryption at rest (`--encryption-key-file`).
    pub encryption_key: Option<std::sync::Arc<polis_raft::MasterKey>>,
}

impl ServerConfig {
    /// Returns this node's entry of the member list.
    pub fn me(&self) -> Option<&MemberSpec> {
        self.members.iter().find(|member| member.id == self.node_id)
    }

    /// Checks the configuration for contradictions.
    ///
    /// # Errors
    /// Returns a message naming the first problem found.
    pub fn validate(&self) -> Result<(), String> {
        if self.node_id.get() == 0 {
            return Err("node id must be at least 1".into());
        }
        if self.init && !self.join.is_empty() {
            return Err(
                "--init creates a cluster and --join adds this node to a running one: give one"
                    .into(),
            );
        }
        if self.me().is_none() {
            return Err(format!("node {} is not in the member list", self.node_id));
        }
        let mut ids: Vec<NodeId> = self.members.iter().map(|member| member.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.members.len() {
            return Err("member ids must be unique".into());
        }
        if self.members.len() > limits::NODES_MAX {
            return Err(format!("at most {} members", limits::NODES_MAX));
        }
        if self.shape.shards == 0 || self.shape.shards > SHARDS_MAX {
            return Err(format!("--shards must be between 1 and {SHARDS_MAX}"));
        }
        if self.shape.replicas == 0 {
            return Err("--replicas must be at least 1".into());
        }
        if self.proto_max_bulk_len < limits::PROTO_MAX_BULK_LEN_MIN {
            return Err(format!(
                "proto-max-bulk-len must be at least {}",
                limits::PROTO_MAX_BULK_LEN_MIN
            ));
        }
        crate::settings::Settings::new(
            self.proto_max_bulk_len,
            self.client_query_buffer_limit,
            self.maxclients,
        )
        .set_all(&self.parameters)
        .map_err(|error| error.render())?;
        if self.raft.election_timeout_min_ms <= self.raft.heartbeat_ms
            || self.raft.election_timeout_max_ms <= self.raft.election_timeout_min_ms
        {
            return Err("need heartbeat < election timeout min < election timeout max".into());
        }
        Ok(())
    }
}
