//! Routing a request: the command layer's classification plus the shard
//! that owns its slot in one map version. The node and the gateway call
//! [`classify`] once per request and use its answer all the way through.

use bytes::Bytes;
use polis_commands::{Classified, Scope};
use polis_resp::ReplyError;
use polis_types::{GroupId, Slot};

use crate::map::MapView;
use crate::namespace::{Consistency, Quorums};

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The node executes it itself.
    Node,
    /// It covers the shards the node leads (DBSIZE, SCAN, FLUSHALL...).
    NodeShards,
    /// It needs no keyspace.
    Keyless,
    /// The shard that owns the slot of its keys.
    Shard { shard: GroupId, slot: Slot },
    /// Keys of an eventual namespace, on the replicas of the shard that
    /// owns their slot: any of them coordinates, without Raft.
    Eventual {
        shard: GroupId,
        slot: Slot,
        quorums: Quorums,
    },
}

/// A classified request and where it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub class: Classified,
    pub target: Target,
}

/// Classifies a request and finds its shard in `view`.
///
/// # Errors
/// The classification's errors (see [`polis_commands::classify`]), or
/// `CLUSTERDOWN` for a slot no shard owns (a map never has one).
pub fn classify(args: &[Bytes], view: &MapView) -> Result<Routed, ReplyError> {
    let class = polis_commands::classify(args)?;
    let target = match class.scope {
        Scope::Node => Target::Node,
        Scope::NodeShards => Target::NodeShards,
        Scope::Keyless => Target::Keyless,
        Scope::Slot(slot) => {
            let shard = view
                .owner(slot)
                .ok_or_else(|| ReplyError::ClusterDown(format!("Hash slot {slot} not served")))?;
            match eventual_quorums(&class, args, view)? {
                Some(quorums) => Target::Eventual {
                    shard: shard.id,
                    slot,
                    quorums,
                },
                None => Target::Shard {
                    shard: shard.id,
                    slot,
                },
            }
        }
    };
    Ok(Routed { class, target })
}

/// Returns the quorums of a keyed request's eventual namespace, or None
/// when its keys are strong.
///
/// # Errors
/// When the keys mix strong and eventual namespaces.
fn eventual_quorums(
    class: &Classified,
    args: &[Bytes],
    view: &MapView,
) -> Result<Option<Quorums>, ReplyError> {
    let namespaces = &view.map().namespaces;
    if namespaces.is_empty() {
        return Ok(None);
    }
    let keys = polis_commands::spec::command_keys(class.spec, args);
    match namespaces.common_consistency(keys.iter().map(|key| &key[..])) {
        Some(Consistency::Strong) => Ok(None),
        Some(Consistency::Eventual) => Ok(keys
            .first()
            .and_then(|key| namespaces.lookup(key))
            .and_then(|namespace| namespace.quorums)),
        None => Err(ReplyError::err(format!(
            "'{}' names keys of both strong and eventual namespaces; a command may not mix \
             them: use keys of one consistency (see `polis namespace list`)",
            class.spec.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use polis_types::{key_hash_slot, NodeId};

    use super::*;
    use crate::layout::Layout;
    use crate::map::NodeAddrs;

    fn view(shards: usize) -> MapView {
        let nodes: BTreeMap<NodeId, NodeAddrs> = (1..=3)
            .map(|id| {
                let addrs = NodeAddrs {
                    peer: format!("p{id}"),
                    resp: format!("r{id}"),
                    admin: format!("a{id}"),
                };
                (NodeId(id), addrs)
            })
            .collect();
        let layout = Layout {
            cluster_id: 1,
            nodes,
            shards,
            replication: 3,
            creator: NodeId(1),
            registered: crate::layout::creator_only(NodeId(1)),
        };
        MapView::new(layout.map().unwrap())
    }

    fn args(line: &str) -> Vec<Bytes> {
        line.split_whitespace()
            .map(|word| Bytes::from(word.to_owned()))
            .collect()
    }

    #[test]
    fn requests_reach_the_shard_owning_their_slot() {
        let view = view(3);
        // Slots 0-5461 go to shard 1, 5462-10922 to 2, the rest to 3.
        let shard_of = |slot: Slot| {
            GroupId(1 + u64::from(slot.get() >= 5462) + u64::from(slot.get() >= 10923))
        };
        let table: &[(&str, &str)] = &[
            ("GET {user1000}.a", "user1000"),
            ("SET foo bar", "foo"),
            ("HSET {x}h f v", "x"),
            ("DEL {b}1 {b}2", "b"),
            ("GET {}a", "{}a"), // an empty tag hashes the whole key
        ];
        for (line, hashed) in table {
            let routed = classify(&args(line), &view).unwrap();
            let slot = key_hash_slot(hashed.as_bytes());
            assert_eq!(
                routed.target,
                Target::Shard {
                    shard: shard_of(slot),
                    slot
                },
                "{line} (slot {slot})"
            );
        }
        // Two slots Redis Cluster documents: 3443 and 12182.
        assert_eq!(shard_of(key_hash_slot(b"user1000")), GroupId(1));
        assert_eq!(shard_of(key_hash_slot(b"foo")), GroupId(3));
        assert_eq!(classify(&args("PING"), &view).unwrap().target, Target::Node);
        assert_eq!(
            classify(&args("DBSIZE"), &view).unwrap().target,
            Target::NodeShards
        );
        assert_eq!(
            classify(&args("OBJECT HELP"), &view).unwrap().target,
            Target::Keyless
        );
        assert!(classify(&args("MGET a b"), &view).is_err());
    }

    #[test]
    fn with_one_shard_every_slot_goes_to_it() {
        let view = view(1);
        for key in ["a", "b", "foo", "{user}1", "zzz"] {
            let routed = classify(&args(&format!("GET {key}")), &view).unwrap();
            assert!(matches!(
                routed.target,
                Target::Shard {
                    shard: GroupId(1),
                    ..
                }
            ));
        }
    }
}
