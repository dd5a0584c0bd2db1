//! The linearizability search for one register: Wing and Gong's
//! algorithm with Lowe's memoization, the way Porcupine runs it.
//!
//! Operations become call and return entries in a doubly linked list
//! sorted by time. The search walks the list: at a call it tries to
//! linearize that operation next (apply it to the model, *lift* its call
//! and return out of the list, start again from the head); at a return it
//! has met an operation that finished without being linearized, so it
//! backtracks (*unlift* the last linearized operation and try the entry
//! after it). A cache of (linearized set, register value) configurations
//! already explored keeps it from exploring one twice. The backtracking
//! stack is a `Vec`, so long histories cannot overflow the thread's stack.
//!
//! Operations of unknown outcome are open to the end of the history, and
//! left as they are they multiply the orders to try. The search places
//! one only where a later operation depends on its value, and of several
//! that do the same the earliest first; see [`place`] for why that loses
//! no linearization.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

/// A register's value: `None` until something is written.
pub type Value = Option<u64>;

/// What one operation does to the register, as the search models it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A read that saw `Value`: it linearizes only where the register
    /// holds that value.
    Read(Value),
    /// A write, certain or not: it always applies.
    Write(u64),
    /// An acknowledged compare-and-set: it linearizes only where the
    /// register holds `from`.
    Cas { from: u64, to: u64 },
    /// A compare-and-set whose outcome is unknown: where the register
    /// holds `from` it swaps, elsewhere it changes nothing.
    MaybeCas { from: u64, to: u64 },
}

impl Action {
    /// Returns the register after the action, or `None` when the action
    /// cannot take effect on `value`.
    pub fn step(self, value: Value) -> Option<Value> {
        match self {
            Action::Read(seen) => (seen == value).then_some(value),
            Action::Write(written) => Some(Some(written)),
            Action::Cas { from, to } => (value == Some(from)).then_some(Some(to)),
            Action::MaybeCas { from, to } => {
                Some(if value == Some(from) { Some(to) } else { value })
            }
        }
    }
}

/// One operation to linearize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchOp {
    pub call_ns: u64,
    /// `u64::MAX` for an operation that may take effect at any later time.
    pub return_ns: u64,
    pub action: Action,
}

/// Limits on one search.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub states_max: u64,
    pub deadline: Instant,
}

/// How a search ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Linearizable,
    /// No order works. `prefix` is the longest sequence of operations
    /// (positions in the input) the search linearized, `value` the
    /// register after it, and `stuck` the operation whose return the
    /// search then met without having placed it.
    NotLinearizable {
        prefix: Vec<usize>,
        value: Value,
        stuck: usize,
    },
    /// The search gave up; `states` configurations were explored.
    Exhausted {
        states: u64,
    },
}

const HEAD: usize = 0;
const NIL: usize = usize::MAX;
/// How many steps pass between two looks at the clock.
const CLOCK_STEPS: u64 = 4096;

/// Hashes for the cache are already uniformly random 128-bit values; the
/// hasher only folds them to 64 bits.
#[derive(Default)]
struct Fold(u64);

impl Hasher for Fold {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = (value as u64) ^ ((value >> 64) as u64);
    }
}

/// The call/return list: entry 0 is the head, entry `1 + 2i` is the call
/// of operation `i` and `2 + 2i` its return, linked in time order.
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl Entries {
    fn new(ops: &[SearchOp]) -> Self {
        let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
        for (position, op) in ops.iter().enumerate() {
            // At equal times a call sorts before a return: the two
            // operations count as concurrent, the lenient reading of a
            // clock that could not tell them apart.
            order.push((op.call_ns, 0, call_entry(position)));
            order.push((op.return_ns, 1, call_entry(position) + 1));
        }
        order.sort_unstable();
        let mut next = vec![NIL; order.len() + 1];
        let mut prev = vec![NIL; order.len() + 1];
        let mut last = HEAD;
        for &(_, _, entry) in &order {
            next[last] = entry;
            prev[entry] = last;
            last = entry;
        }
        Entries { next, prev }
    }

    /// Takes the call `entry` and its return out of the list.
    fn lift(&mut self, entry: usize) {
        for removed in [entry, entry + 1] {
            let (before, after) = (self.prev[removed], self.next[removed]);
            self.next[before] = after;
            if after != NIL {
                self.prev[after] = before;
            }
        }
    }

    /// Puts back what [`Entries::lift`] took out, in the reverse order, so
    /// the removed entries' own links restore their neighbours.
    fn unlift(&mut self, entry: usize) {
        for restored in [entry + 1, entry] {
            let (before, after) = (self.prev[restored], self.next[restored]);
            self.next[before] = restored;
            if after != NIL {
                self.prev[after] = restored;
            }
        }
    }
}

