//! Checks the list-append workload for strict serializability, the way
//! Elle does (Kingsbury and Alvaro, "Elle: Inferring Isolation Anomalies
//! from Experimental Observations", VLDB 2020).
//!
//! Every appended value is unique, so a read of a list names the
//! transactions that wrote it, in order. Per key, the longest read is the
//! version order, and every other read must be a prefix of it. From the
//! reads follow the dependencies between committed transactions (ok ones,
//! and unknown ones whose appends some read saw):
//!
//! ```text
//!   ww  T1 appended v, T2 appended the value after v
//!   wr  T2 read a list ending in T1's value
//!   rw  T1 read a list, T2 appended the value that comes next
//!   realtime  T1 completed before T2 was invoked
//! ```
//!
//! A cycle among them is an anomaly (see [`super::append_graph`]). Some
//! anomalies need no cycle: a read that saw a failed append (G1a), a
//! transaction's intermediate value (G1b), a value twice, a value nobody
//! appended to that key (invented), a transaction whose own reads
//! disagree with its appends (internal). Last, the final read of each key
//! (the one invoked last) must hold every append acknowledged before it
//! began (otherwise: lost).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::append_graph::{kind_name, Graph, Kinds, REALTIME, RW, WR, WW};
use super::pair::{pair, Operation, Outcome};
use crate::history::{Event, MicroOp, Op};

/// Steps of a cycle written out; a longer cycle is cut short.
const CYCLE_STEPS_SHOWN_MAX: usize = 12;

/// Anomalies of one class written out in full; the others are counted.
const SHOWN_PER_CLASS_MAX: usize = 5;

/// What the list-append checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AppendReport {
    /// Transactions invoked, and how they ended.
    pub transactions: usize,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    /// Transactions in the dependency graph.
    pub committed: usize,
    pub keys: usize,
    pub edges: usize,
    /// Acknowledged appends that no read of their key began after: nothing
    /// shows whether they survived.
    pub appends_unchecked: usize,
    /// Anomalies by class (`G1a`, `G-single`, `lost`, ...).
    pub counts: BTreeMap<String, usize>,
    /// The first few anomalies of each class, explained.
    pub anomalies: Vec<AppendAnomaly>,
    /// Why the history could not be checked, when it could not.
    pub problem: Option<String>,
}

impl AppendReport {
    /// Returns whether the history could be checked and shows no anomaly.
    pub fn is_valid(&self) -> bool {
        self.problem.is_none() && self.counts.is_empty()
    }
}

/// One anomaly and the operations that show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppendAnomaly {
    pub class: String,
    pub explanation: String,
    /// The transactions involved (and, for a cycle, each edge), in order.
    pub steps: Vec<String>,
}

/// Who appended a value.
#[derive(Debug, Clone, Copy)]
struct Writer<'a> {
    txn: usize,
    key: &'a str,
    /// Whether it was the transaction's last append to `key`.
    last_to_key: bool,
}

/// An ok read: which transaction, which key, what it saw.
struct Read<'a> {
    txn: usize,
    key: &'a str,
    list: &'a [u64],
}

struct Checker<'a> {
    txns: Vec<&'a Operation>,
    writers: HashMap<u64, Writer<'a>>,
    reads: Vec<Read<'a>>,
    /// Per key, the version order: its longest read.
    orders: BTreeMap<&'a str, &'a [u64]>,
    report: AppendReport,
}

/// Returns the micro-ops of a transaction: with what the reads saw when
/// it is ok, as invoked otherwise.
fn mops(operation: &Operation) -> &[MicroOp] {
    let op = match operation.outcome {
        Outcome::Ok => &operation.seen,
        Outcome::Fail | Outcome::Info => &operation.op,
    };
    match op {
        Op::Txn { mops } => mops,
        _ => &[],
    }
}

/// Checks the transactions of `events`.
pub fn check(events: &[Event]) -> AppendReport {
    let paired = match pair(events) {
        Ok(paired) => paired,
        Err(error) => {
            return AppendReport {
                problem: Some(format!("the history is malformed: {error}")),
                ..AppendReport::default()
            }
        }
    };
    let txns: Vec<&Operation> = paired
        .operations
        .iter()
        .filter(|operation| matches!(operation.op, Op::Txn { .. }))
        .collect();
    let mut checker = Checker {
        txns,
        writers: HashMap::new(),
        reads: Vec::new(),
        orders: BTreeMap::new(),
        report: AppendReport::default(),
    };
    if let Err(problem) = checker.index() {
        checker.report.problem = Some(problem);
        return checker.report;
    }
    checker.check_reads();
    checker.check_internal();
    checker.check_cycles();
    checker.check_lost();
    checker.report
}

