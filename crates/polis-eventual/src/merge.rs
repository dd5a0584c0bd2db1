//! How replicas of an eventual key converge: each type's state and its
//! merge, which is commutative, associative and idempotent, so replicas
//! that received the same writes, in any order and any number of times,
//! hold the same state (property-tested in `merge_test.rs`).
//!
//! The rules are those Redis Active-Active documents:
//! - a string is a last-writer-wins [`Register`]: the highest version
//!   wins; a delete writes a tombstone (no value) with its own version;
//! - INCR and its family count on a [`Counter`]: every increment counts,
//!   however concurrent;
//! - set members and hash fields are add-wins ([`AddWinsMap`]): a remove
//!   takes away only the adds it saw, so an add concurrent with a remove
//!   survives it; a hash field's value is a register within it.

use std::collections::{BTreeMap, BTreeSet};

use polis_types::NodeId;
use serde::{Deserialize, Serialize};

use crate::hlc::Version;

/// A state replicas merge.
pub trait Merge {
    /// Takes in `other`'s writes.
    fn merge(&mut self, other: &Self);
}

/// Nothing to merge: the payload of a set's members.
impl Merge for () {
    fn merge(&mut self, _other: &Self) {}
}

/// A last-writer-wins register: the value of the highest version, or none
/// when that version is a delete (a tombstone, kept so that an older
/// write arriving later cannot bring the value back).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register<T> {
    pub version: Version,
    pub value: Option<T>,
}

impl<T> Register<T> {
    /// Writes `value` (none: deletes) at `version`, if newer than what
    /// the register holds.
    pub fn write(&mut self, version: Version, value: Option<T>) {
        if version > self.version {
            self.version = version;
            self.value = value;
        }
    }
}

impl<T: Clone> Merge for Register<T> {
    fn merge(&mut self, other: &Self) {
        if other.version > self.version {
            self.version = other.version;
            self.value = other.value.clone();
        }
    }
}

/// What one node added to a counter and took from it, each only growing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Contribution {
    up: u64,
    down: u64,
}

/// A counter whose concurrent increments all count: each node keeps its
/// own totals, merged by taking the larger of each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    contributions: BTreeMap<NodeId, Contribution>,
}

impl Counter {
    /// Adds `delta` (negative: subtracts) as node `node`.
    pub fn add(&mut self, node: NodeId, delta: i64) {
        let own = self.contributions.entry(node).or_default();
        if delta >= 0 {
            own.up = own.up.saturating_add(delta.unsigned_abs());
        } else {
            own.down = own.down.saturating_add(delta.unsigned_abs());
        }
    }

    /// Returns the sum of every node's contributions (wider than i64: the
    /// increments of several nodes together may pass it; the command says
    /// what to do then).
    pub fn value(&self) -> i128 {
        self.contributions
            .values()
            .map(|own| i128::from(own.up) - i128::from(own.down))
            .sum()
    }
}

impl Merge for Counter {
    fn merge(&mut self, other: &Self) {
        for (node, theirs) in &other.contributions {
            let own = self.contributions.entry(*node).or_default();
            own.up = own.up.max(theirs.up);
            own.down = own.down.max(theirs.down);
        }
    }
}

/// One add: the node that made it and its sequence number there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    pub node: NodeId,
    pub seq: u64,
}

/// Add-wins entries (an observed-remove map): each entry lives while an
/// add of it is not covered by a remove that saw that add. Every add is
/// kept with its payload (a hash field's value) until an add or remove
/// that saw it supersedes it; an entry's payload is the merge of its
/// live adds' (concurrent HSETs: the newest value). `context` holds, per
/// node, the adds seen so far (1 to n, with no gap: states are merged
/// whole, and each node numbers its adds in order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddWinsMap<K: Ord, P> {
    context: BTreeMap<NodeId, u64>,
    entries: BTreeMap<K, BTreeMap<Dot, P>>,
}

/// An add-wins set: a map whose entries carry nothing.
pub type AddWinsSet<T> = AddWinsMap<T, ()>;

impl<K: Ord, P> Default for AddWinsMap<K, P> {
    fn default() -> Self {
        Self {
            context: BTreeMap::new(),
            entries: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone, P: Merge + Clone + Default> AddWinsMap<K, P> {
    fn seen(&self, dot: &Dot) -> bool {
        self.context
            .get(&dot.node)
            .is_some_and(|seq| *seq >= dot.seq)
    }

    /// Adds `key` with `payload` as node `node`; the add supersedes the
    /// adds of `key` seen before it.
    pub fn add(&mut self, node: NodeId, key: K, payload: P) {
        let seq = self.context.entry(node).or_default();
        *seq += 1;
        let dot = Dot { node, seq: *seq };
        self.entries.insert(key, BTreeMap::from([(dot, payload)]));
    }

    /// Removes `key`: the adds of it seen so far (a concurrent add
    /// elsewhere survives). Returns whether it was present.
    pub fn remove(&mut self, key: &K) -> bool {
        self.entries.remove(key).is_some()
    }

    /// Returns the payload of `key` (its live adds' merged), if present.
    pub fn get(&self, key: &K) -> Option<P> {
        let adds = self.entries.get(key)?;
        let mut payloads = adds.values();
        let mut merged = payloads.next()?.clone();
        for payload in payloads {
            merged.merge(payload);
        }
        Some(merged)
    }

    /// Returns the keys present, in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.keys()
    }

    /// Returns how many keys are present.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns true when no key is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Ord + Clone, P: Merge + Clone + Default> Merge for AddWinsMap<K, P> {
    fn merge(&mut self, other: &Self) {
        let keys: BTreeSet<K> = self
            .entries
            .keys()
            .chain(other.entries.keys())
            .cloned()
            .collect();
        let none = BTreeMap::new();
        let mut merged = BTreeMap::new();
        for key in keys {
            let mine = self.entries.get(&key).unwrap_or(&none);
            let theirs = other.entries.get(&key).unwrap_or(&none);
            // An add lives on when both sides hold it, or when the side
            // without it never saw it (not removed there: not received).
            let adds: BTreeMap<Dot, P> = mine
                .iter()
                .filter(|(dot, _)| theirs.contains_key(dot) || !other.seen(dot))
                .chain(theirs.iter().filter(|(dot, _)| !self.seen(dot)))
                .map(|(dot, payload)| (*dot, payload.clone()))
                .collect();
            if !adds.is_empty() {
                merged.insert(key, adds);
            }
        }
        self.entries = merged;
        for (node, seq) in &other.context {
            let mine = self.context.entry(*node).or_default();
            *mine = (*mine).max(*seq);
        }
    }
}

#[cfg(test)]
#[path = "merge_test.rs"]
pub(crate) mod tests;
