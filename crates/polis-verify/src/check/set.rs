//! Checks the set workload: clients add unique elements, and once the
//! cluster has healed one read returns every element present. An
//! acknowledged add must be there; nothing may be there that was never
//! added or whose add certainly failed. Adds of unknown outcome may go
//! either way.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::pair::{pair, Operation, Outcome};
use crate::history::{Event, Op};

/// What the set checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SetReport {
    /// Distinct elements some client tried to add.
    pub attempted: usize,
    /// Elements with an acknowledged add.
    pub acknowledged: usize,
    /// Elements whose every add certainly failed.
    pub failed: usize,
    /// Elements whose adds ended unknown, none acknowledged.
    pub indeterminate: usize,
    /// Distinct elements the final read returned.
    pub present: usize,
    /// Acknowledged before the final read began, yet absent: anomalies.
    pub lost: Vec<u64>,
    /// Present though never added, or every add of it failed: anomalies.
    pub unexpected: Vec<u64>,
    /// Returned more than once by the final read: anomalies.
    pub duplicated: Vec<u64>,
    /// Of unknown outcome, and present.
    pub recovered: Vec<u64>,
    /// Acknowledged only after the final read began, and absent: they may
    /// have landed after the read, so this is no evidence of loss.
    pub acknowledged_late: Vec<u64>,
    /// Why the history could not be checked, when it could not.
    pub problem: Option<String>,
}

impl SetReport {
    /// Returns whether the history could be checked and nothing was lost,
    /// invented or duplicated.
    pub fn is_valid(&self) -> bool {
        self.problem.is_none()
            && self.lost.is_empty()
            && self.unexpected.is_empty()
            && self.duplicated.is_empty()
    }
}

/// The best that is known about the adds of one element.
struct Attempts {
    /// The earliest acknowledgement, if any.
    acknowledged_ns: Option<u64>,
    /// Whether some add ended unknown.
    uncertain: bool,
}

/// Checks the set operations of `events` against the last successful
/// read of the whole set.
pub fn check(events: &[Event]) -> SetReport {
    let paired = match pair(events) {
        Ok(paired) => paired,
        Err(error) => return problem(format!("the history is malformed: {error}")),
    };
    let mut attempts: BTreeMap<u64, Attempts> = BTreeMap::new();
    for operation in &paired.operations {
        let Op::Add { element } = operation.op else {
            continue;
        };
        let entry = attempts.entry(element).or_insert(Attempts {
            acknowledged_ns: None,
            uncertain: false,
        });
        match operation.outcome {
            Outcome::Ok => {
                let acknowledged_ns = operation.complete_ns.unwrap_or(u64::MAX);
                entry.acknowledged_ns = Some(
                    entry
                        .acknowledged_ns
                        .map_or(acknowledged_ns, |earlier| earlier.min(acknowledged_ns)),
                );
            }
            Outcome::Info => entry.uncertain = true,
            Outcome::Fail => {}
        }
    }

    let Some(final_read) = paired
        .operations
        .iter()
        .filter(|operation| {
            matches!(operation.op, Op::ReadAll { .. }) && operation.outcome == Outcome::Ok
        })
        .max_by_key(|operation| operation.complete_index)
    else {
        let mut report = problem(
            "no successful final read of the set: nothing shows which elements survived"
                .to_string(),
        );
        tally(&mut report, &attempts);
        return report;
    };
    let Op::ReadAll {
        elements: Some(elements),
    } = &final_read.seen
    else {
        return problem(format!(
            "the final read (event {:?}) succeeded but lists no elements",
            final_read.complete_index
        ));
    };
    compare(&attempts, elements, final_read)
}

fn problem(reason: String) -> SetReport {
    SetReport {
        problem: Some(reason),
        ..SetReport::default()
    }
}

fn tally(report: &mut SetReport, attempts: &BTreeMap<u64, Attempts>) {
    report.attempted = attempts.len();
    for attempt in attempts.values() {
        if attempt.acknowledged_ns.is_some() {
            report.acknowledged += 1;
        } else if attempt.uncertain {
            report.indeterminate += 1;
        } else {
            report.failed += 1;
        }
    }
}

