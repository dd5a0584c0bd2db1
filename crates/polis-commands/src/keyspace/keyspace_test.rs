use std::collections::HashSet;

use bytes::Bytes;
use polis_resp::Reply;

use crate::test_support::*;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn del_exists_type_touch() {
    let mut h = Harness::new();
    h.run("hset h f v");
    run_table(
        &mut h,
        &[
            ("set foo1{t} a", ok()),
            ("set foo2{t} b", ok()),
            ("set foo3{t} c", ok()),
            ("exists foo1{t} foo1{t} nokey", int(2)),
            ("touch foo1{t} foo2{t} nokey", int(2)),
            ("del foo1{t} foo2{t} foo3{t} foo4{t}", int(3)),
            ("unlink foo1{t}", int(0)),
            ("type h", Reply::Simple("hash".into())),
            ("type nokey", Reply::Simple("none".into())),
            ("set s v", ok()),
            ("type s", Reply::Simple("string".into())),
            ("dbsize", int(2)),
            ("flushall", ok()),
            ("dbsize", int(0)),
            ("flushdb async", ok()),
            ("flushall sync", ok()),
            ("flushall lazy", err("ERR syntax error")),
        ],
    );
}

#[test]
fn del_against_expired_key_returns_zero() {
    let mut h = Harness::new();
    h.run("setex keyExpire 1 valExpire");
    h.advance(1_100);
    assert_eq!(h.run("del keyExpire"), int(0));
    assert_eq!(h.db.stats().expired_keys, 1);
}

#[test]
fn expire_family_with_conditions() {
    let mut h = Harness::new();
    run_table(
        &mut h,
        &[
            ("set x foobar", ok()),
            ("expire x 5", int(1)),
            ("ttl x", int(5)),
            ("expire x 10", int(1)),
            ("ttl x", int(10)),
            ("persist x", int(1)),
            ("persist x", int(0)),
            ("persist nokeyatall", int(0)),
            ("ttl x", int(-1)),
            ("ttl nokey", int(-2)),
            ("pttl nokey", int(-2)),
            ("expiretime nokey", int(-2)),
            ("pexpiretime x", int(-1)),
            ("SET foo bar EX 100", ok()),
            ("EXPIRE foo 200 NX", int(0)),
            ("SET foo bar", ok()),
            ("EXPIRE foo 200 NX", int(1)),
            ("EXPIRE foo 100 XX", int(1)),
            ("SET foo bar", ok()),
            ("EXPIRE foo 200 XX", int(0)),
            ("SET foo bar EX 100", ok()),
            ("EXPIRE foo 200 GT", int(1)),
            ("EXPIRE foo 100 GT", int(0)),
            ("SET foo bar", ok()),
            ("EXPIRE foo 200 GT", int(0)),
            ("SET foo bar EX 100", ok()),
            ("EXPIRE foo 200 LT", int(0)),
            ("EXPIRE foo 50 LT", int(1)),
            ("SET foo bar", ok()),
            ("EXPIRE foo 100 LT", int(1)),
            ("SET foo bar", ok()),
            ("EXPIRE foo 200 LT XX", int(0)),
            (
                "EXPIRE foo 200 LT GT",
                err("ERR GT and LT options at the same time are not compatible"),
            ),
            (
                "EXPIRE foo 200 NX GT",
                err("ERR NX and XX, GT or LT options at the same time are not compatible"),
            ),
            (
                "EXPIRE foo 200 NX XX",
                err("ERR NX and XX, GT or LT options at the same time are not compatible"),
            ),
            ("EXPIRE foo 200 AB", err("ERR Unsupported option AB")),
            ("EXPIRE foo 200 XX AB", err("ERR Unsupported option AB")),
            ("SET foo bar EX 100", ok()),
            ("EXPIRE foo -10 LT", int(1)),
            ("TTL foo", int(-2)),
            ("SET foo bar", ok()),
            ("EXPIRE foo -10 LT", int(1)),
            ("TTL foo", int(-2)),
            ("EXPIRE none 100 NX", int(0)),
            ("EXPIRE none 100 XX", int(0)),
            ("EXPIRE none 100 GT", int(0)),
            ("EXPIRE none 100 LT", int(0)),
            ("set foo bar", ok()),
            (
                "expire foo \"\"",
                err("ERR value is not an integer or out of range"),
            ),
            (
                "EXPIRE foo 9223370399119966",
                err("ERR invalid expire time in 'expire' command"),
            ),
            (
                "EXPIRE foo 9223372036854776",
                err("ERR invalid expire time in 'expire' command"),
            ),
            (
                "EXPIRE foo 10000000000000000",
                err("ERR invalid expire time in 'expire' command"),
            ),
            (
                "EXPIRE foo 18446744073709561",
                err("ERR invalid expire time in 'expire' command"),
            ),
            (
                "EXPIRE foo -9223372036854776",
                err("ERR invalid expire time in 'expire' command"),
            ),
            (
                "EXPIRE foo -9999999999999999",
                err("ERR invalid expire time in 'expire' command"),
            ),
            ("ttl foo", int(-1)),
            (
                "PEXPIRE foo 9223372036854770000",
                err("ERR invalid expire time in 'pexpire' command"),
            ),
            ("PEXPIREAT foo 9223372036854770000", int(1)),
            ("PEXPIRETIME foo", int(9223372036854770000)),
            ("set foo bar", ok()),
            ("PEXPIREAT foo -9223372036854770000", int(1)),
            ("ttl foo", int(-2)),
        ],
    );
}

