//! The rules each kind of eventual key must end by, one function per
//! kind; [`super::eventual`] gathers the history per key and reports what
//! they find. Each rule takes one answer a node gave for the key after
//! converging, and calls `anomaly` with a class and what shows it.

use std::collections::{BTreeMap, BTreeSet};

use super::pair::{Operation, Outcome};
use crate::history::Op;

/// Members a line about a set shows at most.
const MEMBERS_SHOWN_MAX: usize = 8;

/// What a node answered for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seen<'a> {
    /// GET: the value, or nil.
    Value(Option<&'a str>),
    /// SMEMBERS.
    Members(BTreeSet<&'a str>),
}

/// Everything the history says about one key.
#[derive(Default)]
pub(super) struct KeyHistory<'a> {
    pub(super) sets: Vec<&'a Operation>,
    pub(super) incrbys: Vec<&'a Operation>,
    pub(super) sadds: Vec<&'a Operation>,
    pub(super) srems: Vec<&'a Operation>,
    pub(super) dels: Vec<&'a Operation>,
    /// Node -> its first successful read after converging.
    pub(super) finals: BTreeMap<&'a str, Seen<'a>>,
    /// Node -> its first successful read before converging.
    pub(super) before: BTreeMap<&'a str, Seen<'a>>,
}

/// What a key is, by the commands that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Register,
    Counter,
    Set,
    /// SET, then DEL.
    Deleted,
}

impl<'a> KeyHistory<'a> {
    pub(super) fn kind(&self) -> Option<Kind> {
        if !self.sadds.is_empty() || !self.srems.is_empty() {
            Some(Kind::Set)
        } else if !self.incrbys.is_empty() {
            Some(Kind::Counter)
        } else if !self.dels.is_empty() {
            Some(Kind::Deleted)
        } else if !self.sets.is_empty() {
            Some(Kind::Register)
        } else {
            None
        }
    }

    pub(super) fn read(&mut self, node: &'a str, converged: bool, seen: Seen<'a>) {
        let reads = if converged {
            &mut self.finals
        } else {
            &mut self.before
        };
        reads.entry(node).or_insert(seen);
    }
}

impl PartialOrd for Seen<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Seen<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (Seen::Value(a), Seen::Value(b)) => a.cmp(b),
            (Seen::Members(a), Seen::Members(b)) => a.cmp(b),
            (Seen::Value(_), Seen::Members(_)) => std::cmp::Ordering::Less,
            (Seen::Members(_), Seen::Value(_)) => std::cmp::Ordering::Greater,
        }
    }
}

/// Renders what a node answered, briefly.
pub(super) fn render(seen: &Seen) -> String {
    match seen {
        Seen::Value(None) => "nil".to_owned(),
        Seen::Value(Some(value)) => format!("{value:?}"),
        Seen::Members(members) => {
            let shown: Vec<&str> = members.iter().take(MEMBERS_SHOWN_MAX).copied().collect();
            let more = members.len().saturating_sub(MEMBERS_SHOWN_MAX);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("{} members {{{}{more}}}", members.len(), shown.join(", "))
        }
    }
}

/// Returns the operations of `ops` that may have taken effect: `ok` or
/// unknown.
fn possible<'o, 'a>(ops: &'o [&'a Operation]) -> impl Iterator<Item = &'a Operation> + 'o {
    ops.iter().copied().filter(|op| op.outcome != Outcome::Fail)
}

/// Returns the number an SREM or DEL answered, when it was acknowledged.
fn answered(operation: &Operation) -> Option<u64> {
    match (&operation.seen, operation.outcome) {
        (Op::EventualSrem { removed, .. } | Op::EventualDel { removed, .. }, Outcome::Ok) => {
            *removed
        }
        _ => None,
    }
}

/// Returns whether an SREM or DEL may have removed something: unknown,
/// or acknowledged with 1 or more (one that answered 0 removed nothing).
fn may_remove(operation: &Operation) -> bool {
    match operation.outcome {
        Outcome::Info => true,
        Outcome::Ok => answered(operation).unwrap_or(1) > 0,
        Outcome::Fail => false,
    }
}

/// Returns the element an SADD or SREM names.
fn element(operation: &Operation) -> Option<u64> {
    match &operation.op {
        Op::EventualSadd { element, .. } | Op::EventualSrem { element, .. } => Some(*element),
        _ => None,
    }
}

/// A register (or deleted key): only written values, not nil after
/// an acknowledged SET nothing may have deleted.
pub(super) fn register(history: &KeyHistory, seen: &Seen, anomaly: &mut dyn FnMut(&str, String)) {
    let Seen::Value(value) = seen else {
        return anomaly(
            "invented",
            format!("a string key read as a set: {}", render(seen)),
        );
    };
    let value_of = |operation: &Operation| match &operation.op {
        Op::EventualSet { value, .. } => value.to_string(),
        _ => String::new(),
    };
    match value {
        Some(value) => {
            let writer = |outcome: Outcome| {
                history
                    .sets
                    .iter()
                    .find(|op| op.outcome == outcome && value_of(op) == *value)
            };
            let possible = writer(Outcome::Ok).or_else(|| writer(Outcome::Info));
            if possible.is_some() {
                return;
            }
            match writer(Outcome::Fail) {
                Some(failed) => anomaly(
                    "failed-write-seen",
                    format!("the final value {value:?} is that of {}", failed.describe()),
                ),
                None => anomaly(
                    "invented",
                    format!("the final value {value:?} was never written to it"),
                ),
            }
        }
        None => {
            let acknowledged = history.sets.iter().find(|op| op.outcome == Outcome::Ok);
            let deleter = history.dels.iter().find(|op| may_remove(op));
            if let (Some(acknowledged), None) = (acknowledged, deleter) {
                anomaly(
                    "lost-write",
                    format!(
                        "nil at the end, yet {} and nothing may have deleted it",
                        acknowledged.describe()
                    ),
                );
            }
        }
    }
}

