//! The web dashboard: one HTML page, its script and styles inline, that
//! reads the admin API of the address it was loaded from. Every node's
//! admin port serves it, and the gateway's, which passes the page's
//! requests on to a node.

use serde::Serialize;

/// The page.
pub const PAGE: &str = include_str!("dashboard.html");

/// The request paths the page reads (and, for `/faults`, writes), besides
/// itself: what a server of the page must answer or pass on.
pub const API_PATHS: [&str; 4] = ["/status", "/namespaces", "/faults", "/dashboard/throughput"];

/// What the throughput chart adds up, over one node's `/metrics` or the
/// whole cluster's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Commands served (`polis_commands_total`).
    pub commands: f64,
    /// Seconds they took, and how many were timed
    /// (`polis_command_duration_seconds` sum and count).
    pub seconds: f64,
    pub calls: f64,
}

impl Totals {
    /// Reads the totals from a node's `/metrics` (Prometheus's text
    /// format): each named family summed over its label sets.
    pub fn from_metrics(text: &str) -> Self {
        Self {
            commands: metric_sum(text, "polis_commands_total"),
            seconds: metric_sum(text, "polis_command_duration_seconds_sum"),
            calls: metric_sum(text, "polis_command_duration_seconds_count"),
        }
    }

    /// Adds another node's totals.
    pub fn add(&mut self, other: Totals) {
        self.commands += other.commands;
        self.seconds += other.seconds;
        self.calls += other.calls;
    }
}

/// Sums the samples of metric `name`, over its label sets, in a
/// `/metrics` text (Prometheus's text format).
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let labels_or_value = line.strip_prefix(name)?;
            if !labels_or_value.starts_with(['{', ' ']) {
                return None;
            }
            line.rsplit(' ').next()?.parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_every_label_set_of_the_three_families() {
        let text = "# HELP polis_commands_total Commands.\n\
                    # TYPE polis_commands_total counter\n\
                    polis_commands_total{command=\"get\"} 10\n\
                    polis_commands_total{command=\"set\"} 5\n\
                    polis_command_duration_seconds_sum{command=\"set\"} 0.25\n\
                    polis_command_duration_seconds_count{command=\"set\"} 5\n\
                    polis_command_duration_seconds_bucket{command=\"set\",le=\"+Inf\"} 5\n\
                    polis_commands_total_other 99\n";
        let totals = Totals::from_metrics(text);
        assert_eq!(
            totals,
            Totals {
                commands: 15.0,
                seconds: 0.25,
                calls: 5.0
            }
        );
    }
}
