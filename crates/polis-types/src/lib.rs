//! Identifiers, hash slots and limits shared by every polis crate.
//!
//! This crate is the bottom of the dependency graph: it depends on nothing
//! of polis and holds no I/O. Every configurable cap lives in [`limits`],
//! with `const` assertions on how the caps relate to each other.

pub mod eviction;
pub mod ids;
pub mod limits;
pub mod slot;

pub use eviction::EvictionPolicy;
pub use ids::{GroupId, NodeId, ReplicaId, META_GROUP};
pub use slot::{key_hash_slot, split_evenly, Slot, SlotRange, SlotSet, SLOT_COUNT};
