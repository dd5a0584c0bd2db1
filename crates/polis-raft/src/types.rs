//! The openraft type configuration of polis, and the application payloads
//! that ride in log entries.

use std::fmt;

use bytes::Bytes;
use polis_types::{NodeId, ReplicaId};
use serde::{Deserialize, Serialize};

/// The node that hosts a replica, and where it can be reached. Stored in
/// the Raft membership (keyed by replica id), so every replica knows which
/// node each member lives on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerNode {
    /// The node hosting the replica.
    pub node_id: NodeId,
    /// Peer RPC address (`host:port`).
    pub peer_addr: String,
    /// RESP address clients are redirected to (`host:port`).
    pub resp_addr: String,
    /// Admin HTTP address (`host:port`).
    pub admin_addr: String,
}

impl fmt::Display for PeerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node={} peer={} resp={}",
            self.node_id, self.peer_addr, self.resp_addr
        )
    }
}

/// One proposed command: the leader's wall-clock time when it proposed
/// (so apply never reads a local clock) and the application's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub time_ms: u64,
    pub payload: Bytes,
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "proposal(t={}, {} bytes)",
            self.time_ms,
            self.payload.len()
        )
    }
}

/// What applying a proposal returned: the application's encoded reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied(pub Bytes);

openraft::declare_raft_types!(
    /// The openraft type configuration of every polis group.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = ReplicaId,
        Node = PeerNode,
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, ReplicaId>,
        AsyncRuntime = crate::runtime::PolisRuntime,
);

pub type Raft<S> = openraft::Raft<TypeConfig, crate::state_machine::SmStore<S>>;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
