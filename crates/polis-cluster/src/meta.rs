//! The meta group's state machine: the cluster map, changed only by log
//! entries, and published to the node as each entry applies.
//!
//! An entry is one byte of format (see [`crate::version`]) and a
//! postcard-encoded [`MetaCommand`]. A replica that meets a format it does
//! not know, or bytes that do not decode, stops (crash-stop) rather than
//! skip the entry and hold a map the others do not.

use std::sync::Arc;

use bytes::Bytes;
use polis_raft::StateMachine;
use polis_types::META_GROUP;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::change::{MapChange, TxnError};
use crate::map::ClusterMap;
use crate::version::{self, EntryFormat};

/// One entry of the meta group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Creates the first map; only a group without a map accepts it. It
    /// has no namespace yet, and is stored in the shape every binary
    /// reads (see [`crate::map_wire`]).
    Create(#[serde(with = "crate::map_wire::created")] ClusterMap),
    /// Changes the map at version `expected` (compare-and-set).
    Txn {
        expected: u64,
        changes: Vec<MapChange>,
    },
}

impl MetaCommand {
    /// Returns the entry format this command needs.
    pub fn format(&self) -> EntryFormat {
        match self {
            Self::Create(_) => EntryFormat::V1,
            Self::Txn { changes, .. } => changes
                .iter()
                .map(MapChange::format)
                .max()
                .unwrap_or(EntryFormat::V1),
        }
    }

    /// Returns the entry's encoding.
    ///
    /// # Errors
    /// Returns an error if encoding fails (it cannot for these types).
    pub fn encode(&self) -> Result<Bytes, postcard::Error> {
        version::encode_entry(self.format(), self)
    }
}

/// What applying a meta entry answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaReply {
    /// The map is now at `version`.
    Applied {
        version: u64,
    },
    Failed(TxnError),
}

impl MetaReply {
    /// Decodes what [`MetaMachine`] answered.
    pub fn decode(bytes: &[u8]) -> Self {
        postcard::from_bytes(bytes).unwrap_or_else(|error| {
            Self::Failed(TxnError::Rejected(format!("undecodable answer: {error}")))
        })
    }
}

/// The meta group's state machine.
pub struct MetaMachine {
    map: Option<Arc<ClusterMap>>,
    published: watch::Sender<Option<Arc<ClusterMap>>>,
}

impl MetaMachine {
    /// Returns an empty machine and the channel its maps are published on.
    pub fn new() -> (Self, watch::Receiver<Option<Arc<ClusterMap>>>) {
        let (published, receiver) = watch::channel(None);
        (
            Self {
                map: None,
                published,
            },
            receiver,
        )
    }

    /// Returns the map applied so far.
    pub fn map(&self) -> Option<&Arc<ClusterMap>> {
        self.map.as_ref()
    }

    fn set(&mut self, map: ClusterMap) {
        let map = Arc::new(map);
        self.map = Some(map.clone());
        self.published.send_replace(Some(map));
    }

