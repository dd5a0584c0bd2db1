//! The values a key can hold.
//!
//! [`Value`] is an enum with one variant per Redis type (bitmaps are
//! strings). Variants are only ever appended, never reordered, because
//! postcard encodes the variant index in snapshots.

use bytes::Bytes;
use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::HashValue;
use crate::list::ListValue;
use crate::lock::LockValue;
use crate::memory::heap_bytes;
use crate::ordered::HashOrderedMap;
use crate::set::SetValue;
use crate::stream::{GroupQueue, StreamValue};
use crate::zset::ZSetValue;

/// The heap block of a collection's [`Aggregate`] (behind its box).
const AGGREGATE_BYTES: usize = heap_bytes(std::mem::size_of::<Aggregate>());

/// The thresholds under which Redis keeps a collection in a compact
/// encoding (`hash-max-listpack-*`, `set-max-intset-entries`,
/// `zset-max-listpack-*`). They only change what OBJECT ENCODING reports:
/// polis stores every collection of a type alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodingLimits {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
}

impl Default for EncodingLimits {
    fn default() -> Self {
        Self {
            hash_max_listpack_entries: 128,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
        }
    }
}

/// A value stored under a key.
///
/// In memory a key's slot holds a string or one box (two variants keep
/// the slot as small as a `Bytes`); on the wire and in snapshots each
/// type has its own tag, in the order types were added (see
/// [`StoredValue`]), so the layout here can change without changing them.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A binary-safe string.
    String(Bytes),
    /// A hash, list, set, sorted set, stream or lock.
    Other(Box<Aggregate>),
}

/// The types behind [`Value::Other`].
#[derive(Clone, Debug, PartialEq)]
pub enum Aggregate {
    /// A map of fields to values.
    Hash(HashValue),
    /// A list of elements.
    List(ListValue),
    /// A set of members.
    Set(SetValue),
    /// A sorted set: members with scores.
    ZSet(ZSetValue),
    /// A stream of entries with its consumer groups.
    Stream(StreamValue),
    /// A lock with a lease and fencing tokens (polis only).
    Lock(LockValue),
}

/// Declares `Value`'s constructor and accessors of one aggregate type.
macro_rules! aggregate_access {
    ($variant:ident, $type:ty, $new:ident, $get:ident, $get_mut:ident) => {
        /// Returns a value holding `inner`.
        pub fn $new(inner: $type) -> Value {
            Value::Other(Box::new(Aggregate::$variant(inner)))
        }

        /// Returns the inner value when this value is of that type.
        pub fn $get(&self) -> Option<&$type> {
            match self {
                Value::Other(aggregate) => match &**aggregate {
                    Aggregate::$variant(inner) => Some(inner),
                    _ => None,
                },
                Value::String(_) => None,
            }
        }

        /// Returns the inner value, mutably, when this value is of that type.
        pub fn $get_mut(&mut self) -> Option<&mut $type> {
            match self {
                Value::Other(aggregate) => match &mut **aggregate {
                    Aggregate::$variant(inner) => Some(inner),
                    _ => None,
                },
                Value::String(_) => None,
            }
        }
    };
}

impl Value {
    aggregate_access!(Hash, HashValue, hash, as_hash, as_hash_mut);
    aggregate_access!(List, ListValue, list, as_list, as_list_mut);
    aggregate_access!(Set, SetValue, set, as_set, as_set_mut);
    aggregate_access!(ZSet, ZSetValue, zset, as_zset, as_zset_mut);
    aggregate_access!(Stream, StreamValue, stream, as_stream, as_stream_mut);
    aggregate_access!(Lock, LockValue, lock, as_lock, as_lock_mut);