#[test]
fn expire_variants_compute_absolute_deadlines() {
    let mut h = Harness::new();
    let now = h.now_ms;
    h.run("mset a 1 b 1 c 1 d 1");
    assert_eq!(h.run("expire a 100"), int(1));
    assert_eq!(h.run("pexpire b 100000"), int(1));
    assert_eq!(h.run(&format!("expireat c {}", now / 1000 + 100)), int(1));
    assert_eq!(h.run(&format!("pexpireat d {}", now + 100_000)), int(1));
    for key in ["a", "b", "d"] {
        assert_eq!(
            h.run(&format!("pexpiretime {key}")),
            int((now + 100_000) as i64)
        );
    }
    assert_eq!(h.run("expiretime c"), int((now / 1000 + 100) as i64));
    // An EXPIREAT in the past deletes at once, without counting an expiry.
    assert_eq!(h.run(&format!("expireat a {}", now / 1000 - 100)), int(1));
    assert_eq!(h.run("exists a"), int(0));
    assert_eq!(h.db.stats().expired_keys, 0);
}

#[test]
fn ttl_rounds_like_redis() {
    let mut h = Harness::new();
    h.run("psetex k 1499 v");
    assert_eq!(h.run("ttl k"), int(1));
    h.run("psetex k 1500 v");
    assert_eq!(h.run("ttl k"), int(2));
    h.advance(1_499);
    assert_eq!(h.run("pttl k"), int(1));
    h.advance(1);
    assert_eq!(h.run("pttl k"), int(-2));
    assert_eq!(h.run("get k"), Reply::Null);
}

#[test]
fn expire_does_not_resurrect_expired_keys() {
    let mut h = Harness::new();
    h.run("set foo bar");
    h.run("pexpire foo 500");
    h.advance(1_000);
    assert_eq!(h.run("expire foo 10"), int(0));
    assert_eq!(h.run("exists foo"), int(0));
}

#[test]
fn rename_and_renamenx() {
    let mut h = Harness::new();
    run_table(
        &mut h,
        &[
            ("set mykey{t} hello", ok()),
            ("rename mykey{t} mykey1{t}", ok()),
            ("rename mykey1{t} mykey2{t}", ok()),
            ("get mykey2{t}", bulk("hello")),
            ("exists mykey{t}", int(0)),
            ("set mykey{t} a", ok()),
            ("rename mykey2{t} mykey{t}", ok()),
            ("get mykey{t}", bulk("hello")),
            ("set mykey2{t} bar", ok()),
            ("renamenx mykey{t} mykey2{t}", int(0)),
            ("renamenx mykey{t} mykey3{t}", int(1)),
            ("rename nokey{t} foobar{t}", err("ERR no such key")),
            ("renamenx nokey{t} foobar{t}", err("ERR no such key")),
            ("set same foo", ok()),
            ("rename same same", ok()),
            ("renamenx same same", int(0)),
            ("del same", int(1)),
            ("rename same same", err("ERR no such key")),
        ],
    );
}

