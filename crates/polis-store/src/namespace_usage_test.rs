use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::evict::{Choice, EvictionPolicy, Evictor};
use crate::value::Value;

const T0: u64 = 1_700_000_000_000;

fn table() -> Arc<NamespaceTable> {
    Arc::new(NamespaceTable::new([
        (Bytes::from_static(b"s:"), true),
        (Bytes::from_static(b"s:cold:"), false),
        (Bytes::from_static(b"t:"), true),
        (Bytes::from_static(b"order:"), false),
    ]))
}

fn string(text: &str) -> Value {
    Value::String(Bytes::copy_from_slice(text.as_bytes()))
}

/// The bytes of every key `counted` accepts, as a fresh count sees them.
fn recount(db: &Db, prefix: &[u8]) -> usize {
    let mut fresh = db.clone();
    fresh.set_namespaces(None);
    fresh.set_namespaces(Some(Arc::new((**db.namespace_table().unwrap()).clone())));
    fresh.namespace_bytes(prefix)
}

#[test]
fn a_key_counts_in_its_longest_namespace_when_that_one_is_limited() {
    let table = table();
    assert_eq!(
        table.limited(),
        [Bytes::from_static(b"s:"), Bytes::from_static(b"t:")]
    );
    assert_eq!(table.limited_of(b"s:1"), Some(0));
    assert_eq!(
        table.limited_of(b"s:cold:1"),
        None,
        "a longer namespace without limits"
    );
    assert_eq!(table.limited_of(b"t:x"), Some(1));
    assert_eq!(table.limited_of(b"order:1"), None);
    assert_eq!(table.limited_of(b"other"), None);
    assert_eq!(table.limited_of(b"s"), None);
}

#[test]
fn the_counts_follow_every_write_and_match_a_fresh_count() {
    let mut db = Db::new();
    db.insert(Bytes::from_static(b"s:0"), string("before"), None, T0);
    db.set_namespaces(Some(table()));
    let first = db.namespace_bytes(b"s:");
    assert!(first > 0, "keys present when the table is set are counted");
    for index in 0..200 {
        let key = Bytes::from(format!("s:{index}"));
        db.insert(key, string(&"v".repeat(index)), None, T0);
        db.insert(
            Bytes::from(format!("t:{index}")),
            string("x"),
            Some(T0 + 10_000),
            T0,
        );
        db.insert(
            Bytes::from(format!("s:cold:{index}")),
            string("cold"),
            None,
            T0,
        );
        db.insert(Bytes::from(format!("order:{index}")), string("o"), None, T0);
    }
    db.set_expire(b"s:5", Some(T0 + 5_000), T0);
    db.remove(b"s:7", T0);
    db.update(b"s:9", T0, |value| *value = string(&"w".repeat(5_000)));
    db.remove_where(|key| key.starts_with(b"t:1"));
    for prefix in [&b"s:"[..], b"t:"] {
        assert_eq!(
            db.namespace_bytes(prefix),
            recount(&db, prefix),
            "{prefix:?}"
        );
    }
    assert_eq!(db.namespace_bytes(b"order:"), 0, "not limited: not counted");
    let total = db.namespace_bytes(b"s:") + db.namespace_bytes(b"t:");
    assert!(
        total < db.used_memory(),
        "other namespaces' keys are not counted"
    );
    db.clear();
    assert_eq!(db.namespace_bytes(b"s:"), 0);
    db.set_namespaces(None);
    assert!(db.namespace_table().is_none());
}

#[test]
fn a_choice_within_a_namespace_takes_only_its_keys() {
    let mut db = Db::new();
    db.set_namespaces(Some(table()));
    // Few of the namespace's keys among many others: the walk finds them.
    for index in 0..20_000 {
        db.insert(Bytes::from(format!("order:{index}")), string("o"), None, T0);
    }
    for index in 0..50 {
        db.insert(Bytes::from(format!("s:{index}")), string("v"), None, T0);
        db.insert(
            Bytes::from(format!("s:cold:{index}")),
            string("v"),
            None,
            T0,
        );
    }
    for policy in [EvictionPolicy::AllKeysLru, EvictionPolicy::AllKeysRandom] {
        let mut evictor = Evictor::new(7);
        let victims = evictor.choose(
            &[(1, &db)],
            Choice {
                within: Some(b"s:"),
                policy,
                samples: 5,
                bytes: usize::MAX,
                keys_max: 20,
                now_ms: T0 + 1_000,
            },
        );
        assert_eq!(victims.len(), 20, "{policy:?}");
        for victim in victims {
            assert_eq!(
                db.limited_namespace_of(&victim.key).map(Bytes::as_ref),
                Some(&b"s:"[..]),
                "{policy:?} chose {:?}",
                victim.key
            );
        }
    }
}
