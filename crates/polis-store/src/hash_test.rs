use bytes::Bytes;

use super::*;
use crate::value::Value;

#[test]
fn hash_tracks_sizes_and_encoding() {
    let limits = EncodingLimits::default();
    let mut hash = HashValue::new();
    assert!(hash.insert(Bytes::from_static(b"f"), Bytes::from_static(b"v1")));
    assert!(!hash.insert(Bytes::from_static(b"f"), Bytes::from_static(b"value")));
    assert_eq!(hash.payload_bytes, 6);
    assert_eq!(hash.encoding(&limits), "listpack");
    assert!(hash.insert(Bytes::from_static(b"g"), Bytes::from(vec![b'x'; 65])));
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
            Bytes::from(format!("f{index}")),
            Bytes::from(format!("v{index}")),
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
        hash.insert(field.clone(), value.clone());
    }
    // An overwrite and a removal, so the figures below are not just sums.
    hash.insert(
        Bytes::from_static(b"empty value"),
        Bytes::from_static(b"now set"),
    );
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
    hash.insert(Bytes::from_static(b"f1"), Bytes::from_static(b"v1"));
    hash.insert(Bytes::from_static(b"f2"), Bytes::from_static(b""));
    hash.insert(Bytes::from_static(b""), Bytes::from_static(b"x"));
    let encoded = postcard::to_stdvec(&Value::hash(hash)).expect("encode");
    assert_eq!(encoded, PINNED_SMALL_HASH);
}

/// Tag 1 (hash), 3 pairs in hash order (`""`: `x`, `f1`: `v1`, `f2`:
/// `""`), each string a varint length and its bytes, then the payload
/// bytes (7), the peak length (3) and the longest item (2).
const PINNED_SMALL_HASH: &[u8] = &[
    1, 3, 0, 1, b'x', 2, b'f', b'1', 2, b'v', b'1', 2, b'f', b'2', 0, 7, 3, 2,
];
