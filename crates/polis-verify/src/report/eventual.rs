//! The eventual checker's part of the summary.

use crate::check::eventual::EventualReport;

/// Returns one line per anomaly class, with its count.
pub fn anomalies(report: &EventualReport) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(problem) = &report.problem {
        lines.push(format!("eventual: {problem}"));
    }
    for (class, count) in &report.counts {
        lines.push(format!("eventual: {class}: {count}"));
    }
    lines
}

/// Renders the counts, the convergence, the verdict, and the anomalies
/// shown in full.
pub fn render(report: &EventualReport) -> String {
    let verdict = if report.is_valid() {
        "converged, nothing lost or invented".to_owned()
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
    let converged = match (report.converged, report.converge_ms) {
        (Some(true), Some(ms)) => format!("converged {ms} ms after healing"),
        (Some(false), _) => "did NOT converge".to_owned(),
        _ => "convergence not measured".to_owned(),
    };
    let before = report.divergent_before.map_or_else(
        || "not read".to_owned(),
        |keys| format!("{keys} keys differed"),
    );
    let mut text = format!(
        "eventual: {} keys ({} registers, {} counters, {} sets, {} deleted) read on {} nodes; \
         SREM answered 1 {} times, 0 {} times; DEL answered 1 {} times, 0 {} times\n  \
         right after healing: {before}; {converged}; {} keys differ at the end: {verdict}\n",
        report.keys(),
        report.registers,
        report.counters,
        report.sets,
        report.deleted,
        report.nodes,
        report.srem_removed,
        report.srem_missed,
        report.del_removed,
        report.del_missed,
        report.divergent,
    );
    if let Some(problem) = &report.problem {
        text.push_str(&format!("  {problem}\n"));
    }
    for anomaly in &report.anomalies {
        let on = if anomaly.key.is_empty() {
            String::new()
        } else {
            format!(" on {}", anomaly.key)
        };
        text.push_str(&format!(
            "  {}{on}: {}\n",
            anomaly.class, anomaly.explanation
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
    use crate::check::eventual::EventualAnomaly;

    #[test]
    fn a_report_says_how_the_nodes_converged_and_what_was_wrong() {
        let mut report = EventualReport {
            registers: 2,
            counters: 1,
            nodes: 3,
            divergent_before: Some(1),
            converged: Some(true),
            converge_ms: Some(1_500),
            ..EventualReport::default()
        };
        let text = render(&report);
        assert!(text.contains("3 keys (2 registers, 1 counters"), "{text}");
        assert!(
            text.contains("right after healing: 1 keys differed"),
            "{text}"
        );
        assert!(text.contains("converged 1500 ms after healing"), "{text}");
        assert!(
            text.contains(": converged, nothing lost or invented"),
            "{text}"
        );
        report.counts.insert("lost-write".into(), 2);
        report.anomalies.push(EventualAnomaly {
            class: "lost-write".into(),
            key: "ev:r:1".into(),
            explanation: "nil at the end, yet p1 set(ev:r:1, 4) ok".into(),
        });
        let text = render(&report);
        assert!(text.contains("INVALID (lost-write 2)"), "{text}");
        assert!(
            text.contains("  lost-write on ev:r:1: nil at the end"),
            "{text}"
        );
        assert!(text.contains("... and 1 more"), "{text}");
        assert_eq!(anomalies(&report), ["eventual: lost-write: 2"]);
    }
}
