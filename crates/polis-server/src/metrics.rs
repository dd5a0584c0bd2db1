//! `/metrics`: the node's figures in Prometheus's text format, built from
//! the node's state at each scrape (the counters INFO reads, so nothing
//! is counted twice) and encoded by the `prometheus` crate.
//!
//! Labels are bounded: `command` by the command table, `code` by polis's
//! own error codes, `shard` by the cluster map, `node` by its members.

use std::sync::Arc;

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};

use crate::admin::{ShardSummary, Status};
use crate::node::Node;
use crate::stats::{CommandStat, Stats, LATENCY_BOUNDS_USEC};

#[path = "metrics_cluster.rs"]
mod cluster;

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Returns the node's metrics, encoded.
pub fn render(node: &Arc<Node>) -> String {
    let mut families = Families::default();
    let status = crate::admin::status(node);
    node_figures(&mut families, node, &status);
    errors(&mut families, &node.stats);
    commands(&mut families, &node.stats);
    shards(&mut families, &status, node.config.node_id);
    cluster::raft(&mut families, node);
    cluster::keyspace(&mut families, node);
    cluster::moves(&mut families, &status);
    families.add(
        "polis_trace_spans_exported_total",
        "Spans handed to the trace exporter (--otlp-endpoint) since the node started.",
        MetricType::COUNTER,
        value(&[], MetricType::COUNTER, polis_trace::exported() as f64),
    );
    for figure in crate::eventual::figures(node) {
        let kind = if figure.counter {
            MetricType::COUNTER
        } else {
            MetricType::GAUGE
        };
        // Prometheus names units in full, in base units.
        let (name, number) = match figure.name.strip_suffix("_ms") {
            Some(stem) => (
                format!("polis_eventual_{stem}_seconds"),
                figure.value as f64 / 1e3,
            ),
            None => (
                format!("polis_eventual_{}", figure.name),
                figure.value as f64,
            ),
        };
        families.add(&name, figure.help, kind, value(&[], kind, number));
    }
    // A family with no sample yet (no error replied) is left out.
    let encoded: Vec<MetricFamily> = families
        .0
        .into_iter()
        .filter(|family| !family.get_metric().is_empty())
        .collect();
    let mut text = Vec::new();
    if let Err(error) = TextEncoder::new().encode(&encoded, &mut text) {
        tracing::warn!(%error, "encoding /metrics failed");
    }
    String::from_utf8(text).unwrap_or_default()
}

/// The families of one scrape, in the order they were first named.
#[derive(Default)]
struct Families(Vec<MetricFamily>);

impl Families {
    /// Adds `metric` to family `name`, made on first use.
    fn add(&mut self, name: &str, help: &str, kind: MetricType, metric: Metric) {
        self.family(name, help, kind).mut_metric().push(metric);
    }

    /// Adds one sample with `labels` to each family of `figures` (name,
    /// help, value), all of kind `kind`.
    fn add_each(
        &mut self,
        kind: MetricType,
        labels: &[(&str, &str)],
        figures: &[(&str, &str, f64)],
    ) {
        for (name, help, number) in figures {
            self.add(name, help, kind, value(labels, kind, *number));
        }
    }

    /// Returns family `name`, made (with no sample) on first use.
    fn family(&mut self, name: &str, help: &str, kind: MetricType) -> &mut MetricFamily {
        let at = match self.0.iter().position(|family| family.name() == name) {
            Some(at) => at,
            None => {
                let mut family = MetricFamily::default();
                family.set_name(name.to_owned());
                family.set_help(help.to_owned());
                family.set_field_type(kind);
                self.0.push(family);
                self.0.len() - 1
            }
        };
        &mut self.0[at]
    }
}

/// One sample of a counter or a gauge with `labels`.
fn value(labels: &[(&str, &str)], kind: MetricType, number: f64) -> Metric {
    let mut metric = labeled(labels);
    if kind == MetricType::COUNTER {
        let mut counter = Counter::default();
        counter.set_value(number);
        metric.set_counter(counter);
    } else {
        let mut gauge = Gauge::default();
        gauge.set_value(number);
        metric.set_gauge(gauge);
    }
    metric
}

