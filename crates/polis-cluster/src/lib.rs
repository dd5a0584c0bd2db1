//! The cluster as data: the versioned cluster map, the meta group's state
//! machine that holds it, the first layout of a new cluster, the routing of
//! a classified command to its shard, and the pure planning of group
//! membership and leader placement.
//!
//! ```text
//!   MetaCommand ──> meta group (Raft) ──> MetaMachine::apply ──> ClusterMap vN+1 ──> every node
//!                                                                    │
//!   request ──> polis_commands::classify ──> route(&MapView) ──> shard│──> its Raft group
//!   map + leaders ──> plan::{next_membership_step, leader_moves} ──> the node carries them out
//! ```
//!
//! What it owns: the map's shape and rules ([`map`]), changes as
//! compare-and-set transactions ([`change`]), log entry formats and the
//! cluster version ([`version`]), the meta state machine ([`meta`]), the
//! first layout ([`layout`]), routing ([`route`]) and planning ([`plan`]).
//! Everything here is deterministic and free of I/O; it must not depend on
//! the node runtime (polis-server) or on openraft.

pub mod change;
pub mod layout;
pub mod map;
mod map_wire;
pub mod meta;
pub mod migration;
pub mod namespace;
pub mod plan;
pub mod reshape;
pub mod route;
pub mod tls_addrs;
pub mod users;
pub mod version;

#[cfg(test)]
mod test_support;

pub use change::{MapChange, TxnError};
pub use layout::{Layout, Registration};
pub use map::{ClusterMap, MapView, NodeAddrs, NodeRecord, NodeState, ShardRecord, ShardReplica};
pub use meta::{MetaCommand, MetaMachine, MetaReply};
pub use migration::{Migration, MigrationPhase};
pub use namespace::{CacheLimits, Consistency, Namespace, NamespaceError, Namespaces, Quorums};
pub use route::{classify, Routed, Target};
pub use version::{EntryFormat, ENTRY_FORMAT_MAX};
