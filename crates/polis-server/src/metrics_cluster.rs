//! `/metrics`, continued: the Raft layer's latencies and leader changes,
//! memory and the keyspace's expirations and evictions, and the
//! migrations and replica moves under way.

use std::sync::Arc;

use prometheus::proto::MetricType;

use super::{histogram, labeled, value, Families};
use crate::admin::Status;
use crate::node::Node;

/// The Raft layer's latency histograms and each hosted group's leader
/// changes.
pub(super) fn raft(families: &mut Families, node: &Node) {
    use polis_raft::latency::{APPLIES, BOUNDS_USEC, FSYNCS, PROPOSALS};
    let histograms = [
        (
            "polis_fsync_duration_seconds",
            "Time each log fsync (group commit) took.",
            &FSYNCS,
        ),
        (
            "polis_raft_proposal_duration_seconds",
            "Time from a proposal on its leader to its applied reply: commit (a quorum has it on disk) and apply.",
            &PROPOSALS,
        ),
        (
            "polis_raft_apply_duration_seconds",
            "Time applying each log entry to a state machine took.",
            &APPLIES,
        ),
    ];
    for (name, help, source) in histograms {
        let (buckets, usec) = source.read();
        let mut metric = labeled(&[]);
        metric.set_histogram(histogram(&BOUNDS_USEC, &buckets, usec));
        families.add(name, help, MetricType::HISTOGRAM, metric);
    }
    for (id, group) in node.shards() {
        let id = id.to_string();
        families.add(
            "polis_raft_leader_changes_seen_total",
            "Leader changes each shard's replica on this node has seen since it started.",
            MetricType::COUNTER,
            value(
                &[("shard", &id)],
                MetricType::COUNTER,
                group.leader_changes() as f64,
            ),
        );
    }
}

/// Memory against maxmemory, and each led shard's expired and evicted keys
/// (counted as its log applies them: the same on every replica).
pub(super) fn keyspace(families: &mut Families, node: &Arc<Node>) {
    let gauges = [
        (
            "polis_memory_used_bytes",
            "The keyspace footprint of every shard replica on this node (what maxmemory bounds).",
            node.eviction.used_memory(),
        ),
        (
            "polis_memory_max_bytes",
            "maxmemory (0: no limit).",
            node.eviction.config().maxmemory_bytes,
        ),
    ];
    let gauges = gauges.map(|(name, help, number)| (name, help, number as f64));
    families.add_each(MetricType::GAUGE, &[], &gauges);
    for group in node.led_shards() {
        let id = group.id().to_string();
        let (expired, evicted) = {
            let state = group.state().read();
            let stats = state.app.db.stats();
            (stats.expired_keys, stats.evicted_keys)
        };
        let counters = [
            (
                "polis_expired_keys_total",
                "Keys removed at their expiry, by shard, on its leader.",
                expired,
            ),
            (
                "polis_evicted_keys_total",
                "Keys evicted for maxmemory, by shard, on its leader.",
                evicted,
            ),
        ];
        let counters = counters.map(|(name, help, number)| (name, help, number as f64));
        families.add_each(MetricType::COUNTER, &[("shard", &id)], &counters);
    }
}

/// Migrations and replica moves in the map, by phase; on the node driving
/// a migration, its age, bytes sent and share copied.
pub(super) fn moves(families: &mut Families, status: &Status) {
    for phase in ["copying", "switched"] {
        let count = status
            .migrations
            .iter()
            .filter(|migration| migration.phase == phase)
            .count();
        families.add(
            "polis_migrations",
            "Slot migrations under way, by phase.",
            MetricType::GAUGE,
            value(&[("phase", phase)], MetricType::GAUGE, count as f64),
        );
    }
    for phase in ["adding", "catching-up", "leaving"] {
        let count = status
            .replica_moves
            .iter()
            .filter(|moving| moving.phase == phase)
            .count();
        families.add(
            "polis_replica_moves",
            "Replicas joining or leaving their shards, by phase.",
            MetricType::GAUGE,
            value(&[("phase", phase)], MetricType::GAUGE, count as f64),
        );
    }
    for migration in &status.migrations {
        let Some(progress) = &migration.progress else {
            continue;
        };
        let (source, target) = (migration.source.to_string(), migration.target.to_string());
        let labels = [("source", source.as_str()), ("target", target.as_str())];
        let gauges = [
            (
                "polis_migration_seconds",
                "Seconds since this node began driving the migration.",
                progress.started_ms_ago as f64 / 1e3,
            ),
            (
                "polis_migration_sent_bytes",
                "Bytes the migration has shipped to its target.",
                progress.bytes_sent as f64,
            ),
            (
                "polis_migration_copied_ratio",
                "The share of the source's keyspace the bulk copy has read, 0 to 1.",
                progress.copied,
            ),
        ];
        families.add_each(MetricType::GAUGE, &labels, &gauges);
    }
}