    /// Returns the name TYPE reports: `string`, `hash`, `list`, `set`,
    /// `zset`, `stream`, `lock`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Other(aggregate) => match &**aggregate {
                Aggregate::Hash(_) => "hash",
                Aggregate::List(_) => "list",
                Aggregate::Set(_) => "set",
                Aggregate::ZSet(_) => "zset",
                Aggregate::Stream(_) => "stream",
                Aggregate::Lock(_) => "lock",
            },
        }
    }

    /// Returns the encoding Redis would report for this value under
    /// `limits` (OBJECT ENCODING).
    pub fn encoding(&self, limits: &EncodingLimits) -> &'static str {
        match self {
            Value::String(bytes) => string_encoding(bytes),
            Value::Other(aggregate) => match &**aggregate {
                Aggregate::Hash(hash) => hash.encoding(limits),
                Aggregate::List(list) => list.encoding(),
                Aggregate::Set(set) => set.encoding(limits),
                Aggregate::ZSet(zset) => zset.encoding(limits),
                Aggregate::Stream(_) => "stream",
                Aggregate::Lock(_) => "lock",
            },
        }
    }

    /// Returns the heap bytes this value holds beyond its slot in the
    /// keyspace, as the allocator counts them (see [`crate::memory`]).
    pub fn mem_bytes(&self) -> usize {
        match self {
            Value::String(bytes) => heap_bytes(bytes.len()),
            Value::Other(aggregate) => {
                AGGREGATE_BYTES
                    + match &**aggregate {
                        Aggregate::Hash(hash) => hash.mem_bytes(),
                        Aggregate::List(list) => list.mem_bytes(),
                        Aggregate::Set(set) => set.mem_bytes(),
                        Aggregate::ZSet(zset) => zset.mem_bytes(),
                        Aggregate::Stream(stream) => stream.mem_bytes(),
                        Aggregate::Lock(lock) => lock.mem_bytes(),
                    }
            }
        }
    }

    /// Cuts a collection of more than `part_bytes` (see
    /// [`Value::mem_bytes`]) into pieces of about that size, in order, so
    /// that a migration ships it in parts; [`Value::absorb`] puts them
    /// back together. The first piece keeps what OBJECT ENCODING reports.
    /// Returns `None` for a string, a lock or a collection that fits, and
    /// for lists and streams, whose parts could not be absorbed twice without
    /// changing the value: they travel whole.
    pub fn split(&self, part_bytes: usize) -> Option<Vec<Value>> {
        if self.mem_bytes() <= part_bytes {
            return None;
        }
        let Value::Other(aggregate) = self else {
            return None;
        };
        match &**aggregate {
            Aggregate::Hash(hash) => Some(
                hash.split(part_bytes)
                    .into_iter()
                    .map(Value::hash)
                    .collect(),
            ),
            Aggregate::Set(set) => {
                Some(set.split(part_bytes).into_iter().map(Value::set).collect())
            }
            Aggregate::ZSet(zset) => Some(
                zset.split(part_bytes)
                    .into_iter()
                    .map(Value::zset)
                    .collect(),
            ),
            Aggregate::List(_) | Aggregate::Stream(_) | Aggregate::Lock(_) => None,
        }
    }

    /// Adds `part`, a later piece of [`Value::split`], to this value.
    /// Adding the same piece twice changes nothing. Returns false, and
    /// changes nothing, when `part` is not of this value's type.
    pub fn absorb(&mut self, part: Value) -> bool {
        let (Value::Other(aggregate), Value::Other(part)) = (self, part) else {
            return false;
        };
        match (&mut **aggregate, *part) {
            (Aggregate::Hash(hash), Aggregate::Hash(part)) => {
                hash.absorb(part);
                true
            }
            (Aggregate::Set(set), Aggregate::Set(part)) => {
                for member in part.iter() {
                    set.insert(member);
                }
                true
            }
            (Aggregate::ZSet(zset), Aggregate::ZSet(part)) => {
                for (member, score) in part.iter_hashed() {
                    zset.insert(member, score);
                }
                true
            }
            _ => false,
        }
    }

    /// Returns true for an aggregate with no elements, which Redis never
    /// keeps in the keyspace.
    pub fn is_empty_aggregate(&self) -> bool {
        match self {
            Value::String(_) => false,
            Value::Other(aggregate) => match &**aggregate {
                Aggregate::Hash(hash) => hash.is_empty(),
                Aggregate::List(list) => list.is_empty(),
                Aggregate::Set(set) => set.is_empty(),
                Aggregate::ZSet(zset) => zset.is_empty(),
                // An empty stream stays: its id and groups are state; a
                // released lock keeps its last token.
                Aggregate::Stream(_) | Aggregate::Lock(_) => false,
            },
        }
    }
}

