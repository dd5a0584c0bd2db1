//! The value of a list key: elements packed side by side in chunks of a
//! few kilobytes, as Redis packs a quicklist's listpacks.
//!
//! A chunk is one byte buffer of entries, each `length | element |
//! length reversed`, the length a LEB128 varint: the leading copy walks
//! the chunk from its head, the trailing one from its tail. An 18-byte
//! element costs 20 bytes, where a deque of `Bytes` costs a 32-byte
//! handle and a heap block of its own per element.
//!
//! How elements fall into chunks depends on the history of writes (and a
//! restored snapshot packs them afresh), so nothing replicated may depend
//! on it: equality, serialization and the memory estimate see only the
//! elements.

mod chunk;
mod stored;

use std::collections::VecDeque;
use std::fmt;

use bytes::Bytes;

use chunk::{entry_bytes, entry_len, Chunk, CHUNK_BYTES};

use crate::memory::heap_bytes;

/// Chunk handles the deque's buffer holds at least (std's `VecDeque`
/// starts at 4, then doubles).
const DEQUE_CAPACITY_MIN: usize = 4;

/// A list: a double-ended queue of binary-safe elements.
#[derive(Clone, Default)]
pub struct ListValue {
    /// Never holds an empty chunk.
    chunks: VecDeque<Chunk>,
    len: usize,
    /// Bytes of all entries: elements and their lengths.
    entry_bytes: usize,
}

impl ListValue {
    /// Returns an empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns true when the list has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `element` at the head.
    pub fn push_front(&mut self, element: &[u8]) {
        let need = entry_len(element.len());
        match self.chunks.front_mut() {
            Some(chunk) if chunk.bytes.len() + need <= CHUNK_BYTES => chunk.insert_at(0, element),
            _ => {
                let mut chunk = Chunk::default();
                chunk.insert_at(0, element);
                self.chunks.push_front(chunk);
            }
        }
        self.len += 1;
        self.entry_bytes += need;
    }

    /// Adds `element` at the tail.
    pub fn push_back(&mut self, element: &[u8]) {
        let need = entry_len(element.len());
        match self.chunks.back_mut() {
            Some(chunk) if chunk.bytes.len() + need <= CHUNK_BYTES => {
                let at = chunk.bytes.len();
                chunk.insert_at(at, element);
            }
            _ => {
                let mut chunk = Chunk::default();
                chunk.insert_at(0, element);
                self.chunks.push_back(chunk);
            }
        }
        self.len += 1;
        self.entry_bytes += need;
    }

