//! What a run shows a person: a summary of the history and the checkers'
//! verdicts (as text and as JSON), and a timeline page with throughput,
//! latency and the nemesis's faults.

mod append;
mod changefeed;
mod eventual;
mod locks;
mod queues;
mod timeline;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::check::append::AppendReport;
use crate::check::changefeed::FeedReport;
use crate::check::eventual::EventualReport;
use crate::check::locks::LockReport;
use crate::check::pair::{fault_windows, format_seconds, FaultWindow};
use crate::check::pops::PopReport;
use crate::check::queue::QueueReport;
use crate::check::registers::RegisterReport;
use crate::check::set::SetReport;
use crate::history::{Event, Kind, Op, NEMESIS_PROCESS};

pub use timeline::timeline_html;

/// How many elements a line about lost or unexpected elements lists.
const ELEMENTS_SHOWN_MAX: usize = 20;

/// How the operations of one function ended, and how long the
/// successful ones took.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OpCounts {
    /// Invocations.
    pub total: u64,
    pub ok: u64,
    pub fail: u64,
    /// Ended unknown, or never completed.
    pub info: u64,
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    pub latency_ms_max: Option<f64>,
}

/// A run's history and verdicts in brief.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub events: usize,
    /// Counts by function (`read`, `write`, `cas`, `add`, `read-all`).
    pub counts: BTreeMap<String, OpCounts>,
    pub faults: Vec<FaultWindow>,
    /// Why the nemesis's events could not be read as faults, if so.
    pub faults_problem: Option<String>,
    pub registers: Option<RegisterReport>,
    pub set: Option<SetReport>,
    pub queue: Option<QueueReport>,
    pub pops: Option<PopReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub append: Option<AppendReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locks: Option<LockReport>,
    pub changefeed: Option<FeedReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eventual: Option<EventualReport>,
    /// Every anomaly the checkers found, one line each.
    pub anomalies: Vec<String>,
    /// Whether every checker that ran found the history correct.
    pub valid: bool,
}

impl Summary {
    /// Summarizes `events` and the reports of the checkers that ran.
    pub fn new(
        events: &[Event],
        registers: Option<&RegisterReport>,
        set: Option<&SetReport>,
    ) -> Self {
        let (faults, faults_problem) = match fault_windows(events) {
            Ok(faults) => (faults, None),
            Err(error) => (Vec::new(), Some(error.to_string())),
        };
        let mut anomalies = Vec::new();
        if let Some(report) = registers {
            anomalies.extend(register_anomalies(report));
        }
        if let Some(report) = set {
            anomalies.extend(set_anomalies(report));
        }
        Summary {
            events: events.len(),
            counts: count(events),
            faults,
            faults_problem,
            registers: registers.cloned(),
            set: set.cloned(),
            queue: None,
            pops: None,
            append: None,
            locks: None,
            changefeed: None,
            eventual: None,
            anomalies,
            valid: registers.is_none_or(RegisterReport::is_valid)
                && set.is_none_or(SetReport::is_valid),
        }
    }

    /// Adds the list-append checker's report to the summary.
    pub fn with_append(mut self, report: &AppendReport) -> Self {
        self.anomalies.extend(append::anomalies(report));
        self.valid = self.valid && report.is_valid();
        self.append = Some(report.clone());
        self
    }

    /// Adds the change-feed checker's report to the summary.
    pub fn with_changefeed(mut self, report: &FeedReport) -> Self {
        self.anomalies.extend(changefeed::anomalies(report));
        self.valid = self.valid && report.is_valid();
        self.changefeed = Some(report.clone());
        self
    }

    /// Adds the eventual checker's report to the summary.
    pub fn with_eventual(mut self, report: &EventualReport) -> Self {
        self.anomalies.extend(eventual::anomalies(report));
        self.valid = self.valid && report.is_valid();
        self.eventual = Some(report.clone());
        self
    }

