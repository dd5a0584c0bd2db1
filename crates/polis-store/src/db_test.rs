use bytes::Bytes;

use super::*;
use crate::hash::HashValue;
use crate::snapshot::SnapshotError;

fn string(text: &str) -> Value {
    Value::String(Bytes::copy_from_slice(text.as_bytes()))
}

fn key(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

#[test]
fn expired_key_is_invisible_at_its_deadline() {
    let mut db = Db::new();
    db.insert(key("k"), string("v"), Some(1_000), 0);
    assert_eq!(db.get(b"k", 999), Some(&string("v")));
    assert_eq!(db.get(b"k", 1_000), None);
    assert!(!db.contains(b"k", 5_000));
    // Still stored until someone deletes it.
    assert_eq!(db.len(), 1);
    assert_eq!(db.expires_len(), 1);
}

#[test]
fn writes_lazily_delete_and_count_expired_keys() {
    let mut db = Db::new();
    db.insert(key("a"), string("1"), Some(100), 0);
    db.insert(key("b"), string("2"), Some(100), 0);
    assert_eq!(
        db.remove(b"a", 100),
        None,
        "an expired key is not removed as live"
    );
    assert_eq!(db.stats().expired_keys, 1);
    db.insert(key("b"), string("3"), None, 150);
    assert_eq!(db.stats().expired_keys, 2);
    assert_eq!(db.get(b"b", 10_000), Some(&string("3")));
    assert_eq!(db.expires_len(), 0);
}

#[test]
fn expired_keys_lists_due_keys_earliest_first_up_to_limit() {
    let mut db = Db::new();
    db.insert(key("late"), string("v"), Some(300), 0);
    db.insert(key("early"), string("v"), Some(100), 0);
    db.insert(key("mid"), string("v"), Some(200), 0);
    db.insert(key("forever"), string("v"), None, 0);
    assert_eq!(db.expired_keys(99, 10), Vec::<Bytes>::new());
    assert_eq!(db.expired_keys(250, 10), vec![key("early"), key("mid")]);
    assert_eq!(db.expired_keys(1_000, 1), vec![key("early")]);
}

#[test]
fn delete_expired_skips_keys_rewritten_since_listing() {
    let mut db = Db::new();
    db.insert(key("a"), string("v"), Some(100), 0);
    db.insert(key("b"), string("v"), Some(100), 0);
    let due = db.expired_keys(200, 10);
    // A write between listing and applying gives "b" a new life.
    db.set_expire(b"b", Some(10_000), 50);
    assert_eq!(db.delete_expired(&due, 200), 1);
    assert_eq!(db.stats().expired_keys, 1);
    assert!(db.contains(b"b", 200));
    assert_eq!(db.len(), 1);
}

#[test]
fn set_expire_moves_the_deadline_in_the_index() {
    let mut db = Db::new();
    db.insert(key("k"), string("v"), Some(100), 0);
    assert!(db.set_expire(b"k", Some(500), 0));
    assert_eq!(db.expired_keys(200, 10), Vec::<Bytes>::new());
    assert_eq!(db.expired_keys(500, 10), vec![key("k")]);
    assert!(db.set_expire(b"k", None, 0));
    assert_eq!(db.expires_len(), 0);
    assert!(!db.set_expire(b"missing", Some(1), 0));
}

#[test]
fn insert_keep_ttl_keeps_only_a_live_deadline() {
    let mut db = Db::new();
    db.insert(key("k"), string("v"), Some(1_000), 0);
    db.insert_keep_ttl(key("k"), string("w"), 10);
    assert_eq!(
        db.entry(b"k", 10).and_then(Entry::expire_at_ms),
        Some(1_000)
    );
    db.insert_keep_ttl(key("k"), string("x"), 2_000);
    assert_eq!(db.entry(b"k", 2_000).and_then(Entry::expire_at_ms), None);
}

#[test]
fn update_deletes_emptied_hashes_and_tracks_memory() {
    let mut db = Db::new();
    let mut hash = HashValue::new();
    hash.insert(b"f", b"v");
    db.insert(key("h"), Value::hash(hash), None, 0);
    let before = db.used_memory();
    let grew = db.update(b"h", 0, |value| match value.as_hash_mut() {
        Some(hash) => hash.insert(b"g", &[b'x'; 1000]),
        None => false,
    });
    assert_eq!(grew, Some(true));
    // Fields count at their average size: about the 1000 bytes added.
    assert!(
        db.used_memory() >= before + 950,
        "{before} -> {}",
        db.used_memory()
    );
    db.update(b"h", 0, |value| {
        if let Some(hash) = value.as_hash_mut() {
            hash.remove(b"f");
            hash.remove(b"g");
        }
    });
    assert!(!db.contains(b"h", 0));
    assert_eq!(db.used_memory(), 0);
    assert_eq!(db.update(b"h", 0, |_| ()), None);
}

#[test]
fn memory_estimate_returns_to_zero_after_deletes() {
    let mut db = Db::new();
    for index in 0..100 {
        db.insert(key(&format!("k{index}")), string("value"), Some(50), 0);
    }
    assert!(db.used_memory() > 100 * 5);
    let due = db.expired_keys(50, 1_000);
    assert_eq!(db.delete_expired(&due, 50), 100);
    assert_eq!(db.used_memory(), 0);
    assert_eq!(db.expires_len(), 0);
}

#[test]
fn random_key_skips_expired_keys() {
    let mut db = Db::new();
    assert_eq!(db.random_key(7, 0), None);
    db.insert(key("dead"), string("v"), Some(10), 0);
    db.insert(key("alive"), string("v"), None, 0);
    for seed in 0..10 {
        assert_eq!(db.random_key(seed, 20), Some(&key("alive")));
    }
    let mut seen = std::collections::HashSet::new();
    for seed in 0..10 {
        seen.extend(db.random_key(seed, 0).cloned());
    }
    assert_eq!(seen.len(), 2, "every key is reachable by some seed");
}

#[test]
fn scan_leaves_out_expired_keys() {
    let mut db = Db::new();
    db.insert(key("dead"), string("v"), Some(10), 0);
    db.insert(key("alive"), string("v"), None, 0);
    let page = db.scan(0, 100, 20);
    let keys: Vec<&Bytes> = page.entries.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, vec![&key("alive")]);
    assert_eq!(page.next_cursor, 0);
}