    /// Removes and returns the head element.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        let chunk = self.chunks.front_mut()?;
        let (range, next) = chunk.element_at(0);
        let element = Bytes::copy_from_slice(chunk.slice(range));
        chunk.bytes.drain(..next.min(chunk.bytes.len()));
        self.forget(0, 1, next);
        Some(element)
    }

    /// Removes and returns the tail element.
    pub fn pop_back(&mut self) -> Option<Bytes> {
        let last = self.chunks.len().checked_sub(1)?;
        let chunk = self.chunks.get_mut(last)?;
        let end = chunk.bytes.len();
        let (range, start) = chunk.element_before(end);
        let element = Bytes::copy_from_slice(chunk.slice(range));
        chunk.bytes.truncate(start);
        self.forget(last, 1, end - start);
        Some(element)
    }

    /// Accounts for `count` elements of `entry_bytes` bytes gone from
    /// chunk `index`, and drops the chunk once empty.
    fn forget(&mut self, index: usize, count: usize, entry_bytes: usize) {
        self.len -= count;
        self.entry_bytes -= entry_bytes;
        let Some(chunk) = self.chunks.get_mut(index) else {
            return;
        };
        chunk.count -= count;
        if chunk.count == 0 {
            self.chunks.remove(index);
        } else {
            chunk.shrink();
        }
    }

    /// Returns the chunk holding element `index` and the element's index
    /// within it, walking the chunks from the nearer end.
    fn find(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.len {
            return None;
        }
        if index < self.len / 2 {
            let mut first = 0;
            for (position, chunk) in self.chunks.iter().enumerate() {
                if index < first + chunk.count {
                    return Some((position, index - first));
                }
                first += chunk.count;
            }
        } else {
            let mut first = self.len;
            for (position, chunk) in self.chunks.iter().enumerate().rev() {
                first -= chunk.count;
                if index >= first {
                    return Some((position, index - first));
                }
            }
        }
        None
    }

    /// Returns the element at `index` (0 is the head).
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let (position, within) = self.find(index)?;
        let chunk = self.chunks.get(position)?;
        let (range, _) = chunk.element_at(chunk.offset_of(within));
        Some(chunk.slice(range))
    }

    /// Replaces the element at `index`; returns false when out of range.
    pub fn set(&mut self, index: usize, element: &[u8]) -> bool {
        let Some((position, within)) = self.find(index) else {
            return false;
        };
        let Some(chunk) = self.chunks.get_mut(position) else {
            return false;
        };
        let at = chunk.offset_of(within);
        let (_, next) = chunk.element_at(at);
        chunk.bytes.splice(at..next, entry_bytes(element));
        self.entry_bytes = self.entry_bytes - (next - at) + entry_len(element.len());
        self.split_if_large(position);
        true
    }

    /// Inserts `element` before position `index` (`len()` appends).
    pub fn insert(&mut self, index: usize, element: &[u8]) {
        if index == 0 {
            return self.push_front(element);
        }
        let Some((position, within)) = self.find(index) else {
            return self.push_back(element);
        };
        let Some(chunk) = self.chunks.get_mut(position) else {
            return;
        };
        let at = chunk.offset_of(within);
        chunk.insert_at(at, element);
        self.len += 1;
        self.entry_bytes += entry_len(element.len());
        self.split_if_large(position);
    }

    /// Cuts chunk `position` in two once it is past [`CHUNK_BYTES`] and
    /// holds more than one element.
    fn split_if_large(&mut self, position: usize) {
        let Some(chunk) = self.chunks.get_mut(position) else {
            return;
        };
        if chunk.bytes.len() <= CHUNK_BYTES || chunk.count < 2 {
            return;
        }
        let mut at = 0;
        let mut kept = 0;
        while kept < chunk.count - 1 && at < chunk.bytes.len() / 2 {
            at = chunk.element_at(at).1;
            kept += 1;
        }
        let kept = kept.max(1);
        let at = if at == 0 { chunk.element_at(0).1 } else { at };
        let tail = Chunk {
            bytes: chunk.bytes[at..].to_vec(),
            count: chunk.count - kept,
        };
        chunk.bytes.truncate(at);
        chunk.bytes.shrink_to_fit();
        chunk.count = kept;
        self.chunks.insert(position + 1, tail);
    }

    /// Removes and returns the element at `index`.
    pub fn remove(&mut self, index: usize) -> Option<Bytes> {
        let (position, within) = self.find(index)?;
        let chunk = self.chunks.get_mut(position)?;
        let at = chunk.offset_of(within);
        let (range, next) = chunk.element_at(at);
        let element = Bytes::copy_from_slice(chunk.slice(range));
        chunk.bytes.drain(at..next);
        self.forget(position, 1, next - at);
        Some(element)
    }

    /// Keeps only the elements of positions `start..=end` (an empty list
    /// when `start > end`).
    pub fn trim(&mut self, start: usize, end: usize) {
        if start > end || start >= self.len {
            *self = Self::new();
            return;
        }
        let beyond = self.len - 1 - end.min(self.len - 1);
        self.drop_back(beyond);
        self.drop_front(start);
    }

    /// Removes the first `count` elements.
    fn drop_front(&mut self, mut count: usize) {
        while count > 0 {
            let Some(chunk) = self.chunks.front_mut() else {
                return;
            };
            let gone = count.min(chunk.count);
            let at = chunk.offset_of(gone);
            chunk.bytes.drain(..at);
            count -= gone;
            self.forget(0, gone, at);
        }
    }

    /// Removes the last `count` elements.
    fn drop_back(&mut self, mut count: usize) {
        while count > 0 {
            let Some(last) = self.chunks.len().checked_sub(1) else {
                return;
            };
            let Some(chunk) = self.chunks.get_mut(last) else {
                return;
            };
            let gone = count.min(chunk.count);
            let at = chunk.offset_of(chunk.count - gone);
            let removed = chunk.bytes.len() - at;
            chunk.bytes.truncate(at);
            count -= gone;
            self.forget(last, gone, removed);
        }
    }

    /// Keeps the elements for which `keep` holds, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let mut kept = Self::new();
        for element in self.iter() {
            if keep(element) {
                kept.push_back(element);
            }
        }
        *self = kept;
    }

    /// Iterates the elements of positions `start..=end`, head to tail;
    /// nothing when `start > end`, and `end` is clamped to the last
    /// position.
    pub fn range(&self, start: usize, end: usize) -> Iter<'_> {
        let empty = Iter {
            chunks: &self.chunks,
            front: (0, 0),
            back: (0, 0),
            remaining: 0,
        };
        let end = end.min(self.len.saturating_sub(1));
        if start > end || start >= self.len {
            return empty;
        }
        let (Some((first, first_within)), Some((last, last_within))) =
            (self.find(start), self.find(end))
        else {
            return empty;
        };
        let (Some(first_chunk), Some(last_chunk)) = (self.chunks.get(first), self.chunks.get(last))
        else {
            return empty;
        };
        Iter {
            chunks: &self.chunks,
            front: (first, first_chunk.offset_of(first_within)),
            back: (last, last_chunk.offset_of(last_within + 1)),
            remaining: end - start + 1,
        }
    }

    /// Returns the position of the first element equal to `element`,
    /// from the head.
    pub fn position(&self, element: &[u8]) -> Option<usize> {
        self.iter().position(|candidate| candidate == element)
    }

    /// Removes up to `limit` elements equal to `element` (all of them
    /// when `limit` is 0), scanning from the tail when `from_tail`, else
    /// from the head; returns how many went.
    pub fn remove_matching(&mut self, element: &[u8], limit: usize, from_tail: bool) -> usize {
        let limit = if limit == 0 { usize::MAX } else { limit };
        let matching = |candidate: &&[u8]| *candidate == element;
        let removed = if from_tail {
            self.iter().rev().filter(matching).take(limit).count()
        } else {
            self.iter().filter(matching).take(limit).count()
        };
        if removed == 0 {
            return 0;
        }
        // The matches to keep are the ones past the first `removed` from
        // the scanning end.
        let total = self.iter().filter(matching).count();
        let mut seen = 0;
        self.retain(|candidate| {
            if candidate != element {
                return true;
            }
            seen += 1;
            if from_tail {
                seen <= total - removed
            } else {
                seen > removed
            }
        });
        removed
    }

    /// Iterates the elements from head to tail.
    pub fn iter(&self) -> Iter<'_> {
        self.range(0, usize::MAX)
    }

    /// Returns what OBJECT ENCODING reports: Redis 7.0 keeps every list
    /// in a quicklist.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Returns the heap bytes this list holds (see [`crate::memory`]),
    /// from the elements alone (not from how they happen to be chunked,
    /// which differs between replicas): a lone chunk grows by powers of
    /// two, more chunks are full ones of [`CHUNK_BYTES`], and the deque
    /// holds their handles.
    pub fn mem_bytes(&self) -> usize {
        if self.entry_bytes == 0 {
            return 0;
        }
        let chunks = self.entry_bytes.div_ceil(CHUNK_BYTES);
        let buffers = if chunks == 1 {
            heap_bytes(
                self.entry_bytes
                    .next_power_of_two()
                    .clamp(self.entry_bytes, CHUNK_BYTES),
            )
        } else {
            chunks * heap_bytes(CHUNK_BYTES)
        };
        let handles = chunks.next_power_of_two().max(DEQUE_CAPACITY_MIN);
        buffers + heap_bytes(handles * std::mem::size_of::<Chunk>())
    }
}