fn call_entry(position: usize) -> usize {
    1 + 2 * position
}

fn is_call(entry: usize) -> bool {
    entry % 2 == 1
}

fn position_of(entry: usize) -> usize {
    (entry - 1) / 2
}

/// A deterministic 64-bit generator (SplitMix64) for the cache's hashes.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_u128(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }
}

/// For each operation open to the end of the history, the nearest one
/// before it that is open too and does the same: its *twin*.
///
/// Twins are interchangeable: in any linearization where the later one
/// goes first, swapping the two gives another (the earlier was invoked
/// first, neither must finish, and both have the same effect). So the
/// search only places a twin once its earlier twin is placed, which
/// spares it every permutation of, say, a dozen timed-out writes of the
/// same value.
fn earlier_twins(ops: &[SearchOp]) -> Vec<Option<usize>> {
    let mut last: HashMap<Action, usize> = HashMap::new();
    ops.iter()
        .enumerate()
        .map(|(position, op)| {
            if op.return_ns != u64::MAX {
                return None;
            }
            last.insert(op.action, position)
                .filter(|&earlier| ops[earlier].call_ns <= op.call_ns)
        })
        .collect()
}

/// A 128-bit hash of a register value, independent of the operations'.
fn value_hash(value: Value) -> u128 {
    let mut mix = SplitMix(match value {
        None => 0x5eed_0000_0000_0001,
        Some(value) => value ^ 0x0123_4567_89ab_cdef,
    });
    mix.next_u128()
}

/// What the search knows about one operation besides its action.
struct Facts {
    /// Open to the end of the history: it may take effect late or never.
    open: Vec<bool>,
    twins: Vec<Option<usize>>,
}

/// Returns the register after placing operation `position` next, or
/// `None` when the model refuses it or the search need not try it.
///
/// Besides the model, two rules keep the search to *canonical* orders,
/// each of which some linearization has if any does:
/// - an operation open to the end goes only where it changes the value,
///   and only right before an operation that depends on that value (a
///   read, or a compare-and-set that swaps it). An open operation that
///   changes nothing, or whose value is overwritten before anything reads
///   it, can be moved to the end of the history, where it can always go
///   and matters to nobody; an operation that changes nothing is equally
///   fine there. So the search never places one that is not needed;
/// - twins go in order (see [`earlier_twins`]).
///
/// `after_open` says whether the last operation placed was an open one.
fn place(
    ops: &[SearchOp],
    facts: &Facts,
    linearized: &[bool],
    position: usize,
    value: Value,
    after_open: bool,
) -> Option<Value> {
    if facts.twins[position].is_some_and(|twin| !linearized[twin]) {
        return None;
    }
    let action = ops[position].action;
    let depends_on_value = match action {
        Action::Read(_) | Action::Cas { .. } => true,
        Action::MaybeCas { from, .. } => value == Some(from),
        Action::Write(_) => false,
    };
    if after_open && !depends_on_value {
        return None;
    }
    let after = action.step(value)?;
    if facts.open[position] && after == value {
        return None;
    }
    Some(after)
}