impl<'a> Checker<'a> {
    fn anomaly(&mut self, class: &str, explanation: String, steps: Vec<String>) {
        let count = self.report.counts.entry(class.to_owned()).or_insert(0);
        *count += 1;
        if *count <= SHOWN_PER_CLASS_MAX {
            self.report.anomalies.push(AppendAnomaly {
                class: class.to_owned(),
                explanation,
                steps,
            });
        }
    }

    fn describe(&self, txn: usize) -> String {
        format!("T{txn} {}", self.txns[txn].describe())
    }

    /// Indexes who appended each value and every ok read; counts outcomes.
    fn index(&mut self) -> Result<(), String> {
        let txns = self.txns.clone();
        self.report.transactions = txns.len();
        let mut keys = HashSet::new();
        for (txn, operation) in txns.iter().enumerate() {
            match operation.outcome {
                Outcome::Ok => self.report.ok += 1,
                Outcome::Fail => self.report.fail += 1,
                Outcome::Info => self.report.info += 1,
            }
            let mops = mops(operation);
            for (position, mop) in mops.iter().enumerate() {
                match mop {
                    MicroOp::Append { key, value } => {
                        keys.insert(key.as_str());
                        let last_to_key = !mops[position + 1..].iter().any(
                            |later| matches!(later, MicroOp::Append { key: k, .. } if k == key),
                        );
                        let writer = Writer {
                            txn,
                            key,
                            last_to_key,
                        };
                        if let Some(earlier) = self.writers.insert(*value, writer) {
                            return Err(format!(
                                "value {value} is appended twice (T{} and T{txn}): reads \
                                 cannot name their writers",
                                earlier.txn
                            ));
                        }
                    }
                    MicroOp::Read {
                        key,
                        value: Some(list),
                    } if operation.outcome == Outcome::Ok => {
                        keys.insert(key.as_str());
                        self.reads.push(Read { txn, key, list });
                    }
                    MicroOp::Read { .. } => {}
                }
            }
        }
        self.report.keys = keys.len();
        for read in &self.reads {
            let order = self.orders.entry(read.key).or_insert(read.list);
            if read.list.len() > order.len() {
                *order = read.list;
            }
        }
        Ok(())
    }

    /// Checks each read on its own (duplicates, invented values, aborted
    /// and intermediate reads) and against its key's version order.
    fn check_reads(&mut self) {
        // (class, explanation, transactions involved), described once found.
        let mut found: Vec<(&str, String, Vec<usize>)> = Vec::new();
        let mut incompatible_keys = HashSet::new();
        for read in &self.reads {
            let mut seen = HashSet::new();
            if let Some(value) = read.list.iter().find(|value| !seen.insert(**value)) {
                let explanation = format!("{} holds {value} more than once", read.key);
                found.push(("duplicate", explanation, vec![read.txn]));
            }
            for (position, value) in read.list.iter().enumerate() {
                let Some(writer) = self.writers.get(value) else {
                    let explanation = format!("{} holds {value}, which no one appended", read.key);
                    found.push(("invented", explanation, vec![read.txn]));
                    continue;
                };
                let txns = vec![writer.txn, read.txn];
                if writer.key != read.key {
                    let explanation = format!(
                        "{} holds {value}, which was appended to {}",
                        read.key, writer.key
                    );
                    found.push(("invented", explanation, txns));
                } else if self.txns[writer.txn].outcome == Outcome::Fail {
                    let explanation = format!(
                        "aborted read: {} holds {value}, appended by T{} which failed",
                        read.key, writer.txn
                    );
                    found.push(("G1a", explanation, txns));
                } else if position + 1 == read.list.len()
                    && !writer.last_to_key
                    && writer.txn != read.txn
                {
                    let explanation = format!(
                        "intermediate read: {} ends in {value}, which T{} followed with \
                         another append to {} in the same transaction",
                        read.key, writer.txn, read.key
                    );
                    found.push(("G1b", explanation, txns));
                }
            }
            let order = self.orders[read.key];
            if !order.starts_with(read.list) && incompatible_keys.insert(read.key) {
                let longest = self
                    .reads
                    .iter()
                    .find(|other| other.key == read.key && other.list == order)
                    .map_or(read.txn, |other| other.txn);
                let explanation = format!(
                    "{} read as {:?} and as {:?}: neither is a prefix of the other",
                    read.key, read.list, order
                );
                found.push(("incompatible-order", explanation, vec![read.txn, longest]));
            }
        }
        for (class, explanation, txns) in found {
            let steps = txns.iter().map(|txn| self.describe(*txn)).collect();
            self.anomaly(class, explanation, steps);
        }
    }

