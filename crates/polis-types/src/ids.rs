//! Identifiers of nodes and Raft groups.

/// Identifies a node of the cluster. Zero is never a valid node id.
pub type NodeId = u64;

/// Identifies a Raft group. Every Raft message, log key and state machine
/// is addressed by one.
pub type GroupId = u64;

/// The group that holds all 16384 slots until sharding arrives.
pub const DATA_GROUP: GroupId = 1;
