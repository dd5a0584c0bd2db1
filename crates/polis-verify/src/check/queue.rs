//! Checks the queue workload: producers XADD unique payloads to one
//! stream, consumers of one group read (XREADGROUP, XAUTOCLAIM) and XACK
//! them, and after healing a final drain reads every pending and new
//! entry and XRANGE reads the whole stream.
//!
//! Delivery is at least once, so a payload delivered twice is counted,
//! not condemned. The anomalies:
//! - `undelivered`: an acknowledged XADD's payload no read ever delivered;
//! - `lost`: an acknowledged XADD's id missing from the final XRANGE;
//! - `invented`: an entry whose payload no XADD tried, whose every XADD
//!   certainly failed, or whose id is not the one its XADD was given;
//! - `ack-lost`: an entry delivered by a read invoked after an XACK of its
//!   id was acknowledged: the acknowledgement did not last (across a
//!   failover, say), and the entry came back from the pending list.
//!
//! In the redeliver mode (the group's ack-wait, max deliveries and
//! dead-letter stream), an entry must also end somewhere, and the final
//! XRANGE of the dead-letter stream shows where the others went:
//! - `unresolved`: an acknowledged XADD's id neither acknowledged by an
//!   XACK nor in the dead-letter stream: the entry vanished from the
//!   group;
//! - `dead-invented`: a dead-letter entry whose source no XADD added, or
//!   not under that id;
//! - `dead-twice`: an entry dead-lettered more than once.
//!
//! There, an entry dead-lettered need not have been seen delivered: its
//! deliveries may all have been reads whose replies were lost.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::pair::{pair, Operation, Outcome};
use crate::history::{Entry, Event, Op};
use crate::workload::QueueMode;

/// How many anomalies a report explains one by one.
const DETAILS_MAX: usize = 20;

/// What the queue checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueReport {
    /// Distinct payloads some producer tried to add.
    pub attempted: usize,
    /// Payloads with an acknowledged XADD.
    pub acknowledged: usize,
    /// Payloads whose XADDs ended unknown, none acknowledged.
    pub indeterminate: usize,
    /// Payloads whose every XADD certainly failed.
    pub failed: usize,
    /// Entries delivered by successful reads, counting repeats.
    pub deliveries: usize,
    /// Distinct payloads delivered.
    pub delivered: usize,
    /// Deliveries beyond the first of each payload (at least once allows
    /// them).
    pub duplicates: usize,
    /// Entries the final XRANGE returned.
    pub ranged: usize,
    /// XPENDING summaries sampled, and the largest count seen.
    pub pending_samples: usize,
    pub pending_max: u64,
    /// Acknowledged, never delivered: anomalies.
    pub undelivered: Vec<u64>,
    /// Acknowledged, absent from the final XRANGE: anomalies.
    pub lost: Vec<u64>,
    /// Delivered or ranged but never (successfully) added: anomalies.
    pub invented: Vec<u64>,
    /// Delivered again after an acknowledged XACK: anomalies.
    pub ack_lost: Vec<u64>,
    /// Entries the final XRANGE of the dead-letter stream returned (the
    /// redeliver mode).
    pub dead_lettered: usize,
    /// Acknowledged, then neither acknowledged by a consumer nor
    /// dead-lettered: anomalies (the redeliver mode).
    pub unresolved: Vec<u64>,
    /// Dead-lettered but never (successfully) added, or under another id:
    /// anomalies.
    pub dead_invented: Vec<u64>,
    /// Dead-lettered more than once: anomalies.
    pub dead_twice: Vec<u64>,
    /// The first anomalies, each with the events that show it.
    pub details: Vec<String>,
    /// Why the history could not be checked, when it could not.
    pub problem: Option<String>,
}

impl QueueReport {
    /// Returns whether the history could be checked and showed no
    /// anomaly.
    pub fn is_valid(&self) -> bool {
        self.problem.is_none()
            && self.undelivered.is_empty()
            && self.lost.is_empty()
            && self.invented.is_empty()
            && self.ack_lost.is_empty()
            && self.unresolved.is_empty()
            && self.dead_invented.is_empty()
            && self.dead_twice.is_empty()
    }

    fn explain(&mut self, line: String) {
        if self.details.len() < DETAILS_MAX {
            self.details.push(line);
        }
    }
}

/// The best that is known about the XADDs of one payload.
#[derive(Default)]
struct Attempts {
    /// The id of an acknowledged XADD, and the event that acknowledged it.
    acknowledged: Option<(String, u64)>,
    uncertain: bool,
}

