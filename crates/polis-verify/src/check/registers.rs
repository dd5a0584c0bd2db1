//! Checks that the register operations of a history are linearizable:
//! that there is one order of all of them, consistent with real time
//! (an operation that finished before another started comes first), in
//! which every read sees the latest write.
//!
//! The model is one register per key, initially nil. A write sets it; a
//! compare-and-set that succeeded found `from` and set `to`; a read that
//! succeeded saw the register's value. What failed certainly did not
//! happen and is left out (a failed compare-and-set found something other
//! than `from`, and changed nothing). A write or compare-and-set whose
//! outcome is unknown may have taken effect at any time after its
//! invocation, or never. Reads that did not succeed are left out: they
//! change nothing.
//!
//! Keys are independent registers, so each is checked on its own (a
//! history is linearizable when every key's is: Herlihy and Wing's
//! locality). The search itself lives in [`super::search`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::pair::{describe_op, pair, Operation, OperationRef, Outcome};
use super::search::{self, Action, Limits, SearchOp, Value};
use crate::history::{Event, Op};

/// How far the checker may search before it gives up on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Configurations (linearized set and value) explored for one key.
    pub states_max: u64,
    /// Wall-clock time for the whole check; keys not finished by then are
    /// unknown.
    pub time_max: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            states_max: 10_000_000,
            time_max: Duration::from_secs(60),
        }
    }
}

/// What the register checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegisterReport {
    /// Keys the history touches.
    pub keys: usize,
    /// Register operations in the history, failed ones included.
    pub operations: usize,
    /// At most one per key: where its history stops being linearizable.
    pub anomalies: Vec<Anomaly>,
    /// Keys the search gave up on: neither shown linearizable nor not.
    pub unknown_keys: Vec<String>,
}

impl RegisterReport {
    /// Returns whether every key was shown linearizable.
    pub fn is_valid(&self) -> bool {
        self.anomalies.is_empty() && self.unknown_keys.is_empty()
    }
}

/// A key whose history is not linearizable, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    pub key: String,
    pub explanation: String,
    /// The operations that show it, in the order the explanation gives.
    pub operations: Vec<OperationRef>,
}

/// How many operations of the longest linearizable prefix an anomaly
/// shows: the last few are the context for the one that failed.
const PREFIX_SHOWN_MAX: usize = 5;
/// How many operations concurrent with the stuck one an anomaly shows.
const CONCURRENT_SHOWN_MAX: usize = 8;
/// How many operations that wrote the value the stuck one needed an
/// anomaly shows.
const WRITERS_SHOWN_MAX: usize = 2;

/// Checks the register operations of `events` for linearizability.
///
/// A history that cannot be paired into operations is reported as one
/// anomaly naming the bad event, so it is never valid.
pub fn check(events: &[Event], budget: Budget) -> RegisterReport {
    let deadline = Instant::now() + budget.time_max;
    let paired = match pair(events) {
        Ok(paired) => paired,
        Err(error) => {
            return RegisterReport {
                anomalies: vec![Anomaly {
                    key: String::new(),
                    explanation: format!("the history is malformed: {error}"),
                    operations: Vec::new(),
                }],
                ..RegisterReport::default()
            }
        }
    };
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for operation in &paired.operations {
        if let Some(key) = register_key(&operation.op) {
            by_key.entry(key).or_default().push(operation);
        }
    }
    let mut report = RegisterReport {
        keys: by_key.len(),
        operations: by_key.values().map(Vec::len).sum(),
        ..RegisterReport::default()
    };
    for (key, operations) in by_key {
        let limits = Limits {
            states_max: budget.states_max,
            deadline,
        };
        match check_key(key, &operations, limits) {
            Verdict::Linearizable => {}
            Verdict::Anomaly(anomaly) => report.anomalies.push(anomaly),
            Verdict::Unknown => report.unknown_keys.push(key.to_string()),
        }
    }
    report
}

fn register_key(op: &Op) -> Option<&str> {
    match op {
        Op::Read { key, .. } | Op::Write { key, .. } | Op::Cas { key, .. } => Some(key),
        Op::Add { .. } | Op::ReadAll { .. } | Op::Txn { .. } | Op::Nemesis { .. } => None,
    }
}

enum Verdict {
    Linearizable,
    Anomaly(Anomaly),
    Unknown,
}