/// How a [`Value`] is encoded in log entries and snapshots: one tag per
/// type, appended in the order types were added, never reordered
/// (postcard encodes the variant index).
#[derive(Serialize)]
enum StoredValue<'a> {
    String(&'a Bytes),
    Hash(&'a HashValue),
    List(&'a ListValue),
    Set(&'a SetValue),
    ZSet(&'a ZSetValue),
    Stream(&'a StreamValue),
    Lock(&'a LockValue),
    /// A stream some of whose groups have queue options (beyond Redis):
    /// the stream as [`StoredValue::Stream`] stores it, then each such
    /// group's name and queue state. Only a stream that has them is
    /// stored so: the others keep the bytes older binaries read.
    QueueStream(&'a StreamValue, QueueStates<'a>),
}

/// The queue state of a stream's groups that have one, by group name.
struct QueueStates<'a>(&'a StreamValue);

impl Serialize for QueueStates<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let groups = &self.0.groups;
        let count = groups
            .values()
            .filter(|group| group.queue.is_some())
            .count();
        let mut seq = serializer.serialize_seq(Some(count))?;
        for (name, group) in groups {
            if let Some(queue) = group.queue() {
                seq.serialize_element(&(name, queue))?;
            }
        }
        seq.end()
    }
}

/// [`StoredValue`] read back.
#[derive(Deserialize)]
enum StoredValueOwned {
    String(Bytes),
    Hash(HashValue),
    List(ListValue),
    Set(SetValue),
    ZSet(ZSetValue),
    Stream(StreamValue),
    Lock(LockValue),
    QueueStream(StreamValue, Vec<(Bytes, GroupQueue)>),
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let stored = match self {
            Value::String(bytes) => StoredValue::String(bytes),
            Value::Other(aggregate) => match &**aggregate {
                Aggregate::Hash(hash) => StoredValue::Hash(hash),
                Aggregate::List(list) => StoredValue::List(list),
                Aggregate::Set(set) => StoredValue::Set(set),
                Aggregate::ZSet(zset) => StoredValue::ZSet(zset),
                Aggregate::Stream(stream) if stream.has_queue_state() => {
                    StoredValue::QueueStream(stream, QueueStates(stream))
                }
                Aggregate::Stream(stream) => StoredValue::Stream(stream),
                Aggregate::Lock(lock) => StoredValue::Lock(lock),
            },
        };
        stored.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match StoredValueOwned::deserialize(deserializer)? {
            StoredValueOwned::String(bytes) => Value::String(bytes),
            StoredValueOwned::Hash(hash) => Value::hash(hash),
            StoredValueOwned::List(list) => Value::list(list),
            StoredValueOwned::Set(set) => Value::set(set),
            StoredValueOwned::ZSet(zset) => Value::zset(zset),
            StoredValueOwned::Lock(lock) => Value::lock(lock),
            StoredValueOwned::Stream(mut stream) => {
                stream.recount();
                Value::stream(stream)
            }
            StoredValueOwned::QueueStream(mut stream, queues) => {
                stream.recount();
                for (name, queue) in queues {
                    if let Some(group) = stream.groups.get_mut(&name) {
                        group.queue = Some(Box::new(queue));
                    }
                }
                Value::stream(stream)
            }
        })
    }
}

/// Returns the encoding Redis picks for a string: `int` for a canonical
/// 64-bit integer, `embstr` up to 44 bytes, `raw` beyond.
///
/// Redis also reports `raw` for short strings modified in place (APPEND,
/// SETRANGE); polis does not track that history.
pub fn string_encoding(bytes: &[u8]) -> &'static str {
    if bytes.len() <= 20 && is_canonical_integer(bytes) {
        "int"
    } else if bytes.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

/// Returns true when `bytes` is an integer Redis would store as `int`:
/// an optional `-`, no leading zeros, within `i64`.
pub(crate) fn is_canonical_integer(bytes: &[u8]) -> bool {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if digits[0] == b'0' {
        return bytes == b"0";
    }
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .is_some()
}

impl<V: Serialize> Serialize for HashOrderedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for pair in self.iter() {
            seq.serialize_element(&pair)?;
        }
        seq.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for HashOrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor<V>(std::marker::PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for PairsVisitor<V> {
            type Value = HashOrderedMap<V>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a sequence of (key, value) pairs")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut map = HashOrderedMap::new();
                // Bounded by the input: each element consumes bytes.
                while let Some((key, value)) = seq.next_element::<(Bytes, V)>()? {
                    map.insert(key, value);
                }
                Ok(map)
            }
        }

        deserializer.deserialize_seq(PairsVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
#[path = "value_test.rs"]
mod tests;