    /// Renders the summary for a terminal or `summary.txt`.
    pub fn render_text(&self) -> String {
        let mut text = String::new();
        let operations: u64 = self.counts.values().map(|counts| counts.total).sum();
        text.push_str(&format!(
            "history: {} events, {operations} client operations, {} faults\n",
            self.events,
            self.faults.len()
        ));
        // As wide as the longest name (`eventual-converge`), at least 10.
        let width = self
            .counts
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max(10);
        text.push_str(&format!(
            "  {:<width$} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}\n",
            "operation", "total", "ok", "fail", "info", "p50 ms", "p99 ms", "max ms"
        ));
        for (name, counts) in &self.counts {
            text.push_str(&format!(
                "  {name:<width$} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}\n",
                counts.total,
                counts.ok,
                counts.fail,
                counts.info,
                render_ms(counts.latency_ms_p50),
                render_ms(counts.latency_ms_p99),
                render_ms(counts.latency_ms_max),
            ));
        }
        if !self.faults.is_empty() {
            text.push_str("faults:\n");
        }
        for fault in &self.faults {
            let stop = fault
                .stop_ns
                .map_or_else(|| "(end)".to_string(), format_seconds);
            text.push_str(&format!(
                "  {}..{stop}  {}\n",
                format_seconds(fault.start_ns),
                fault.fault
            ));
        }
        if let Some(problem) = &self.faults_problem {
            text.push_str(&format!("faults: unreadable: {problem}\n"));
        }
        if let Some(report) = &self.registers {
            text.push_str(&render_registers(report));
        }
        if let Some(report) = &self.set {
            text.push_str(&render_set(report));
        }
        if let Some(report) = &self.queue {
            text.push_str(&queues::render_queue(report));
        }
        if let Some(report) = &self.pops {
            text.push_str(&queues::render_pops(report));
        }
        if let Some(report) = &self.append {
            text.push_str(&append::render(report));
        }
        if let Some(report) = &self.locks {
            text.push_str(&locks::render(report));
        }
        if let Some(report) = &self.changefeed {
            text.push_str(&changefeed::render(report));
        }
        if let Some(report) = &self.eventual {
            text.push_str(&eventual::render(report));
        }
        // Each checker's section above shows its anomalies in full.
        if self.anomalies.is_empty() {
            text.push_str("anomalies: none\n");
        } else {
            text.push_str(&format!("anomalies: {}\n", self.anomalies.len()));
        }
        text
    }
}

/// Returns the name of an op's function, as the history spells it.
pub fn function_name(op: &Op) -> &'static str {
    match op {
        Op::Read { .. } => "read",
        Op::Write { .. } => "write",
        Op::Cas { .. } => "cas",
        Op::Add { .. } => "add",
        Op::ReadAll { .. } => "read-all",
        Op::Xadd { .. } => "xadd",
        Op::Xreadgroup { .. } => "xreadgroup",
        Op::Xautoclaim { .. } => "xautoclaim",
        Op::Xack { .. } => "xack",
        Op::Xnack { .. } => "xnack",
        Op::Xpending { .. } => "xpending",
        Op::Xrange { .. } => "xrange",
        Op::XrangeDead { .. } => "xrange-dead",
        Op::Rpush { .. } => "rpush",
        Op::Pop { .. } => "pop",
        Op::Lrem { .. } => "lrem",
        Op::Lrange { .. } => "lrange",
        Op::Txn { .. } => "txn",
        Op::LockAcquire { .. } => "lock-acquire",
        Op::FencedPush { .. } => "fenced-push",
        Op::LockRefresh { .. } => "lock-refresh",
        Op::LockRelease { .. } => "lock-release",
        Op::FeedAppend { .. } => "feed-append",
        Op::FeedGet { .. } => "feed-get",
        Op::FeedRead { .. } => "feed-read",
        Op::EventualSet { .. } => "eventual-set",
        Op::EventualIncrby { .. } => "eventual-incrby",
        Op::EventualSadd { .. } => "eventual-sadd",
        Op::EventualSrem { .. } => "eventual-srem",
        Op::EventualDel { .. } => "eventual-del",
        Op::EventualConverge { .. } => "eventual-converge",
        Op::EventualGet { .. } => "eventual-get",
        Op::EventualMembers { .. } => "eventual-members",
        Op::Nemesis { .. } => "nemesis",
    }
}

