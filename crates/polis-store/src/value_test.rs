use super::*;

fn big_hash(fields: usize) -> Value {
    let mut hash = HashValue::new();
    for index in 0..fields {
        hash.insert(
            Bytes::from(format!("field:{index}")),
            Bytes::from(format!("value:{index}:{}", "x".repeat(index % 90))),
        );
    }
    // A field removed: the peak stays above the length.
    hash.remove(b"field:0");
    Value::hash(hash)
}

#[test]
fn a_collection_split_in_parts_and_absorbed_again_is_the_same_value() {
    let whole = big_hash(5_000);
    let parts = whole.split(16 * 1024).expect("a large hash splits");
    assert!(parts.len() > 10, "{} parts", parts.len());
    for part in &parts {
        // At most one field past the size.
        assert!(part.mem_bytes() < 16 * 1024 + 200, "{}", part.mem_bytes());
    }
    let mut parts = parts.into_iter();
    let mut rebuilt = parts.next().expect("a first part");
    let rest: Vec<Value> = parts.collect();
    for part in rest.iter().cloned() {
        assert!(rebuilt.absorb(part));
    }
    assert_eq!(rebuilt, whole);
    // A part absorbed again (a retried message) changes nothing.
    assert!(rebuilt.absorb(rest[3].clone()));
    assert_eq!(rebuilt, whole);
    assert_eq!(
        rebuilt.encoding(&EncodingLimits::default()),
        whole.encoding(&EncodingLimits::default())
    );
}

#[test]
fn strings_and_collections_that_fit_are_not_split() {
    assert_eq!(
        Value::String(Bytes::from("x".repeat(10_000))).split(10),
        None
    );
    assert_eq!(big_hash(10).split(1 << 20), None);
}

#[test]
fn a_part_of_another_type_is_refused() {
    let mut string = Value::String(Bytes::from_static(b"v"));
    assert!(!string.absorb(big_hash(3)));
    assert_eq!(string, Value::String(Bytes::from_static(b"v")));
    let mut hash = big_hash(3);
    assert!(!hash.absorb(Value::String(Bytes::from_static(b"v"))));
    assert_eq!(hash, big_hash(3));
}

#[test]
fn string_encodings_follow_redis_thresholds() {
    let long44 = "x".repeat(44);
    let long45 = "x".repeat(45);
    let table: &[(&[u8], &str)] = &[
        (b"1234", "int"),
        (b"-555", "int"),
        (b"0", "int"),
        (b"9223372036854775807", "int"),
        (b"9223372036854775808", "embstr"),
        (b"01", "embstr"),
        (b"-0", "embstr"),
        (b"+1", "embstr"),
        (b" 1", "embstr"),
        (b"", "embstr"),
        (long44.as_bytes(), "embstr"),
        (long45.as_bytes(), "raw"),
    ];
    for (bytes, encoding) in table {
        assert_eq!(
            string_encoding(bytes),
            *encoding,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

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
fn a_value_is_no_larger_than_a_string() {
    // Every key's slot in the keyspace holds a Value: a hash variant
    // larger than a string's would grow every string key too.
    assert_eq!(std::mem::size_of::<Value>(), std::mem::size_of::<Bytes>());
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
