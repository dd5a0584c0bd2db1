//! One eventual key's whole state: a component per type, each merged by
//! its own rule, and the key's deadline. The merge is the product of the
//! components' merges, so it keeps their laws (property-tested in
//! `value_test.rs`).
//!
//! ```text
//!   KeyState ── string: base register + counts on that base   (SET, INCR)
//!            ── set:    add-wins members                      (SADD, SREM)
//!            ── hash:   add-wins fields, a register each      (HSET, HDEL)
//!            ── expiry: EXPIRE/PERSIST, longest TTL or PERSIST wins
//! ```
//!
//! A key shows one type: that of the component born last among those
//! holding something. A write of another type than the one shown clears
//! what the others hold (the entries it saw, as a DEL does) and is born
//! anew, so "the type written last wins" and a concurrent write of the
//! old type survives only in a component that is not shown.
//!
//! A SET replaces the counts: INCRs count on the base value they saw, and
//! counts on an older base are dropped, so a SET concurrent with INCRs
//! wins over them (last writer wins), while concurrent INCRs all count.

use std::collections::BTreeMap;

use bytes::Bytes;
use polis_types::NodeId;
use serde::{Deserialize, Serialize};

use crate::expiry::Expiry;
use crate::hlc::Version;
use crate::merge::{AddWinsMap, AddWinsSet, Counter, Merge, Register};

/// The type a key shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Set,
    Hash,
}

impl Kind {
    /// Returns the name TYPE answers.
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Set => "set",
            Self::Hash => "hash",
        }
    }
}

/// A string: the last value SET (or none) and the counts INCRs made on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StringState {
    base: Register<Bytes>,
    /// Counts by the version of the base they were made on; only the
    /// current base's count is kept.
    counts: BTreeMap<Version, Counter>,
}

/// Why a string cannot be counted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountError {
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    #[error("increment or decrement would overflow")]
    Overflow,
}

impl StringState {
    /// Returns the value: the base with its count added, if any.
    pub fn value(&self) -> Option<Bytes> {
        let count = self.count();
        if count == 0 {
            return self.base.value.clone();
        }
        let base = self.base_integer().unwrap_or(0);
        Some(Bytes::from((i128::from(base) + count).to_string()))
    }

    fn count(&self) -> i128 {
        self.counts
            .get(&self.base.version)
            .map_or(0, Counter::value)
    }

    fn base_integer(&self) -> Option<i64> {
        match &self.base.value {
            None => Some(0),
            Some(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        }
    }

    /// Writes `value` (none: deletes) at `version`, replacing the counts,
    /// unless the string holds a newer write. A write at the version it
    /// holds replaces it: one command may clear a key, then set it.
    pub fn set(&mut self, version: Version, value: Option<Bytes>) {
        if version >= self.base.version {
            self.base = Register { version, value };
            self.drop_old_counts();
        }
    }

    /// Adds `delta` as `actor`; returns the new value.
    ///
    /// # Errors
    /// [`CountError`] when the value is no integer or the sum leaves i64
    /// (nothing is counted then).
    pub fn add(&mut self, actor: NodeId, delta: i64) -> Result<i64, CountError> {
        let base = self.base_integer().ok_or(CountError::NotAnInteger)?;
        let sum = i128::from(base) + self.count() + i128::from(delta);
        let sum = i64::try_from(sum).map_err(|_| CountError::Overflow)?;
        self.counts
            .entry(self.base.version)
            .or_default()
            .add(actor, delta);
        Ok(sum)
    }

    fn drop_old_counts(&mut self) {
        let base = self.base.version;
        self.counts.retain(|version, _| *version >= base);
    }

    fn is_empty(&self) -> bool {
        self.base.value.is_none() && self.count() == 0
    }
}

impl Merge for StringState {
    fn merge(&mut self, other: &Self) {
        self.base.merge(&other.base);
        for (version, counter) in &other.counts {
            self.counts.entry(*version).or_default().merge(counter);
        }
        self.drop_old_counts();
    }
}

/// A component and the version of the write that created it last.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Born<T> {
    pub born: Version,
    pub state: T,
}

