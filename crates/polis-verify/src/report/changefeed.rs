//! The change-feed checker's part of the summary.

use crate::check::changefeed::FeedReport;

/// Returns one line per anomaly class, with its count.
pub fn anomalies(report: &FeedReport) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(problem) = &report.problem {
        lines.push(format!("changefeed: {problem}"));
    }
    for (class, count) in &report.counts {
        lines.push(format!("changefeed: {class}: {count}"));
    }
    lines
}

/// Renders the verdict, the counts, and the anomalies shown in full.
pub fn render(report: &FeedReport) -> String {
    let verdict = if report.is_valid() {
        "every write once, in order".to_owned()
    } else if report.counts.is_empty() {
        "NOT CHECKED".to_owned()
    } else {
        let counts: Vec<String> = report
            .counts
            .iter()
            .map(|(class, count)| format!("{class} {count}"))
            .collect();
        format!("INVALID ({})", counts.join(", "))
    };
    let mut text = format!(
        "changefeed: {} appends ({} ok, {} fail, {} unknown, {} of them in the feed) on {} keys; \
         {} entries, {} events, {} delivered twice: {verdict}\n",
        report.appends,
        report.ok,
        report.fail,
        report.info,
        report.unknown_applied,
        report.keys,
        report.entries,
        report.events,
        report.duplicates,
    );
    if let Some(problem) = &report.problem {
        text.push_str(&format!("  {problem}\n"));
    }
    for anomaly in &report.anomalies {
        text.push_str(&format!(
            "  {} on {}: {}\n",
            anomaly.class, anomaly.key, anomaly.explanation
        ));
    }
    let shown = report.anomalies.len();
    let total: usize = report.counts.values().sum();
    if total > shown {
        text.push_str(&format!("  ... and {} more\n", total - shown));
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::check::changefeed::FeedAnomaly;

    #[test]
    fn a_report_with_anomalies_says_which() {
        let mut report = FeedReport {
            appends: 3,
            ok: 3,
            keys: 1,
            entries: 4,
            events: 4,
            ..FeedReport::default()
        };
        assert!(render(&report).contains(": every write once, in order"));
        report.counts.insert("lost-event".into(), 2);
        report.anomalies.push(FeedAnomaly {
            class: "lost-event".into(),
            key: "k1".into(),
            explanation: "p1 append(k1, 1.1,) ok: acknowledged, never in the feed".into(),
        });
        let text = render(&report);
        assert!(text.contains("INVALID (lost-event 2)"), "{text}");
        assert!(text.contains("  lost-event on k1: p1 append"), "{text}");
        assert!(text.contains("... and 1 more"), "{text}");
        assert_eq!(anomalies(&report), ["changefeed: lost-event: 2"]);
    }
}
