//! Checks the lock workload: the tokens granted, and which of the writes
//! they guarded took effect.
//!
//! A grant *supersedes* a token when its acknowledgement, with a larger
//! token for the same lock, completed: from then on the lock's current
//! token is at least that larger one, so a FENCED write invoked
//! afterwards with the smaller token must never apply. The guarded list
//! is in apply order (RPUSH appends), and at apply a token holds its lock
//! only until a larger one is granted, so the tokens of the list's
//! elements never go down.
//!
//! The anomalies, per lock:
//! - `token-shared`: two owners were granted one token;
//! - `grant-order`: a grant acknowledged before another was invoked
//!   carries a larger token than the later one;
//! - `stale-applied`: a write took effect (acknowledged, or its element in
//!   the final list) although its token was superseded before it was
//!   invoked;
//! - `list-order`: the final list holds an element written with a smaller
//!   token after one written with a larger token;
//! - `refused-applied`: the element of a refused write is in the list;
//! - `lost`: an acknowledged write's element is missing from the list;
//! - `duplicated`, `invented`: an element twice in the list, or one no
//!   write of that lock tried.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::pair::{pair, Operation, Outcome};
use crate::history::{Event, Op};
use crate::workload::lock::guarded_list;

/// How many anomalies a report explains one by one.
const DETAILS_MAX: usize = 50;

/// One anomaly: its kind (see the module's list), its lock, and the
/// operations that show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockAnomaly {
    pub kind: String,
    pub lock: String,
    pub explanation: String,
}

/// What the lock checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LockReport {
    /// Locks some client acquired.
    pub locks: usize,
    /// Distinct tokens acknowledged to some owner.
    pub grants: usize,
    /// Acknowledged ACQUIREs answered nil (another owner's lease ran).
    pub busy: usize,
    /// FENCED writes acknowledged, refused, and of unknown outcome.
    pub writes_ok: usize,
    pub writes_refused: usize,
    pub writes_unknown: usize,
    /// Refused writes whose token had been superseded when they were
    /// invoked: the fence at work.
    pub stale_refused: usize,
    /// Elements in the final lists.
    pub applied: usize,
    /// Every anomaly found (the first [`DETAILS_MAX`] explained).
    pub anomalies: Vec<LockAnomaly>,
    /// Anomalies past the ones listed.
    pub anomalies_more: usize,
    /// Why the history could not be checked, when it could not.
    pub problem: Option<String>,
}

impl LockReport {
    /// Returns whether the history could be checked and showed no
    /// anomaly.
    pub fn is_valid(&self) -> bool {
        self.problem.is_none() && self.anomalies.is_empty()
    }

    fn anomaly(&mut self, kind: &str, lock: &str, explanation: String) {
        if self.anomalies.len() < DETAILS_MAX {
            self.anomalies.push(LockAnomaly {
                kind: kind.to_owned(),
                lock: lock.to_owned(),
                explanation,
            });
        } else {
            self.anomalies_more += 1;
        }
    }
}

/// An acknowledged grant.
struct Grant<'a> {
    token: u64,
    owner: &'a str,
    operation: &'a Operation,
}

/// The grants of one lock, in the order their acknowledgements completed,
/// each with the largest token acknowledged so far.
struct Grants<'a> {
    by_completion: Vec<(u64, u64, &'a Grant<'a>)>,
}

impl<'a> Grants<'a> {
    fn new(grants: &'a [Grant<'a>]) -> Self {
        let mut sorted: Vec<&Grant> = grants.iter().collect();
        sorted.sort_by_key(|grant| grant.operation.complete_ns);
        let mut by_completion = Vec::with_capacity(sorted.len());
        let mut largest: Option<&Grant> = None;
        for grant in sorted {
            if largest.is_none_or(|largest| grant.token > largest.token) {
                largest = Some(grant);
            }
            if let (Some(completed), Some(largest)) = (grant.operation.complete_ns, largest) {
                by_completion.push((completed, largest.token, largest));
            }
        }
        Self { by_completion }
    }

    /// Returns the grant of the largest token acknowledged before `ns`.
    fn largest_before(&self, ns: u64) -> Option<&'a Grant<'a>> {
        let before = self
            .by_completion
            .partition_point(|(completed, _, _)| *completed < ns);
        before.checked_sub(1).map(|last| self.by_completion[last].2)
    }
}

