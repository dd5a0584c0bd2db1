use super::*;

fn big_hash(fields: usize) -> Value {
    let mut hash = HashValue::new();
    for index in 0..fields {
        hash.insert(
            format!("field:{index}").as_bytes(),
            format!("value:{index}:{}", "x".repeat(index % 90)).as_bytes(),
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
fn a_value_is_no_larger_than_a_string() {
    // Every key's slot in the keyspace holds a Value: a hash variant
    // larger than a string's would grow every string key too.
    assert_eq!(std::mem::size_of::<Value>(), std::mem::size_of::<Bytes>());
}

/// A snapshot written before locks existed: a string `s`, a hash `h`
/// (deadline 77) and an empty stream `x`.
const SNAPSHOT_BEFORE_LOCKS: &[u8] = &[
    0x02, 0x03, 0x01, 0x78, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x68, 0x01, 0x01, 0x01, 0x66, 0x01, 0x78, 0x02, 0x01, 0x01, 0x01, 0x4d, 0x00,
    0x01, 0x73, 0x00, 0x01, 0x76, 0x00, 0x00, 0x00,
];

#[test]
fn snapshots_from_before_locks_still_decode_and_locks_get_the_next_tag() {
    let db = crate::Db::from_snapshot(SNAPSHOT_BEFORE_LOCKS).expect("an older snapshot decodes");
    assert_eq!(
        db.get(b"s", 0),
        Some(&Value::String(Bytes::from_static(b"v")))
    );
    assert_eq!(
        db.get(b"h", 0).and_then(Value::as_hash).map(HashValue::len),
        Some(1)
    );
    assert_eq!(
        db.entry(b"h", 0).and_then(|entry| entry.expire_at_ms()),
        Some(77)
    );
    assert_eq!(db.get(b"x", 0).map(Value::type_name), Some("stream"));
    assert_eq!(
        db.to_snapshot(),
        crate::snapshot::in_current_format(SNAPSHOT_BEFORE_LOCKS),
        "and encodes its values alike"
    );

    // A lock is the seventh type: tag 6, after the stream's 5.
    let lock = Value::lock(crate::LockValue::granted(
        Bytes::from_static(b"o"),
        9,
        1_000,
    ));
    let bytes = postcard::to_stdvec(&lock).unwrap();
    assert_eq!(bytes[0], 6);
    assert_eq!(postcard::from_bytes::<Value>(&bytes).unwrap(), lock);
    assert_eq!(lock.type_name(), "lock");
    assert_eq!(lock.encoding(&EncodingLimits::default()), "lock");
    assert_eq!(lock.split(1), None);
    assert!(!lock.is_empty_aggregate());
}
