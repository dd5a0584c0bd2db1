//! A key's deadline as replicas agree on it, by Redis Active-Active's
//! rule: an EXPIRE or PERSIST replaces the ones it saw; of concurrent ones
//! PERSIST wins, and otherwise the latest deadline (the longest TTL) does.
//!
//! Each setting is an add of an [`AddWinsMap`] with one entry: an add
//! supersedes the adds it saw, so a later, shorter EXPIRE takes effect,
//! and adds nobody saw together stay side by side until merged by the
//! rule above.

use serde::{Deserialize, Serialize};

use crate::merge::{AddWinsMap, Merge};
use polis_types::NodeId;

/// One setting: a deadline in Unix milliseconds, or none (PERSIST).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline(pub Option<u64>);

impl Merge for Deadline {
    fn merge(&mut self, other: &Self) {
        self.0 = match (self.0, other.0) {
            (Some(mine), Some(theirs)) => Some(mine.max(theirs)),
            // PERSIST wins over a concurrent EXPIRE.
            _ => None,
        };
    }
}

/// The settings of one key's deadline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiry {
    settings: AddWinsMap<(), Deadline>,
}

impl Expiry {
    /// EXPIRE (a deadline) or PERSIST (none), as node `node`.
    pub fn set(&mut self, node: NodeId, deadline: Option<u64>) {
        self.settings.add(node, (), Deadline(deadline));
    }

    /// Returns the deadline the settings agree on (none: the key stays).
    pub fn deadline(&self) -> Option<u64> {
        self.settings.get(&()).and_then(|deadline| deadline.0)
    }
}

impl Merge for Expiry {
    fn merge(&mut self, other: &Self) {
        self.settings.merge(&other.settings);
    }
}

#[cfg(test)]
#[path = "expiry_test.rs"]
mod tests;
