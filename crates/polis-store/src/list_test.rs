use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::*;

fn list(elements: &[&str]) -> ListValue {
    elements.iter().map(|element| element.as_bytes()).collect()
}

fn texts<'a>(elements: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
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
    assert_eq!(texts(ListValue::new().iter()), Vec::<String>::new());
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

#[test]
fn entries_read_the_same_from_either_end_whatever_the_length() {
    for len in [0, 1, 127, 128, 300, 16_383, 16_384, CHUNK_BYTES + 1, 70_000] {
        let element = vec![b'e'; len];
        let entry: Vec<u8> = entry_bytes(&element).collect();
        assert_eq!(entry.len(), entry_len(len), "length {len}");
        let chunk = Chunk {
            bytes: entry.clone(),
            count: 1,
        };
        let (forward, next) = chunk.element_at(0);
        assert_eq!((forward.len(), next), (len, entry.len()), "length {len}");
        let (backward, start) = chunk.element_before(entry.len());
        assert_eq!((backward, start), (forward, 0), "length {len}");
    }
}

/// A small deterministic generator, so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }

    /// Mostly short elements, some past one varint byte, a few past a
    /// whole chunk.
    fn element(&mut self, serial: usize) -> Vec<u8> {
        let len = match self.below(100) {
            0 => CHUNK_BYTES + self.below(3000),
            1..=9 => 128 + self.below(2000),
            _ => self.below(30),
        };
        let mut element = format!("{serial}:").into_bytes();
        element.resize(len.max(element.len()), b'a' + (serial % 26) as u8);
        element
    }
}

fn assert_same(list: &ListValue, model: &VecDeque<Vec<u8>>, context: &str) {
    assert_eq!(list.len(), model.len(), "{context}");
    assert!(list.iter().eq(model.iter().map(Vec::as_slice)), "{context}");
    assert!(
        list.iter().rev().eq(model.iter().rev().map(Vec::as_slice)),
        "{context}"
    );
    let expected: usize = model.iter().map(|element| entry_len(element.len())).sum();
    assert_eq!(list.entry_bytes, expected, "{context}");
    let chunked: usize = list.chunks.iter().map(|chunk| chunk.bytes.len()).sum();
    assert_eq!(chunked, expected, "{context}");
    let counted: usize = list.chunks.iter().map(|chunk| chunk.count).sum();
    assert_eq!(counted, model.len(), "{context}");
    assert!(list.chunks.iter().all(|chunk| chunk.count > 0), "{context}");
}

#[test]
fn every_operation_agrees_with_a_deque() {
    for seed in 1..=20u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut list = ListValue::new();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let mut most_chunks = 0;
        for step in 0..3000 {
            let context = format!("seed {seed}, step {step}");
            let len = model.len();
            let index = rng.below(len + 2);
            match rng.below(12) {
                0..=2 => {
                    let element = rng.element(step);
                    list.push_back(&element);
                    model.push_back(element);
                }
                3 | 4 => {
                    let element = rng.element(step);
                    list.push_front(&element);
                    model.push_front(element);
                }
                5 => assert_eq!(
                    list.pop_front().map(|e| e.to_vec()),
                    model.pop_front(),
                    "{context}"
                ),
                6 => assert_eq!(
                    list.pop_back().map(|e| e.to_vec()),
                    model.pop_back(),
                    "{context}"
                ),
                7 => {
                    let element = rng.element(step);
                    assert_eq!(list.set(index, &element), index < len, "{context}");
                    if let Some(slot) = model.get_mut(index) {
                        *slot = element;
                    }
                }
                8 => {
                    let element = rng.element(step);
                    list.insert(index, &element);
                    model.insert(index.min(len), element);
                }
                9 => assert_eq!(
                    list.remove(index).map(|e| e.to_vec()),
                    model.remove(index),
                    "{context}"
                ),
                10 => {
                    // Trim rarely empties the list: keep most of it.
                    let start = rng.below(3).min(len);
                    let end = len.saturating_sub(1 + rng.below(3));
                    list.trim(start, end);
                    if start > end || start >= len {
                        model.clear();
                    } else {
                        model.truncate(end + 1);
                        model.drain(..start);
                    }
                }
                _ => {
                    let start = rng.below(len + 1);
                    let end = start + rng.below(len + 1);
                    let expected: Vec<&[u8]> = model
                        .iter()
                        .skip(start)
                        .take((end + 1).saturating_sub(start))
                        .map(Vec::as_slice)
                        .collect();
                    let range = list.range(start, end);
                    assert_eq!(range.len(), expected.len(), "{context}");
                    assert_eq!(range.collect::<Vec<_>>(), expected, "{context}");
                    let reversed: Vec<&[u8]> = list.range(start, end).rev().collect();
                    assert!(reversed.iter().eq(expected.iter().rev()), "{context}");
                    assert_eq!(
                        list.get(index),
                        model.get(index).map(Vec::as_slice),
                        "{context}"
                    );
                }
            }
            assert_same(&list, &model, &context);
            most_chunks = most_chunks.max(list.chunks.len());
        }
        assert!(most_chunks > 5, "seed {seed}: at most {most_chunks} chunks");
    }
}

