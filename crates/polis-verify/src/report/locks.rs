//! The lock checker's part of the summary.

use super::Summary;
use crate::check::locks::LockReport;

impl Summary {
    /// Adds the lock checker's report: its anomalies and its verdict.
    pub fn add_locks(&mut self, report: &LockReport) {
        if let Some(problem) = &report.problem {
            self.anomalies.push(format!("locks: {problem}"));
        }
        self.anomalies
            .extend(report.anomalies.iter().map(|anomaly| {
                format!(
                    "lock {} {}: {}",
                    anomaly.lock, anomaly.kind, anomaly.explanation
                )
            }));
        self.valid &= report.is_valid();
        self.locks = Some(report.clone());
    }
}

/// Renders the counts, the verdict, and every anomaly listed.
pub fn render(report: &LockReport) -> String {
    let verdict = if report.is_valid() {
        "valid: tokens increase, no superseded token wrote"
    } else {
        "INVALID"
    };
    let mut text = format!(
        "locks: {} locks, {} tokens granted, {} acquires found the lock held; \
         fenced writes {} ok, {} refused ({} with a superseded token), {} unknown; \
         {} elements in the guarded lists: {verdict}\n",
        report.locks,
        report.grants,
        report.busy,
        report.writes_ok,
        report.writes_refused,
        report.stale_refused,
        report.writes_unknown,
        report.applied,
    );
    if let Some(problem) = &report.problem {
        text.push_str(&format!("  {problem}\n"));
    }
    for anomaly in &report.anomalies {
        text.push_str(&format!(
            "  lock {} {}: {}\n",
            anomaly.lock, anomaly.kind, anomaly.explanation
        ));
    }
    if report.anomalies_more > 0 {
        text.push_str(&format!("  and {} more anomalies\n", report.anomalies_more));
    }
    text
}
