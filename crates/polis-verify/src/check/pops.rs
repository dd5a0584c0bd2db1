//! Checks the blocking-pop workload: producers RPUSH unique elements to
//! two lists; consumers BLMOVE from the jobs list into a processing list
//! (and LREM when done) or BLPOP the second list; after healing LRANGE
//! reads all three lists.
//!
//! The anomalies:
//! - `double-pop`: an element two successful pops returned, or one a
//!   successful pop returned that is still in the list it was popped
//!   from at the end;
//! - `duplicated`: an element the final lists hold more than once;
//! - `lost`: an acknowledged RPUSH to the jobs list whose element no pop
//!   returned and neither the jobs nor the processing list holds; for the
//!   BLPOP list, where a pop of unknown outcome may have taken an element
//!   away for good, only missing elements beyond the number of such pops;
//! - `invented`: an element popped or listed that no RPUSH tried, or
//!   whose every RPUSH certainly failed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::pair::{pair, Operation, Outcome};
use crate::history::{Event, Op};
use crate::workload::pop::{JOBS, JOBS_BLPOP, PROCESSING};

/// How many anomalies a report explains one by one.
const DETAILS_MAX: usize = 20;

/// What the blocking-pop checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PopReport {
    /// Distinct elements some producer tried to push.
    pub attempted: usize,
    /// Elements with an acknowledged RPUSH.
    pub acknowledged: usize,
    /// Elements whose RPUSHes ended unknown, none acknowledged.
    pub indeterminate: usize,
    /// Elements whose every RPUSH certainly failed.
    pub failed: usize,
    /// Successful pops that returned an element.
    pub pops: usize,
    /// Successful pops that timed out empty.
    pub empty_pops: usize,
    /// Pops of unknown outcome.
    pub unknown_pops: usize,
    /// Elements in the final lists (jobs, processing, the BLPOP list).
    pub remaining: usize,
    /// Popped twice, or popped and still queued: anomalies.
    pub double_pops: Vec<u64>,
    /// More than once in the final lists: anomalies.
    pub duplicated: Vec<u64>,
    /// Acknowledged, never popped and gone: anomalies.
    pub lost: Vec<u64>,
    /// Popped or listed but never (successfully) pushed: anomalies.
    pub invented: Vec<u64>,
    /// The first anomalies, each with the events that show it.
    pub details: Vec<String>,
    /// Why the history could not be checked, when it could not.
    pub problem: Option<String>,
}

impl PopReport {
    /// Returns whether the history could be checked and showed no
    /// anomaly.
    pub fn is_valid(&self) -> bool {
        self.problem.is_none()
            && self.double_pops.is_empty()
            && self.duplicated.is_empty()
            && self.lost.is_empty()
            && self.invented.is_empty()
    }

    fn explain(&mut self, line: String) {
        if self.details.len() < DETAILS_MAX {
            self.details.push(line);
        }
    }
}

/// The best that is known about the RPUSHes of one element.
#[derive(Default)]
struct Attempts<'a> {
    list: &'a str,
    acknowledged: bool,
    uncertain: bool,
}

