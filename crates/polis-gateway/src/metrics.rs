//! The gateway's own figures, in Prometheus's text format at its admin
//! address's `/metrics`: its clients, the requests it admitted or refused
//! for its rate limits, and each node's health and lanes as it sees them.
//!
//! Labels are bounded: `node` by the cluster's topology.

use prometheus::{Encoder, IntCounter, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::cluster::Cluster;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// The gateway's counters, bumped as clients come and go and requests pass.
pub struct Metrics {
    registry: Registry,
    pub connections: IntCounter,
    pub clients: IntGauge,
    pub requests: IntCounter,
    pub rate_limited: IntCounter,
    upstream_healthy: IntGaugeVec,
    lanes: IntGaugeVec,
}

impl Metrics {
    /// Registers the gateway's metrics.
    ///
    /// # Panics
    /// Never: the names are fixed and distinct.
    #[allow(clippy::expect_used)] // Fixed, valid, distinct names.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let counter = IntCounter::new(name, help).expect("a valid counter");
            registry
                .register(Box::new(counter.clone()))
                .expect("a new name");
            counter
        };
        let connections = counter(
            "polis_gateway_connections_received_total",
            "Client connections accepted.",
        );
        let requests = counter(
            "polis_gateway_requests_total",
            "Requests clients sent (each command of a pipeline or a transaction).",
        );
        let rate_limited = counter(
            "polis_gateway_rate_limited_total",
            "Requests refused with -RATELIMITED.",
        );
        let clients = IntGauge::new("polis_gateway_connected_clients", "Connected clients.")
            .expect("a valid gauge");
        registry
            .register(Box::new(clients.clone()))
            .expect("a new name");
        let by_node = |name: &str, help: &str| {
            let gauges = IntGaugeVec::new(Opts::new(name, help), &["node"]).expect("a valid gauge");
            registry
                .register(Box::new(gauges.clone()))
                .expect("a new name");
            gauges
        };
        let upstream_healthy = by_node(
            "polis_gateway_upstream_healthy",
            "1 for each node the gateway sends traffic to, 0 for one it found unhealthy.",
        );
        let lanes = by_node(
            "polis_gateway_lanes",
            "Connections to each node that clients share.",
        );
        Self {
            registry,
            connections,
            clients,
            requests,
            rate_limited,
            upstream_healthy,
            lanes,
        }
    }

    /// Returns the metrics, with each node's health and lanes as now.
    pub fn render(&self, cluster: &Cluster) -> String {
        self.upstream_healthy.reset();
        self.lanes.reset();
        for node in cluster.topology().nodes() {
            self.upstream_healthy
                .with_label_values(&[&*node])
                .set(i64::from(cluster.is_healthy(&node)));
            self.lanes
                .with_label_values(&[&*node])
                .set(cluster.lanes_to(&node) as i64);
        }
        let mut text = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut text) {
            tracing::warn!(%error, "encoding /metrics failed");
        }
        String::from_utf8(text).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
