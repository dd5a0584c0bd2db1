//! The value of a hash key: fields in hash order (so HSCAN cursors and
//! snapshots are the same on every replica), with the figures that memory
//! estimates and OBJECT ENCODING need kept up to date.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ordered::HashOrderedMap;
use crate::value::EncodingLimits;

/// Approximate bookkeeping bytes of one field of a hash.
pub const HASH_FIELD_OVERHEAD_BYTES: usize = 48;

/// The value of a hash key: fields in hash order, with the size figures
/// that memory estimates and OBJECT ENCODING need kept up to date.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct HashValue {
    fields: HashOrderedMap<Bytes>,
    /// Sum of field and value lengths.
    payload_bytes: usize,
    /// Largest number of fields the hash ever had; like Redis's one-way
    /// listpack-to-hashtable conversion, it never shrinks.
    peak_len: usize,
    /// Longest field or value ever stored.
    peak_item_len: usize,
}

impl HashValue {
    /// Returns an empty hash.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Returns true when the hash has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Returns the value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.fields.get(field)
    }

    /// Returns true when `field` exists.
    pub fn contains(&self, field: &[u8]) -> bool {
        self.fields.contains_key(field)
    }

    /// Sets `field` to `value`; returns true when the field is new.
    pub fn insert(&mut self, field: Bytes, value: Bytes) -> bool {
        self.peak_item_len = self.peak_item_len.max(field.len()).max(value.len());
        let added = field.len() + value.len();
        let field_len = field.len();
        let previous = self.fields.insert(field, value);
        self.payload_bytes += added;
        let is_new = match previous {
            Some(old) => {
                self.payload_bytes -= field_len + old.len();
                false
            }
            None => true,
        };
        self.peak_len = self.peak_len.max(self.fields.len());
        is_new
    }

    /// Removes `field`; returns true when it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.fields.remove(field) {
            Some((stored, value)) => {
                self.payload_bytes -= stored.len() + value.len();
                true
            }
            None => false,
        }
    }

    /// Iterates `(field, value)` pairs in hash order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Bytes, &Bytes)> + ExactSizeIterator {
        self.fields.iter()
    }

    /// Returns the pair at `index` in iteration order (O(n)).
    pub fn nth(&self, index: usize) -> Option<(&Bytes, &Bytes)> {
        self.fields.nth(index)
    }

    /// Returns the fields from `cursor` on (see [`HashOrderedMap::scan`]).
    pub fn scan(&self, cursor: u64, count: usize) -> crate::ordered::ScanPage<'_, Bytes> {
        self.fields.scan(cursor, count)
    }

    /// Returns `listpack` or `hashtable`, as Redis would under `limits`.
    pub fn encoding(&self, limits: &EncodingLimits) -> &'static str {
        if self.peak_len <= limits.hash_max_listpack_entries
            && self.peak_item_len <= limits.hash_max_listpack_value
        {
            "listpack"
        } else {
            "hashtable"
        }
    }

    /// Returns an estimate of the bytes this hash occupies.
    pub fn mem_bytes(&self) -> usize {
        self.payload_bytes + self.fields.len() * HASH_FIELD_OVERHEAD_BYTES + 32
    }

    /// Cuts the fields into hashes of about `part_bytes` each, in order;
    /// the first keeps this hash's encoding history.
    pub(crate) fn split(&self, part_bytes: usize) -> Vec<HashValue> {
        let mut parts = vec![HashValue {
            peak_len: self.peak_len,
            peak_item_len: self.peak_item_len,
            ..HashValue::new()
        }];
        for (field, value) in self.iter() {
            if parts
                .last()
                .is_some_and(|part| !part.is_empty() && part.mem_bytes() >= part_bytes)
            {
                parts.push(HashValue::new());
            }
            if let Some(part) = parts.last_mut() {
                part.insert(field.clone(), value.clone());
            }
        }
        parts
    }

    /// Adds the fields of `part`, a piece of [`HashValue::split`].
    pub(crate) fn absorb(&mut self, mut part: HashValue) {
        for (_, field, value) in part.fields.drain_hashed() {
            self.insert(field, value);
        }
    }
}

#[cfg(test)]
#[path = "hash_test.rs"]
mod tests;
