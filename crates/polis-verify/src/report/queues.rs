//! The queue and blocking-pop checkers' share of the summary.

use super::{render_elements, Summary};
use crate::check::pops::PopReport;
use crate::check::queue::QueueReport;

impl Summary {
    /// Adds the queue checker's report: its anomalies and its verdict.
    pub fn add_queue(&mut self, report: &QueueReport) {
        self.anomalies.extend(queue_anomalies(report));
        self.valid &= report.is_valid();
        self.queue = Some(report.clone());
    }

    /// Adds the blocking-pop checker's report: its anomalies and its
    /// verdict.
    pub fn add_pops(&mut self, report: &PopReport) {
        self.anomalies.extend(pop_anomalies(report));
        self.valid &= report.is_valid();
        self.pops = Some(report.clone());
    }
}

fn verdict(valid: bool) -> &'static str {
    if valid {
        "valid"
    } else {
        "INVALID"
    }
}

fn queue_anomalies(report: &QueueReport) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(problem) = &report.problem {
        lines.push(format!("queue: {problem}"));
    }
    for (payloads, what) in [
        (
            &report.undelivered,
            "acknowledged but never delivered (undelivered)",
        ),
        (
            &report.lost,
            "acknowledged but missing from the final XRANGE (lost)",
        ),
        (
            &report.invented,
            "delivered or in the stream but never added (invented)",
        ),
        (
            &report.ack_lost,
            "delivered again after an acknowledged XACK (ack-lost)",
        ),
        (
            &report.unresolved,
            "acknowledged, then neither acknowledged by a consumer nor dead-lettered (unresolved)",
        ),
        (
            &report.dead_invented,
            "in the dead-letter stream but never added (dead-invented)",
        ),
        (
            &report.dead_twice,
            "in the dead-letter stream more than once (dead-twice)",
        ),
    ] {
        if !payloads.is_empty() {
            lines.push(format!(
                "queue: {} payloads {what}: {}",
                payloads.len(),
                render_elements(payloads)
            ));
        }
    }
    lines
}

fn pop_anomalies(report: &PopReport) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(problem) = &report.problem {
        lines.push(format!("pop: {problem}"));
    }
    for (elements, what) in [
        (
            &report.double_pops,
            "popped twice, or popped and still queued (double-pop)",
        ),
        (&report.duplicated, "more than once in the final lists"),
        (
            &report.lost,
            "acknowledged, never popped, and gone from the lists (lost)",
        ),
        (
            &report.invented,
            "popped or listed but never pushed (invented)",
        ),
    ] {
        if !elements.is_empty() {
            lines.push(format!(
                "pop: {} elements {what}: {}",
                elements.len(),
                render_elements(elements)
            ));
        }
    }
    lines
}

pub(super) fn render_queue(report: &QueueReport) -> String {
    let mut text = format!(
        "queue: {} added, {} acknowledged, {} unknown, {} failed; \
         {} deliveries of {} payloads, {} duplicates; {} entries in the stream; \
         {} XPENDING samples (max {}); {} dead-lettered; undelivered {}, lost {}, invented {}, \
         ack-lost {}, unresolved {}, dead-invented {}, dead-twice {}: {}\n",
        report.attempted,
        report.acknowledged,
        report.indeterminate,
        report.failed,
        report.deliveries,
        report.delivered,
        report.duplicates,
        report.ranged,
        report.pending_samples,
        report.pending_max,
        report.dead_lettered,
        report.undelivered.len(),
        report.lost.len(),
        report.invented.len(),
        report.ack_lost.len(),
        report.unresolved.len(),
        report.dead_invented.len(),
        report.dead_twice.len(),
        verdict(report.is_valid()),
    );
    for line in queue_anomalies(report)
        .into_iter()
        .chain(report.details.iter().cloned())
    {
        text.push_str(&format!("  {line}\n"));
    }
    text
}

pub(super) fn render_pops(report: &PopReport) -> String {
    let mut text = format!(
        "pop: {} pushed, {} acknowledged, {} unknown, {} failed; \
         {} pops ({} empty, {} unknown), {} left in the lists; \
         double pops {}, duplicated {}, lost {}, invented {}: {}\n",
        report.attempted,
        report.acknowledged,
        report.indeterminate,
        report.failed,
        report.pops,
        report.empty_pops,
        report.unknown_pops,
        report.remaining,
        report.double_pops.len(),
        report.duplicated.len(),
        report.lost.len(),
        report.invented.len(),
        verdict(report.is_valid()),
    );
    for line in pop_anomalies(report)
        .into_iter()
        .chain(report.details.iter().cloned())
    {
        text.push_str(&format!("  {line}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_anomaly_makes_the_summary_invalid_and_is_shown() {
        let mut summary = Summary::new(&[], None, None);
        assert!(summary.valid);
        summary.add_queue(&QueueReport {
            ack_lost: vec![7],
            details: vec!["ack-lost: 1-0=7 ...".into()],
            ..QueueReport::default()
        });
        assert!(!summary.valid);
        assert_eq!(summary.anomalies.len(), 1, "{:?}", summary.anomalies);
        let text = summary.render_text();
        assert!(text.contains("ack-lost 1, unresolved 0"), "{text}");
        assert!(text.contains("dead-twice 0: INVALID"), "{text}");
        assert!(text.contains("  ack-lost: 1-0=7"), "{text}");
        assert!(text.ends_with("anomalies: 1\n"), "{text}");
    }

    #[test]
    fn a_double_pop_makes_the_summary_invalid_and_is_shown() {
        let mut summary = Summary::new(&[], None, None);
        summary.add_pops(&PopReport {
            double_pops: vec![3],
            ..PopReport::default()
        });
        assert!(!summary.valid);
        let text = summary.render_text();
        assert!(text.contains("double pops 1"), "{text}");
        assert!(text.contains("pop: 1 elements popped twice"), "{text}");
    }

    #[test]
    fn clean_reports_keep_the_summary_valid() {
        let mut summary = Summary::new(&[], None, None);
        summary.add_queue(&QueueReport::default());
        summary.add_pops(&PopReport::default());
        assert!(summary.valid);
        assert!(summary.render_text().ends_with("anomalies: none\n"));
    }
}
