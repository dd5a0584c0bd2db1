//! The key events string and generic commands record, and masks: the
//! sequences Redis 7.0 notifies (`notifyKeyspaceEvent` in t_string.c,
//! bitops.c, db.c and expire.c; tests/unit/pubsub.tcl, "Keyspace
//! notifications").

use polis_store::event_class;

use crate::test_support::*;

// Reference: pubsub.tcl, "Keyspace notifications: general events test".
#[test]
fn general_events() {
    let mut h = Harness::new();
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            ("set foo bar", &[("new", "foo"), ("set", "foo")]),
            ("expire foo 1", &[("expire", "foo")]),
            ("del foo", &[("del", "foo")]),
        ],
    );
}

// Reference: pubsub.tcl, "Keyspace notifications: new key test".
#[test]
fn new_only_for_created_keys() {
    let mut h = Harness::new();
    h.db.set_events_mask(event_class::NEW);
    h.run("set foo bar");
    h.run("set foo baz");
    h.run("set bar bar");
    assert_eq!(
        h.events(),
        vec![("new", "foo".into()), ("new", "bar".into())]
    );
}

#[test]
fn string_events() {
    let mut h = Harness::new();
    h.run("rpush list x");
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            ("set foo bar", &[("new", "foo"), ("set", "foo")]),
            ("set foo baz", &[("set", "foo")]),
            ("set foo v ex 10", &[("set", "foo"), ("expire", "foo")]),
            ("set foo v keepttl", &[("set", "foo")]),
            ("set foo v get", &[("set", "foo")]),
            ("set foo v nx", &[]),
            ("set nokey v xx", &[]),
            ("setnx foo v", &[]),
            ("setnx n v", &[("new", "n"), ("set", "n")]),
            (
                "setex e 10 v",
                &[("new", "e"), ("set", "e"), ("expire", "e")],
            ),
            ("psetex e 100 v", &[("set", "e"), ("expire", "e")]),
            ("set e v pxat 1", &[("set", "e"), ("expire", "e")]),
            (
                "mset a 1 b 2",
                &[("new", "a"), ("set", "a"), ("new", "b"), ("set", "b")],
            ),
            ("msetnx a 1 c 3", &[]),
            ("msetnx c 3", &[("new", "c"), ("set", "c")]),
            ("getset a 5", &[("set", "a")]),
            ("append a x", &[("append", "a")]),
            ("append z x", &[("new", "z"), ("append", "z")]),
            ("setrange a 0 \"\"", &[]),
            ("setrange nokey 3 \"\"", &[]),
            ("setrange a 0 y", &[("setrange", "a")]),
            ("setrange sr 2 x", &[("new", "sr"), ("setrange", "sr")]),
            ("incr i", &[("new", "i"), ("incrby", "i")]),
            ("decrby i 2", &[("incrby", "i")]),
            ("incr foo", &[]),
            ("incrbyfloat f 1.5", &[("new", "f"), ("incrbyfloat", "f")]),
            // Replacing a value of another type creates no key.
            ("set list v", &[("set", "list")]),
        ],
    );
}

#[test]
fn getdel_and_getex_events() {
    let mut h = Harness::new();
    h.run("mset a 1 b 2");
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            ("getdel a", &[("del", "a")]),
            ("getdel a", &[]),
            ("getex b", &[]),
            ("getex b persist", &[]),
            ("getex b ex 100", &[("expire", "b")]),
            ("getex b persist", &[("persist", "b")]),
            ("getex b pxat 1", &[("del", "b")]),
            ("getex b ex 100", &[]),
        ],
    );
}

#[test]
fn bit_events() {
    let mut h = Harness::new();
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            ("setbit bits 7 1", &[("new", "bits"), ("setbit", "bits")]),
            ("setbit bits 7 1", &[]),
            ("setbit bits 7 0", &[("setbit", "bits")]),
            // Growing the string is a change even when the bit is 0.
            ("setbit bits 100 0", &[("setbit", "bits")]),
            (
                "bitfield bf set u8 0 255",
                &[("new", "bf"), ("setbit", "bf")],
            ),
            ("bitfield bf set u8 0 255", &[]),
            ("bitfield bf get u8 0", &[]),
            ("bitfield bf incrby u8 0 1", &[("setbit", "bf")]),
            // A write OVERFLOW FAIL refuses changes nothing, but the key
            // is created for it.
            (
                "bitfield bf2 overflow fail incrby u2 0 5",
                &[("new", "bf2")],
            ),
            ("bitop or dest bits bf", &[("new", "dest"), ("set", "dest")]),
            ("bitop or dest bits bf", &[("set", "dest")]),
            ("bitop or dest nokey1 nokey2", &[("del", "dest")]),
            ("bitop or dest nokey1 nokey2", &[]),
        ],
    );
}

#[test]
fn generic_events() {
    let mut h = Harness::new();
    h.run("mset a 1 b 2 c 3 k v k2 v");
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            ("del a b nokey a", &[("del", "a"), ("del", "b")]),
            ("unlink c", &[("del", "c")]),
            ("expire nokey 10", &[]),
            ("expire k 100", &[("expire", "k")]),
            ("expire k 200 nx", &[]),
            ("pexpire k 500000 gt", &[("expire", "k")]),
            ("persist k", &[("persist", "k")]),
            ("persist k", &[]),
            // A deadline already past deletes the key: Redis names it a del.
            ("expire k -1", &[("del", "k")]),
            ("pexpireat k2 1", &[("del", "k2")]),
            ("flushall", &[]),
        ],
    );
}

#[test]
fn rename_and_copy_events() {
    let mut h = Harness::new();
    h.run("mset src 1 other 2");
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            (
                "rename src dst",
                &[("new", "dst"), ("rename_from", "src"), ("rename_to", "dst")],
            ),
            // Redis deletes the destination and adds it again: `new` too.
            (
                "rename dst other",
                &[
                    ("new", "other"),
                    ("rename_from", "dst"),
                    ("rename_to", "other"),
                ],
            ),
            ("rename other other", &[]),
            ("rename nokey x", &[]),
            ("set a 1", &[("new", "a"), ("set", "a")]),
            ("renamenx a other", &[]),
            (
                "renamenx a b",
                &[("new", "b"), ("rename_from", "a"), ("rename_to", "b")],
            ),
            ("copy b c", &[("new", "c"), ("copy_to", "c")]),
            ("copy b c", &[]),
            ("copy b c replace", &[("new", "c"), ("copy_to", "c")]),
            ("copy nokey c replace", &[]),
        ],
    );
}

#[test]
fn lazy_expiry_records_expired() {
    let mut h = Harness::new();
    h.run("set k v px 100");
    h.record_all_events();
    h.advance(200);
    assert_events(&mut h, &[("del k", &[("expired", "k")])]);
    h.run("set k v px 100");
    h.advance(200);
    h.events();
    assert_events(
        &mut h,
        &[("set k w", &[("expired", "k"), ("new", "k"), ("set", "k")])],
    );
}
