//! Checks the eventual workload: clients write eventual keys on any node
//! (SET of unique values to registers, INCRBY of positive deltas to
//! counters, SADD of unique elements to sets and SREM of some they saw
//! added, SET then DEL of keys each client owns alone); after healing,
//! every node's copy of every key is read from that node alone. The rules
//! are what the namespace's merges promise once replicas converged:
//!
//! - **convergence**: every node's final read of a key is the same
//!   (*divergent*); every node answered for every key (*no-final-read*);
//!   the nodes' `GET /eventual` digests agreed within the recovery
//!   timeout (*not-converged*);
//! - **registers** (last writer wins): a value is one some SET wrote
//!   with an `ok` or unknown outcome (*invented*, or *failed-write-seen*
//!   when that SET certainly failed); nil only if no SET was acknowledged,
//!   or something may have deleted it (*lost-write*);
//! - **counters** (every increment counts): the value lies between the
//!   acknowledged increments' sum and that sum plus the unknown ones'
//!   (*lost-increment*, *invented-increment*), and is at least every
//!   value an acknowledged INCRBY answered, since the state that answer
//!   came from was stored before the reply (*lost-increment*);
//! - **sets** (add wins, observed remove): every member is an element
//!   some SADD (`ok` or unknown) added (*invented*, *failed-write-seen*);
//!   every acknowledged add is present unless an SREM of it may have
//!   removed it (*lost-add*); an element whose SREM answered 1 is absent
//!   (*removed-present*). Stricter than "any SREM ok or unknown": an SREM
//!   that answered 0 removed nothing (its coordinating node had not
//!   received the add, and SREM takes away only the adds it saw), so it
//!   excuses no missing element;
//! - **deletes**: a key whose DEL answered 1 is absent at the end, as the
//!   workload never writes it again (*resurrected*); an SREM or DEL that
//!   answered 1 saw something some write may have made (*saw-unwritten*).
//!
//! The reads taken right after healing, before the nodes converged, are
//! only counted: how many keys differed between nodes then.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::eventual_rules::{self as rules, render, KeyHistory, Kind, Seen};
use super::pair::{pair, Operation, Outcome};
use crate::history::{Event, Op};

/// Anomalies written out in full per class; the others are counted.
const SHOWN_PER_CLASS_MAX: usize = 10;

/// What the eventual checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventualReport {
    /// Keys written, by kind.
    pub registers: usize,
    pub counters: usize,
    pub sets: usize,
    pub deleted: usize,
    /// Nodes read after converging.
    pub nodes: usize,
    /// SREMs acknowledged, by reply (1: removed; 0: the coordinating
    /// node had not seen the add).
    pub srem_removed: usize,
    pub srem_missed: usize,
    /// DELs acknowledged, by reply.
    pub del_removed: usize,
    pub del_missed: usize,
    /// Keys whose nodes answered differently right after healing (none
    /// when no such read was taken).
    pub divergent_before: Option<usize>,
    /// Keys whose nodes answered differently after converging.
    pub divergent: usize,
    /// Whether the nodes' digests agreed, and how long after healing
    /// (none when the history does not say).
    pub converged: Option<bool>,
    pub converge_ms: Option<u64>,
    /// Anomalies by class.
    pub counts: BTreeMap<String, usize>,
    /// The first few anomalies of each class, explained.
    pub anomalies: Vec<EventualAnomaly>,
    /// Why the history could not be checked, when it could not.
    pub problem: Option<String>,
}

impl EventualReport {
    /// Returns whether the history could be checked and shows no anomaly.
    pub fn is_valid(&self) -> bool {
        self.problem.is_none() && self.counts.is_empty()
    }

    /// Returns how many keys were written.
    pub fn keys(&self) -> usize {
        self.registers + self.counters + self.sets + self.deleted
    }
}

/// One anomaly: its class, the key, and what shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventualAnomaly {
    pub class: String,
    pub key: String,
    pub explanation: String,
}

/// Returns whether a completed op is the invoked eventual op: the same
/// command on the same key with the same arguments (what it answered may
/// differ).
pub(crate) fn same_operation(invoked: &Op, completed: &Op) -> bool {
    match (invoked, completed) {
        (
            Op::EventualSet { key, value, .. },
            Op::EventualSet {
                key: other,
                value: other_value,
                ..
            },
        )
        | (
            Op::EventualSadd {
                key,
                element: value,
                ..
            },
            Op::EventualSadd {
                key: other,
                element: other_value,
                ..
            },
        ) => key == other && value == other_value,
        (
            Op::EventualIncrby { key, delta, .. },
            Op::EventualIncrby {
                key: other,
                delta: other_delta,
                ..
            },
        ) => key == other && delta == other_delta,
        (
            Op::EventualSrem { key, element, .. },
            Op::EventualSrem {
                key: other,
                element: other_element,
                ..
            },
        ) => key == other && element == other_element,
        (Op::EventualDel { key, .. }, Op::EventualDel { key: other, .. }) => key == other,
        (Op::EventualConverge { .. }, Op::EventualConverge { .. }) => true,
        (
            Op::EventualGet {
                key,
                node,
                converged,
                ..
            },
            Op::EventualGet {
                key: k,
                node: n,
                converged: c,
                ..
            },
        )
        | (
            Op::EventualMembers {
                key,
                node,
                converged,
                ..
            },
            Op::EventualMembers {
                key: k,
                node: n,
                converged: c,
                ..
            },
        ) => (key, node, converged) == (k, n, c),
        _ => false,
    }
}