fn labeled(labels: &[(&str, &str)]) -> Metric {
    let mut metric = Metric::default();
    metric.set_label(
        labels
            .iter()
            .map(|(name, value)| {
                let mut pair = LabelPair::default();
                pair.set_name((*name).to_owned());
                pair.set_value((*value).to_owned());
                pair
            })
            .collect(),
    );
    metric
}

fn node_figures(families: &mut Families, node: &Node, status: &Status) {
    let me = node.config.node_id;
    let stats = &node.stats;
    let keys: u64 = status
        .shards
        .iter()
        .filter(|shard| shard.leader_node == Some(me))
        .filter_map(|shard| shard.keys)
        .sum();
    let gauges = [
        (
            "polis_map_version",
            "Version of the cluster map this node routes from.",
            status.map_version as f64,
        ),
        (
            "polis_shards_hosted",
            "Shard replicas on this node.",
            node.shards().len() as f64,
        ),
        (
            "polis_shards_led",
            "Shards this node leads.",
            node.led_shards().len() as f64,
        ),
        (
            "polis_shards_serving",
            "Shards with a leader serving their slots, as this node knows.",
            status.shards.iter().filter(|shard| shard.serving).count() as f64,
        ),
        (
            "polis_groups_parked",
            "Raft groups of this node parked while idle.",
            node.host.hibernation().parked().len() as f64,
        ),
        (
            "polis_keys",
            "Keys in the shards this node leads.",
            keys as f64,
        ),
        (
            "polis_connected_clients",
            "Connected clients.",
            node.clients.len() as f64,
        ),
    ];
    families.add_each(MetricType::GAUGE, &[], &gauges);
    let (syncs, synced_appends) = polis_raft::group_commit::metrics::totals();
    let counters = [
        (
            "polis_connections_received_total",
            "Client connections accepted.",
            Stats::get(&stats.connections_received),
        ),
        (
            "polis_connections_rejected_total",
            "Client connections refused (maxclients).",
            Stats::get(&stats.connections_rejected),
        ),
        (
            "polis_commands_total",
            "Commands processed.",
            Stats::get(&stats.commands_processed),
        ),
        (
            "polis_writes_proposed_total",
            "Writes proposed to Raft.",
            Stats::get(&stats.writes_proposed),
        ),
        (
            "polis_linearizable_reads_total",
            "Reads served after a ReadIndex round.",
            Stats::get(&stats.linearizable_reads),
        ),
        (
            "polis_local_reads_total",
            "Reads served from this replica's copy (READONLY).",
            Stats::get(&stats.local_reads),
        ),
        (
            "polis_error_replies_total",
            "Error replies sent.",
            Stats::get(&stats.error_replies),
        ),
        (
            "polis_redirects_total",
            "MOVED and other redirect replies.",
            Stats::get(&stats.redirects),
        ),
        (
            "polis_raft_requests_failed_total",
            "Proposals and ReadIndex rounds that failed: no quorum in time, a group stopped.",
            Stats::get(&stats.raft_failed),
        ),
        (
            "polis_protocol_errors_total",
            "Clients closed for a protocol error.",
            Stats::get(&stats.protocol_errors),
        ),
        (
            "polis_tls_handshake_failures_total",
            "TLS clients refused at their handshake.",
            Stats::get(&stats.tls_handshake_failures),
        ),
        ("polis_fsyncs_total", "Log fsyncs (group commits).", syncs),
        (
            "polis_fsync_appends_total",
            "Log appends made durable by those fsyncs.",
            synced_appends,
        ),
    ];
    let counters = counters.map(|(name, help, number)| (name, help, number as f64));
    families.add_each(MetricType::COUNTER, &[], &counters);
}

/// Error replies by code (INFO errorstats).
fn errors(families: &mut Families, stats: &Stats) {
    for (code, number) in stats.errors_by_code() {
        let metric = value(&[("code", &code)], MetricType::COUNTER, number as f64);
        families.add(
            "polis_errors_total",
            "Error replies by code.",
            MetricType::COUNTER,
            metric,
        );
    }
}

