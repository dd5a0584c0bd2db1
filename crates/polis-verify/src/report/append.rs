//! The list-append checker's part of the summary.

use crate::check::append::AppendReport;

/// Returns one line per anomaly class, with its count.
pub fn anomalies(report: &AppendReport) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(problem) = &report.problem {
        lines.push(format!("append: {problem}"));
    }
    for (class, count) in &report.counts {
        lines.push(format!("append: {class}: {count}"));
    }
    lines
}

/// Renders the verdict, the counts, and the anomalies shown in full.
pub fn render(report: &AppendReport) -> String {
    let verdict = if report.is_valid() {
        "strictly serializable".to_owned()
    } else if report.counts.is_empty() {
        "NOT CHECKED".to_owned()
    } else {
        let counts: Vec<String> = report
            .counts
            .iter()
            .map(|(class, count)| format!("{class} {count}"))
            .collect();
        format!("NOT strictly serializable ({})", counts.join(", "))
    };
    let mut text = format!(
        "append: {} transactions ({} ok, {} fail, {} unknown), {} committed, {} keys, \
         {} dependency edges, {} appends unchecked: {verdict}\n",
        report.transactions,
        report.ok,
        report.fail,
        report.info,
        report.committed,
        report.keys,
        report.edges,
        report.appends_unchecked,
    );
    if let Some(problem) = &report.problem {
        text.push_str(&format!("  {problem}\n"));
    }
    for anomaly in &report.anomalies {
        text.push_str(&format!("  {}: {}\n", anomaly.class, anomaly.explanation));
        for step in &anomaly.steps {
            text.push_str(&format!("    {step}\n"));
        }
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
    use crate::check::append::AppendAnomaly;

    #[test]
    fn a_report_with_anomalies_says_which() {
        let mut report = AppendReport {
            transactions: 3,
            ok: 3,
            ..AppendReport::default()
        };
        assert!(render(&report).contains(": strictly serializable"));
        report.counts.insert("G1a".into(), 2);
        report.anomalies.push(AppendAnomaly {
            class: "G1a".into(),
            explanation: "aborted read".into(),
            steps: vec!["T1 ...".into()],
        });
        let text = render(&report);
        assert!(text.contains("NOT strictly serializable (G1a 2)"), "{text}");
        assert!(text.contains("  G1a: aborted read\n    T1 ...\n"), "{text}");
        assert!(text.contains("... and 1 more"), "{text}");
        assert_eq!(anomalies(&report), ["append: G1a: 2"]);
    }
}