/// Counts operations by function straight from the events, so a history
/// the checkers reject still gets counted: an invocation that no
/// completion follows counts as unknown.
fn count(events: &[Event]) -> BTreeMap<String, OpCounts> {
    let mut counts: BTreeMap<String, OpCounts> = BTreeMap::new();
    let mut latencies_ms: HashMap<&'static str, Vec<f64>> = HashMap::new();
    // Process -> (function, invocation time) of its open operation.
    let mut open: HashMap<u64, (&'static str, u64)> = HashMap::new();
    for event in events {
        if event.process == NEMESIS_PROCESS {
            continue;
        }
        let name = function_name(&event.op);
        if event.kind == Kind::Invoke {
            if let Some((earlier, _)) = open.insert(event.process, (name, event.time_ns)) {
                // The earlier operation never completed.
                counts.entry(earlier.to_string()).or_default().info += 1;
            }
        }
        let entry = counts.entry(name.to_string()).or_default();
        match event.kind {
            Kind::Invoke => entry.total += 1,
            Kind::Ok => {
                entry.ok += 1;
                if let Some((_, invoke_ns)) = open.remove(&event.process) {
                    let latency_ns = event.time_ns.saturating_sub(invoke_ns);
                    latencies_ms
                        .entry(name)
                        .or_default()
                        .push(latency_ns as f64 / 1e6);
                }
            }
            Kind::Fail => {
                entry.fail += 1;
                open.remove(&event.process);
            }
            Kind::Info => {
                entry.info += 1;
                open.remove(&event.process);
            }
        }
    }
    for (name, _) in open.into_values() {
        counts.entry(name.to_string()).or_default().info += 1;
    }
    for (name, mut latencies) in latencies_ms {
        latencies.sort_by(f64::total_cmp);
        let entry = counts.entry(name.to_string()).or_default();
        entry.latency_ms_p50 = quantile(&latencies, 0.50);
        entry.latency_ms_p99 = quantile(&latencies, 0.99);
        entry.latency_ms_max = latencies.last().copied();
    }
    counts
}

/// Returns the `q` quantile of sorted values (nearest rank).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
}

fn render_ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |ms| format!("{ms:.1}"))
}

fn register_anomalies(report: &RegisterReport) -> Vec<String> {
    let mut lines: Vec<String> = report
        .anomalies
        .iter()
        .map(|anomaly| {
            if anomaly.key.is_empty() {
                format!("registers: {}", anomaly.explanation)
            } else {
                format!("register {}: {}", anomaly.key, anomaly.explanation)
            }
        })
        .collect();
    lines.extend(report.unknown_keys.iter().map(|key| {
        format!("register {key}: unknown, the search ran out of budget before a verdict")
    }));
    lines
}

fn set_anomalies(report: &SetReport) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(problem) = &report.problem {
        lines.push(format!("set: {problem}"));
    }
    for (elements, what) in [
        (
            &report.lost,
            "acknowledged but missing from the final read (lost)",
        ),
        (
            &report.unexpected,
            "in the final read but never added, or every add failed",
        ),
        (&report.duplicated, "more than once in the final read"),
    ] {
        if !elements.is_empty() {
            lines.push(format!(
                "set: {} elements {what}: {}",
                elements.len(),
                render_elements(elements)
            ));
        }
    }
    lines
}

fn render_elements(elements: &[u64]) -> String {
    let shown: Vec<String> = elements
        .iter()
        .take(ELEMENTS_SHOWN_MAX)
        .map(u64::to_string)
        .collect();
    let more = elements.len().saturating_sub(ELEMENTS_SHOWN_MAX);
    if more == 0 {
        shown.join(", ")
    } else {
        format!("{} and {more} more", shown.join(", "))
    }
}

fn render_registers(report: &RegisterReport) -> String {
    let verdict = if report.is_valid() {
        "linearizable".to_string()
    } else if report.anomalies.is_empty() {
        format!("unknown for {} keys", report.unknown_keys.len())
    } else {
        format!(
            "NOT linearizable ({} keys with anomalies, {} unknown)",
            report.anomalies.len(),
            report.unknown_keys.len()
        )
    };
    let mut text = format!(
        "registers: {} keys, {} operations: {verdict}\n",
        report.keys, report.operations
    );
    for anomaly in &report.anomalies {
        text.push_str(&format!(
            "  key {:?}: {}\n",
            anomaly.key, anomaly.explanation
        ));
        for operation in &anomaly.operations {
            text.push_str(&format!("    {}\n", operation.description));
        }
    }
    for key in &report.unknown_keys {
        text.push_str(&format!(
            "  key {key:?}: unknown, the search ran out of budget before a verdict\n"
        ));
    }
    text
}

