//! CLUSTER: the topology as Redis Cluster clients expect it. Until
//! sharding arrives, one group (the leader as master, the other members as
//! replicas) serves all 16384 slots.

use std::fmt::Write;
use std::sync::Arc;

use bytes::Bytes;
use polis_raft::MemberStatus;
use polis_resp::{Reply, ReplyError};
use polis_types::{key_hash_slot, NodeId, Slot, SLOT_COUNT};

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

/// Returns the members with the leader first.
fn members_leader_first(node: &Arc<Node>) -> (Option<NodeId>, Vec<MemberStatus>) {
    let status = node.group.status();
    let mut members = status.members;
    members.sort_by_key(|member| (Some(member.node_id) != status.leader_node, member.node_id));
    (status.leader_node, members)
}

fn node_entry(member: &MemberStatus) -> Reply {
    let (host, port) = host_port(&member.resp_addr);
    Reply::Array(vec![
        Reply::bulk(host),
        Reply::Integer(port),
        Reply::bulk(node_name(member.node_id)),
        Reply::Array(Vec::new()),
    ])
}

fn slots(node: &Arc<Node>) -> Reply {
    let (leader, members) = members_leader_first(node);
    if leader.is_none() {
        return Reply::Array(Vec::new());
    }
    let mut range = vec![Reply::Integer(0), Reply::Integer(i64::from(SLOT_COUNT) - 1)];
    range.extend(members.iter().map(node_entry));
    Reply::Array(vec![Reply::Array(range)])
}

fn shards(node: &Arc<Node>) -> Reply {
    let (leader, members) = members_leader_first(node);
    let nodes = members
        .iter()
        .map(|member| {
            let (host, port) = host_port(&member.resp_addr);
            let role = if Some(member.node_id) == leader {
                "master"
            } else {
                "replica"
            };
            Reply::Map(vec![
                (Reply::bulk("id"), Reply::bulk(node_name(member.node_id))),
                (Reply::bulk("port"), Reply::Integer(port)),
                (Reply::bulk("ip"), Reply::bulk(&host)),
                (Reply::bulk("endpoint"), Reply::bulk(&host)),
                (Reply::bulk("role"), Reply::bulk(role)),
                (
                    Reply::bulk("replication-offset"),
                    Reply::Integer(member.matched.unwrap_or(0) as i64),
                ),
                (Reply::bulk("health"), Reply::bulk("online")),
            ])
        })
        .collect();
    Reply::Array(vec![Reply::Map(vec![
        (
            Reply::bulk("slots"),
            Reply::Array(vec![
                Reply::Integer(0),
                Reply::Integer(i64::from(SLOT_COUNT) - 1),
            ]),
        ),
        (Reply::bulk("nodes"), Reply::Array(nodes)),
    ])])
}

fn nodes(node: &Arc<Node>) -> Reply {
    let (leader, members) = members_leader_first(node);
    let term = node.group.status().term;
    let mut text = String::new();
    for member in &members {
        let (host, port) = host_port(&member.resp_addr);
        let (_, bus_port) = host_port(&member.peer_addr);
        let mut flags = Vec::new();
        if member.node_id == node.config.node_id {
            flags.push("myself");
        }
        let is_leader = Some(member.node_id) == leader;
        flags.push(if is_leader { "master" } else { "slave" });
        let master = match (is_leader, leader) {
            (false, Some(leader)) => node_name(leader),
            _ => "-".to_owned(),
        };
        let _ = write!(
            text,
            "{} {host}:{port}@{bus_port} {} {master} 0 {} {term} connected",
            node_name(member.node_id),
            flags.join(","),
            now_ms(),
        );
        if is_leader {
            let _ = write!(text, " 0-{}", SLOT_COUNT - 1);
        }
        text.push('\n');
    }
    Reply::Verbatim {
        format: "txt".into(),
        text: Bytes::from(text),
    }
}

fn cluster_info(node: &Arc<Node>) -> Reply {
    let status = node.group.status();
    let ok = status.leader_id.is_some();
    let text = format!(
        "cluster_enabled:1\r\ncluster_state:{}\r\ncluster_slots_assigned:{SLOT_COUNT}\r\ncluster_slots_ok:{}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:{}\r\ncluster_known_nodes:{}\r\ncluster_size:1\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n",
        if ok { "ok" } else { "fail" },
        if ok { SLOT_COUNT } else { 0 },
        if ok { 0 } else { SLOT_COUNT },
        status.members.len(),
        status.term,
        status.term,
    );
    Reply::Verbatim {
        format: "txt".into(),
        text: Bytes::from(text),
    }
}

/// CLUSTER subcommands clients use for discovery and slot math.
pub fn cluster(node: &Arc<Node>, args: &[Bytes]) -> Result<Reply, ReplyError> {
    match lower(&args[1]).as_str() {
        "slots" => Ok(slots(node)),
        "shards" => Ok(shards(node)),
        "nodes" => Ok(nodes(node)),
        "info" => Ok(cluster_info(node)),
        "myid" => Ok(Reply::bulk(node_name(node.config.node_id))),
        "keyslot" => Ok(Reply::Integer(i64::from(key_hash_slot(&args[2]).get()))),
        "countkeysinslot" => {
            let slot = slot_arg(&args[2])?;
            let state = node.group.state().read();
            let count = state
                .app
                .db
                .iter(now_ms())
                .filter(|(key, _)| key_hash_slot(key) == slot)
                .count();
            Ok(Reply::Integer(count as i64))
        }
        "getkeysinslot" => {
            let slot = slot_arg(&args[2])?;
            let count = match polis_commands::args::parse_i64(&args[3]) {
                Some(count) if count >= 0 => count as usize,
                _ => return Err(ReplyError::err("Invalid number of keys")),
            };
            let state = node.group.state().read();
            let keys = state
                .app
                .db
                .iter(now_ms())
                .filter(|(key, _)| key_hash_slot(key) == slot)
                .take(count)
                .map(|(key, _)| Reply::Bulk(key.clone()))
                .collect();
            Ok(Reply::Array(keys))
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