/// The elements of part of a list, in order.
pub struct Iter<'a> {
    chunks: &'a VecDeque<Chunk>,
    /// Chunk and offset of the next element from the front.
    front: (usize, usize),
    /// Chunk and end offset of the next element from the back.
    back: (usize, usize),
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        let (mut position, mut at) = self.front;
        let mut chunk = self.chunks.get(position)?;
        if at >= chunk.bytes.len() {
            position += 1;
            at = 0;
            chunk = self.chunks.get(position)?;
        }
        let (range, next) = chunk.element_at(at);
        self.front = (position, next);
        self.remaining -= 1;
        Some(chunk.slice(range))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let (mut position, mut end) = self.back;
        if end == 0 {
            position = position.checked_sub(1)?;
            end = self.chunks.get(position)?.bytes.len();
        }
        let chunk = self.chunks.get(position)?;
        let (range, start) = chunk.element_before(end);
        self.back = (position, start);
        self.remaining -= 1;
        Some(chunk.slice(range))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl PartialEq for ListValue {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for ListValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_list()
            .entries(self.iter().map(Bytes::copy_from_slice))
            .finish()
    }
}

impl<'a> FromIterator<&'a [u8]> for ListValue {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(elements: I) -> Self {
        let mut list = ListValue::new();
        for element in elements {
            list.push_back(element);
        }
        list
    }
}

impl FromIterator<Bytes> for ListValue {
    fn from_iter<I: IntoIterator<Item = Bytes>>(elements: I) -> Self {
        let mut list = ListValue::new();
        for element in elements {
            list.push_back(&element);
        }
        list
    }
}

#[cfg(test)]
#[path = "list_test.rs"]
mod tests;