fn render_set(report: &SetReport) -> String {
    let verdict = if report.is_valid() {
        "valid"
    } else {
        "INVALID"
    };
    let mut text = format!(
        "set: {} attempted, {} acknowledged, {} unknown ({} of them present), {} failed; \
         {} present; lost {}, unexpected {}, duplicated {}: {verdict}\n",
        report.attempted,
        report.acknowledged,
        report.indeterminate,
        report.recovered.len(),
        report.failed,
        report.present,
        report.lost.len(),
        report.unexpected.len(),
        report.duplicated.len(),
    );
    for line in set_anomalies(report) {
        text.push_str(&format!("  {line}\n"));
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::check::registers::{self, Budget};
    use crate::check::set;
    use crate::history::Phase;

    fn event(time_ms: u64, process: u64, kind: Kind, op: Op) -> Event {
        Event {
            index: 0,
            time_ns: time_ms * 1_000_000,
            process,
            kind,
            op,
            error: None,
        }
    }

    fn indexed(mut events: Vec<Event>) -> Vec<Event> {
        for (index, event) in events.iter_mut().enumerate() {
            event.index = index as u64;
        }
        events
    }

    fn write(value: u64) -> Op {
        Op::Write {
            key: "x".into(),
            value,
        }
    }

    fn read(value: Option<u64>) -> Op {
        Op::Read {
            key: "x".into(),
            value,
        }
    }

    fn stale_read_history() -> Vec<Event> {
        indexed(vec![
            event(0, 1, Kind::Invoke, write(1)),
            event(
                5,
                NEMESIS_PROCESS,
                Kind::Info,
                Op::Nemesis {
                    fault: "partition 1 | 2,3".into(),
                    phase: Phase::Start,
                },
            ),
            event(10, 1, Kind::Ok, write(1)),
            event(20, 1, Kind::Invoke, write(2)),
            event(30, 1, Kind::Ok, write(2)),
            event(40, 2, Kind::Invoke, read(None)),
            event(50, 2, Kind::Ok, read(Some(1))),
            event(60, 3, Kind::Invoke, write(3)),
            event(70, 2, Kind::Invoke, read(None)),
            event(75, 2, Kind::Fail, read(None)),
        ])
    }

    #[test]
    fn counts_outcomes_and_latencies_by_function() {
        let summary = Summary::new(&stale_read_history(), None, None);
        let write = &summary.counts["write"];
        assert_eq!(
            (write.total, write.ok, write.fail, write.info),
            (3, 2, 0, 1)
        );
        assert_eq!(write.latency_ms_max, Some(10.0));
        let read = &summary.counts["read"];
        assert_eq!((read.total, read.ok, read.fail, read.info), (2, 1, 1, 0));
        assert_eq!(summary.faults.len(), 1);
        assert!(summary.valid);
    }

    #[test]
    fn lists_the_anomalies_of_both_checkers() {
        let events = stale_read_history();
        let registers = registers::check(&events, Budget::default());
        let set = set::check(&events);
        let summary = Summary::new(&events, Some(&registers), Some(&set));
        assert!(!summary.valid);
        assert_eq!(summary.anomalies.len(), 2, "{:#?}", summary.anomalies);
        assert!(summary.anomalies[0].starts_with("register x: not linearizable"));
        assert!(summary.anomalies[1].contains("no successful final read"));

        let text = summary.render_text();
        assert!(
            text.contains("registers: 1 keys, 5 operations: NOT linearizable"),
            "{text}"
        );
        assert!(text.contains("0.005s..(end)  partition 1 | 2,3"), "{text}");
        assert!(text.contains("p2 read(x) -> 1 ok"), "{text}");
        assert!(text.contains("  set: no successful final read"), "{text}");
        assert!(text.ends_with("anomalies: 2\n"), "{text}");
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["counts"]["write"]["info"], 1);
        assert_eq!(json["valid"], false);
    }

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), Some(50.0));
        assert_eq!(quantile(&values, 0.99), Some(99.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7.0], 0.99), Some(7.0));
    }
}
