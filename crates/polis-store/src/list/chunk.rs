//! A chunk of a list: elements packed side by side in one buffer, each
//! entry `length | element | length reversed`, the length a LEB128
//! varint, so the chunk is walked from either end.

use std::ops::Range;

/// A chunk takes entries until they would pass this many bytes; an
/// element larger than that gets a chunk of its own (Redis's default
/// `list-max-listpack-size -2` is the same 8 KiB).
pub(super) const CHUNK_BYTES: usize = 8 * 1024;

/// Returns how many bytes the varint of `value` takes.
fn varint_len(mut value: usize) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// Returns the bytes one element of `len` bytes takes in a chunk.
pub(super) fn entry_len(len: usize) -> usize {
    len + 2 * varint_len(len)
}

/// Writes the varint of `value` into `out`; returns how many bytes it took.
fn write_varint(mut value: usize, out: &mut [u8; 10]) -> usize {
    let mut used = 0;
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out[used] = low;
            return used + 1;
        }
        out[used] = low | 0x80;
        used += 1;
    }
}

/// Returns the bytes of the entry of `element`.
pub(super) fn entry_bytes(element: &[u8]) -> impl ExactSizeIterator<Item = u8> + '_ {
    let mut head = [0u8; 10];
    let used = write_varint(element.len(), &mut head);
    let mut tail = head;
    tail[..used].reverse();
    let head = head.into_iter().take(used);
    let tail = tail.into_iter().take(used);
    // `Chain` is not exact-size; the length is known, so say it.
    Exact {
        inner: head.chain(element.iter().copied()).chain(tail),
        remaining: entry_len(element.len()),
    }
}

/// An iterator of a known length.
struct Exact<I> {
    inner: I,
    remaining: usize,
}

impl<I: Iterator<Item = u8>> Iterator for Exact<I> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let byte = self.inner.next()?;
        self.remaining = self.remaining.saturating_sub(1);
        Some(byte)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<I: Iterator<Item = u8>> ExactSizeIterator for Exact<I> {}

/// Decodes a varint from `bytes`, lowest group first; returns its value
/// and how many bytes it took.
fn decode_varint<'a>(bytes: impl Iterator<Item = &'a u8>) -> (usize, usize) {
    let mut value = 0usize;
    let mut used = 0;
    for &byte in bytes {
        value |= usize::from(byte & 0x7f)
            .checked_shl(7 * used as u32)
            .unwrap_or(0);
        used += 1;
        if byte & 0x80 == 0 {
            break;
        }
    }
    (value, used)
}

/// Reads the varint starting at `at`; returns its value and length.
fn read_varint(bytes: &[u8], at: usize) -> (usize, usize) {
    decode_varint(bytes.get(at..).unwrap_or_default().iter())
}

/// Reads the reversed varint ending at `end`; returns its value and
/// length.
fn read_varint_back(bytes: &[u8], end: usize) -> (usize, usize) {
    decode_varint(bytes.get(..end).unwrap_or_default().iter().rev())
}

/// Elements packed side by side.
#[derive(Clone, Default)]
pub(super) struct Chunk {
    pub(super) bytes: Vec<u8>,
    pub(super) count: usize,
}

impl Chunk {
    /// Returns the element of the entry starting at `at` and where the
    /// next entry starts.
    pub(super) fn element_at(&self, at: usize) -> (Range<usize>, usize) {
        let (len, used) = read_varint(&self.bytes, at);
        let start = (at + used).min(self.bytes.len());
        let end = (start + len).min(self.bytes.len());
        (start..end, end + used)
    }

    /// Returns the element of the entry ending at `end` and where that
    /// entry starts.
    pub(super) fn element_before(&self, end: usize) -> (Range<usize>, usize) {
        let (len, used) = read_varint_back(&self.bytes, end);
        let element_end = end.saturating_sub(used);
        let start = element_end.saturating_sub(len);
        (start..element_end, start.saturating_sub(used))
    }

    pub(super) fn slice(&self, range: Range<usize>) -> &[u8] {
        self.bytes.get(range).unwrap_or_default()
    }

    /// Returns where entry `index` of this chunk starts (the chunk's
    /// length for `index == count`), walking from the nearer end.
    pub(super) fn offset_of(&self, index: usize) -> usize {
        if index <= self.count / 2 {
            (0..index).fold(0, |at, _| self.element_at(at).1)
        } else {
            (index..self.count).fold(self.bytes.len(), |end, _| self.element_before(end).1)
        }
    }

    /// Makes room for `additional` bytes, growing by powers of two up to
    /// [`CHUNK_BYTES`], so a full chunk wastes little.
    fn reserve(&mut self, additional: usize) {
        let wanted = self.bytes.len() + additional;
        if wanted > self.bytes.capacity() {
            let capacity = (self.bytes.capacity() * 2)
                .max(wanted.next_power_of_two())
                .min(CHUNK_BYTES)
                .max(wanted);
            self.bytes.reserve_exact(capacity - self.bytes.len());
        }
    }

    /// Inserts the entry of `element` at byte offset `at`.
    pub(super) fn insert_at(&mut self, at: usize, element: &[u8]) {
        self.reserve(entry_len(element.len()));
        self.bytes.splice(at..at, entry_bytes(element));
        self.count += 1;
    }

    /// Gives back memory once most of the buffer is unused.
    pub(super) fn shrink(&mut self) {
        if self.bytes.capacity() > 64 && self.bytes.len() <= self.bytes.capacity() / 4 {
            self.bytes.shrink_to(self.bytes.capacity() / 2);
        }
    }
}
