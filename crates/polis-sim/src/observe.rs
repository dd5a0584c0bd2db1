//! What the simulation sees of every replica's state machine: each applied
//! proposal goes to the trace (for the per-group invariants), each new map
//! version the meta group applies is recorded once, and each write a shard
//! applied for a slot is recorded with the ownership version it applied
//! under (for the one-owner-per-slot invariant).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use polis_cluster::version::decode_entry;
use polis_cluster::{ClusterMap, MetaCommand, MetaReply};
use polis_raft::{AppliedEntry, ApplyObserver};
use polis_server::machine::{Applied, Logged, Op};
use polis_types::{GroupId, NodeId, ReplicaId, META_GROUP};

use crate::trace::{digest_extend, Trace, TraceEvent};

/// The cluster map at every version any replica applied, built from the
/// meta entries in the order the first replica applied them.
#[derive(Clone, Default)]
pub struct MapHistory {
    maps: Arc<Mutex<BTreeMap<u64, ClusterMap>>>,
    /// Where each replica id any map handed out lives: an id is never
    /// given to another group or node.
    placements: Arc<Mutex<BTreeMap<ReplicaId, (GroupId, NodeId)>>>,
}

/// Name of the violation of a replica id handed out twice.
pub const REPLICA_ID_REUSED: &str = "replica-ids-unique";

impl MapHistory {
    /// Takes note of an applied meta entry; returns the map it made, the
    /// first time that version is seen.
    fn observe(&self, command: MetaCommand, reply: &MetaReply) -> Option<ClusterMap> {
        let MetaReply::Applied { version } = reply else {
            return None;
        };
        let mut maps = self
            .maps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if maps.contains_key(version) {
            return None;
        }
        let map = match command {
            MetaCommand::Create(map) => map,
            MetaCommand::Txn { expected, changes } => {
                maps.get(&expected)?.apply(expected, &changes).ok()?
            }
        };
        maps.insert(*version, map.clone());
        Some(map)
    }

    /// Notes where `map` places every replica; returns a replica id that
    /// an earlier map placed elsewhere.
    fn reused(&self, map: &ClusterMap) -> Option<String> {
        let mut placements = self
            .placements
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let meta = map
            .nodes
            .values()
            .map(|node| (node.meta_replica, (META_GROUP, node.id)));
        let shards = map.shards.values().flat_map(|shard| {
            shard
                .replicas
                .iter()
                .map(|replica| (replica.replica, (shard.id, replica.node)))
        });
        for (replica, placed) in meta.chain(shards) {
            let first = *placements.entry(replica).or_insert(placed);
            if first != placed {
                return Some(format!(
                    "map version {}: replica id {replica} of group {} on node {}, earlier of \
                     group {} on node {}",
                    map.version, placed.0, placed.1, first.0, first.1
                ));
            }
        }
        None
    }

    /// Returns the newest map seen.
    pub fn latest(&self) -> Option<ClusterMap> {
        self.maps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .next_back()
            .cloned()
    }
}

/// The observer of one run (incarnation) of one node.
pub struct Observer {
    pub node: NodeId,
    pub incarnation: u64,
    /// Cleared when this run of the node crashes: whatever its leftover
    /// tasks still apply is thrown away with it, unreported.
    pub alive: Arc<AtomicBool>,
    pub trace: Trace,
    pub history: MapHistory,
}

impl ApplyObserver for Observer {
    fn applied(&self, entry: &AppliedEntry<'_>) {
        if !self.alive.load(Ordering::Relaxed) {
            return;
        }
        let digest = digest_extend(
            digest_extend(0, &entry.time_ms.to_le_bytes()),
            entry.payload,
        );
        self.trace.record(TraceEvent::Applied {
            node: self.node,
            group: entry.group,
            incarnation: self.incarnation,
            index: entry.index,
            digest,
        });
        if entry.group == META_GROUP {
            let (Ok(command), Ok(reply)) = (
                decode_entry::<MetaCommand>(entry.payload),
                postcard::from_bytes::<MetaReply>(entry.answer),
            ) else {
                return;
            };
            if let Some(map) = self.history.observe(command, &reply) {
                if let Some(detail) = self.history.reused(&map) {
                    self.trace.violation(REPLICA_ID_REUSED, detail);
                }
                self.trace.record(TraceEvent::MapVersion {
                    version: map.version,
                    owners: map
                        .shards
                        .values()
                        .map(|shard| (shard.id, shard.slots.clone()))
                        .collect(),
                    incarnations: map
                        .nodes
                        .values()
                        .map(|node| (node.id, node.incarnation))
                        .collect(),
                    migrations: map
                        .migrations
                        .values()
                        .map(|migration| (migration.id, migration.phase.name()))
                        .collect(),
                    migrations_begun: map.next_migration_id.saturating_sub(1),
                });
            }
            return;
        }
        self.slot_writes(entry.group, entry);
    }
}

impl Observer {
    /// Records every command of the entry the shard applied for a slot.
    fn slot_writes(&self, group: GroupId, entry: &AppliedEntry<'_>) {
        let Ok(op) = decode_entry::<Op>(entry.payload) else {
            return;
        };
        let answer = Applied::decode(entry.answer);
        let commands: Vec<(Logged, Applied)> = match (op, answer) {
            (Op::Command(logged), answer) => vec![(logged, answer)],
            (Op::Batch(batch), answer) => {
                let count = batch.len();
                batch.into_iter().zip(answer.into_batch(count)).collect()
            }
            _ => Vec::new(),
        };
        for (logged, answer) in commands {
            if let (Some(slot), Applied::Reply(_)) = (logged.slot, answer) {
                self.trace.record(TraceEvent::SlotWrite {
                    node: self.node,
                    group,
                    slot,
                    version: entry.version,
                });
            }
        }
    }
}