/// Checks one key's operations, in the order of their invocations.
fn check_key(key: &str, operations: &[&Operation], limits: Limits) -> Verdict {
    let (mut ops, mut sources): (Vec<SearchOp>, Vec<&Operation>) = operations
        .iter()
        .filter_map(|&operation| to_search_op(operation).map(|op| (op, operation)))
        .unzip();
    if let Some(anomaly) = value_from_nowhere(key, &ops, &sources) {
        return Verdict::Anomaly(anomaly);
    }
    prune_unobserved(&mut ops, &mut sources);
    bound_observed(&mut ops);
    match search::linearize(&ops, limits) {
        search::Outcome::Linearizable => Verdict::Linearizable,
        search::Outcome::Exhausted { .. } => Verdict::Unknown,
        search::Outcome::NotLinearizable {
            prefix,
            value,
            stuck,
        } => Verdict::Anomaly(explain(key, &ops, &sources, &prefix, value, stuck)),
    }
}

/// Returns what the search models for `operation`, or `None` when it
/// certainly changed nothing and saw nothing the check can use.
fn to_search_op(operation: &Operation) -> Option<SearchOp> {
    let call_ns = operation.invoke_ns;
    let (action, return_ns) = match (&operation.seen, operation.outcome) {
        (_, Outcome::Fail) => return None,
        (Op::Read { .. }, Outcome::Info) => return None,
        (Op::Read { value, .. }, Outcome::Ok) => (Action::Read(*value), operation.complete_ns?),
        (Op::Write { value, .. }, Outcome::Ok) => (Action::Write(*value), operation.complete_ns?),
        (Op::Write { value, .. }, Outcome::Info) => (Action::Write(*value), u64::MAX),
        (Op::Cas { from, to, .. }, Outcome::Ok) => (
            Action::Cas {
                from: *from,
                to: *to,
            },
            operation.complete_ns?,
        ),
        (Op::Cas { from, to, .. }, Outcome::Info) => (
            Action::MaybeCas {
                from: *from,
                to: *to,
            },
            u64::MAX,
        ),
        (Op::Add { .. } | Op::ReadAll { .. } | Op::Txn { .. } | Op::Nemesis { .. }, _) => {
            return None
        }
    };
    Some(SearchOp {
        call_ns,
        return_ns,
        action,
    })
}

/// Finds the first read (or successful compare-and-set) of a value that
/// no operation on the key could have written: no order explains it, and
/// saying so directly is clearer than the search's longest prefix.
fn value_from_nowhere(key: &str, ops: &[SearchOp], sources: &[&Operation]) -> Option<Anomaly> {
    let written: HashSet<u64> = ops
        .iter()
        .filter_map(|op| written_value(op.action))
        .collect();
    ops.iter().zip(sources).find_map(|(op, source)| {
        let needed = match op.action {
            Action::Read(Some(value)) => value,
            Action::Cas { from, .. } => from,
            Action::Read(None) | Action::Write(_) | Action::MaybeCas { .. } => return None,
        };
        (!written.contains(&needed)).then(|| Anomaly {
            key: key.to_string(),
            explanation: format!(
                "{} needs {key} = {needed}, a value that no operation on {key} \
                 that may have taken effect wrote",
                describe_op(&source.seen)
            ),
            operations: vec![OperationRef::from(*source)],
        })
    })
}

fn written_value(action: Action) -> Option<u64> {
    match action {
        Action::Write(value) => Some(value),
        Action::Cas { to, .. } | Action::MaybeCas { to, .. } => Some(to),
        Action::Read(_) => None,
    }
}

/// Drops the writes and compare-and-sets of unknown outcome whose value
/// no read saw and no compare-and-set expected.
///
/// This keeps the search small (each such operation is open until the end
/// of the history) without changing the verdict: in any linearization
/// that places one, nothing that follows depends on its value until the
/// next write, so the linearization without it (with any unknown
/// compare-and-set it turned into a no-op moved to the end) is one too.
/// Dropping one can leave another's value unobserved, so it repeats.
fn prune_unobserved(ops: &mut Vec<SearchOp>, sources: &mut Vec<&Operation>) {
    loop {
        let observed: HashSet<u64> = ops
            .iter()
            .filter_map(|op| match op.action {
                Action::Read(value) => value,
                Action::Cas { from, .. } | Action::MaybeCas { from, .. } => Some(from),
                Action::Write(_) => None,
            })
            .collect();
        let keep: Vec<bool> = ops
            .iter()
            .map(|op| {
                let uncertain = op.return_ns == u64::MAX;
                !uncertain || written_value(op.action).is_none_or(|v| observed.contains(&v))
            })
            .collect();
        if keep.iter().all(|&kept| kept) {
            return;
        }
        let mut flags = keep.iter();
        ops.retain(|_| flags.next().copied().unwrap_or(true));
        let mut flags = keep.iter();
        sources.retain(|_| flags.next().copied().unwrap_or(true));
    }
}