    /// Checks that each ok transaction's reads agree with its own
    /// appends: after appending v, a read of that key ends with v.
    fn check_internal(&mut self) {
        for txn in 0..self.txns.len() {
            if self.txns[txn].outcome != Outcome::Ok {
                continue;
            }
            // Per key: the list as known, or only the suffix appended here.
            let mut expected: HashMap<&str, (bool, Vec<u64>)> = HashMap::new();
            let mut broken = None;
            for mop in mops(self.txns[txn]) {
                match mop {
                    MicroOp::Append { key, value } => {
                        expected.entry(key).or_default().1.push(*value);
                    }
                    MicroOp::Read {
                        key,
                        value: Some(list),
                    } => {
                        let (known, values) = expected.entry(key).or_default();
                        let agrees = if *known {
                            values == list
                        } else {
                            list.ends_with(values)
                        };
                        if !agrees && broken.is_none() {
                            broken = Some(format!(
                                "{key} read as {list:?} after this transaction's own \
                                 appends and reads made it {}{values:?}",
                                if *known { "" } else { "end with " }
                            ));
                        }
                        *known = true;
                        values.clone_from(list);
                    }
                    MicroOp::Read { value: None, .. } => {}
                }
            }
            if let Some(explanation) = broken {
                let steps = vec![self.describe(txn)];
                self.anomaly("internal", explanation, steps);
            }
        }
    }

    /// Builds the dependency graph and reports one cycle per strongly
    /// connected component.
    fn check_cycles(&mut self) {
        let observed: HashSet<u64> = self
            .reads
            .iter()
            .flat_map(|read| read.list.iter().copied())
            .collect();
        let committed: Vec<bool> = (0..self.txns.len())
            .map(|txn| match self.txns[txn].outcome {
                Outcome::Ok => true,
                Outcome::Fail => false,
                Outcome::Info => mops(self.txns[txn]).iter().any(
                    |mop| matches!(mop, MicroOp::Append { value, .. } if observed.contains(value)),
                ),
            })
            .collect();
        self.report.committed = committed.iter().filter(|c| **c).count();
        let mut graph = Graph::new(self.txns.len());
        let writer_of = |value: &u64| {
            self.writers
                .get(value)
                .map(|writer| writer.txn)
                .filter(|txn| committed[*txn])
        };
        for order in self.orders.values() {
            for pair in order.windows(2) {
                if let (Some(from), Some(to)) = (writer_of(&pair[0]), writer_of(&pair[1])) {
                    graph.add(from, to, WW);
                }
            }
        }
        for read in &self.reads {
            if let Some(from) = read.list.last().and_then(writer_of) {
                graph.add(from, read.txn, WR);
            }
            let order = self.orders[read.key];
            if order.starts_with(read.list) {
                if let Some(to) = order.get(read.list.len()).and_then(writer_of) {
                    graph.add(read.txn, to, RW);
                }
            }
        }
        self.add_realtime(&mut graph, &committed);
        self.report.edges = graph.edges();
        for component in graph.cyclic_components() {
            let Some(cycle) = graph.worst_cycle(&component) else {
                continue;
            };
            let mut steps = Vec::new();
            for (position, &txn) in cycle.nodes.iter().enumerate().take(CYCLE_STEPS_SHOWN_MAX) {
                let next = cycle.nodes[(position + 1) % cycle.nodes.len()];
                steps.push(self.describe(txn));
                steps.push(format!(
                    "  -{}-> {}",
                    kind_name(cycle.kinds[position]),
                    self.explain(txn, next, cycle.kinds[position])
                ));
            }
            if cycle.nodes.len() > CYCLE_STEPS_SHOWN_MAX {
                let more = cycle.nodes.len() - CYCLE_STEPS_SHOWN_MAX;
                steps.push(format!(
                    "... and {more} more transactions back to the first"
                ));
            }
            let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
            for kind in &cycle.kinds {
                *kinds.entry(kind_name(*kind)).or_default() += 1;
            }
            let kinds: Vec<String> = kinds
                .iter()
                .map(|(name, count)| format!("{name} {count}"))
                .collect();
            let explanation = format!(
                "a cycle of {} transactions (edges: {}) among {} in one strongly \
                 connected component",
                cycle.nodes.len(),
                kinds.join(", "),
                component.len()
            );
            self.anomaly(&cycle.class(), explanation, steps);
        }
    }