#[test]
fn rename_moves_the_deadline_and_drops_the_targets() {
    let mut h = Harness::new();
    h.run("set a foo");
    h.run("expire a 100");
    h.run("rename a b");
    assert_eq!(h.run("ttl b"), int(100));
    h.run("set c foo");
    h.run("set d bar");
    h.run("expire d 100");
    h.run("rename c d");
    assert_eq!(h.run("ttl d"), int(-1));
    assert_eq!(h.db.expires_len(), 1);
}

#[test]
fn copy_command() {
    let mut h = Harness::new();
    run_table(
        &mut h,
        &[
            ("set mykey{t} foobar", ok()),
            ("copy mykey{t} mynewkey{t}", int(1)),
            ("get mynewkey{t}", bulk("foobar")),
            ("dbsize", int(2)),
            ("copy mykey{t} mynewkey{t}", int(0)),
            ("set mykey{t} other ex 100", ok()),
            ("copy mykey{t} mynewkey{t} replace", int(1)),
            ("get mynewkey{t}", bulk("other")),
            ("ttl mynewkey{t}", int(100)),
            ("copy mykey{t} mynewkey{t} db 0 replace", int(1)),
            (
                "copy mykey{t} mynewkey{t} DB notanumber",
                err("ERR value is not an integer or out of range"),
            ),
            (
                "copy mykey{t} mynewkey{t} db 10",
                err("ERR DB index is out of range"),
            ),
            ("copy mykey{t} mynewkey{t} foo", err("ERR syntax error")),
            (
                "copy mykey{t} mykey{t}",
                err("ERR source and destination objects are the same"),
            ),
            ("copy nokey{t} x{t}", int(0)),
            ("hset hash1{t} tmp 17179869184", int(1)),
            ("copy hash1{t} newhash1{t}", int(1)),
            ("hset newhash1{t} tmp 1", int(0)),
            ("hget hash1{t} tmp", bulk("17179869184")),
        ],
    );
}

#[test]
fn keys_with_patterns() {
    let mut h = Harness::new();
    for key in ["key_x", "key_y", "key_z", "foo_a", "foo_b", "foo_c"] {
        h.run(&format!("set {key} hello"));
    }
    let sorted = |reply: Reply| -> Vec<Reply> {
        let Reply::Array(mut items) = reply else {
            panic!("not an array")
        };
        items.sort_by_key(|item| format!("{item:?}"));
        items
    };
    assert_eq!(
        sorted(h.run("keys foo*")),
        sorted(bulks(&["foo_a", "foo_b", "foo_c"]))
    );
    assert_eq!(sorted(h.run("keys *")).len(), 6);
    assert_eq!(sorted(h.run("keys key_[xy]")).len(), 2);
    assert_eq!(h.run("keys nomatch*"), array(vec![]));
    h.run("flushdb");
    h.run("SET aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 1");
    assert_eq!(
        h.run("KEYS a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b"),
        array(vec![])
    );
    // The empty key matches a lone `*`, as in Redis.
    h.run_args(&[Bytes::from("set"), Bytes::new(), Bytes::from("v")]);
    assert_eq!(sorted(h.run("keys *")).len(), 2);
}

#[test]
fn keys_hides_expired_keys() {
    let mut h = Harness::new();
    h.run("set a c");
    h.run("pexpire a 5");
    h.run("set t c");
    h.advance(5);
    assert_eq!(h.run("keys *"), bulks(&["t"]));
}