    fn execute(&mut self, command: MetaCommand) -> MetaReply {
        match command {
            MetaCommand::Create(map) => {
                if let Some(current) = &self.map {
                    return MetaReply::Failed(TxnError::Conflict {
                        expected: 0,
                        current: current.version,
                    });
                }
                if map.version != 1 {
                    return MetaReply::Failed(TxnError::Rejected(format!(
                        "a new map starts at version 1, not {}",
                        map.version
                    )));
                }
                if let Err(invalid) = map.validate() {
                    return MetaReply::Failed(invalid.into());
                }
                if map.namespaces.iter().next().is_some() {
                    return MetaReply::Failed(TxnError::Rejected(
                        "a new map has no namespace: set them once the cluster runs".into(),
                    ));
                }
                self.set(map);
                MetaReply::Applied { version: 1 }
            }
            MetaCommand::Txn { expected, changes } => {
                let Some(current) = &self.map else {
                    return MetaReply::Failed(TxnError::Conflict {
                        expected,
                        current: 0,
                    });
                };
                match current.apply(expected, &changes) {
                    Ok(next) => {
                        let version = next.version;
                        self.set(next);
                        MetaReply::Applied { version }
                    }
                    Err(error) => MetaReply::Failed(error),
                }
            }
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Bytes {
    match postcard::to_stdvec(value) {
        Ok(bytes) => Bytes::from(bytes),
        Err(error) => {
            // Every replica fails the same way; answer rather than diverge.
            let failed = MetaReply::Failed(TxnError::Rejected(format!("encoding: {error}")));
            Bytes::from(postcard::to_stdvec(&failed).unwrap_or_default())
        }
    }
}

impl StateMachine for MetaMachine {
    fn apply(&mut self, index: u64, _time_ms: u64, payload: &[u8]) -> Bytes {
        let command: MetaCommand = match version::decode_entry(payload) {
            Ok(command) => command,
            Err(detail) => polis_raft::state_machine::undecodable_entry(META_GROUP, index, &detail),
        };
        encode(&self.execute(command))
    }

    fn snapshot(&self) -> Vec<u8> {
        postcard::to_stdvec(&self.map.as_deref()).unwrap_or_default()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let map =
            ClusterMap::decode_optional(data).map_err(|error| format!("meta snapshot: {error}"))?;
        match map {
            Some(map) => self.set(map),
            None => self.map = None,
        }
        Ok(())
    }

    fn items(&self) -> u64 {
        self.map.as_ref().map_or(0, |map| map.nodes.len() as u64)
    }

    fn version(&self) -> u64 {
        self.map.as_ref().map_or(0, |map| map.version)
    }
}

#[cfg(test)]
mod tests {
    use polis_types::NodeId;

    use super::*;
    use crate::layout::Layout;
    use crate::map::NodeAddrs;

    fn first_map() -> ClusterMap {
        Layout {
            cluster_id: 7,
            nodes: (1..=3)
                .map(|id| {
                    let addrs = NodeAddrs {
                        peer: format!("p{id}"),
                        resp: format!("r{id}"),
                        admin: format!("a{id}"),
                    };
                    (NodeId(id), addrs)
                })
                .collect(),
            shards: 3,
            replication: 3,
            creator: NodeId(1),
            registered: crate::layout::creator_only(NodeId(1)),
        }
        .map()
        .unwrap()
    }

    fn apply(machine: &mut MetaMachine, index: u64, command: &MetaCommand) -> MetaReply {
        MetaReply::decode(&machine.apply(index, 0, &command.encode().unwrap()))
    }

    #[test]
    fn the_map_is_created_once_then_changed_by_compare_and_set() {
        let (mut machine, mut published) = MetaMachine::new();
        let create = MetaCommand::Create(first_map());
        assert_eq!(
            apply(&mut machine, 1, &create),
            MetaReply::Applied { version: 1 }
        );
        assert!(published.has_changed().unwrap());
        assert_eq!(published.borrow_and_update().as_ref().unwrap().version, 1);
        assert_eq!(
            apply(&mut machine, 2, &create),
            MetaReply::Failed(TxnError::Conflict {
                expected: 0,
                current: 1
            }),
            "a second creation loses"
        );
        let register = |expected| MetaCommand::Txn {
            expected,
            changes: vec![MapChange::Register {
                node: NodeId(2),
                entry_format_max: 1,
                token: 0,
            }],
        };
        assert_eq!(
            apply(&mut machine, 3, &register(1)),
            MetaReply::Applied { version: 2 }
        );
        assert_eq!(
            apply(&mut machine, 4, &register(1)),
            MetaReply::Failed(TxnError::Conflict {
                expected: 1,
                current: 2
            }),
            "a transaction against an old version is not applied over the new one"
        );
        assert_eq!(machine.map().unwrap().version, 2);

        let snapshot = machine.snapshot();
        let (mut restored, published) = MetaMachine::new();
        restored.restore(&snapshot).unwrap();
        assert_eq!(restored.map(), machine.map());
        assert_eq!(published.borrow().as_ref().map(|map| map.version), Some(2));
    }

    #[test]
    fn a_transaction_before_creation_conflicts() {
        let (mut machine, _published) = MetaMachine::new();
        let txn = MetaCommand::Txn {
            expected: 0,
            changes: Vec::new(),
        };
        assert!(matches!(
            apply(&mut machine, 1, &txn),
            MetaReply::Failed(TxnError::Conflict { .. })
        ));
    }
}
