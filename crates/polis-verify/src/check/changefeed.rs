//! Checks the change-feed workload: clients APPEND unique tokens to a few
//! string keys under a feed's prefix; after healing, one GET of every key
//! and one read of the whole feed stream. The feed is meant to be each
//! key's history as its shards applied it, so, per key:
//!
//! - **chain**: its `append` events, in stream order, carry values that
//!   grow by exactly one token each, from nothing to the key's final
//!   value: the feed lists the writes in the order they applied, none
//!   missing (*missing-event*, *final-mismatch*), none out of order
//!   (*out-of-order*), none twice (*duplicate*);
//! - **outcomes**: every acknowledged APPEND's token is in the feed
//!   (*lost-event*) and in the final value (*lost-write*), at the length
//!   APPEND answered (*length*); no token of an APPEND that certainly
//!   failed is in either (*failed-write-seen*); an unknown one may be;
//!   nothing is there that no client appended to that key (*invented*);
//! - **real time**: an APPEND acknowledged before another was invoked
//!   comes first (*realtime*);
//! - **events**: only `new` (once, before the first append) and `append`
//!   (*unexpected-event*).
//!
//! Delivery is at least once when the feed stream's own slot moves: the
//! same event (one source position: shard, index, seq) may be appended
//! twice. Entries are deduplicated by position first; two entries at one
//! position that differ are *conflicting-duplicate*.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::pair::{pair, Operation, Outcome};
use crate::history::{Event, FeedEntry, Op};

/// Anomalies written out in full per class; the others are counted.
const SHOWN_PER_CLASS_MAX: usize = 5;

/// What the change-feed checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FeedReport {
    /// APPENDs invoked, and how they ended.
    pub appends: usize,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    /// Keys appended to.
    pub keys: usize,
    /// Entries the final read of the stream returned.
    pub entries: usize,
    /// Distinct events (source positions) among them.
    pub events: usize,
    /// Entries repeating an earlier entry's position and content
    /// (at-least-once delivery: no anomaly).
    pub duplicates: usize,
    /// APPENDs of unknown outcome whose token is in the feed.
    pub unknown_applied: usize,
    /// Anomalies by class.
    pub counts: BTreeMap<String, usize>,
    /// The first few anomalies of each class, explained.
    pub anomalies: Vec<FeedAnomaly>,
    /// Why the history could not be checked, when it could not.
    pub problem: Option<String>,
}

impl FeedReport {
    /// Returns whether the history could be checked and shows no anomaly.
    pub fn is_valid(&self) -> bool {
        self.problem.is_none() && self.counts.is_empty()
    }
}

/// One anomaly: its class, the key, and what shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedAnomaly {
    pub class: String,
    pub key: String,
    pub explanation: String,
}

/// One APPEND: the operation, with what it answered.
struct Write<'a> {
    operation: &'a Operation,
    length: Option<u64>,
}

/// What the history says about one key.
#[derive(Default)]
struct KeyHistory<'a> {
    /// Token -> its APPEND.
    writes: HashMap<&'a str, Write<'a>>,
    /// The last successful final GET: its value and when it was invoked.
    last_get: Option<(Option<&'a str>, u64)>,
    /// Its events in stream order, deduplicated by position.
    entries: Vec<&'a FeedEntry>,
}

/// Checks the change-feed operations of `events`.
pub fn check(events: &[Event]) -> FeedReport {
    let mut report = FeedReport::default();
    let paired = match pair(events) {
        Ok(paired) => paired,
        Err(error) => {
            report.problem = Some(format!("the history is malformed: {error}"));
            return report;
        }
    };
    let mut keys: BTreeMap<&str, KeyHistory> = BTreeMap::new();
    let mut feed_read: Option<(&[FeedEntry], u64)> = None;
    for operation in &paired.operations {
        match (&operation.op, &operation.seen, operation.outcome) {
            (Op::FeedAppend { key, token, .. }, seen, outcome) => {
                report.appends += 1;
                match outcome {
                    Outcome::Ok => report.ok += 1,
                    Outcome::Fail => report.fail += 1,
                    Outcome::Info => report.info += 1,
                }
                let length = match seen {
                    Op::FeedAppend { length, .. } => *length,
                    _ => None,
                };
                let write = Write { operation, length };
                let history = keys.entry(key).or_default();
                if history.writes.insert(token, write).is_some() {
                    report.problem = Some(format!("token {token} is appended twice to {key}"));
                    return report;
                }
            }
            (Op::FeedGet { key, .. }, Op::FeedGet { value, .. }, Outcome::Ok) => {
                keys.entry(key).or_default().last_get =
                    Some((value.as_deref(), operation.invoke_ns));
            }
            (
                Op::FeedRead { .. },
                Op::FeedRead {
                    entries: Some(entries),
                    ..
                },
                Outcome::Ok,
            ) => {
                feed_read = Some((entries, operation.invoke_ns));
            }
            _ => {}
        }
    }
    if keys.is_empty() {
        return report;
    }
    let Some((entries, read_ns)) = feed_read else {
        report.problem = Some("no successful read of the feed stream".into());
        return report;
    };
    report.keys = keys
        .values()
        .filter(|history| !history.writes.is_empty())
        .count();
    report.entries = entries.len();
    let mut checker = Checker { report };
    checker.index_entries(entries, &mut keys);
    for (key, history) in &keys {
        checker.check_key(key, history, read_ns);
    }
    checker.report
}