/// Runs a full SCAN with `options`, returning every key seen (with
/// repeats) and the number of calls.
fn full_scan(h: &mut Harness, options: &str) -> (Vec<Bytes>, usize) {
    let mut cursor = "0".to_owned();
    let mut keys = Vec::new();
    for calls in 1..100_000 {
        let reply = h.run(&format!("scan {cursor} {options}"));
        let Reply::Array(parts) = reply else {
            panic!("bad reply {reply:?}")
        };
        let [Reply::Bulk(next), Reply::Array(page)] = &parts[..] else {
            panic!("bad reply")
        };
        for key in page {
            let Reply::Bulk(key) = key else {
                panic!("bad key")
            };
            keys.push(key.clone());
        }
        cursor = String::from_utf8_lossy(next).into_owned();
        if cursor == "0" {
            return (keys, calls);
        }
    }
    panic!("scan never finished");
}

#[test]
fn scan_visits_every_key_with_filters() {
    let mut h = Harness::new();
    for index in 0..1000 {
        h.run(&format!("set key:{index} v"));
    }
    for index in 0..10 {
        h.run(&format!("hset hash:{index} f v"));
    }
    let (keys, calls) = full_scan(&mut h, "count 100");
    let unique: HashSet<Bytes> = keys.iter().cloned().collect();
    assert_eq!(unique.len(), 1010);
    assert!(
        calls >= 10,
        "COUNT bounds the keys per call ({calls} calls)"
    );
    let (hashes, _) = full_scan(&mut h, "type hash");
    assert_eq!(hashes.len(), 10);
    let (matched, _) = full_scan(&mut h, "match key:1?? count 1000");
    assert_eq!(matched.len(), 100);
    run_table(
        &mut h,
        &[
            ("scan abc", err("ERR invalid cursor")),
            ("scan -1", err("ERR invalid cursor")),
            ("scan 0 count 0", err("ERR syntax error")),
            (
                "scan 0 count abc",
                err("ERR value is not an integer or out of range"),
            ),
            ("scan 0 match", err("ERR syntax error")),
            ("scan 0 foo bar", err("ERR syntax error")),
        ],
    );
}

#[test]
fn scan_returns_keys_present_throughout_despite_churn() {
    let mut h = Harness::new();
    for index in 0..300 {
        h.run(&format!("set stable:{index} v"));
    }
    let mut cursor = "0".to_owned();
    let mut seen = HashSet::new();
    for round in 0..10_000 {
        let reply = h.run(&format!("scan {cursor} count 7"));
        let Reply::Array(parts) = reply else { panic!() };
        let [Reply::Bulk(next), Reply::Array(page)] = &parts[..] else {
            panic!()
        };
        for key in page {
            if let Reply::Bulk(key) = key {
                seen.insert(key.clone());
            }
        }
        // Churn between calls.
        h.run(&format!("set churn:{round} v"));
        h.run(&format!("del churn:{}", round / 2));
        cursor = String::from_utf8_lossy(next).into_owned();
        if cursor == "0" {
            break;
        }
    }
    for index in 0..300 {
        assert!(
            seen.contains(format!("stable:{index}").as_bytes()),
            "missed stable:{index}"
        );
    }
}

#[test]
fn randomkey_sees_every_key_and_nothing_when_empty() {
    let mut h = Harness::new();
    assert_eq!(h.run("randomkey"), Reply::Null);
    h.run("set x 10");
    h.run("del x");
    assert_eq!(h.run("randomkey"), Reply::Null);
    h.run("set foo x");
    h.run("set bar y");
    let mut seen = HashSet::new();
    for _ in 0..100 {
        if let Reply::Bulk(key) = h.run("randomkey") {
            seen.insert(key);
        }
    }
    assert_eq!(seen.len(), 2);
}