    /// Adds real-time edges: a committed transaction to every one invoked
    /// after it completed. Only the frontier (completed transactions not
    /// known to precede another completed one) links to a new invocation;
    /// the rest follow by transitivity, which keeps the edges to about
    /// the number of transactions times the concurrency.
    fn add_realtime(&self, graph: &mut Graph, committed: &[bool]) {
        let mut boundaries: Vec<(u64, bool, usize)> = Vec::new();
        for (txn, operation) in self.txns.iter().enumerate() {
            if !committed[txn] {
                continue;
            }
            boundaries.push((operation.invoke_index, true, txn));
            if operation.outcome == Outcome::Ok {
                if let Some(index) = operation.complete_index {
                    boundaries.push((index, false, txn));
                }
            }
        }
        boundaries.sort_unstable();
        let mut frontier: Vec<usize> = Vec::new();
        for (_, invoked, txn) in boundaries {
            if invoked {
                for &earlier in &frontier {
                    graph.add(earlier, txn, REALTIME);
                }
                continue;
            }
            let invoke_index = self.txns[txn].invoke_index;
            frontier.retain(|&earlier| {
                self.txns[earlier]
                    .complete_index
                    .is_none_or(|index| index > invoke_index)
            });
            frontier.push(txn);
        }
    }

    /// Says why `from -> to` is an edge of `kind`.
    fn explain(&self, from: usize, to: usize, kind: Kinds) -> String {
        let appends = |txn: usize| {
            mops(self.txns[txn]).iter().filter_map(|mop| match mop {
                MicroOp::Append { key, value } => Some((key.as_str(), *value)),
                MicroOp::Read { .. } => None,
            })
        };
        let writer = |value: &u64| self.writers.get(value).map(|writer| writer.txn);
        let found = match kind {
            WW => appends(from).find_map(|(key, value)| {
                let order = self.orders.get(key)?;
                let position = order.iter().position(|v| *v == value)?;
                let next = *order.get(position + 1)?;
                (writer(&next) == Some(to)).then(|| {
                    format!("T{from} appended {value} to {key}, T{to} appended {next} next")
                })
            }),
            WR => self
                .reads
                .iter()
                .filter(|read| read.txn == to)
                .find_map(|read| {
                    let last = read.list.last()?;
                    (writer(last) == Some(from)).then(|| {
                        format!(
                            "T{to} read {} ending in {last}, appended by T{from}",
                            read.key
                        )
                    })
                }),
            RW => self
                .reads
                .iter()
                .filter(|read| read.txn == from)
                .find_map(|read| {
                    let next = self.orders.get(read.key)?.get(read.list.len())?;
                    (writer(next) == Some(to)).then(|| {
                        format!(
                            "T{from} read {} without {next}, which T{to} appended next",
                            read.key
                        )
                    })
                }),
            _ => None,
        };
        found.unwrap_or_else(|| format!("T{from} completed before T{to} was invoked"))
    }

    /// Checks that the last read of each key holds every append
    /// acknowledged before that read began.
    fn check_lost(&mut self) {
        let mut last_reads: HashMap<&str, &Read> = HashMap::new();
        for read in &self.reads {
            let invoke = self.txns[read.txn].invoke_index;
            let entry = last_reads.entry(read.key).or_insert(read);
            if self.txns[entry.txn].invoke_index < invoke {
                *entry = read;
            }
        }
        let mut lost: BTreeMap<&str, Vec<(u64, usize)>> = BTreeMap::new();
        let mut unchecked = 0;
        for (value, writer) in &self.writers {
            let operation = self.txns[writer.txn];
            let Some(acknowledged) = operation.complete_index else {
                continue;
            };
            if operation.outcome != Outcome::Ok {
                continue;
            }
            match last_reads.get(writer.key) {
                Some(read) if self.txns[read.txn].invoke_index > acknowledged => {
                    if !read.list.contains(value) {
                        lost.entry(writer.key).or_default().push((*value, read.txn));
                    }
                }
                _ => unchecked += 1,
            }
        }
        self.report.appends_unchecked = unchecked;
        for (key, mut values) in lost {
            values.sort_unstable();
            for (value, reader) in values {
                let writer = self.writers[&value].txn;
                let explanation = format!(
                    "{value}, an acknowledged append to {key}, is missing from the last read \
                     of {key}, which began after the acknowledgement"
                );
                let steps = vec![self.describe(writer), self.describe(reader)];
                self.anomaly("lost", explanation, steps);
            }
        }
    }
}