/// Calls, failures, refusals and the latency of each command called
/// (INFO commandstats, latencystats).
fn commands(families: &mut Families, stats: &Stats) {
    type Read = fn(&CommandStat) -> u64;
    let counters: [(&str, &str, Read); 3] = [
        (
            "polis_command_calls_total",
            "Calls of each command that ran.",
            |stat| stat.calls,
        ),
        (
            "polis_command_failed_calls_total",
            "Calls that ran and answered an error.",
            |stat| stat.failed_calls,
        ),
        (
            "polis_command_rejected_calls_total",
            "Calls refused before they ran (arity, routing, a redirect).",
            |stat| stat.rejected_calls,
        ),
    ];
    let commands = stats.commands();
    for (name, help, read) in counters {
        let family = families.family(name, help, MetricType::COUNTER);
        for (command, stat) in &commands {
            let metric = value(
                &[("command", command)],
                MetricType::COUNTER,
                read(stat) as f64,
            );
            family.mut_metric().push(metric);
        }
    }
    let family = families.family(
        "polis_command_duration_seconds",
        "Time commands took (a pipeline's time shared out over its commands).",
        MetricType::HISTOGRAM,
    );
    for (command, stat) in &commands {
        let mut metric = labeled(&[("command", command)]);
        metric.set_histogram(histogram(&LATENCY_BOUNDS_USEC, &stat.latency, stat.usec));
        family.mut_metric().push(metric);
    }
}

/// A histogram of `counts` by bucket (`bounds` in microseconds, then one
/// past the last) whose samples took `usec` in all.
fn histogram(bounds: &[u64], counts: &[u64], usec: u64) -> Histogram {
    let mut cumulative = 0;
    let buckets = bounds
        .iter()
        .zip(counts)
        .map(|(bound, count)| {
            cumulative += count;
            let mut bucket = Bucket::default();
            bucket.set_upper_bound(*bound as f64 / 1e6);
            bucket.set_cumulative_count(cumulative);
            bucket
        })
        .collect();
    let mut histogram = Histogram::default();
    histogram.set_sample_count(counts.iter().sum());
    histogram.set_sample_sum(usec as f64 / 1e6);
    histogram.set_bucket(buckets);
    histogram
}

/// Each shard in the map, as this node sees it: who leads it, and, on
/// its leader, term, log positions and each replica's lag.
fn shards(families: &mut Families, status: &Status, me: polis_types::NodeId) {
    for shard in &status.shards {
        let id = shard.id.to_string();
        let labels = [("shard", id.as_str())];
        let leader = shard.leader_node.map_or(0, |leader| leader.get());
        families.add(
            "polis_shard_leader_node",
            "The node that leads each shard, as this node knows (0: none known).",
            MetricType::GAUGE,
            value(&labels, MetricType::GAUGE, leader as f64),
        );
        families.add(
            "polis_shard_led",
            "1 for each shard this node leads.",
            MetricType::GAUGE,
            value(
                &labels,
                MetricType::GAUGE,
                f64::from(u8::from(shard.leader_node == Some(me))),
            ),
        );
    }
    type Read = fn(&ShardSummary) -> Option<u64>;
    let positions: [(&str, &str, Read); 4] = [
        (
            "polis_raft_term",
            "The Raft term of each shard this node leads.",
            |shard| shard.term,
        ),
        (
            "polis_raft_last_log_index",
            "The last log index of each shard this node leads.",
            |shard| shard.last_log_index,
        ),
        (
            "polis_raft_committed_index",
            "The commit index of each shard this node leads.",
            |shard| shard.committed,
        ),
        (
            "polis_raft_applied_index",
            "The applied index of each shard this node leads.",
            |shard| shard.applied,
        ),
    ];
    for (name, help, read) in positions {
        for shard in &status.shards {
            if let Some(number) = read(shard) {
                let id = shard.id.to_string();
                let metric = value(&[("shard", &id)], MetricType::GAUGE, number as f64);
                families.add(name, help, MetricType::GAUGE, metric);
            }
        }
    }
    for shard in &status.shards {
        for replica in &shard.replicas {
            let Some(lag) = replica.lag else { continue };
            let (id, node) = (shard.id.to_string(), replica.node_id.to_string());
            let metric = value(
                &[("shard", &id), ("node", &node)],
                MetricType::GAUGE,
                lag as f64,
            );
            families.add(
                "polis_replica_lag_entries",
                "Log entries each replica of a shard this node leads is behind the leader.",
                MetricType::GAUGE,
                metric,
            );
        }
    }
}
