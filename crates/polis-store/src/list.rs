//! The value of a list key: elements in order, with the size figure that
//! memory estimates need kept up to date.

use std::collections::VecDeque;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::db::detached;

/// Approximate bookkeeping bytes of one element of a list.
pub const LIST_ELEMENT_OVERHEAD_BYTES: usize = 40;

/// A list: a double-ended queue of binary-safe elements.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct ListValue {
    items: VecDeque<Bytes>,
    /// Sum of element lengths.
    payload_bytes: usize,
}

impl ListValue {
    /// Returns an empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Returns true when the list has no elements.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds `element` at the head.
    pub fn push_front(&mut self, element: &Bytes) {
        self.payload_bytes += element.len();
        self.items.push_front(detached(element));
    }

    /// Adds `element` at the tail.
    pub fn push_back(&mut self, element: &Bytes) {
        self.payload_bytes += element.len();
        self.items.push_back(detached(element));
    }

    /// Removes and returns the head element.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        let element = self.items.pop_front()?;
        self.payload_bytes -= element.len();
        Some(element)
    }

    /// Removes and returns the tail element.
    pub fn pop_back(&mut self) -> Option<Bytes> {
        let element = self.items.pop_back()?;
        self.payload_bytes -= element.len();
        Some(element)
    }

    /// Returns the element at `index` (0 is the head).
    pub fn get(&self, index: usize) -> Option<&Bytes> {
        self.items.get(index)
    }

    /// Replaces the element at `index`; returns false when out of range.
    pub fn set(&mut self, index: usize, element: &Bytes) -> bool {
        let Some(slot) = self.items.get_mut(index) else {
            return false;
        };
        self.payload_bytes = self.payload_bytes - slot.len() + element.len();
        *slot = detached(element);
        true
    }

    /// Inserts `element` before position `index` (`len()` appends).
    pub fn insert(&mut self, index: usize, element: &Bytes) {
        self.payload_bytes += element.len();
        self.items
            .insert(index.min(self.items.len()), detached(element));
    }

    /// Removes and returns the element at `index`.
    pub fn remove(&mut self, index: usize) -> Option<Bytes> {
        let element = self.items.remove(index)?;
        self.payload_bytes -= element.len();
        Some(element)
    }

    /// Keeps only the elements of positions `start..=end` (an empty list
    /// when `start > end`).
    pub fn trim(&mut self, start: usize, end: usize) {
        if start > end || start >= self.items.len() {
            self.items.clear();
            self.payload_bytes = 0;
            return;
        }
        self.items.truncate(end + 1);
        self.items.drain(..start);
        self.payload_bytes = self.items.iter().map(Bytes::len).sum();
    }

    /// Keeps the elements for which `keep` holds, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&Bytes) -> bool) {
        self.items.retain(|element| keep(element));
        self.payload_bytes = self.items.iter().map(Bytes::len).sum();
    }

    /// Iterates the elements of positions `start..=end`, head to tail;
    /// nothing when `start > end`, and `end` is clamped to the last
    /// position.
    pub fn range(
        &self,
        start: usize,
        end: usize,
    ) -> impl DoubleEndedIterator<Item = &Bytes> + ExactSizeIterator {
        let end = end.saturating_add(1).min(self.items.len());
        let start = start.min(end);
        self.items.range(start..end)
    }

    /// Returns the position of the first element equal to `element`,
    /// from the head.
    pub fn position(&self, element: &[u8]) -> Option<usize> {
        self.items
            .iter()
            .position(|candidate| candidate.as_ref() == element)
    }

    /// Removes up to `limit` elements equal to `element` (all of them
    /// when `limit` is 0), scanning from the tail when `from_tail`, else
    /// from the head; returns how many went.
    pub fn remove_matching(&mut self, element: &[u8], limit: usize, from_tail: bool) -> usize {
        let len = self.items.len();
        let mut removed = 0;
        let mut doomed = vec![false; len];
        let positions: Box<dyn Iterator<Item = usize>> = if from_tail {
            Box::new((0..len).rev())
        } else {
            Box::new(0..len)
        };
        for position in positions {
            if limit != 0 && removed == limit {
                break;
            }
            if self
                .items
                .get(position)
                .is_some_and(|item| item.as_ref() == element)
            {
                if let Some(flag) = doomed.get_mut(position) {
                    *flag = true;
                }
                removed += 1;
            }
        }
        if removed > 0 {
            let mut index = 0;
            self.items.retain(|_| {
                let keep = !doomed.get(index).copied().unwrap_or(false);
                index += 1;
                keep
            });
            self.payload_bytes = self.items.iter().map(Bytes::len).sum();
        }
        removed
    }

    /// Iterates the elements from head to tail.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Bytes> + ExactSizeIterator {
        self.items.iter()
    }

    /// Returns what OBJECT ENCODING reports: Redis 7.0 keeps every list
    /// in a quicklist.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Returns an estimate of the bytes this list occupies.
    pub fn mem_bytes(&self) -> usize {
        self.payload_bytes + self.items.len() * LIST_ELEMENT_OVERHEAD_BYTES + 32
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
mod tests {
    use super::*;

    fn list(elements: &[&str]) -> ListValue {
        elements
            .iter()
            .map(|element| Bytes::copy_from_slice(element.as_bytes()))
            .collect()
    }

    fn texts<'a>(elements: impl Iterator<Item = &'a Bytes>) -> Vec<String> {
        elements
            .map(|element| String::from_utf8_lossy(element).into_owned())
            .collect()
    }

    #[test]
    fn range_clamps_the_end_and_is_empty_when_inverted() {
        let list = list(&["a", "b", "c"]);
        assert_eq!(texts(list.range(1, 1)), ["b"]);
        assert_eq!(texts(list.range(1, 100)), ["b", "c"]);
        assert_eq!(texts(list.range(2, 1)), Vec::<String>::new());
        assert_eq!(texts(list.range(5, usize::MAX)), Vec::<String>::new());
    }

    #[test]
    fn remove_matching_counts_from_either_end_and_keeps_the_size() {
        let mut from_head = list(&["x", "a", "x", "b", "x"]);
        assert_eq!(from_head.remove_matching(b"x", 2, false), 2);
        assert_eq!(texts(from_head.iter()), ["a", "b", "x"]);
        let mut from_tail = list(&["x", "a", "x", "b", "x"]);
        assert_eq!(from_tail.remove_matching(b"x", 2, true), 2);
        assert_eq!(texts(from_tail.iter()), ["x", "a", "b"]);
        assert_eq!(from_tail.remove_matching(b"x", 0, false), 1);
        assert_eq!(from_tail.remove_matching(b"nothing", 0, false), 0);
        assert_eq!(from_tail, list(&["a", "b"]));
        assert_eq!(from_tail.position(b"b"), Some(1));
        assert_eq!(from_tail.position(b"x"), None);
    }
}
