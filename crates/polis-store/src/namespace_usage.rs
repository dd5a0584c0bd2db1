//! The bytes each cache namespace holds in a keyspace: what a namespace's
//! `maxmemory` bounds, kept up to date with every write.
//!
//! A key counts in the namespace with the longest prefix of it, when that
//! namespace has cache limits; a key in a longer namespace without limits
//! counts in none:
//!
//! ```text
//!   table: "s:" limited (0)   "s:cold:" not limited   "t:" limited (1)
//!   "s:1"       ──> usage[0]
//!   "s:cold:7"  ──> none
//!   "t:x"       ──> usage[1]
//! ```
//!
//! The table is node configuration (from the cluster map), not replicated
//! state: setting it counts the keyspace afresh.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use crate::db::{entry_bytes, Db};

/// The namespaces a node knows, for counting: every prefix, and which of
/// them have cache limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceTable {
    /// Every namespace's prefix, with its place in `limited` if it has
    /// cache limits.
    prefixes: BTreeMap<Bytes, Option<usize>>,
    /// The prefixes with cache limits, in prefix order.
    limited: Vec<Bytes>,
}

impl NamespaceTable {
    /// Returns the table of `namespaces`: each prefix, and whether it has
    /// cache limits.
    pub fn new(namespaces: impl IntoIterator<Item = (Bytes, bool)>) -> Self {
        let sorted: BTreeMap<Bytes, bool> = namespaces.into_iter().collect();
        let mut table = Self::default();
        for (prefix, limited) in sorted {
            let place = limited.then(|| {
                table.limited.push(prefix.clone());
                table.limited.len() - 1
            });
            table.prefixes.insert(prefix, place);
        }
        table
    }

    /// Returns the prefixes with cache limits, in prefix order.
    pub fn limited(&self) -> &[Bytes] {
        &self.limited
    }

    /// Returns the place in [`NamespaceTable::limited`] of the namespace
    /// `key` counts in: the one with its longest prefix, if that one has
    /// cache limits.
    pub fn limited_of(&self, key: &[u8]) -> Option<usize> {
        self.prefixes
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .rev()
            .find(|(prefix, _)| key.starts_with(prefix))
            .and_then(|(_, place)| *place)
    }
}

/// A keyspace's bytes per cache namespace.
#[derive(Clone, Debug, Default)]
pub(crate) struct NamespaceUsage {
    pub(crate) table: Arc<NamespaceTable>,
    /// Bytes per prefix of `table.limited()`.
    pub(crate) bytes: Vec<usize>,
}

impl NamespaceUsage {
    /// Moves the count of `key`'s namespace from `before` to `after`
    /// bytes.
    pub(crate) fn account(&mut self, key: &[u8], before: usize, after: usize) {
        if let Some(place) = self.table.limited_of(key) {
            let bytes = &mut self.bytes[place];
            *bytes = bytes.saturating_sub(before) + after;
        }
    }
}

impl Db {
    /// Counts the keyspace's bytes per cache namespace of `table` from
    /// here on (None: counts none). The same table again changes nothing;
    /// another one counts every key afresh (O(keys)).
    pub fn set_namespaces(&mut self, table: Option<Arc<NamespaceTable>>) {
        let Some(table) = table.filter(|table| !table.limited.is_empty()) else {
            self.namespaces = None;
            return;
        };
        if let Some(usage) = &self.namespaces {
            if Arc::ptr_eq(&usage.table, &table) || usage.table == table {
                return;
            }
        }
        let mut usage = NamespaceUsage {
            bytes: vec![0; table.limited.len()],
            table,
        };
        for (key, entry) in self.keys.iter() {
            usage.account(key, 0, entry_bytes(key, entry));
        }
        self.namespaces = Some(Box::new(usage));
    }

    /// Returns the namespace table the keyspace counts by, if any.
    pub fn namespace_table(&self) -> Option<&Arc<NamespaceTable>> {
        self.namespaces.as_ref().map(|usage| &usage.table)
    }

    /// Returns the bytes the cache namespace of `prefix` holds here (0
    /// for a prefix not counted).
    pub fn namespace_bytes(&self, prefix: &[u8]) -> usize {
        let Some(usage) = &self.namespaces else {
            return 0;
        };
        usage
            .table
            .limited
            .binary_search_by(|held| held.as_ref().cmp(prefix))
            .map_or(0, |place| usage.bytes[place])
    }

    /// Returns every cache namespace's prefix and the bytes it holds here.
    pub fn namespace_usage(&self) -> impl Iterator<Item = (&Bytes, usize)> {
        self.namespaces
            .iter()
            .flat_map(|usage| usage.table.limited.iter().zip(usage.bytes.iter().copied()))
    }

    /// Returns the cache namespace `key` counts in, if any.
    pub fn limited_namespace_of(&self, key: &[u8]) -> Option<&Bytes> {
        let usage = self.namespaces.as_ref()?;
        let place = usage.table.limited_of(key)?;
        usage.table.limited.get(place)
    }
}

#[cfg(test)]
#[path = "namespace_usage_test.rs"]
mod tests;