fn sample_db(order_reversed: bool) -> Db {
    let mut db = Db::new();
    let mut indexes: Vec<u32> = (0..200).collect();
    if order_reversed {
        indexes.reverse();
    }
    for index in indexes {
        let deadline = (index % 3 == 0).then_some(10_000 + u64::from(index));
        if index % 2 == 0 {
            db.insert(
                key(&format!("s{index}")),
                string(&format!("v{index}")),
                deadline,
                0,
            );
        } else {
            let mut hash = HashValue::new();
            for field in 0..(index % 5) {
                hash.insert(
                    format!("f{field}").as_bytes(),
                    format!("{index}").as_bytes(),
                );
            }
            hash.insert(b"last", b"x");
            db.insert(key(&format!("h{index}")), Value::hash(hash), deadline, 0);
        }
    }
    db
}

#[test]
fn snapshot_round_trips() {
    let mut db = sample_db(false);
    db.insert(key("gone"), string("v"), Some(5), 0);
    db.expire_if_needed(b"gone", 10);
    let bytes = db.to_snapshot();
    assert_eq!(bytes[0], crate::SNAPSHOT_FORMAT_VERSION);
    let restored = Db::from_snapshot(&bytes).expect("snapshot decodes");
    assert_eq!(restored.len(), db.len());
    assert_eq!(restored.expires_len(), db.expires_len());
    assert_eq!(restored.used_memory(), db.used_memory());
    assert_eq!(restored.stats(), db.stats());
    assert_eq!(restored.stats().expired_keys, 1);
    let left: Vec<_> = db.iter(0).collect();
    let right: Vec<_> = restored.iter(0).collect();
    assert_eq!(left, right);
    assert_eq!(restored.to_snapshot(), bytes);
}

#[test]
fn snapshots_are_identical_whatever_the_insertion_order() {
    assert_eq!(
        sample_db(false).to_snapshot(),
        sample_db(true).to_snapshot()
    );
}

#[test]
fn snapshot_rejects_bad_input() {
    assert!(matches!(Db::from_snapshot(&[]), Err(SnapshotError::Empty)));
    assert!(matches!(
        Db::from_snapshot(&[99, 0, 0]),
        Err(SnapshotError::UnsupportedVersion { found: 99, .. })
    ));
    let mut bytes = sample_db(false).to_snapshot();
    bytes.push(0);
    assert!(matches!(
        Db::from_snapshot(&bytes),
        Err(SnapshotError::TrailingBytes(1))
    ));
    let truncated = &bytes[..bytes.len() / 2];
    assert!(matches!(
        Db::from_snapshot(truncated),
        Err(SnapshotError::Decode(_))
    ));
}

#[test]
fn clear_empties_but_keeps_counters() {
    let mut db = sample_db(false);
    db.insert(key("x"), string("v"), Some(1), 0);
    db.expire_if_needed(b"x", 5);
    db.clear();
    assert_eq!(db.len(), 0);
    assert_eq!(db.expires_len(), 0);
    assert_eq!(db.used_memory(), 0);
    assert_eq!(db.stats().expired_keys, 1);
}

