//! The value of a hash key: fields in hash order (so HSCAN cursors and
//! snapshots are the same on every replica), with the figures that memory
//! estimates and OBJECT ENCODING need kept up to date.
//!
//! Each field is stored with its value in one allocation ([`PackedField`]):
//! a large hash is mostly fields, and two `Bytes` per field (a 32-byte
//! handle and an allocation each) cost more than the data they held.

use std::fmt;

use bytes::Bytes;
use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::memory::{btree_bytes, heap_bytes_spread, Fill};
use crate::ordered::{HashOrderedMap, StoredKey};
use crate::value::EncodingLimits;

/// A field's B-tree slot: its 8-byte hash and the packed allocation's
/// 16-byte box pointer.
const FIELD_SLOT_BYTES: usize = 24;

/// The longest LEB128 encoding of a `u64`.
const VARINT_LEN_MAX: usize = 10;

/// A field of a hash and its value in one allocation: the field's length
/// as a LEB128 varint, the field's bytes, then the value's bytes.
///
/// The map orders and finds entries by the field alone (see
/// [`StoredKey`]), so a lookup by `&[u8]` needs no allocation; changing a
/// value replaces the whole entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedField(Box<[u8]>);

impl PackedField {
    /// Returns `field` and `value` packed together.
    fn new(field: &[u8], value: &[u8]) -> Self {
        // usize is at most 64 bits on every platform Rust supports.
        let field_len = field.len() as u64;
        let mut bytes = Vec::with_capacity(varint_len(field_len) + field.len() + value.len());
        push_varint(&mut bytes, field_len);
        bytes.extend_from_slice(field);
        bytes.extend_from_slice(value);
        Self(bytes.into_boxed_slice())
    }

    /// Returns the field and the value.
    fn parts(&self) -> (&[u8], &[u8]) {
        let mut field_len: u64 = 0;
        let mut header_len = 0;
        for (index, byte) in self.0.iter().take(VARINT_LEN_MAX).enumerate() {
            // index <= 9, so the shift is at most 63.
            field_len |= u64::from(byte & 0x7F) << (7 * index);
            header_len = index + 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let rest = self.0.get(header_len..).unwrap_or_default();
        // `new` wrote a length that fits; the clamp only keeps a damaged
        // entry from panicking.
        let field_len = usize::try_from(field_len).map_or(rest.len(), |len| len.min(rest.len()));
        rest.split_at(field_len)
    }

    /// Returns the length of the field plus that of the value.
    fn payload_len(&self) -> usize {
        let (field, value) = self.parts();
        field.len() + value.len()
    }
}

impl StoredKey for PackedField {
    fn key_bytes(&self) -> &[u8] {
        self.parts().0
    }
}

/// Returns the bytes [`push_varint`] writes for `number`.
fn varint_len(number: u64) -> usize {
    let bits = (u64::BITS - number.leading_zeros()).max(1);
    bits.div_ceil(7) as usize
}

/// Appends `number` as a LEB128 varint: seven bits a byte, low bits
/// first, the high bit set on every byte but the last.
fn push_varint(out: &mut Vec<u8>, mut number: u64) {
    while number >= 0x80 {
        out.push((number & 0x7F) as u8 | 0x80);
        number >>= 7;
    }
    out.push(number as u8);
}

/// One page of an HSCAN: the pairs visited and the cursor that continues
/// after them (0 when the scan is complete).
pub struct FieldsPage<'a> {
    pub pairs: Vec<(&'a [u8], &'a [u8])>,
    pub next_cursor: u64,
}