/// A counter: between the acknowledged increments and those plus the
/// unknown ones, and no less than any value INCRBY answered.
pub(super) fn counter(history: &KeyHistory, seen: &Seen, anomaly: &mut dyn FnMut(&str, String)) {
    let Seen::Value(value) = seen else {
        return anomaly(
            "invented",
            format!("a counter read as a set: {}", render(seen)),
        );
    };
    let Ok(value) = value.unwrap_or("0").parse::<i128>() else {
        return anomaly("invented", format!("the counter holds {value:?}"));
    };
    let (mut acknowledged, mut unknown) = (0i128, 0i128);
    let mut highest: Option<(i64, &Operation)> = None;
    for operation in &history.incrbys {
        let Op::EventualIncrby { delta, .. } = &operation.op else {
            continue;
        };
        match operation.outcome {
            Outcome::Ok => acknowledged += i128::from(*delta),
            Outcome::Info => unknown += i128::from(*delta),
            Outcome::Fail => {}
        }
        if let (
            Outcome::Ok,
            Op::EventualIncrby {
                value: Some(answer),
                ..
            },
        ) = (operation.outcome, &operation.seen)
        {
            if highest.is_none_or(|(most, _)| *answer > most) {
                highest = Some((*answer, operation));
            }
        }
    }
    let counted = history.incrbys.len();
    if value < acknowledged {
        anomaly(
            "lost-increment",
            format!(
                "the counter ends at {value}, below the {acknowledged} its acknowledged \
                 increments add up to ({counted} INCRBYs)"
            ),
        );
    } else if let Some((answer, operation)) =
        highest.filter(|(answer, _)| value < i128::from(*answer))
    {
        anomaly(
            "lost-increment",
            format!(
                "the counter ends at {value}, below the {answer} of {}",
                operation.describe()
            ),
        );
    }
    if value > acknowledged + unknown {
        anomaly(
            "invented-increment",
            format!(
                "the counter ends at {value}, above the {} its acknowledged and unknown \
                 increments add up to ({counted} INCRBYs)",
                acknowledged + unknown
            ),
        );
    }
}

/// A set: only added elements; acknowledged adds present unless an
/// SREM may have removed them; elements an SREM removed absent.
pub(super) fn set(history: &KeyHistory, seen: &Seen, anomaly: &mut dyn FnMut(&str, String)) {
    let members: BTreeSet<&str> = match seen {
        Seen::Members(members) => members.clone(),
        Seen::Value(None) => BTreeSet::new(),
        Seen::Value(Some(value)) => {
            return anomaly("invented", format!("a set read as the string {value:?}"));
        }
    };
    let added: BTreeSet<String> = possible(&history.sadds)
        .filter_map(element)
        .map(|element| element.to_string())
        .collect();
    for member in &members {
        if added.contains(*member) {
            continue;
        }
        let failed = history
            .sadds
            .iter()
            .find(|op| element(op).is_some_and(|element| element.to_string() == *member));
        match failed {
            Some(failed) => anomaly(
                "failed-write-seen",
                format!(
                    "member {member} is there, added only by {}",
                    failed.describe()
                ),
            ),
            None => anomaly("invented", format!("member {member} was never added")),
        }
    }
    for sadd in history.sadds.iter().filter(|op| op.outcome == Outcome::Ok) {
        let Some(added) = element(sadd) else { continue };
        let srems: Vec<&&Operation> = history
            .srems
            .iter()
            .filter(|srem| element(srem) == Some(added))
            .collect();
        let present = members.contains(added.to_string().as_str());
        if !present && !srems.iter().any(|srem| may_remove(srem)) {
            let removes: Vec<String> = srems.iter().map(|srem| srem.describe()).collect();
            let removes = if removes.is_empty() {
                "no SREM of it".to_owned()
            } else {
                format!("its SREMs removed nothing: {}", removes.join("; "))
            };
            anomaly(
                "lost-add",
                format!(
                    "member {added} is missing, yet {}; {removes}",
                    sadd.describe()
                ),
            );
        }
    }
    for srem in history.srems.iter().filter(|op| answered(op) == Some(1)) {
        let Some(removed) = element(srem) else {
            continue;
        };
        if members.contains(removed.to_string().as_str()) {
            anomaly(
                "removed-present",
                format!("member {removed} is there, yet {}", srem.describe()),
            );
        }
        if !possible(&history.sadds).any(|sadd| element(sadd) == Some(removed)) {
            anomaly(
                "saw-unwritten",
                format!(
                    "{}, yet no SADD of {removed} may have taken effect",
                    srem.describe()
                ),
            );
        }
    }
}

/// A key deleted once: absent when a DEL answered 1.
pub(super) fn deleted(history: &KeyHistory, seen: &Seen, anomaly: &mut dyn FnMut(&str, String)) {
    for del in history
        .dels
        .iter()
        .filter(|op| answered(op).is_some_and(|n| n > 0))
    {
        if *seen != Seen::Value(None) {
            anomaly(
                "resurrected",
                format!(
                    "the key holds {} at the end, yet {}",
                    render(seen),
                    del.describe()
                ),
            );
        }
        if possible(&history.sets).next().is_none() {
            anomaly(
                "saw-unwritten",
                format!("{}, yet no SET of it may have taken effect", del.describe()),
            );
        }
    }
}