/// Checks the eventual operations of `events`.
pub fn check(events: &[Event]) -> EventualReport {
    let mut report = EventualReport::default();
    let paired = match pair(events) {
        Ok(paired) => paired,
        Err(error) => {
            report.problem = Some(format!("the history is malformed: {error}"));
            return report;
        }
    };
    let mut keys: BTreeMap<&str, KeyHistory> = BTreeMap::new();
    let mut nodes: BTreeSet<&str> = BTreeSet::new();
    let mut checker = Checker {
        report: EventualReport::default(),
    };
    for operation in &paired.operations {
        let ok = operation.outcome == Outcome::Ok;
        match (&operation.op, &operation.seen) {
            (Op::EventualSet { key, .. }, _) => keys.entry(key).or_default().sets.push(operation),
            (Op::EventualIncrby { key, .. }, _) => {
                keys.entry(key).or_default().incrbys.push(operation);
            }
            (Op::EventualSadd { key, .. }, _) => keys.entry(key).or_default().sadds.push(operation),
            (Op::EventualSrem { key, .. }, Op::EventualSrem { removed, .. }) => {
                keys.entry(key).or_default().srems.push(operation);
                match removed {
                    Some(0) if ok => checker.report.srem_missed += 1,
                    Some(_) if ok => checker.report.srem_removed += 1,
                    _ => {}
                }
            }
            (Op::EventualDel { key, .. }, Op::EventualDel { removed, .. }) => {
                keys.entry(key).or_default().dels.push(operation);
                match removed {
                    Some(0) if ok => checker.report.del_missed += 1,
                    Some(_) if ok => checker.report.del_removed += 1,
                    _ => {}
                }
            }
            (Op::EventualConverge { .. }, _) => checker.converge(events, operation),
            (
                Op::EventualGet { key, node, .. },
                Op::EventualGet {
                    converged, value, ..
                },
            ) if ok => {
                let seen = Seen::Value(value.as_deref());
                keys.entry(key).or_default().read(node, *converged, seen);
                nodes.extend(converged.then_some(node.as_str()));
            }
            (
                Op::EventualMembers { key, node, .. },
                Op::EventualMembers {
                    converged,
                    members: Some(members),
                    ..
                },
            ) if ok => {
                let seen = Seen::Members(members.iter().map(String::as_str).collect());
                keys.entry(key).or_default().read(node, *converged, seen);
                nodes.extend(converged.then_some(node.as_str()));
            }
            _ => {}
        }
    }
    if keys.values().all(|history| history.kind().is_none()) {
        return checker.report;
    }
    if nodes.is_empty() {
        checker.report.problem = Some("no successful final read after converging".into());
        return checker.report;
    }
    checker.report.nodes = nodes.len();
    let mut divergent_before = None;
    for (key, history) in &keys {
        if history.before.values().collect::<BTreeSet<_>>().len() > 1 {
            *divergent_before.get_or_insert(0) += 1;
        } else if !history.before.is_empty() {
            divergent_before.get_or_insert(0);
        }
        checker.check_key(key, history, &nodes);
    }
    checker.report.divergent_before = divergent_before;
    checker.report
}

struct Checker {
    report: EventualReport,
}

impl Checker {
    fn anomaly(&mut self, class: &str, key: &str, explanation: String) {
        let count = self.report.counts.entry(class.to_owned()).or_insert(0);
        *count += 1;
        if *count <= SHOWN_PER_CLASS_MAX {
            self.report.anomalies.push(EventualAnomaly {
                class: class.to_owned(),
                key: key.to_owned(),
                explanation,
            });
        }
    }

    /// Takes in the wait for convergence: how long it took, or that it
    /// never came.
    fn converge(&mut self, events: &[Event], operation: &Operation) {
        match (operation.outcome, operation.complete_ns) {
            (Outcome::Ok, Some(complete_ns)) => {
                self.report.converged = Some(true);
                let took_ms = complete_ns.saturating_sub(operation.invoke_ns) / 1_000_000;
                self.report.converge_ms = Some(took_ms);
            }
            _ => {
                self.report.converged = Some(false);
                let error = operation
                    .complete_index
                    .and_then(|index| events.iter().find(|event| event.index == index))
                    .and_then(|event| event.error.clone())
                    .unwrap_or_else(|| "the wait never completed".to_owned());
                self.anomaly("not-converged", "", error);
            }
        }
    }

    fn check_key(&mut self, key: &str, history: &KeyHistory, nodes: &BTreeSet<&str>) {
        for node in nodes {
            if !history.finals.contains_key(node) {
                self.anomaly(
                    "no-final-read",
                    key,
                    format!("node {node} never answered its final read"),
                );
            }
        }
        let distinct: BTreeSet<&Seen> = history.finals.values().collect();
        if distinct.len() > 1 {
            self.report.divergent += 1;
            let answers: Vec<String> = history
                .finals
                .iter()
                .map(|(node, seen)| format!("{node}: {}", render(seen)))
                .collect();
            self.anomaly(
                "divergent",
                key,
                format!("the nodes answered differently: {}", answers.join("; ")),
            );
        }
        let kind = history.kind();
        match kind {
            Some(Kind::Set) => self.report.sets += 1,
            Some(Kind::Counter) => self.report.counters += 1,
            Some(Kind::Deleted) => self.report.deleted += 1,
            Some(Kind::Register) => self.report.registers += 1,
            None => {}
        }
        // Each answer is checked, so a divergent node's is too.
        let mut anomaly = |class: &str, explanation| self.anomaly(class, key, explanation);
        for seen in distinct {
            match kind {
                Some(Kind::Set) => rules::set(history, seen, &mut anomaly),
                Some(Kind::Counter) => rules::counter(history, seen, &mut anomaly),
                Some(Kind::Deleted) => {
                    rules::register(history, seen, &mut anomaly);
                    rules::deleted(history, seen, &mut anomaly);
                }
                Some(Kind::Register) => rules::register(history, seen, &mut anomaly),
                None => {}
            }
        }
    }
}