/// The value of a hash key: fields in hash order, with the size figures
/// that memory estimates and OBJECT ENCODING need kept up to date.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct HashValue {
    /// Serialized as `(field, value)` byte-string pairs, as when fields
    /// and values were each a `Bytes`, so snapshots keep their bytes.
    #[serde(
        serialize_with = "serialize_fields",
        deserialize_with = "deserialize_fields"
    )]
    fields: HashOrderedMap<(), PackedField>,
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
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.fields
            .get_key_value(field)
            .map(|(packed, ())| packed.parts().1)
    }

    /// Returns true when `field` exists.
    pub fn contains(&self, field: &[u8]) -> bool {
        self.fields.contains_key(field)
    }

    /// Sets `field` to `value`; returns true when the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.insert_packed(PackedField::new(field, value))
    }

    /// Stores `packed` in place of any entry for its field; returns true
    /// when the field is new.
    fn insert_packed(&mut self, packed: PackedField) -> bool {
        let (field, value) = packed.parts();
        self.peak_item_len = self.peak_item_len.max(field.len()).max(value.len());
        self.payload_bytes += packed.payload_len();
        let previous = self.fields.replace(packed, ());
        self.peak_len = self.peak_len.max(self.fields.len());
        match previous {
            Some((old, ())) => {
                self.payload_bytes -= old.payload_len();
                false
            }
            None => true,
        }
    }

    /// Removes `field`; returns true when it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.fields.remove(field) {
            Some((old, ())) => {
                self.payload_bytes -= old.payload_len();
                true
            }
            None => false,
        }
    }

    /// Iterates `(field, value)` pairs in hash order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], &[u8])> + ExactSizeIterator {
        self.fields.iter().map(|(packed, ())| packed.parts())
    }

    /// Returns the pair at `index` in iteration order (O(n)).
    pub fn nth(&self, index: usize) -> Option<(&[u8], &[u8])> {
        self.fields.nth(index).map(|(packed, ())| packed.parts())
    }

    /// Returns the pairs from `cursor` on (see [`HashOrderedMap::scan`]).
    pub fn scan(&self, cursor: u64, count: usize) -> FieldsPage<'_> {
        let page = self.fields.scan(cursor, count);
        FieldsPage {
            pairs: page
                .entries
                .into_iter()
                .map(|(packed, ())| packed.parts())
                .collect(),
            next_cursor: page.next_cursor,
        }
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

    /// Returns the heap bytes this hash holds (see [`crate::memory`]):
    /// its B-tree and each field's packed allocation (the field's length,
    /// the field, the value), from its contents alone, so every replica
    /// reports the same.
    pub fn mem_bytes(&self) -> usize {
        let len = self.fields.len();
        btree_bytes(len, FIELD_SLOT_BYTES, Fill::Random)
            + heap_bytes_spread(self.payload_bytes + len, len)
    }

    /// Cuts the fields into hashes of about `part_bytes` each, in order;
    /// the first keeps this hash's encoding history.
    pub(crate) fn split(&self, part_bytes: usize) -> Vec<HashValue> {
        let mut parts = vec![HashValue {
            peak_len: self.peak_len,
            peak_item_len: self.peak_item_len,
            ..HashValue::new()
        }];
        for (packed, ()) in self.fields.iter() {
            if parts
                .last()
                .is_some_and(|part| !part.is_empty() && part.mem_bytes() >= part_bytes)
            {
                parts.push(HashValue::new());
            }
            if let Some(part) = parts.last_mut() {
                part.insert_packed(packed.clone());
            }
        }
        parts
    }

    /// Adds the fields of `part`, a piece of [`HashValue::split`].
    pub(crate) fn absorb(&mut self, mut part: HashValue) {
        for (_, packed, ()) in part.fields.drain_hashed() {
            self.insert_packed(packed);
        }
    }
}

/// Borrowed bytes serialized as a byte string, as `Bytes` serializes.
struct ByteString<'a>(&'a [u8]);

impl Serialize for ByteString<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// Writes the fields as a sequence of `(field, value)` byte strings in
/// hash order.
fn serialize_fields<S: Serializer>(
    fields: &HashOrderedMap<(), PackedField>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(fields.len()))?;
    for (packed, ()) in fields.iter() {
        let (field, value) = packed.parts();
        seq.serialize_element(&(ByteString(field), ByteString(value)))?;
    }
    seq.end()
}

/// Reads what [`serialize_fields`] wrote; a field repeated keeps its last
/// value.
fn deserialize_fields<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<HashOrderedMap<(), PackedField>, D::Error> {
    struct PairsVisitor;

    impl<'de> Visitor<'de> for PairsVisitor {
        type Value = HashOrderedMap<(), PackedField>;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a sequence of (field, value) pairs")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut fields = HashOrderedMap::new();
            // Bounded by the input: each element consumes bytes.
            while let Some((field, value)) = seq.next_element::<(Bytes, Bytes)>()? {
                fields.replace(PackedField::new(&field, &value), ());
            }
            Ok(fields)
        }
    }

    deserializer.deserialize_seq(PairsVisitor)
}

#[cfg(test)]
#[path = "hash_test.rs"]
mod tests;
