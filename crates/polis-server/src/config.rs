//! The configuration of one node, as the binary assembled it from flags,
//! environment and file.

use std::path::PathBuf;

use polis_raft::RaftSettings;
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
    /// The initial members (this node included). Used on first start only.
    pub members: Vec<MemberSpec>,
    pub raft: RaftSettings,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: u64,
    pub maxclients: usize,
    /// Starts the node with fault injection endpoints enabled.
    pub enable_fault_injection: bool,
}

impl ServerConfig {
    /// Checks the configuration for contradictions.
    ///
    /// # Errors
    /// Returns a message naming the first problem found.
    pub fn validate(&self) -> Result<(), String> {
        if self.node_id.get() == 0 {
            return Err("node id must be at least 1".into());
        }
        if !self.members.iter().any(|member| member.id == self.node_id) {
            return Err(format!("node {} is not in the member list", self.node_id));
        }
        let mut ids: Vec<NodeId> = self.members.iter().map(|member| member.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.members.len() {
            return Err("member ids must be unique".into());
        }
        if self.proto_max_bulk_len < limits::PROTO_MAX_BULK_LEN_MIN {
            return Err(format!(
                "proto-max-bulk-len must be at least {}",
                limits::PROTO_MAX_BULK_LEN_MIN
            ));
        }
        if self.raft.election_timeout_min_ms <= self.raft.heartbeat_ms
            || self.raft.election_timeout_max_ms <= self.raft.election_timeout_min_ms
        {
            return Err("need heartbeat < election timeout min < election timeout max".into());
        }
        Ok(())
    }
}
