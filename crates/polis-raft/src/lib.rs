//! Raft for polis: the only crate that imports openraft.
//!
//! ```text
//!   Group::propose ──> openraft ──> LogStore::append ──> fjall batch
//!                         │                              └─> GroupCommit (one fsync, all groups)
//!                         ├──> Transport (gRPC, one connection per node pair, group-addressed)
//!                         └──> SmStore::apply ──> StateMachine::apply (the application)
//! ```
//!
//! What it owns: the openraft type configuration, the node's [`Host`] of
//! any number of groups of any state machines (storage, transport,
//! dispatch, the shared budget of proposals), the fjall log store with
//! group commit, the state-machine adapter and its snapshot files, node
//! beats and hibernation of idle groups, and the per-group handles
//! ([`Group`]). The application plugs in through [`StateMachine`] and
//! [`AppHandler`]; it must not know openraft's types, and this crate must
//! not know commands, RESP or the data model.

pub mod at_rest;
pub mod beats;
pub mod faults;
pub mod group;
pub mod group_commit;
mod group_network;
pub mod hibernate;
pub mod host;
pub mod latency;
pub mod log_store;
pub mod mem_log_store;
pub mod network;
mod read_rounds;
pub mod runtime;
pub mod settings;
pub mod sim_network;
pub mod snapshot_pace;
pub mod state_machine;
pub mod state_read;
pub mod storage;
pub mod storage_eventual;
pub mod trace_context;
pub mod transport;
pub mod types;

pub use at_rest::{Cipher, MasterKey};
pub use beats::{Beats, Leadership};
pub use faults::{FaultInjector, NetworkFaults};
pub use group::{Clock, Group, GroupBackup, GroupStatus, MemberStatus, Members, ProposeError};
pub use host::{GroupSpec, Host};
pub use settings::RaftSettings;
pub use state_machine::{
    AppliedEntry, ApplyObserver, SmState, SnapshotPacing, SnapshotStep, StateHandle, StateMachine,
};
pub use transport::{AppHandler, CallError, PeerAddr};
pub use types::PeerNode;