#[test]
fn object_and_memory_usage() {
    let mut h = Harness::new();
    let long = "x".repeat(50);
    h.run("set int 1234");
    h.run("set short hello");
    h.run(&format!("set long {long}"));
    h.run("hset small a 1");
    h.run(&format!("hset big f {}", "y".repeat(65)));
    run_table(
        &mut h,
        &[
            ("object encoding int", bulk("int")),
            ("object encoding short", bulk("embstr")),
            ("object encoding long", bulk("raw")),
            ("object encoding small", bulk("listpack")),
            ("object encoding big", bulk("hashtable")),
            ("object encoding nokey", Reply::Null),
            ("object refcount int", int(1)),
            ("object idletime int", int(0)),
            (
                "object foo int",
                err("ERR unknown subcommand 'foo'. Try OBJECT HELP."),
            ),
            ("memory usage nokey", Reply::Null),
            (
                "memory usage int samples x",
                err("ERR value is not an integer or out of range"),
            ),
        ],
    );
    assert!(matches!(h.run("object help"), Reply::Array(lines) if lines.len() > 3));
    assert!(matches!(h.run("memory usage big"), Reply::Integer(bytes) if bytes > 65));
    assert!(h.run("object freq int").is_error());
}

#[test]
fn object_idletime_and_freq_follow_the_policy() {
    let mut h = Harness::new();
    h.run("set k v");
    h.run("set other v");
    h.advance(7_500);
    // Looking (OBJECT, TYPE, TTL, EXISTS) is no use of the key.
    h.run("type k");
    h.run("ttl k");
    h.run("exists k");
    assert_eq!(h.run("object idletime k"), int(7));
    // A read is; so is TOUCH.
    h.run("get k");
    h.run("touch other");
    h.advance(2_000);
    assert_eq!(h.run("object idletime k"), int(2));
    assert_eq!(h.run("object idletime other"), int(2));
    let refused = |reply: Reply, start: &str| {
        assert!(
            matches!(&reply, Reply::Error(error) if error.render().starts_with(start)),
            "{reply:?}"
        );
    };
    refused(
        h.run("object freq k"),
        "ERR An LFU maxmemory policy is not selected, access frequency not tracked.",
    );
    // Under an LFU policy the word is a counter: 5 for a new key, one
    // more per hit with lfu-log-factor 0.
    h.db.set_tracking(polis_store::Tracking::Lfu {
        log_factor: 0,
        decay_minutes: 1,
    });
    h.run("set fresh v");
    assert_eq!(h.run("object freq fresh"), int(5));
    h.run("get fresh");
    h.run("get fresh");
    assert_eq!(h.run("object freq fresh"), int(7));
    refused(
        h.run("object idletime fresh"),
        "ERR An LFU maxmemory policy is selected, idle time not tracked.",
    );
    assert_eq!(h.run("object freq nokey"), Reply::Null);
}

#[test]
fn wrong_type_errors_on_generic_commands_do_not_apply() {
    // Generic commands work on any type.
    let mut h = Harness::new();
    h.run("hset h f v");
    assert_eq!(h.run("expire h 10"), int(1));
    assert_eq!(h.run("ttl h"), int(10));
    assert_eq!(h.run("rename h h2"), ok());
    assert_eq!(h.run("type h2"), Reply::Simple("hash".into()));
    assert_error(&h.run("get h2"), WRONGTYPE);
}

#[test]
fn same_writes_give_identical_snapshots() {
    let script = [
        "set a 1",
        "set b 2 ex 100",
        "hset h f1 v1 f2 v2",
        "incr a",
        "append b x",
        "expire a 50",
        "hdel h f1",
        "rename b c",
        "setrange c 10 z",
        "hincrbyfloat h n 1.5",
        "del missing",
        "getex c px 1234",
        "copy c d",
        "persist d",
        "msetnx e 1 f 2",
    ];
    let mut left = Harness::new();
    let mut right = Harness::new();
    for line in script {
        assert_eq!(left.run(line), right.run(line), "{line}");
        left.advance(7);
        right.advance(7);
    }
    assert_eq!(left.db.to_snapshot(), right.db.to_snapshot());
    let restored = polis_store::Db::from_snapshot(&left.db.to_snapshot()).expect("decodes");
    assert_eq!(restored.to_snapshot(), left.db.to_snapshot());
}
