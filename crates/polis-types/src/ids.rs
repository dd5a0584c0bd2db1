//! Identifiers of nodes, Raft replicas and Raft groups.
//!
//! A **node** is one `polis server` process with its data directory. A
//! **group** is one Raft group: the meta group, or the group of one shard
//! (a shard's id is its group's id). A **replica** is one member of one
//! group, hosted by one node. Raft votes and acknowledges as a replica, so
//! a replica id is what openraft calls a node id; the meta group allocates
//! replica ids and never reuses one, because a replica id that came back
//! after its data was wiped could vote twice in one term.
//!
//! ```text
//!   node 1 ──hosts──> replica 7 (meta group 0), replica 11 (shard 1), replica 14 (shard 2)
//!   node 2 ──hosts──> replica 8 (meta group 0), replica 12 (shard 1), replica 15 (shard 2)
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize,
            Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// Returns the number inside.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl From<u64> for $name {
            fn from(value: u64) -> Self {
                Self(value)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse().map(Self)
            }
        }

        impl $name {
            /// The word logs and errors use for this kind of id.
            pub const LABEL: &'static str = $label;
        }
    };
}

id_type!(
    /// Identifies a node of the cluster (a server process and its data
    /// directory). Zero is never a valid node id.
    NodeId,
    "node"
);

impl NodeId {
    /// Stands for a node whose id is not known yet (an address given to
    /// `--join`); never a member's id.
    pub const UNKNOWN: NodeId = NodeId(0);
}

id_type!(
    /// Identifies one replica of one Raft group: openraft's node id.
    /// Allocated by the meta group, never reused. Zero is never valid.
    ReplicaId,
    "replica"
);

id_type!(
    /// Identifies a Raft group. Every Raft message, log key and state
    /// machine is addressed by one. The meta group is [`META_GROUP`]; a
    /// shard's group id is the shard's id (1 and up).
    GroupId,
    "group"
);

/// The group that holds the cluster map.
pub const META_GROUP: GroupId = GroupId(0);

impl GroupId {
    /// Returns true for the meta group.
    pub const fn is_meta(self) -> bool {
        self.0 == META_GROUP.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_parse_and_serialize_as_plain_numbers() {
        let node: NodeId = "17".parse().unwrap();
        assert_eq!(node, NodeId(17));
        assert_eq!(node.to_string(), "17");
        assert_eq!(serde_json::to_string(&ReplicaId(5)).unwrap(), "5");
        assert_eq!(serde_json::from_str::<GroupId>("3").unwrap(), GroupId(3));
        assert!(META_GROUP.is_meta());
        assert!(!GroupId(1).is_meta());
    }
}