#[test]
fn small_strings_are_stored_and_read_as_copies_large_ones_shared() {
    let small = Bytes::from(vec![b's'; 100]);
    let large = Bytes::from(vec![b'l'; DETACHED_COPY_MAX_BYTES + 1]);
    let mut db = Db::new();
    db.insert(small.clone(), Value::String(small.clone()), None, 0);
    db.insert(key("large"), Value::String(large.clone()), None, 0);

    let Some(Value::String(stored)) = db.get(&small, 0) else {
        panic!("small value missing")
    };
    assert_eq!(stored, &small);
    assert_ne!(
        stored.as_ptr(),
        small.as_ptr(),
        "a small value is copied in"
    );
    let read = detached(stored);
    assert_eq!(read, small);
    assert_ne!(read.as_ptr(), stored.as_ptr(), "and copied out");

    let Some(Value::String(stored)) = db.get(b"large", 0) else {
        panic!("large value missing")
    };
    assert_eq!(stored.as_ptr(), large.as_ptr(), "a large value is shared");
    assert_eq!(detached(stored).as_ptr(), large.as_ptr());
}

#[test]
fn overwriting_keeps_the_indexes_and_the_byte_count_as_a_fresh_insert_would() {
    // Every path of `insert`: a new key, a live key without a deadline
    // replaced in place, a key with a deadline, a deadline given.
    let mut db = Db::new();
    db.insert(key("plain"), string("1"), None, 0);
    db.insert(key("plain"), string("a longer value"), None, 0);
    db.insert(key("ttl"), string("2"), Some(1_000), 0);
    db.insert(key("ttl"), string("3"), None, 10);
    db.insert(key("gets-ttl"), string("4"), None, 0);
    db.insert(key("gets-ttl"), string("5"), Some(2_000), 10);
    let mut hash = HashValue::default();
    hash.insert(b"field", b"value");
    db.insert(key("was-hash"), Value::hash(hash), None, 0);
    db.insert(key("was-hash"), string("6"), None, 10);

    let mut fresh = Db::new();
    fresh.insert(key("plain"), string("a longer value"), None, 0);
    fresh.insert(key("ttl"), string("3"), None, 0);
    fresh.insert(key("gets-ttl"), string("5"), Some(2_000), 0);
    fresh.insert(key("was-hash"), string("6"), None, 0);

    assert_eq!(db.used_memory(), fresh.used_memory());
    assert_eq!(db.len(), 4);
    assert_eq!(db.expires_len(), 1);
    assert_eq!(db.expired_keys(2_000, 10), vec![key("gets-ttl")]);
    assert_eq!(db.get(b"plain", 10), Some(&string("a longer value")));
    assert_eq!(db.get(b"ttl", 5_000), Some(&string("3")));
    assert_eq!(db.get(b"was-hash", 10), Some(&string("6")));
    assert_eq!(db.stats().expired_keys, 0);
}

#[test]
fn reads_count_as_uses_and_peeks_do_not() {
    let start = 1_700_000_000_000;
    let mut db = Db::new();
    db.insert(key("k"), string("v"), None, start);
    let idle = |db: &Db, now| db.peek(b"k", now).unwrap().access().idle_ms(now);
    assert_eq!(idle(&db, start + 5_000), 5_000);
    assert!(db.get(b"k", start + 5_000).is_some());
    assert_eq!(idle(&db, start + 6_000), 1_000);
    // OBJECT, TYPE, TTL, EXISTS and WATCH look without touching.
    assert!(db.contains(b"k", start + 9_000));
    assert_eq!(db.version_of(b"k", start + 9_000), Some(0));
    assert_eq!(idle(&db, start + 9_000), 4_000);
    // A write stamps the entry's time, even when a migration passes 0.
    db.set_write_time(start + 20_000);
    db.insert(key("k"), string("w"), None, 0);
    assert_eq!(idle(&db, start + 20_000), 0);
    db.insert(key("n"), string("w"), Some(start + 90_000), 0);
    assert_eq!(
        db.peek(b"n", start)
            .unwrap()
            .access()
            .idle_ms(start + 20_000),
        0
    );
}

#[test]
fn an_overwrite_keeps_the_lfu_counter_and_counts_one_more_use() {
    let now = 1_700_000_000_000;
    let mut db = Db::new();
    db.set_tracking(crate::Tracking::Lfu {
        log_factor: 0,
        decay_minutes: 1,
    });
    db.insert(key("k"), string("v"), None, now);
    let frequency = |db: &Db| db.peek(b"k", now).unwrap().access().frequency(now, 1);
    assert_eq!(frequency(&db), crate::access::LFU_INIT_VAL);
    for _ in 0..3 {
        db.get(b"k", now);
    }
    db.insert(key("k"), string("w"), Some(now + 1_000_000), now);
    assert_eq!(frequency(&db), crate::access::LFU_INIT_VAL + 4);
    db.remove(b"k", now);
    db.insert(key("k"), string("v"), None, now);
    assert_eq!(
        frequency(&db),
        crate::access::LFU_INIT_VAL,
        "a new key starts over"
    );
}

#[test]
fn an_entry_keeps_its_size_with_the_access_word() {
    assert_eq!(std::mem::size_of::<Entry>(), 56);
}
