//! CLUSTER: the topology as Redis Cluster clients expect it, rendered from
//! one version of the cluster map plus the leaders this node knows of, so
//! every node reports the same layout.
//!
//! Redis Cluster lists each node once, as a master or as the replica of
//! one master; a polis node hosts replicas of several shards and leads
//! some of them. A node is shown as the master of the shards it leads (its
//! slots are theirs, and it is listed first for them, so clients take it
//! as their primary), and as a replica otherwise.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use bytes::Bytes;
use polis_cluster::{MapView, ShardRecord};
use polis_resp::{Reply, ReplyError};
use polis_types::{key_hash_slot, GroupId, NodeId, Slot, SlotRange, SLOT_COUNT};

use super::lower;
use crate::node::{node_name, now_ms, Node};

fn host_port(addr: &str) -> (String, i64) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(0)),
        None => (addr.to_owned(), 0),
    }
}

fn slot_arg(arg: &[u8]) -> Result<Slot, ReplyError> {
    polis_commands::args::parse_i64(arg)
        .and_then(|slot| u16::try_from(slot).ok())
        .and_then(Slot::new)
        .ok_or_else(|| ReplyError::err("Invalid or out of range slot"))
}

/// The map and the leaders, as one node sees them now.
struct Topology {
    view: Arc<MapView>,
    known: BTreeMap<GroupId, NodeId>,
    me: NodeId,
    alive: BTreeMap<NodeId, bool>,
    /// The client came over TLS: nodes are shown at their TLS ports.
    tls: bool,
}

impl Topology {
    fn new(node: &Node, tls: bool) -> Option<Self> {
        let view = node.view()?;
        let known = node.leaders();
        let beats = node.host.beats();
        let alive = view
            .map()
            .nodes
            .keys()
            .map(|id| (*id, beats.is_alive(*id)))
            .collect();
        Some(Self {
            view,
            known,
            me: node.config.node_id,
            alive,
            tls,
        })
    }

    /// Returns the node shown as `shard`'s master: its known leader, else
    /// its preferred one.
    fn leader(&self, shard: &ShardRecord) -> NodeId {
        self.known
            .get(&shard.id)
            .copied()
            .unwrap_or(shard.preferred_leader)
    }

    /// Returns `shard`'s nodes, the one shown as master first.
    fn nodes_of(&self, shard: &ShardRecord) -> Vec<NodeId> {
        let leader = self.leader(shard);
        std::iter::once(leader)
            .chain(
                shard
                    .replicas
                    .iter()
                    .map(|replica| replica.node)
                    .filter(|node| *node != leader),
            )
            .collect()
    }

    fn addrs(&self, node: NodeId) -> (String, i64, i64) {
        let Some(record) = self.view.map().node(node) else {
            return (String::new(), 0, 0);
        };
        let (host, port) = host_port(&record.addrs.resp);
        let (_, bus_port) = host_port(&record.addrs.peer);
        match self.tls_port(node) {
            Some(tls_port) if self.tls => (host, tls_port, bus_port),
            _ => (host, port, bus_port),
        }
    }

    /// Returns the TLS port `node` published, if any.
    fn tls_port(&self, node: NodeId) -> Option<i64> {
        let addr = self.view.map().tls_addr(node)?;
        Some(host_port(addr).1)
    }

    fn node_entry(&self, node: NodeId) -> Reply {
        let (host, port, _) = self.addrs(node);
        Reply::Array(vec![
            Reply::bulk(host),
            Reply::Integer(port),
            Reply::bulk(node_name(node)),
            Reply::Array(Vec::new()),
        ])
    }

    /// Returns the slot ranges each node leads.
    fn led_ranges(&self) -> BTreeMap<NodeId, Vec<SlotRange>> {
        let mut led: BTreeMap<NodeId, Vec<SlotRange>> = BTreeMap::new();
        for shard in self.view.map().shards.values() {
            led.entry(self.leader(shard))
                .or_default()
                .extend(shard.slots.iter().copied());
        }
        for ranges in led.values_mut() {
            ranges.sort();
        }
        led
    }
}