/// One entry delivered by a successful read.
struct Delivery<'a> {
    entry: &'a Entry,
    operation: &'a Operation,
}

/// Checks the queue operations of `events`, run in `mode`.
pub fn check(events: &[Event], mode: QueueMode) -> QueueReport {
    let paired = match pair(events) {
        Ok(paired) => paired,
        Err(error) => return problem(format!("the history is malformed: {error}")),
    };
    let mut report = QueueReport::default();
    let mut attempts: BTreeMap<u64, Attempts> = BTreeMap::new();
    let mut deliveries: Vec<Delivery> = Vec::new();
    // Entry id -> (time, event index) of its earliest acknowledged XACK.
    let mut acked: HashMap<&str, (u64, u64)> = HashMap::new();
    let mut final_range: Option<(&Operation, &[Entry])> = None;
    let mut final_dead: Option<(&Operation, &[Entry])> = None;
    for operation in &paired.operations {
        match (&operation.seen, operation.outcome) {
            (Op::Xadd { payload, id }, outcome) => {
                let attempt = attempts.entry(*payload).or_default();
                match (outcome, id) {
                    (Outcome::Ok, Some(id)) => {
                        let index = operation.complete_index.unwrap_or(operation.invoke_index);
                        attempt.acknowledged.get_or_insert((id.clone(), index));
                    }
                    (Outcome::Fail, _) => {}
                    _ => attempt.uncertain = true,
                }
            }
            (
                Op::Xreadgroup {
                    entries: Some(entries),
                    ..
                }
                | Op::Xautoclaim {
                    entries: Some(entries),
                    ..
                },
                Outcome::Ok,
            ) => deliveries.extend(entries.iter().map(|entry| Delivery { entry, operation })),
            (Op::Xack { ids }, Outcome::Ok) => {
                let at = (
                    operation.complete_ns.unwrap_or(u64::MAX),
                    operation.complete_index.unwrap_or(operation.invoke_index),
                );
                for id in ids {
                    let earliest = acked.entry(id).or_insert(at);
                    *earliest = (*earliest).min(at);
                }
            }
            (Op::Xpending { count: Some(count) }, Outcome::Ok) => {
                report.pending_samples += 1;
                report.pending_max = report.pending_max.max(*count);
            }
            (
                Op::Xrange {
                    entries: Some(entries),
                },
                Outcome::Ok,
            ) => latest(&mut final_range, operation, entries),
            (
                Op::XrangeDead {
                    entries: Some(entries),
                },
                Outcome::Ok,
            ) => latest(&mut final_dead, operation, entries),
            _ => {}
        }
    }
    tally(&mut report, &attempts);

    let mut delivered: BTreeMap<u64, usize> = BTreeMap::new();
    let mut invented = BTreeSet::new();
    let mut ack_lost = BTreeSet::new();
    for delivery in &deliveries {
        let Delivery { entry, operation } = delivery;
        *delivered.entry(entry.payload).or_default() += 1;
        if let Some(reason) = invention(&attempts, entry) {
            if invented.insert(entry.payload) {
                report.explain(format!(
                    "invented: {}={} delivered by {} ({reason})",
                    entry.id,
                    entry.payload,
                    operation.describe()
                ));
            }
        }
        if let Some(&(acked_ns, acked_index)) = acked.get(entry.id.as_str()) {
            if operation.invoke_ns > acked_ns && ack_lost.insert(entry.payload) {
                report.explain(format!(
                    "ack-lost: {}={} acknowledged by XACK at event {acked_index}, \
                     delivered again by {}",
                    entry.id,
                    entry.payload,
                    operation.describe()
                ));
            }
        }
    }
    report.deliveries = deliveries.len();
    report.delivered = delivered.len();
    report.duplicates = delivered.values().map(|count| count - 1).sum();

    let Some((range, entries)) = final_range else {
        report.problem =
            Some("no successful final XRANGE: nothing shows which entries the stream kept".into());
        return report;
    };
    report.ranged = entries.len();
    for entry in entries {
        if let Some(reason) = invention(&attempts, entry) {
            if invented.insert(entry.payload) {
                report.explain(format!(
                    "invented: {}={} in the final XRANGE ({reason})",
                    entry.id, entry.payload
                ));
            }
        }
    }
    let dead = match (mode, final_dead) {
        (QueueMode::Claim, _) => None,
        (QueueMode::Redeliver, Some(dead)) => Some(dead),
        (QueueMode::Redeliver, None) => {
            report.problem = Some(
                "no successful final XRANGE of the dead-letter stream: nothing shows which \
                 entries moved there"
                    .into(),
            );
            return report;
        }
    };
    let dead_ids = dead.map_or_else(BTreeSet::new, |(_, entries)| {
        check_dead_letters(&mut report, &attempts, entries)
    });
    let ranged: BTreeSet<&str> = entries.iter().map(|entry| entry.id.as_str()).collect();
    for (payload, attempt) in &attempts {
        let Some((id, index)) = &attempt.acknowledged else {
            continue;
        };
        if let Some((dead_range, _)) = dead {
            let resolved = acked.contains_key(id.as_str()) || dead_ids.contains(id.as_str());
            if !resolved && *index < dead_range.invoke_index {
                report.unresolved.push(*payload);
                report.explain(format!(
                    "unresolved: {id}={payload}, acknowledged at event {index}, never \
                     acknowledged by a consumer nor in {}",
                    dead_range.describe()
                ));
            }
        }
        if !delivered.contains_key(payload) && !dead_ids.contains(id.as_str()) {
            report.undelivered.push(*payload);
            report.explain(format!(
                "undelivered: {id}={payload}, acknowledged at event {index}, never delivered"
            ));
        }
        if !ranged.contains(id.as_str()) && *index < range.invoke_index {
            report.lost.push(*payload);
            report.explain(format!(
                "lost: {id}={payload}, acknowledged at event {index}, missing from {}",
                range.describe()
            ));
        }
    }
    report.invented = invented.into_iter().collect();
    report.ack_lost = ack_lost.into_iter().collect();
    report
}