/// Checks the list operations of `events`.
pub fn check(events: &[Event]) -> PopReport {
    let paired = match pair(events) {
        Ok(paired) => paired,
        Err(error) => return problem(format!("the history is malformed: {error}")),
    };
    let mut report = PopReport::default();
    let mut attempts: BTreeMap<u64, Attempts> = BTreeMap::new();
    // Element -> the successful pops that returned it.
    let mut popped: BTreeMap<u64, Vec<&Operation>> = BTreeMap::new();
    // List -> unknown pops of it.
    let mut unknown_pops: BTreeMap<&str, usize> = BTreeMap::new();
    // List -> its last successful final read.
    let mut final_lists: BTreeMap<&str, (&Operation, &[u64])> = BTreeMap::new();
    for operation in &paired.operations {
        match (&operation.seen, operation.outcome) {
            (Op::Rpush { list, element }, outcome) => {
                let attempt = attempts.entry(*element).or_default();
                attempt.list = list;
                match outcome {
                    Outcome::Ok => attempt.acknowledged = true,
                    Outcome::Info => attempt.uncertain = true,
                    Outcome::Fail => {}
                }
            }
            (Op::Pop { element, .. }, Outcome::Ok) => match element {
                Some(element) => popped.entry(*element).or_default().push(operation),
                None => report.empty_pops += 1,
            },
            (Op::Pop { list, .. }, Outcome::Info) => *unknown_pops.entry(list).or_default() += 1,
            (
                Op::Lrange {
                    list,
                    elements: Some(elements),
                },
                Outcome::Ok,
            ) => {
                let later = final_lists
                    .get(list.as_str())
                    .is_none_or(|(earlier, _)| earlier.complete_index < operation.complete_index);
                if later {
                    final_lists.insert(list, (operation, elements));
                }
            }
            _ => {}
        }
    }
    tally(&mut report, &attempts);
    report.pops = popped.values().map(Vec::len).sum();
    report.unknown_pops = unknown_pops.values().sum();

    for (element, pops) in &popped {
        if let [first, second, ..] = pops.as_slice() {
            report.double_pops.push(*element);
            report.explain(format!(
                "double-pop: {element} returned by {} and by {}",
                first.describe(),
                second.describe()
            ));
        }
    }
    let lists = [JOBS, PROCESSING, JOBS_BLPOP];
    let Some(finals) = lists
        .iter()
        .map(|list| final_lists.get(list).copied())
        .collect::<Option<Vec<_>>>()
    else {
        report.problem = Some(format!(
            "no successful final LRANGE of each of {}: nothing shows what the lists kept",
            lists.join(", ")
        ));
        return report;
    };
    // Element -> the final lists that hold it (once per occurrence).
    let mut held: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for (list, (_, elements)) in lists.iter().zip(&finals) {
        for element in elements.iter() {
            held.entry(*element).or_default().push(list);
        }
    }
    report.remaining = held.values().map(Vec::len).sum();
    for (element, holders) in &held {
        if holders.len() > 1 {
            report.duplicated.push(*element);
            report.explain(format!(
                "duplicated: {element} in the final lists {}",
                holders.join(", ")
            ));
        }
        if let Some(pop) = popped.get(element).and_then(|pops| pops.first()) {
            let Op::Pop { list, .. } = &pop.seen else {
                continue;
            };
            if holders.contains(&list.as_str()) && !report.double_pops.contains(element) {
                report.double_pops.push(*element);
                report.explain(format!(
                    "double-pop: {element} returned by {}, still in {list} at the end",
                    pop.describe()
                ));
            }
        }
    }
    report.double_pops.sort_unstable();

    let mut invented: BTreeSet<u64> = BTreeSet::new();
    for element in popped.keys().chain(held.keys()) {
        let never = match attempts.get(element) {
            None => true,
            Some(attempt) => !attempt.acknowledged && !attempt.uncertain,
        };
        if never && invented.insert(*element) {
            report.explain(format!(
                "invented: {element} popped or listed, never pushed successfully"
            ));
        }
    }
    report.invented = invented.into_iter().collect();

    let mut missing: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (element, attempt) in &attempts {
        if attempt.acknowledged && !popped.contains_key(element) && !held.contains_key(element) {
            missing.entry(attempt.list).or_default().push(*element);
        }
    }
    for (list, elements) in missing {
        // A BLMOVE of unknown outcome leaves its element in the processing
        // list; a BLPOP of unknown outcome may have taken one away.
        let excused = if list == JOBS {
            0
        } else {
            unknown_pops.get(list).copied().unwrap_or(0)
        };
        if elements.len() > excused {
            report.explain(format!(
                "lost: {} acknowledged elements of {list} never popped and gone, \
                 {excused} pops of unknown outcome: {elements:?}",
                elements.len()
            ));
            report.lost.extend(elements);
        }
    }
    report
}

fn problem(reason: String) -> PopReport {
    PopReport {
        problem: Some(reason),
        ..PopReport::default()
    }
}

fn tally(report: &mut PopReport, attempts: &BTreeMap<u64, Attempts>) {
    report.attempted = attempts.len();
    for attempt in attempts.values() {
        if attempt.acknowledged {
            report.acknowledged += 1;
        } else if attempt.uncertain {
            report.indeterminate += 1;
        } else {
            report.failed += 1;
        }
    }
}

#[cfg(test)]
#[path = "pops_test.rs"]
mod tests;