/// Searches for a linearization of `ops` from an empty register.
///
/// The search is done when every operation that must take effect has;
/// the open ones left over go at the end, where anything can.
///
/// The cache identifies the set of linearized operations by the XOR of a
/// random 128-bit tag per operation (Zobrist hashing), updated in O(1) as
/// the search lifts and unlifts, instead of storing a bitset per entry.
/// Two configurations colliding is astronomically unlikely (about 2^-128
/// per pair), and a collision could only prune a branch, so it could make
/// the search miss a linearization, never invent one.
pub fn linearize(ops: &[SearchOp], limits: Limits) -> Outcome {
    let mut tags = SplitMix(0x9d1c_5a3b_27e4_f086);
    let tags: Vec<u128> = ops.iter().map(|_| tags.next_u128()).collect();
    // Tells apart configurations that differ only in whether the last
    // operation placed was open, as `place` treats them differently.
    let after_open_tag = tags
        .iter()
        .fold(0x5eed_u128, |tag, next| tag ^ next.rotate_left(1));
    let facts = Facts {
        open: ops.iter().map(|op| op.return_ns == u64::MAX).collect(),
        twins: earlier_twins(ops),
    };
    let mut must_place = facts.open.iter().filter(|&&open| !open).count();
    let mut entries = Entries::new(ops);
    let mut linearized = vec![false; ops.len()];
    let mut seen: HashSet<u128, BuildHasherDefault<Fold>> = HashSet::default();

    let mut value: Value = None;
    let mut linearized_hash: u128 = 0;
    // The call entries linearized so far, with the value before each.
    let mut stack: Vec<(usize, Value)> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut longest_value: Value = None;
    let mut stuck: Option<usize> = None;
    let mut steps: u64 = 0;

    let mut entry = entries.next[HEAD];
    while must_place > 0 {
        steps += 1;
        if steps.is_multiple_of(CLOCK_STEPS) && Instant::now() > limits.deadline {
            return Outcome::Exhausted {
                states: seen.len() as u64,
            };
        }
        if entry != NIL && is_call(entry) {
            let position = position_of(entry);
            let after_open = stack
                .last()
                .is_some_and(|&(call, _)| facts.open[position_of(call)]);
            if let Some(after) = place(ops, &facts, &linearized, position, value, after_open) {
                let hash = linearized_hash ^ tags[position];
                let open_tag = if facts.open[position] {
                    after_open_tag
                } else {
                    0
                };
                if seen.insert(hash ^ value_hash(after) ^ open_tag) {
                    if seen.len() as u64 > limits.states_max {
                        return Outcome::Exhausted {
                            states: seen.len() as u64,
                        };
                    }
                    stack.push((entry, value));
                    value = after;
                    linearized_hash = hash;
                    entries.lift(entry);
                    linearized[position] = true;
                    must_place -= usize::from(!facts.open[position]);
                    if stack.len() > longest.len() {
                        longest = stack.iter().map(|&(call, _)| position_of(call)).collect();
                        longest_value = value;
                        stuck = None;
                    }
                    entry = entries.next[HEAD];
                    continue;
                }
            }
            entry = entries.next[entry];
            continue;
        }
        // A return of an operation not yet linearized: every order that
        // extends the current prefix places it too late.
        if entry != NIL && stuck.is_none() && stack.len() == longest.len() {
            stuck = Some(position_of(entry));
        }
        let Some((call, before)) = stack.pop() else {
            return Outcome::NotLinearizable {
                prefix: longest,
                value: longest_value,
                // Something must still be placed, so the walk met the
                // return of an operation that must.
                stuck: stuck.unwrap_or(0),
            };
        };
        let position = position_of(call);
        value = before;
        linearized_hash ^= tags[position];
        linearized[position] = false;
        must_place += usize::from(!facts.open[position]);
        entries.unlift(call);
        entry = entries.next[call];
    }
    Outcome::Linearizable
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> Limits {
        Limits {
            states_max: 1_000_000,
            deadline: Instant::now() + Duration::from_secs(10),
        }
    }

    fn op(call_ns: u64, return_ns: u64, action: Action) -> SearchOp {
        SearchOp {
            call_ns,
            return_ns,
            action,
        }
    }

    #[test]
    fn lift_and_unlift_restore_the_list() {
        let ops = [
            op(0, 10, Action::Write(1)),
            op(5, 6, Action::Read(None)),
            op(7, 20, Action::Read(Some(1))),
        ];
        let mut entries = Entries::new(&ops);
        let before = (entries.next.clone(), entries.prev.clone());
        entries.lift(call_entry(1));
        entries.lift(call_entry(0));
        assert_eq!(entries.next[HEAD], call_entry(2));
        entries.unlift(call_entry(0));
        entries.unlift(call_entry(1));
        assert_eq!((entries.next, entries.prev), before);
    }

    #[test]
    fn finds_the_only_order_that_works() {
        // The read of nil must go before the write even though it was
        // invoked later.
        let ops = [op(0, 10, Action::Write(1)), op(2, 8, Action::Read(None))];
        assert_eq!(linearize(&ops, limits()), Outcome::Linearizable);
    }

    #[test]
    fn reports_the_longest_prefix_and_the_stuck_operation() {
        let ops = [
            op(0, 1, Action::Write(1)),
            op(2, 3, Action::Write(2)),
            op(4, 5, Action::Read(Some(1))),
        ];
        assert_eq!(
            linearize(&ops, limits()),
            Outcome::NotLinearizable {
                prefix: vec![0, 1],
                value: Some(2),
                stuck: 2
            }
        );
    }

    #[test]
    fn only_open_operations_that_do_the_same_are_twins() {
        let open = u64::MAX;
        let ops = [
            op(0, open, Action::Write(1)),
            op(1, open, Action::Write(2)),
            op(2, 3, Action::Write(1)),
            op(4, open, Action::Write(1)),
            op(5, open, Action::Write(1)),
        ];
        assert_eq!(earlier_twins(&ops), [None, None, None, Some(0), Some(3)]);
    }

    #[test]
    fn a_maybe_cas_swaps_only_where_it_matches() {
        let cas = Action::MaybeCas { from: 1, to: 2 };
        assert_eq!(cas.step(Some(1)), Some(Some(2)));
        assert_eq!(cas.step(Some(3)), Some(Some(3)));
        assert_eq!(cas.step(None), Some(None));
        let certain = Action::Cas { from: 1, to: 2 };
        assert_eq!(certain.step(Some(3)), None);
    }
}
