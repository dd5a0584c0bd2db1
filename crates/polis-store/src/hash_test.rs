use bytes::Bytes;

use super::*;
use crate::value::Value;

#[test]
fn hash_tracks_sizes_and_encoding() {
    let limits = EncodingLimits::default();
    let mut hash = HashValue::new();
    assert!(hash.insert(b"f", b"v1"));
    assert!(!hash.insert(b"f", b"value"));
    assert_eq!(hash.payload_bytes, 6);
    assert_eq!(hash.encoding(&limits), "listpack");
    assert!(hash.insert(b"g", &[b'x'; 65]));
    assert_eq!(hash.encoding(&limits), "hashtable");
    assert!(hash.remove(b"g"));
    // Conversion is one-way, as in Redis.
    assert_eq!(hash.encoding(&limits), "hashtable");
    assert_eq!(hash.payload_bytes, 6);
    assert!(!hash.remove(b"g"));
}

#[test]
fn hash_round_trips_through_postcard() {
    let mut hash = HashValue::new();
    for index in 0..50 {
        hash.insert(
            format!("f{index}").as_bytes(),
            format!("v{index}").as_bytes(),
        );
    }
    let value = Value::hash(hash);
    let encoded = postcard::to_stdvec(&value).expect("encode");
    let decoded: Value = postcard::from_bytes(&encoded).expect("decode");
    assert_eq!(decoded, value);
}

/// The shape hashes were serialized in when their fields were a map of
/// `Bytes` to `Bytes`: snapshots written then must load, and a hash must
/// encode the same way whatever the layout in memory.
#[derive(serde::Serialize)]
enum OldStoredValue {
    _String(Bytes),
    Hash(OldHash),
}

#[derive(serde::Serialize)]
struct OldHash {
    fields: Vec<(Bytes, Bytes)>,
    payload_bytes: usize,
    peak_len: usize,
    peak_item_len: usize,
}

/// Fields of several lengths: empty, one and two varint bytes long.
fn sample_pairs() -> Vec<(Bytes, Bytes)> {
    let mut pairs = vec![
        (Bytes::new(), Bytes::from_static(b"empty field")),
        (Bytes::from_static(b"empty value"), Bytes::new()),
        (
            Bytes::from(vec![b'f'; 200]),
            Bytes::from(vec![0u8, 255, 128]),
        ),
        (
            Bytes::from_static(b"\x00\xff"),
            Bytes::from(vec![b'v'; 300]),
        ),
    ];
    for index in 0..100 {
        pairs.push((
            Bytes::from(format!("element:{index:010}")),
            Bytes::from(format!("value:{index}")),
        ));
    }
    pairs
}

#[test]
fn a_hash_serializes_as_its_pairs_in_hash_order() {
    let pairs = sample_pairs();
    let mut hash = HashValue::new();
    for (field, value) in &pairs {
        hash.insert(field, value);
    }
    // An overwrite and a removal, so the figures below are not just sums.
    hash.insert(b"empty value", b"now set");
    hash.remove(b"element:0000000007");
    let mut expected: Vec<(Bytes, Bytes)> = pairs
        .into_iter()
        .filter(|(field, _)| field.as_ref() != b"element:0000000007")
        .map(|(field, value)| match field.as_ref() {
            b"empty value" => (field, Bytes::from_static(b"now set")),
            _ => (field, value),
        })
        .collect();
    expected.sort_by(|left, right| {
        (crate::ordered::key_hash(&left.0), &left.0)
            .cmp(&(crate::ordered::key_hash(&right.0), &right.0))
    });
    let payload_bytes = expected.iter().map(|(f, v)| f.len() + v.len()).sum();
    let old = OldStoredValue::Hash(OldHash {
        fields: expected,
        payload_bytes,
        peak_len: 104,
        peak_item_len: 300,
    });
    let value = Value::hash(hash);
    let encoded = postcard::to_stdvec(&value).expect("encode");
    assert_eq!(encoded, postcard::to_stdvec(&old).expect("encode"));
    let decoded: Value = postcard::from_bytes(&encoded).expect("decode");
    assert_eq!(decoded, value);
}

#[test]
fn a_small_hash_has_pinned_bytes() {
    // Pinned: snapshots and migrations carry these bytes between nodes
    // and versions, so a change must be deliberate.
    let mut hash = HashValue::new();
    hash.insert(b"f1", b"v1");
    hash.insert(b"f2", b"");
    hash.insert(b"", b"x");
    let encoded = postcard::to_stdvec(&Value::hash(hash)).expect("encode");
    assert_eq!(encoded, PINNED_SMALL_HASH);
}