/// Checks the lock operations of `events`.
pub fn check(events: &[Event]) -> LockReport {
    let paired = match pair(events) {
        Ok(paired) => paired,
        Err(error) => {
            return LockReport {
                problem: Some(format!("the history is malformed: {error}")),
                ..LockReport::default()
            }
        }
    };
    let mut report = LockReport::default();
    let mut grants: BTreeMap<&str, Vec<Grant>> = BTreeMap::new();
    let mut writes: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    // List -> its last successful final read.
    let mut finals: BTreeMap<&str, (&Operation, &[u64])> = BTreeMap::new();
    for operation in &paired.operations {
        match (&operation.seen, operation.outcome) {
            (Op::LockAcquire { lock, owner, token }, Outcome::Ok) => match token {
                Some(token) => grants.entry(lock).or_default().push(Grant {
                    token: *token,
                    owner,
                    operation,
                }),
                None => report.busy += 1,
            },
            (Op::FencedPush { lock, .. }, _) => writes.entry(lock).or_default().push(operation),
            (
                Op::Lrange {
                    list,
                    elements: Some(elements),
                },
                Outcome::Ok,
            ) => {
                let later = finals
                    .get(list.as_str())
                    .is_none_or(|(earlier, _)| earlier.complete_index < operation.complete_index);
                if later {
                    finals.insert(list, (operation, elements));
                }
            }
            _ => {}
        }
    }
    report.locks = grants.len();
    let locks: BTreeSet<&str> = grants.keys().chain(writes.keys()).copied().collect();
    for lock in locks {
        let granted = grants.remove(lock).unwrap_or_default();
        let written = writes.remove(lock).unwrap_or_default();
        let list = guarded_list(lock);
        let final_read = finals.get(list.as_str()).map(|(_, elements)| *elements);
        check_lock(&mut report, lock, &granted, &written, final_read);
    }
    report
}

/// Checks one lock: its grants, its writes, its final list.
fn check_lock(
    report: &mut LockReport,
    lock: &str,
    granted: &[Grant],
    written: &[&Operation],
    final_read: Option<&[u64]>,
) {
    let mut owners: BTreeMap<u64, &Grant> = BTreeMap::new();
    for grant in granted {
        match owners.get(&grant.token) {
            Some(first) if first.owner != grant.owner => {
                let explanation = format!(
                    "token {} granted to {} by {} and to {} by {}",
                    grant.token,
                    first.owner,
                    first.operation.describe(),
                    grant.owner,
                    grant.operation.describe()
                );
                report.anomaly("token-shared", lock, explanation);
            }
            Some(_) => {}
            None => {
                owners.insert(grant.token, grant);
            }
        }
    }
    report.grants += owners.len();
    let order = Grants::new(granted);
    for grant in granted {
        if let Some(earlier) = order.largest_before(grant.operation.invoke_ns) {
            if earlier.token > grant.token {
                let explanation = format!(
                    "{} got token {} after {} had got {}",
                    grant.operation.describe(),
                    grant.token,
                    earlier.operation.describe(),
                    earlier.token
                );
                report.anomaly("grant-order", lock, explanation);
            }
        }
    }

    // Element -> its write, its token, and the grant that had superseded
    // the token when the write was invoked.
    let mut by_element: BTreeMap<u64, (&Operation, u64, Option<&Grant>)> = BTreeMap::new();
    for write in written {
        let Op::FencedPush { token, element, .. } = &write.op else {
            continue;
        };
        let superseded = order
            .largest_before(write.invoke_ns)
            .filter(|grant| grant.token > *token);
        by_element.insert(*element, (write, *token, superseded));
        match write.outcome {
            Outcome::Ok => report.writes_ok += 1,
            Outcome::Fail => report.writes_refused += 1,
            Outcome::Info => report.writes_unknown += 1,
        }
        match (write.outcome, superseded) {
            (Outcome::Fail, Some(_)) => report.stale_refused += 1,
            (Outcome::Ok, Some(grant)) => {
                let explanation = format!(
                    "{} acknowledged, invoked after {} had got token {}",
                    write.describe(),
                    grant.operation.describe(),
                    grant.token
                );
                report.anomaly("stale-applied", lock, explanation);
            }
            _ => {}
        }
    }

    let Some(elements) = final_read else {
        if !written.is_empty() {
            report.problem = Some(format!(
                "no successful final LRANGE of {}: nothing shows which writes took effect",
                guarded_list(lock)
            ));
        }
        return;
    };
    report.applied += elements.len();
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    // The largest token so far in the list, and its element.
    let mut largest: Option<(u64, u64)> = None;
    for element in elements {
        if !seen.insert(*element) {
            report.anomaly(
                "duplicated",
                lock,
                format!("{element} more than once in the list"),
            );
            continue;
        }
        let Some((write, token, superseded)) = by_element.get(element) else {
            let explanation = format!("{element} in the list, but no write of this lock tried it");
            report.anomaly("invented", lock, explanation);
            continue;
        };
        if write.outcome == Outcome::Fail {
            let explanation = format!(
                "{} was refused, yet its element is in the list",
                write.describe()
            );
            report.anomaly("refused-applied", lock, explanation);
        }
        if let (Some(grant), Outcome::Info) = (superseded, write.outcome) {
            let explanation = format!(
                "{} took effect, invoked after {} had got token {}",
                write.describe(),
                grant.operation.describe(),
                grant.token
            );
            report.anomaly("stale-applied", lock, explanation);
        }
        match largest {
            Some((above, before)) if *token < above => {
                let explanation = format!(
                    "{element} (token {token}) follows {before} (token {above}) in the list"
                );
                report.anomaly("list-order", lock, explanation);
            }
            _ => largest = Some((*token, *element)),
        }
    }
    for (element, (write, _, _)) in &by_element {
        if write.outcome == Outcome::Ok && !seen.contains(element) {
            let explanation = format!(
                "{} acknowledged, its element not in the list",
                write.describe()
            );
            report.anomaly("lost", lock, explanation);
        }
    }
}

#[cfg(test)]
#[path = "locks_test.rs"]
mod tests;