/// Keeps the latest successful final read of a kind.
fn latest<'a>(
    kept: &mut Option<(&'a Operation, &'a [Entry])>,
    operation: &'a Operation,
    entries: &'a [Entry],
) {
    let later = kept.is_none_or(|(earlier, _)| earlier.complete_index < operation.complete_index);
    if later {
        *kept = Some((operation, entries));
    }
}

/// Checks the entries of the dead-letter stream (each as the entry it
/// came from): each added, and only once. Returns their source ids.
fn check_dead_letters<'a>(
    report: &mut QueueReport,
    attempts: &BTreeMap<u64, Attempts>,
    entries: &'a [Entry],
) -> BTreeSet<&'a str> {
    report.dead_lettered = entries.len();
    let mut ids = BTreeSet::new();
    let mut invented = BTreeSet::new();
    let mut twice = BTreeSet::new();
    for entry in entries {
        if let Some(reason) = invention(attempts, entry) {
            if invented.insert(entry.payload) {
                report.explain(format!(
                    "dead-invented: {}={} in the dead-letter stream ({reason})",
                    entry.id, entry.payload
                ));
            }
        }
        if !ids.insert(entry.id.as_str()) && twice.insert(entry.payload) {
            report.explain(format!(
                "dead-twice: {}={} is in the dead-letter stream more than once",
                entry.id, entry.payload
            ));
        }
    }
    report.dead_invented = invented.into_iter().collect();
    report.dead_twice = twice.into_iter().collect();
    ids
}

/// Returns why `entry` cannot have come from an XADD, if it cannot.
fn invention(attempts: &BTreeMap<u64, Attempts>, entry: &Entry) -> Option<String> {
    match attempts.get(&entry.payload) {
        None => Some("no XADD of this payload".into()),
        Some(Attempts {
            acknowledged: Some((id, index)),
            ..
        }) if *id != entry.id => Some(format!("the XADD at event {index} was given {id}")),
        Some(Attempts {
            acknowledged: None,
            uncertain: false,
        }) => Some("every XADD of it failed".into()),
        Some(_) => None,
    }
}

fn problem(reason: String) -> QueueReport {
    QueueReport {
        problem: Some(reason),
        ..QueueReport::default()
    }
}

fn tally(report: &mut QueueReport, attempts: &BTreeMap<u64, Attempts>) {
    report.attempted = attempts.len();
    for attempt in attempts.values() {
        if attempt.acknowledged.is_some() {
            report.acknowledged += 1;
        } else if attempt.uncertain {
            report.indeterminate += 1;
        } else {
            report.failed += 1;
        }
    }
}

#[cfg(test)]
#[path = "queue_test.rs"]
mod tests;