/// CLUSTER SLOTS. A client takes a node's role from the first entry it
/// appears in (redis-py does), and every node here is also a replica of
/// shards others lead; so each leader comes first in a one-slot entry of
/// its own, listed before every other entry, then the ranges follow with
/// all their replicas (a range gives up the slot listed alone).
fn slots(topology: &Topology) -> Reply {
    let entry = |start: u16, end: u16, nodes: &[NodeId]| {
        let mut entry = vec![
            Reply::Integer(i64::from(start)),
            Reply::Integer(i64::from(end)),
        ];
        entry.extend(nodes.iter().map(|node| topology.node_entry(*node)));
        Reply::Array(entry)
    };
    let mut alone: BTreeMap<NodeId, u16> = BTreeMap::new();
    for shard in topology.view.map().shards.values() {
        let leader = topology.leader(shard);
        if let Some(range) = shard.slots.first() {
            let first = alone.entry(leader).or_insert(range.start.get());
            *first = (*first).min(range.start.get());
        }
    }
    let mut entries: Vec<Reply> = alone
        .iter()
        .map(|(leader, slot)| entry(*slot, *slot, &[*leader]))
        .collect();
    let singles: Vec<u16> = alone.values().copied().collect();
    for shard in topology.view.map().shards.values() {
        let nodes = topology.nodes_of(shard);
        for range in &shard.slots {
            let mut start = range.start.get();
            if singles.contains(&start) {
                if start == range.end.get() {
                    continue;
                }
                start += 1;
            }
            entries.push(entry(start, range.end.get(), &nodes));
        }
    }
    Reply::Array(entries)
}

fn shards(topology: &Topology) -> Reply {
    let mut out = Vec::new();
    for shard in topology.view.map().shards.values() {
        let leader = topology.leader(shard);
        let slots = shard
            .slots
            .iter()
            .flat_map(|range| {
                [
                    Reply::Integer(i64::from(range.start.get())),
                    Reply::Integer(i64::from(range.end.get())),
                ]
            })
            .collect();
        let nodes = topology
            .nodes_of(shard)
            .into_iter()
            .map(|node| {
                let (host, _, _) = topology.addrs(node);
                let port = topology
                    .view
                    .map()
                    .resp_addr(node)
                    .map_or(0, |addr| host_port(addr).1);
                let alive = topology.alive.get(&node).copied().unwrap_or(false);
                // As Redis: the plaintext port, and the TLS port beside
                // it when the node has one.
                let tls_port = topology
                    .tls_port(node)
                    .map(|port| (Reply::bulk("tls-port"), Reply::Integer(port)));
                Reply::Map(
                    [
                        (Reply::bulk("id"), Reply::bulk(node_name(node))),
                        (Reply::bulk("port"), Reply::Integer(port)),
                    ]
                    .into_iter()
                    .chain(tls_port)
                    .chain([
                        (Reply::bulk("ip"), Reply::bulk(&host)),
                        (Reply::bulk("endpoint"), Reply::bulk(&host)),
                        (
                            Reply::bulk("role"),
                            Reply::bulk(if node == leader { "master" } else { "replica" }),
                        ),
                        (Reply::bulk("replication-offset"), Reply::Integer(0)),
                        (
                            Reply::bulk("health"),
                            Reply::bulk(if alive { "online" } else { "fail" }),
                        ),
                    ])
                    .collect(),
                )
            })
            .collect();
        out.push(Reply::Map(vec![
            (Reply::bulk("slots"), Reply::Array(slots)),
            (Reply::bulk("nodes"), Reply::Array(nodes)),
        ]));
    }
    Reply::Array(out)
}

fn nodes(topology: &Topology) -> Reply {
    let map = topology.view.map();
    let epoch = map.version;
    let led = topology.led_ranges();
    let mut text = String::new();
    // A removed node is out of the cluster for good: clients never hear of it.
    for record in map.nodes.values().filter(|record| !record.removed()) {
        let id = record.id;
        let (host, port, bus_port) = topology.addrs(id);
        let mut flags = Vec::new();
        if id == topology.me {
            flags.push("myself");
        }
        let ranges = led.get(&id);
        // A node that leads nothing is shown as a replica of the master of
        // the first shard it holds.
        let master = match ranges {
            Some(_) => None,
            None => map
                .shards
                .values()
                .find(|shard| shard.replica_on(id).is_some())
                .map(|shard| topology.leader(shard))
                .filter(|leader| *leader != id),
        };
        flags.push(if master.is_some() { "slave" } else { "master" });
        let alive = topology.alive.get(&id).copied().unwrap_or(false);
        if !alive {
            flags.push("fail");
        }
        let _ = write!(
            text,
            "{} {host}:{port}@{bus_port} {} {} 0 {} {epoch} {}",
            node_name(id),
            flags.join(","),
            master.map_or_else(|| "-".to_owned(), node_name),
            now_ms(),
            if alive { "connected" } else { "disconnected" },
        );
        for range in ranges.into_iter().flatten() {
            let _ = write!(text, " {range}");
        }
        text.push('\n');
    }
    Reply::Verbatim {
        format: "txt".into(),
        text: Bytes::from(text),
    }
}

