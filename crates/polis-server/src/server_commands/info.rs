//! INFO: the node in Redis's section format.

use std::fmt::Write;
use std::sync::Arc;

use bytes::Bytes;
use polis_resp::Reply;

use super::lower;
use crate::node::{now_ms, Node};
use crate::stats::Stats;

/// The Redis version whose commands and replies polis follows.
pub const REDIS_VERSION: &str = "7.0.15";

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "cluster",
    "keyspace",
    "errorstats",
];

/// Sections INFO gives only when named (or with `all` / `everything`), as
/// in Redis.
const EXTRA_SECTIONS: &[&str] = &["commandstats", "latencystats", "eventual"];

/// The percentiles INFO latencystats gives, as Redis's default
/// `latency-tracking-info-percentiles` ("50 99 99.9").
const LATENCY_PERCENTILES: [(&str, f64); 3] = [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)];

fn human_bytes(bytes: u64) -> String {
    let units = [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    for (unit, size) in units {
        if bytes >= size {
            return format!("{:.2}{unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes}B")
}

/// Returns INFO's text for the sections named in `args` (default: all).
pub fn info(node: &Arc<Node>, args: &[Bytes]) -> Reply {
    let requested: Vec<String> = args[1..].iter().map(|arg| lower(arg)).collect();
    let named = |name: &str| requested.iter().any(|requested| requested == name);
    let every = named("all") || named("everything");
    let defaults = requested.is_empty() || named("default");
    let wanted = |section: &str| {
        every || named(section) || (defaults && DEFAULT_SECTIONS.contains(&section))
    };
    let mut text = String::new();
    for section in DEFAULT_SECTIONS.iter().chain(EXTRA_SECTIONS) {
        if wanted(section) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            write_section(node, section, &mut text);
        }
    }
    Reply::Verbatim {
        format: "txt".into(),
        text: Bytes::from(text),
    }
}

fn write_section(node: &Arc<Node>, section: &str, text: &mut String) {
    let stats = &node.stats;
    // The keyspace a node reports is the shards it leads, as a Redis
    // Cluster master reports its own; memory is every replica it holds.
    let led = node.led_shards();
    let (mut keys, mut expires, mut expired_keys, mut evicted_keys) = (0usize, 0usize, 0u64, 0u64);
    for group in &led {
        let state = group.state().read();
        let db = &state.app.db;
        keys += db.len();
        expires += db.expires_len();
        expired_keys += db.stats().expired_keys;
        evicted_keys += db.stats().evicted_keys;
    }
    let hosted = node.shards();
    // What maxmemory bounds: the keyspaces of every replica held here.
    let used_memory = node.eviction.used_memory();
    let eviction = node.eviction.config();
    let (last_log_index, snapshot_index) = hosted.values().fold((0, 0), |(log, snap), group| {
        let status = group.status();
        (
            log + status.last_log_index.unwrap_or(0),
            snap + status.snapshot_index.unwrap_or(0),
        )
    });
    let leader = !led.is_empty();
    let _ = match section {
        "server" => write!(
            text,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\npolis_version:{}\r\nredis_mode:cluster\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:10\r\nexecutable:polis\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            node.run_id,
            node.resp_port,
            now_ms() * 1000,
            node.started_at.elapsed().as_secs(),
            node.started_at.elapsed().as_secs() / 86_400,
        ),
        "clients" => write!(
            text,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\ntracking_clients:0\r\n",
            node.clients.len(),
            node.settings.integer("maxclients"),
            node.blocking.len(),
        ),
        "memory" => write!(
            text,
            "# Memory\r\nused_memory:{used_memory}\r\nused_memory_human:{}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:1.00\r\n",
            human_bytes(used_memory),
            eviction.maxmemory_bytes,
            human_bytes(eviction.maxmemory_bytes),
            eviction.policy.name(),
        ),
        "persistence" => write!(
            text,
            "# Persistence\r\nloading:0\r\naof_enabled:1\r\nrdb_bgsave_in_progress:0\r\naof_rewrite_in_progress:0\r\nraft_last_log_index:{}\r\nraft_snapshot_index:{}\r\n",
            last_log_index,
            snapshot_index,
        ),
        "stats" => write!(
            text,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\nexpired_keys:{expired_keys}\r\nevicted_keys:{evicted_keys}\r\nkeyspace_hits:0\r\nkeyspace_misses:0\r\ntotal_error_replies:{}\r\nunexpected_error_replies:0\r\ntotal_writes_proposed:{}\r\ntotal_linearizable_reads:{}\r\ntotal_local_reads:{}\r\ntotal_redirects:{}\r\ntotal_protocol_errors:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\npubsub_forwarded:{}\r\npubsub_forwards_dropped:{}\r\nacl_access_denied_auth:{}\r\nacl_access_denied_cmd:{}\r\nacl_access_denied_key:{}\r\nacl_access_denied_channel:{}\r\ntls_handshake_failures:{}\r\n",
            Stats::get(&stats.connections_received),
            Stats::get(&stats.commands_processed),
            Stats::get(&stats.connections_rejected),
            Stats::get(&stats.error_replies),
            Stats::get(&stats.writes_proposed),
            Stats::get(&stats.linearizable_reads),
            Stats::get(&stats.local_reads),
            Stats::get(&stats.redirects),
            Stats::get(&stats.protocol_errors),
            node.pubsub.channels(crate::pubsub::Kind::Channel, None).len(),
            node.pubsub.numpat(),
            node.pubsub.channels(crate::pubsub::Kind::Shard, None).len(),
            Stats::get(&stats.pubsub_forwarded),
            Stats::get(&stats.pubsub_forwards_dropped),
            Stats::get(&node.acl_log.denied_auth),
            Stats::get(&node.acl_log.denied_cmd),
            Stats::get(&node.acl_log.denied_key),
            Stats::get(&node.acl_log.denied_channel),
            Stats::get(&stats.tls_handshake_failures),
        ),
        "replication" => {
            let _ = write!(
                text,
                "# Replication\r\nrole:{}\r\ncluster_map_version:{}\r\nshards_led:{}\r\nshards_hosted:{}\r\n",
                if leader { "master" } else { "slave" },
                node.map.version(),
                led.len(),
                hosted.len(),
            );
            if !leader {
                let leader_addr = hosted
                    .keys()
                    .next()
                    .and_then(|shard| node.leader_of(*shard))
                    .and_then(|leader| {
                        node.view()
                            .and_then(|view| view.map().resp_addr(leader).map(str::to_owned))
                    });
                if let Some(addr) = leader_addr {
                    let (host, port) = addr.rsplit_once(':').unwrap_or((&addr, "0"));
                    let _ = write!(text, "master_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:up\r\n");
                }
            }
            Ok(())
        }
        "cpu" => write!(text, "# CPU\r\n"),
        "cluster" => write!(text, "# Cluster\r\ncluster_enabled:1\r\n"),
        "eventual" => {
            let _ = write!(text, "# Eventual\r\n");
            for figure in crate::eventual::figures(node) {
                let _ = write!(text, "eventual_{}:{}\r\n", figure.name, figure.value);
            }
            Ok(())
        }
        "keyspace" => {
            let _ = write!(text, "# Keyspace\r\n");
            if keys > 0 {
                let _ = write!(text, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
            Ok(())
        }
        "commandstats" => {
            let _ = write!(text, "# Commandstats\r\n");
            for (name, stat) in stats.commands() {
                let per_call = if stat.calls == 0 {
                    0.0
                } else {
                    stat.usec as f64 / stat.calls as f64
                };
                let _ = write!(
                    text,
                    "cmdstat_{name}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                    stat.calls, stat.usec, stat.rejected_calls, stat.failed_calls
                );
            }
            Ok(())
        }
        "latencystats" => {
            let _ = write!(text, "# Latencystats\r\n");
            for (name, stat) in stats.commands() {
                let percentiles: Vec<String> = LATENCY_PERCENTILES
                    .iter()
                    .map(|(label, share)| {
                        let usec = crate::stats::percentile_usec(&stat.latency, *share);
                        format!("{label}={usec:.3}")
                    })
                    .collect();
                let _ = write!(
                    text,
                    "latency_percentiles_usec_{name}:{}\r\n",
                    percentiles.join(",")
                );
            }
            Ok(())
        }
        "errorstats" => {
            let _ = write!(text, "# Errorstats\r\n");
            for (code, count) in stats.errors_by_code() {
                let _ = write!(text, "errorstat_{code}:count={count}\r\n");
            }
            Ok(())
        }
        _ => Ok(()),
    };
}