impl<T: Merge> Merge for Born<T> {
    fn merge(&mut self, other: &Self) {
        self.born = self.born.max(other.born);
        self.state.merge(&other.state);
    }
}

/// A hash: fields, each a last-writer-wins value.
pub type HashState = AddWinsMap<Bytes, Register<Bytes>>;

/// One eventual key's state on a replica.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    pub string: Born<StringState>,
    pub set: Born<AddWinsSet<Bytes>>,
    pub hash: Born<HashState>,
    pub expiry: Expiry,
}

impl Merge for KeyState {
    fn merge(&mut self, other: &Self) {
        self.string.merge(&other.string);
        self.set.merge(&other.set);
        self.hash.merge(&other.hash);
        self.expiry.merge(&other.expiry);
    }
}

impl KeyState {
    /// Returns the type the key shows, ignoring its deadline: the
    /// component born last among those holding something.
    pub fn kind(&self) -> Option<Kind> {
        [
            (!self.string.state.is_empty()).then_some((self.string.born, Kind::String)),
            (!self.set.state.is_empty()).then_some((self.set.born, Kind::Set)),
            (!self.hash.state.is_empty()).then_some((self.hash.born, Kind::Hash)),
        ]
        .into_iter()
        .flatten()
        .max_by_key(|(born, _)| *born)
        .map(|(_, kind)| kind)
    }

    /// Returns the type the key shows at `now_ms` (none once expired).
    pub fn live_kind(&self, now_ms: u64) -> Option<Kind> {
        if self.expired(now_ms) {
            return None;
        }
        self.kind()
    }

    /// Returns true when the key's deadline passed at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expiry
            .deadline()
            .is_some_and(|deadline| deadline <= now_ms)
    }

    /// Deletes what the key holds, as seen here: the string's value and
    /// counts (a tombstone at `version`), the members and fields seen.
    /// An add made elsewhere and not seen survives (add-wins).
    pub fn clear(&mut self, version: Version) {
        self.string.state.set(version, None);
        let members: Vec<Bytes> = self.set.state.keys().cloned().collect();
        for member in &members {
            self.set.state.remove(member);
        }
        let fields: Vec<Bytes> = self.hash.state.keys().cloned().collect();
        for field in &fields {
            self.hash.state.remove(field);
        }
    }

    /// Readies the key for a write of `kind` at `version` and `now_ms`:
    /// an expired key is cleared first (and loses its deadline), and a
    /// key showing another type is cleared and the component born anew.
    /// Returns false when the key shows another type and `replace` is
    /// false (the command answers WRONGTYPE then).
    pub fn prepare(
        &mut self,
        kind: Kind,
        version: Version,
        now_ms: u64,
        actor: NodeId,
        replace: bool,
    ) -> bool {
        if self.expired(now_ms) {
            self.clear(version);
            self.expiry.set(actor, None);
        }
        let shown = self.kind();
        if shown.is_some_and(|shown| shown != kind) {
            if !replace {
                return false;
            }
            self.clear(version);
        }
        if shown != Some(kind) {
            match kind {
                Kind::String => self.string.born = version,
                Kind::Set => self.set.born = version,
                Kind::Hash => self.hash.born = version,
            }
        }
        true
    }

    /// Returns the newest version the state holds (of its writes, births
    /// and hash fields), if any: a write made after seeing this state must
    /// be newer.
    pub fn max_version(&self) -> Option<Version> {
        let string = &self.string;
        [
            Some(string.born),
            Some(string.state.base.version),
            string.state.counts.keys().next_back().copied(),
            Some(self.set.born),
            Some(self.hash.born),
        ]
        .into_iter()
        .flatten()
        .chain(
            self.hash
                .state
                .keys()
                .filter_map(|field| self.hash.state.get(field).map(|value| value.version)),
        )
        .filter(|version| *version != Version::default())
        .max()
    }

    /// Returns true for the state of a key never written.
    pub fn is_untouched(&self) -> bool {
        *self == Self::default()
    }

    /// Returns true when the key holds nothing (a tombstone or nothing at
    /// all), whatever its deadline.
    pub fn is_empty(&self) -> bool {
        self.kind().is_none()
    }
}

#[cfg(test)]
#[path = "value_test.rs"]
mod tests;