fn cluster_info(node: &Node, topology: Option<&Topology>) -> Reply {
    let (state, ok_slots, known_nodes, size, epoch) = match topology {
        Some(topology) => {
            let map = topology.view.map();
            let ok_slots: usize = map
                .shards
                .values()
                .filter(|shard| topology.known.contains_key(&shard.id))
                .map(|shard| shard.slots.iter().map(SlotRange::len).sum::<usize>())
                .sum();
            let state = if ok_slots == usize::from(SLOT_COUNT) {
                "ok"
            } else {
                "fail"
            };
            let masters = topology.led_ranges().len();
            let known = map.nodes.values().filter(|node| !node.removed()).count();
            (state, ok_slots, known, masters, map.version)
        }
        None => ("fail", 0, 1, 0, 0),
    };
    let assigned = if topology.is_some() { SLOT_COUNT } else { 0 };
    let text = format!(
        "cluster_enabled:1\r\ncluster_state:{state}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{ok_slots}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:{}\r\ncluster_known_nodes:{known_nodes}\r\ncluster_size:{size}\r\ncluster_current_epoch:{epoch}\r\ncluster_my_epoch:{epoch}\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ncluster_map_version:{}\r\n",
        usize::from(assigned) - ok_slots.min(usize::from(assigned)),
        node.map.version(),
    );
    Reply::Verbatim {
        format: "txt".into(),
        text: Bytes::from(text),
    }
}

/// Returns the keys in `slot` held by this node's replica of its shard.
fn keys_in_slot(node: &Node, slot: Slot, limit: usize) -> Vec<Bytes> {
    let Some(shard) = node
        .view()
        .and_then(|view| view.owner(slot).map(|shard| shard.id))
    else {
        return Vec::new();
    };
    let Some(group) = node.shard(shard) else {
        return Vec::new();
    };
    let state = group.state().read();
    state
        .app
        .db
        .iter(now_ms())
        .filter(|(key, _)| key_hash_slot(key) == slot)
        .take(limit)
        .map(|(key, _)| key.clone())
        .collect()
}

/// CLUSTER subcommands clients use for discovery and slot math.
pub fn cluster(node: &Arc<Node>, tls: bool, args: &[Bytes]) -> Result<Reply, ReplyError> {
    let topology = Topology::new(node, tls);
    match lower(&args[1]).as_str() {
        "slots" => Ok(topology.as_ref().map_or(Reply::Array(Vec::new()), slots)),
        "shards" => Ok(topology.as_ref().map_or(Reply::Array(Vec::new()), shards)),
        "nodes" => Ok(topology.as_ref().map_or_else(
            || Reply::Verbatim {
                format: "txt".into(),
                text: Bytes::from(format!(
                    "{} :0@0 myself,master - 0 0 0 connected\n",
                    node_name(node.config.node_id)
                )),
            },
            nodes,
        )),
        "info" => Ok(cluster_info(node, topology.as_ref())),
        "myid" => Ok(Reply::bulk(node_name(node.config.node_id))),
        "keyslot" => Ok(Reply::Integer(i64::from(key_hash_slot(&args[2]).get()))),
        "countkeysinslot" => {
            let slot = slot_arg(&args[2])?;
            Ok(Reply::Integer(
                keys_in_slot(node, slot, usize::MAX).len() as i64
            ))
        }
        "getkeysinslot" => {
            let slot = slot_arg(&args[2])?;
            let count = match polis_commands::args::parse_i64(&args[3]) {
                Some(count) if count >= 0 => count as usize,
                _ => return Err(ReplyError::err("Invalid number of keys")),
            };
            Ok(Reply::Array(
                keys_in_slot(node, slot, count)
                    .into_iter()
                    .map(Reply::Bulk)
                    .collect(),
            ))
        }
        "help" => Ok(Reply::Array(
            [
                "CLUSTER <subcommand>",
                "SLOTS",
                "SHARDS",
                "NODES",
                "INFO",
                "MYID",
                "KEYSLOT <key>",
                "COUNTKEYSINSLOT <slot>",
                "GETKEYSINSLOT <slot> <count>",
                "MIGRATESLOTS SLOTSRANGE <start> <end> [<start> <end> ...] NODE <node-id>",
                "GETSLOTMIGRATIONS",
                "CANCELSLOTMIGRATIONS",
            ]
            .iter()
            .map(|line| Reply::Simple((*line).into()))
            .collect(),
        )),
        _ => Err(ReplyError::err(format!(
            "unknown subcommand '{}'. Try CLUSTER HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    }
}