#[test]
fn a_full_chunk_uses_most_of_its_buffer() {
    let mut list = ListValue::new();
    for n in 0..100_000 {
        list.push_back(format!("element:{n:010}").as_bytes());
    }
    let capacity: usize = list.chunks.iter().map(|chunk| chunk.bytes.capacity()).sum();
    assert!(
        capacity <= list.entry_bytes + list.entry_bytes / 50 + CHUNK_BYTES,
        "{capacity} bytes held for {} bytes of entries",
        list.entry_bytes
    );
    while list.len() > 10 {
        list.pop_front();
    }
    let capacity: usize = list.chunks.iter().map(|chunk| chunk.bytes.capacity()).sum();
    assert!(capacity <= 1024, "{capacity} bytes held for 10 elements");
}

#[test]
fn how_elements_fall_into_chunks_changes_nothing_replicated() {
    let mut from_the_tail = ListValue::new();
    let mut from_the_head = ListValue::new();
    for n in 0..5000 {
        from_the_tail.push_back(format!("element:{n}").as_bytes());
        from_the_head.push_front(format!("element:{}", 4999 - n).as_bytes());
    }
    from_the_head.insert(2500, b"x");
    from_the_head.remove(2500);
    assert_eq!(from_the_tail, from_the_head);
    assert_eq!(from_the_tail.mem_bytes(), from_the_head.mem_bytes());
    let stored = postcard::to_allocvec(&from_the_tail).unwrap();
    assert_eq!(stored, postcard::to_allocvec(&from_the_head).unwrap());
    let restored: ListValue = postcard::from_bytes(&stored).unwrap();
    assert_eq!(restored, from_the_tail);
    assert_eq!(restored.mem_bytes(), from_the_tail.mem_bytes());
}

#[test]
fn snapshots_keep_the_shape_lists_were_always_stored_in() {
    #[derive(Serialize, Deserialize)]
    struct Earlier {
        items: VecDeque<Bytes>,
        payload_bytes: usize,
    }
    let elements = ["a", "", "element:0000000001", &"long".repeat(100)];
    let earlier = Earlier {
        items: elements
            .iter()
            .map(|e| Bytes::from(e.to_string()))
            .collect(),
        payload_bytes: elements.iter().map(|e| e.len()).sum(),
    };
    let stored = postcard::to_allocvec(&earlier).unwrap();
    assert_eq!(postcard::to_allocvec(&list(&elements)).unwrap(), stored);
    let restored: ListValue = postcard::from_bytes(&stored).unwrap();
    assert_eq!(restored, list(&elements));
}