struct Checker {
    report: FeedReport,
}

/// Returns the token `value` adds to `before`, when it adds exactly one
/// (`"<client>.<n>,"`).
fn one_token_more<'v>(before: &str, value: &'v str) -> Option<&'v str> {
    let added = value.strip_prefix(before)?;
    (added.ends_with(',') && added.matches(',').count() == 1).then_some(added)
}

/// Splits a value into its tokens, each with its comma.
fn tokens(value: &str) -> Vec<&str> {
    value.split_inclusive(',').collect()
}

impl Checker {
    fn anomaly(&mut self, class: &str, key: &str, explanation: String) {
        let count = self.report.counts.entry(class.to_owned()).or_insert(0);
        *count += 1;
        if *count <= SHOWN_PER_CLASS_MAX {
            self.report.anomalies.push(FeedAnomaly {
                class: class.to_owned(),
                key: key.to_owned(),
                explanation,
            });
        }
    }

    /// Deduplicates the entries by position and hands each key its own.
    fn index_entries<'a>(
        &mut self,
        entries: &'a [FeedEntry],
        keys: &mut BTreeMap<&'a str, KeyHistory<'a>>,
    ) {
        let mut seen: HashMap<(u64, u64, u64), &FeedEntry> = HashMap::new();
        for entry in entries {
            if let Some(first) = seen.get(&entry.position()) {
                let same = first.key == entry.key
                    && first.event == entry.event
                    && first.value == entry.value;
                if same {
                    self.report.duplicates += 1;
                } else {
                    self.anomaly(
                        "conflicting-duplicate",
                        &entry.key,
                        format!(
                            "entries {} and {} share shard {} index {} seq {} but differ: \
                             {} {:?} and {} {:?}",
                            first.id,
                            entry.id,
                            entry.shard,
                            entry.index,
                            entry.seq,
                            first.event,
                            first.value,
                            entry.event,
                            entry.value
                        ),
                    );
                }
                continue;
            }
            seen.insert(entry.position(), entry);
            match keys.get_mut(entry.key.as_str()) {
                Some(history) => history.entries.push(entry),
                None => self.anomaly(
                    "invented",
                    &entry.key,
                    format!("entry {}: an event of a key no client wrote", entry.id),
                ),
            }
        }
        self.report.events = seen.len();
    }

    fn check_key(&mut self, key: &str, history: &KeyHistory, read_ns: u64) {
        let Some((final_value, get_ns)) = history.last_get else {
            self.anomaly(
                "no-final-read",
                key,
                "no successful GET of the key after healing".into(),
            );
            return;
        };
        let final_value = final_value.unwrap_or("");
        // The chain of append events: token -> (place in the feed, value
        // length at its event).
        let mut chain: Vec<(&str, usize)> = Vec::new();
        let mut value = "";
        let mut last_position: HashMap<u64, (u64, u64)> = HashMap::new();
        let mut new_seen = false;
        for entry in &history.entries {
            let position = (entry.index, entry.seq);
            if let Some(before) = last_position.insert(entry.shard, position) {
                if position < before {
                    self.anomaly(
                        "out-of-order",
                        key,
                        format!(
                            "entry {}: shard {}'s position {position:?} comes after {before:?}",
                            entry.id, entry.shard
                        ),
                    );
                }
            }
            match entry.event.as_str() {
                "new" if !new_seen && chain.is_empty() => new_seen = true,
                "append" => {}
                other => {
                    self.anomaly(
                        "unexpected-event",
                        key,
                        format!(
                            "entry {}: event {other} (only one new, first, then appends)",
                            entry.id
                        ),
                    );
                    continue;
                }
            }
            if entry.event != "append" {
                continue;
            }
            let Some(next) = entry.value.as_deref() else {
                self.anomaly(
                    "unexpected-event",
                    key,
                    format!("entry {}: an append without the value it left", entry.id),
                );
                continue;
            };
            match one_token_more(value, next) {
                Some(token) => {
                    if chain.iter().any(|(earlier, _)| *earlier == token) {
                        self.anomaly(
                            "duplicate",
                            key,
                            format!("entry {}: token {token} applied a second time", entry.id),
                        );
                    }
                    chain.push((token, next.len()));
                    value = next;
                }
                None if next == value => self.anomaly(
                    "duplicate",
                    key,
                    format!(
                        "entry {}: the value did not change: one write's event again, at \
                         another position",
                        entry.id
                    ),
                ),
                None if next.starts_with(value) => {
                    let skipped = tokens(&next[value.len()..]);
                    self.anomaly(
                        "missing-event",
                        key,
                        format!(
                            "entry {}: the value grew by {} tokens at once ({}): events in \
                             between are missing",
                            entry.id,
                            skipped.len(),
                            skipped.join(" ")
                        ),
                    );
                    for token in skipped {
                        chain.push((token, value.len() + token.len()));
                        value = &next[..value.len() + token.len()];
                    }
                }
                None => {
                    self.anomaly(
                        "out-of-order",
                        key,
                        format!(
                            "entry {}: value {next:?} does not extend the previous one {value:?}",
                            entry.id
                        ),
                    );
                    // Go on from this value; its tokens count as seen.
                    let mut end = 0;
                    for token in tokens(next) {
                        end += token.len();
                        if !chain.iter().any(|(earlier, _)| *earlier == token) {
                            chain.push((token, end));
                        }
                    }
                    value = next;
                }
            }
        }
        if value != final_value {
            self.anomaly(
                "final-mismatch",
                key,
                format!(
                    "the feed's last value {value:?} is not the final value {final_value:?} \
                     ({} tokens in the feed, {} in the value)",
                    chain.len(),
                    tokens(final_value).len()
                ),
            );
        }
        self.check_outcomes(key, history, &chain, final_value, (get_ns, read_ns));
        self.check_realtime(key, history, &chain);
    }

    /// Acknowledged tokens present at their lengths, failed ones absent,
    /// nothing invented. `read_ns`: when the final GET and the feed read
    /// were invoked (an acknowledgement after them proves nothing).
    fn check_outcomes(
        &mut self,
        key: &str,
        history: &KeyHistory,
        chain: &[(&str, usize)],
        final_value: &str,
        (get_ns, read_ns): (u64, u64),
    ) {
        let in_feed: HashMap<&str, usize> = chain.iter().copied().collect();
        let in_value: HashMap<&str, usize> = tokens(final_value)
            .into_iter()
            .scan(0, |end, token| {
                *end += token.len();
                Some((token, *end))
            })
            .collect();
        let mut present: Vec<&str> = in_feed.keys().chain(in_value.keys()).copied().collect();
        present.sort_unstable();
        present.dedup();
        for token in present {
            if !history.writes.contains_key(token) {
                self.anomaly(
                    "invented",
                    key,
                    format!("token {token} was never appended to this key"),
                );
            }
        }
        let mut writes: Vec<(&&str, &Write)> = history.writes.iter().collect();
        writes.sort_by_key(|(_, write)| write.operation.invoke_index);
        for (token, write) in writes {
            let operation = write.operation;
            let described = operation.describe();
            match operation.outcome {
                Outcome::Ok => {
                    let done_ns = operation.complete_ns.unwrap_or(u64::MAX);
                    match in_feed.get(*token) {
                        None if done_ns < read_ns => self.anomaly(
                            "lost-event",
                            key,
                            format!("{described}: acknowledged, never in the feed"),
                        ),
                        Some(length) if write.length.is_some_and(|l| l != *length as u64) => {
                            self.anomaly(
                                "length",
                                key,
                                format!("{described}: its event's value is {length} bytes long"),
                            );
                        }
                        _ => {}
                    }
                    if done_ns < get_ns && !in_value.contains_key(*token) {
                        self.anomaly(
                            "lost-write",
                            key,
                            format!("{described}: acknowledged, missing from the final value"),
                        );
                    }
                }
                Outcome::Fail => {
                    if in_feed.contains_key(*token) || in_value.contains_key(*token) {
                        self.anomaly(
                            "failed-write-seen",
                            key,
                            format!("{described}: it failed, yet its token is there"),
                        );
                    }
                }
                Outcome::Info => {
                    if in_feed.contains_key(*token) {
                        self.report.unknown_applied += 1;
                    }
                }
            }
        }
    }

    /// A write acknowledged before another was invoked comes first in the
    /// feed.
    fn check_realtime(&mut self, key: &str, history: &KeyHistory, chain: &[(&str, usize)]) {
        let operations: Vec<&Operation> = chain
            .iter()
            .filter_map(|(token, _)| history.writes.get(token).map(|write| write.operation))
            .collect();
        // For each place, the earliest acknowledgement among the writes
        // after it, and which write that is.
        let mut earliest_after: Vec<Option<(u64, usize)>> = vec![None; operations.len() + 1];
        for place in (0..operations.len()).rev() {
            let here = operations[place]
                .complete_ns
                .filter(|_| operations[place].outcome == Outcome::Ok)
                .map(|ns| (ns, place));
            earliest_after[place] = match (here, earliest_after[place + 1]) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        for (place, operation) in operations.iter().enumerate() {
            let Some((done_ns, later)) = earliest_after[place + 1] else {
                continue;
            };
            if done_ns < operation.invoke_ns {
                self.anomaly(
                    "realtime",
                    key,
                    format!(
                        "{} was acknowledged before {} was invoked, but comes after it in the \
                         feed",
                        operations[later].describe(),
                        operation.describe()
                    ),
                );
            }
        }
    }
}