/// Closes the interval of each write or compare-and-set of unknown
/// outcome that alone wrote a value a successful read or compare-and-set
/// saw: it happened (a compare-and-set swapped), before that observer
/// returned.
///
/// Every linearization places it before its first observer, hence before
/// everything invoked after that observer returned, so the tighter
/// interval loses none of them; and the search no longer carries the
/// operation open to the end of the history.
fn bound_observed(ops: &mut [SearchOp]) {
    let mut writers: HashMap<u64, (usize, usize)> = HashMap::new();
    for (position, op) in ops.iter().enumerate() {
        if let Some(value) = written_value(op.action) {
            writers.entry(value).or_insert((position, 0)).1 += 1;
        }
    }
    let mut first_seen_ns: HashMap<u64, u64> = HashMap::new();
    for op in ops.iter() {
        let seen = match op.action {
            Action::Read(Some(value)) | Action::Cas { from: value, .. } => value,
            Action::Read(None) | Action::Write(_) | Action::MaybeCas { .. } => continue,
        };
        let first = first_seen_ns.entry(seen).or_insert(op.return_ns);
        *first = (*first).min(op.return_ns);
    }
    for (value, seen_ns) in first_seen_ns {
        let Some(&(position, 1)) = writers.get(&value) else {
            continue;
        };
        let op = &mut ops[position];
        if op.return_ns == u64::MAX {
            // An observer that returned before the writer was invoked is
            // an anomaly the search will find; the writer's return still
            // has to follow its call in the list.
            op.return_ns = seen_ns.max(op.call_ns);
            // It swapped: nothing else could have produced the value.
            if let Action::MaybeCas { from, to } = op.action {
                op.action = Action::Cas { from, to };
            }
        }
    }
}

/// Builds the anomaly for a search that found no linearization.
fn explain(
    key: &str,
    ops: &[SearchOp],
    sources: &[&Operation],
    prefix: &[usize],
    value: Value,
    stuck: usize,
) -> Anomaly {
    let stuck_op = ops[stuck];
    let shown_value = render_value(value);
    let reason = match (stuck_op.action, stuck_op.action.step(value)) {
        (Action::Read(seen), None) => format!(
            "it saw {} but {key} held {shown_value}, and no order of the concurrent \
             operations explains that",
            render_value(seen)
        ),
        (Action::Cas { from, .. }, None) => format!(
            "it found {key} = {from} but {key} held {shown_value}, and no order of the \
             concurrent operations explains that"
        ),
        _ => "it fits there, but every order that continues from it fails later".to_string(),
    };
    let linearized: HashSet<usize> = prefix.iter().copied().collect();
    let finished_ns = stuck_op.return_ns;
    let concurrent: Vec<usize> = (0..ops.len())
        .filter(|&position| {
            position != stuck
                && !linearized.contains(&position)
                && ops[position].call_ns <= finished_ns
        })
        .take(CONCURRENT_SHOWN_MAX)
        .collect();
    let tail = &prefix[prefix.len().saturating_sub(PREFIX_SHOWN_MAX)..];
    // For a stale read, where the value it saw came from tells the story.
    let needed = match stuck_op.action {
        Action::Read(Some(value)) | Action::Cas { from: value, .. } => Some(value),
        Action::Read(None) | Action::Write(_) | Action::MaybeCas { .. } => None,
    };
    let writers: Vec<usize> = (0..ops.len())
        .filter(|&position| needed.is_some() && written_value(ops[position].action) == needed)
        .filter(|position| !tail.contains(position) && !concurrent.contains(position))
        .take(WRITERS_SHOWN_MAX)
        .collect();

    let noted = |position: usize, note: &str| {
        let mut reference = OperationRef::from(sources[position]);
        reference.description.push_str(note);
        reference
    };
    let mut operations: Vec<OperationRef> = writers
        .iter()
        .map(|&position| noted(position, "  (wrote the value it needs)"))
        .collect();
    operations.extend(tail.iter().map(|&position| noted(position, "")));
    operations.push(noted(stuck, "  <- cannot be placed"));
    operations.extend(
        concurrent
            .iter()
            .map(|&position| noted(position, "  (concurrent)")),
    );
    Anomaly {
        key: key.to_string(),
        explanation: format!(
            "not linearizable: the longest linearizable prefix has {} operations and \
             leaves {key} = {shown_value}; {} cannot be placed after it: {reason}. \
             Shown: {} operations that wrote the value it needs, the last {} of the \
             prefix, the one that cannot be placed, and {} concurrent with it.",
            prefix.len(),
            describe_op(&sources[stuck].seen),
            writers.len(),
            tail.len(),
            concurrent.len(),
        ),
        operations,
    }
}

fn render_value(value: Value) -> String {
    value.map_or_else(|| "nil".to_string(), |value| value.to_string())
}