/// Compares what was added with what `final_read` found.
fn compare(
    attempts: &BTreeMap<u64, Attempts>,
    elements: &[u64],
    final_read: &Operation,
) -> SetReport {
    let mut report = SetReport::default();
    tally(&mut report, attempts);
    let mut present = BTreeSet::new();
    let mut duplicated = BTreeSet::new();
    for &element in elements {
        if !present.insert(element) {
            duplicated.insert(element);
        }
    }
    report.present = present.len();
    report.duplicated = duplicated.into_iter().collect();
    for (&element, attempt) in attempts {
        match (attempt.acknowledged_ns, present.contains(&element)) {
            (Some(acknowledged_ns), false) if acknowledged_ns < final_read.invoke_ns => {
                report.lost.push(element);
            }
            (Some(_), false) => report.acknowledged_late.push(element),
            (None, true) if attempt.uncertain => report.recovered.push(element),
            (None, true) => report.unexpected.push(element),
            (Some(_), true) | (None, false) => {}
        }
    }
    report.unexpected.extend(
        present
            .iter()
            .filter(|element| !attempts.contains_key(element)),
    );
    report.unexpected.sort_unstable();
    report
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::history::Kind;

    /// Builds a history from (process, kind, op) with times 10 ns apart.
    fn history(steps: &[(u64, Kind, Op)]) -> Vec<Event> {
        steps
            .iter()
            .enumerate()
            .map(|(index, (process, kind, op))| Event {
                index: index as u64,
                time_ns: index as u64 * 10,
                process: *process,
                kind: *kind,
                op: op.clone(),
                error: None,
            })
            .collect()
    }

    fn add(process: u64, element: u64, kind: Kind) -> [(u64, Kind, Op); 2] {
        [
            (process, Kind::Invoke, Op::Add { element }),
            (process, kind, Op::Add { element }),
        ]
    }

    fn read_all(process: u64, elements: &[u64]) -> [(u64, Kind, Op); 2] {
        [
            (process, Kind::Invoke, Op::ReadAll { elements: None }),
            (
                process,
                Kind::Ok,
                Op::ReadAll {
                    elements: Some(elements.to_vec()),
                },
            ),
        ]
    }

    fn run(parts: &[[(u64, Kind, Op); 2]]) -> SetReport {
        check(&history(&parts.concat()))
    }

    #[test]
    fn acknowledged_and_present_is_valid() {
        let report = run(&[
            add(1, 1, Kind::Ok),
            add(2, 2, Kind::Ok),
            read_all(9, &[1, 2]),
        ]);
        assert!(report.is_valid(), "{report:?}");
        assert_eq!(
            (report.attempted, report.acknowledged, report.present),
            (2, 2, 2)
        );
    }

    #[test]
    fn an_acknowledged_element_missing_is_lost() {
        let report = run(&[add(1, 1, Kind::Ok), add(2, 2, Kind::Ok), read_all(9, &[2])]);
        assert!(!report.is_valid());
        assert_eq!(report.lost, [1]);
    }

    #[test]
    fn an_element_never_added_is_unexpected() {
        let report = run(&[add(1, 1, Kind::Ok), read_all(9, &[1, 7])]);
        assert!(!report.is_valid());
        assert_eq!(report.unexpected, [7]);
    }

    #[test]
    fn an_element_whose_add_failed_is_unexpected_if_present() {
        let report = run(&[
            add(1, 1, Kind::Fail),
            add(2, 2, Kind::Fail),
            read_all(9, &[1]),
        ]);
        assert!(!report.is_valid());
        assert_eq!(report.unexpected, [1]);
        assert_eq!(report.failed, 2);
    }

    #[test]
    fn unknown_adds_may_be_present_or_absent() {
        let report = run(&[
            add(1, 1, Kind::Info),
            add(2, 2, Kind::Info),
            read_all(9, &[1]),
        ]);
        assert!(report.is_valid(), "{report:?}");
        assert_eq!(report.recovered, [1]);
        assert_eq!(report.indeterminate, 2);
    }

    #[test]
    fn a_never_completed_add_counts_as_unknown() {
        let events = history(&[
            (1, Kind::Invoke, Op::Add { element: 5 }),
            read_all(9, &[5])[0].clone(),
            read_all(9, &[5])[1].clone(),
        ]);
        let report = check(&events);
        assert!(report.is_valid(), "{report:?}");
        assert_eq!(report.recovered, [5]);
    }

    #[test]
    fn the_last_successful_read_is_the_final_one() {
        let report = run(&[add(1, 1, Kind::Ok), read_all(9, &[1]), read_all(9, &[])]);
        assert_eq!(report.lost, [1]);
    }

    #[test]
    fn an_add_acknowledged_during_the_final_read_is_not_lost() {
        let events = history(&[
            (1, Kind::Invoke, Op::Add { element: 1 }),
            (9, Kind::Invoke, Op::ReadAll { elements: None }),
            (1, Kind::Ok, Op::Add { element: 1 }),
            (
                9,
                Kind::Ok,
                Op::ReadAll {
                    elements: Some(vec![]),
                },
            ),
        ]);
        let report = check(&events);
        assert!(report.is_valid(), "{report:?}");
        assert_eq!(report.acknowledged_late, [1]);
    }

    #[test]
    fn a_duplicate_in_the_final_read_is_an_anomaly() {
        let report = run(&[add(1, 1, Kind::Ok), read_all(9, &[1, 1])]);
        assert!(!report.is_valid());
        assert_eq!(report.duplicated, [1]);
    }

    #[test]
    fn no_final_read_is_invalid_with_a_reason() {
        let report = run(&[add(1, 1, Kind::Ok)]);
        assert!(!report.is_valid());
        assert!(report.problem.unwrap().contains("no successful final read"));
        assert_eq!(report.acknowledged, 1);
    }

    #[test]
    fn a_malformed_history_is_invalid_with_a_reason() {
        let events = history(&[(1, Kind::Ok, Op::Add { element: 1 })]);
        let report = check(&events);
        assert!(!report.is_valid());
        assert!(report.problem.unwrap().contains("malformed"));
    }
}
