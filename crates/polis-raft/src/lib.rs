//! Raft for polis: the only crate that imports openraft.
//!
//! ```text
//!   Group::propose ──> openraft ──> LogStore::append ──> fjall batch
//!                         │                              └─> GroupCommit (one fsync, all groups)
//!                         ├──> peer transport (tonic, one channel per peer, group-addressed)
//!                         └──> SmStore::apply ──> StateMachine::apply (the application)
//! ```
//!
//! What it owns: the openraft type configuration, the fjall log store with
//! group commit, the state-machine adapter and its snapshot files, the peer
//! transport and the per-group handles ([`Group`]). The application plugs
//! in through [`StateMachine`]; it must not know openraft's types, and this
//! crate must not know commands, RESP or the data model.

pub mod faults;
pub mod group;
pub mod group_commit;
pub mod log_store;
pub mod mem_log_store;
pub mod network;
pub mod node;
mod read_rounds;
pub mod runtime;
pub mod sim_network;
pub mod state_machine;
pub mod types;

pub use faults::{FaultInjector, NetworkFaults};
pub use group::{Group, GroupStatus, MemberStatus, ProposeError};
pub use node::{RaftNode, RaftSettings};
pub use state_machine::{SmState, SnapshotPacing, StateHandle, StateMachine};
pub use types::PeerNode;