/// Tag 1 (hash), 3 pairs in hash order (`""`: `x`, `f1`: `v1`, `f2`:
/// `""`), each string a varint length and its bytes, then the payload
/// bytes (7), the peak length (3) and the longest item (2).
const PINNED_SMALL_HASH: &[u8] = &[
    1, 3, 0, 1, b'x', 2, b'f', b'1', 2, b'v', b'1', 2, b'f', b'2', 0, 7, 3, 2,
];

#[test]
fn a_packed_field_gives_back_its_field_and_value() {
    // Lengths around each varint boundary, and an empty field and value.
    for field_len in [0, 1, 127, 128, 16_383, 16_384] {
        for value_len in [0, 1, 200] {
            let field = vec![b'f'; field_len];
            let value = vec![b'v'; value_len];
            let packed = PackedField::new(&field, &value);
            assert_eq!(packed.parts(), (&field[..], &value[..]), "{field_len}");
            assert_eq!(packed.key_bytes(), &field[..]);
            assert_eq!(packed.payload_len(), field_len + value_len);
            assert_eq!(
                packed.0.len(),
                varint_len(field_len as u64) + field_len + value_len
            );
        }
    }
}

#[test]
fn varint_lengths_match_what_is_written() {
    for number in [
        0,
        1,
        127,
        128,
        16_383,
        16_384,
        u64::from(u32::MAX),
        u64::MAX,
    ] {
        let mut out = Vec::new();
        push_varint(&mut out, number);
        assert_eq!(out.len(), varint_len(number), "{number}");
    }
}

#[test]
fn a_damaged_packed_field_reads_without_panicking() {
    // Never written by `new`: a length past the end, and an unterminated
    // varint.
    let too_long = PackedField(Box::new([5, b'a', b'b']));
    assert_eq!(too_long.parts(), (&b"ab"[..], &b""[..]));
    let unterminated = PackedField(vec![0xFF; 12].into_boxed_slice());
    assert_eq!(unterminated.parts(), (&[0xFF, 0xFF][..], &b""[..]));
    let empty = PackedField(Box::new([]));
    assert_eq!(empty.parts(), (&b""[..], &b""[..]));
}

#[test]
fn overwriting_a_field_replaces_its_value_and_keeps_its_place() {
    let mut hash = HashValue::new();
    for index in 0..100 {
        hash.insert(format!("f{index}").as_bytes(), b"old");
    }
    let before: Vec<Vec<u8>> = hash.iter().map(|(field, _)| field.to_vec()).collect();
    assert!(!hash.insert(b"f42", b"a new value"));
    assert_eq!(hash.get(b"f42"), Some(&b"a new value"[..]));
    assert_eq!(hash.get(b"f43"), Some(&b"old"[..]));
    assert_eq!(hash.get(b"f100"), None);
    let after: Vec<Vec<u8>> = hash.iter().map(|(field, _)| field.to_vec()).collect();
    assert_eq!(before, after);
    assert_eq!(hash.payload_bytes, 290 + 3 * 100 + 8);
    // Hashes equal in fields but not in values are not equal.
    let mut other = hash.clone();
    assert_eq!(other, hash);
    other.insert(b"f42", b"another");
    assert_ne!(other, hash);
}

#[test]
fn the_memory_estimate_depends_on_the_contents_only() {
    let mut grown = HashValue::new();
    let mut direct = HashValue::new();
    for index in 0..500 {
        grown.insert(format!("f{index}").as_bytes(), &[b'x'; 300]);
    }
    for index in 0..500 {
        grown.insert(format!("f{index}").as_bytes(), b"v");
        direct.insert(format!("f{index}").as_bytes(), b"v");
    }
    assert_eq!(grown.mem_bytes(), direct.mem_bytes());
    let fields: usize = (0..500).map(|index| format!("f{index}").len()).sum();
    // Each field packed with its length and value: 1 + f{index} + "v",
    // 5 to 7 bytes, one 32-byte chunk each; and the B-tree's nodes.
    let packed = fields + 500 + 500;
    assert_eq!(
        direct.mem_bytes(),
        500 * crate::memory::heap_bytes(packed.div_ceil(500))
            + crate::memory::btree_bytes(500, 24, crate::memory::Fill::Random)
    );
}
