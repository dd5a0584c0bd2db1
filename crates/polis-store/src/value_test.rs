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
