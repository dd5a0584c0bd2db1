use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use polis_resp::Reply;

use crate::command::Protocol;
use crate::test_support::*;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn sorted(reply: Reply) -> Vec<String> {
    let Reply::Array(items) = reply else {
        panic!("not an array: {reply:?}")
    };
    let mut texts: Vec<String> = items
        .into_iter()
        .map(|item| match item {
            Reply::Bulk(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            other => panic!("not a bulk: {other:?}"),
        })
        .collect();
    texts.sort();
    texts
}

#[test]
fn set_get_delete() {
    let mut h = Harness::new();
    h.run("set str v");
    run_table(
        &mut h,
        &[
            ("hset h a 1 b 2", int(2)),
            ("hset h a 10 c 3", int(1)),
            ("hget h a", bulk("10")),
            ("hget h nofield", Reply::Null),
            ("hget nokey a", Reply::Null),
            ("hmset h d 4", ok()),
            (
                "hset h a",
                err("ERR wrong number of arguments for 'hset' command"),
            ),
            (
                "hset h key1 val1 key2",
                err("ERR wrong number of arguments for 'hset' command"),
            ),
            (
                "hmset h key1 val1 key2",
                err("ERR wrong number of arguments for 'hmset' command"),
            ),
            ("hsetnx h a x", int(0)),
            ("hsetnx h e 5", int(1)),
            ("hlen h", int(5)),
            ("hlen nokey", int(0)),
            ("hexists h a", int(1)),
            ("hexists h nofield", int(0)),
            ("hstrlen h a", int(2)),
            ("hstrlen h nofield", int(0)),
            (
                "hmget h a nofield b",
                array(vec![bulk("10"), Reply::Null, bulk("2")]),
            ),
            (
                "hmget doesntexist x y",
                array(vec![Reply::Null, Reply::Null]),
            ),
            ("hdel h nokey", int(0)),
            ("hdel h a a", int(1)),
            ("hdel nokey a", int(0)),
            ("hget str a", err(WRONGTYPE)),
            ("hset str a 1", err(WRONGTYPE)),
            ("hmget str a", err(WRONGTYPE)),
            ("hdel str a", err(WRONGTYPE)),
            ("hgetall str", err(WRONGTYPE)),
            ("hsetnx str a 1", err(WRONGTYPE)),
        ],
    );
}

#[test]
fn deleting_the_last_field_deletes_the_key() {
    let mut h = Harness::new();
    h.run("hmset myhash a 1 b 2 c 3");
    assert_eq!(h.run("hdel myhash x y"), int(0));
    assert_eq!(h.run("hdel myhash a c f"), int(2));
    assert_eq!(
        h.run("hgetall myhash"),
        Reply::Map(vec![(bulk("b"), bulk("2"))])
    );
    assert_eq!(h.run("hdel myhash a b c d e"), int(1));
    assert_eq!(h.run("exists myhash"), int(0));
    assert_eq!(h.db.len(), 0);
}

#[test]
fn getall_keys_vals() {
    let mut h = Harness::new();
    h.run("hset h a 1 b 2 c 3");
    let Reply::Map(pairs) = h.run("hgetall h") else {
        panic!("not a map")
    };
    let mut pairs: Vec<(Reply, Reply)> = pairs;
    pairs.sort_by_key(|pair| format!("{pair:?}"));
    assert_eq!(
        pairs,
        vec![
            (bulk("a"), bulk("1")),
            (bulk("b"), bulk("2")),
            (bulk("c"), bulk("3"))
        ]
    );
    assert_eq!(sorted(h.run("hkeys h")), ["a", "b", "c"]);
    assert_eq!(sorted(h.run("hvals h")), ["1", "2", "3"]);
    assert_eq!(h.run("hgetall nokey"), Reply::Map(vec![]));
    assert_eq!(h.run("hkeys nokey"), array(vec![]));
}

#[test]
fn hincrby() {
    let mut h = Harness::new();
    run_table(
        &mut h,
        &[
            ("hincrby htest foo 2", int(2)),
            ("hincrby htest foo 3", int(5)),
            ("hget htest foo", bulk("5")),
            ("hset htest tmp 17179869184", int(1)),
            ("hincrby htest tmp 17179869184", int(34359738368)),
            ("hset htest str \\s11", int(1)),
            (
                "hincrby htest str 1",
                err("ERR hash value is not an integer"),
            ),
            ("hset htest str 11\\s", int(0)),
            (
                "hincrby htest str 1",
                err("ERR hash value is not an integer"),
            ),
            ("hset hash n -9223372036854775484", int(1)),
            ("hincrby hash n -1", int(-9223372036854775485)),
            (
                "hincrby hash n -10000",
                err("ERR increment or decrement would overflow"),
            ),
            (
                "hincrby hash n abc",
                err("ERR value is not an integer or out of range"),
            ),
        ],
    );
}

#[test]
fn hincrbyfloat() {
    let mut h = Harness::new();
    run_table(
        &mut h,
        &[
            ("hincrbyfloat htest foo 2.5", bulk("2.5")),
            ("hincrbyfloat htest foo 3.5", bulk("6")),
            ("hset htest tmp 17179869184", int(1)),
            ("hincrbyfloat htest tmp 1", bulk("17179869185")),
            ("hset htest str \\s11", int(1)),
            (
                "hincrbyfloat htest str 1",
                err("ERR hash value is not a float"),
            ),
            (
                "hincrbyfloat hfoo field +inf",
                err("ERR value is NaN or Infinity"),
            ),
            ("exists hfoo", int(0)),
            (
                "hincrbyfloat hfoo field abc",
                err("ERR value is not a valid float"),
            ),
            ("hincrbyfloat myhash float 1.23", bulk("1.23")),
            ("hincrbyfloat myhash float 0.77", bulk("2")),
            ("hincrbyfloat myhash float -0.1", bulk("1.9")),
        ],
    );
    h.run_args(&[
        Bytes::from("hset"),
        "h".into(),
        "f".into(),
        Bytes::from_static(b"1\x002"),
    ]);
    assert_error(
        &h.run("hincrbyfloat h f 1"),
        "ERR hash value is not a float",
    );
}

#[test]
fn hscan_small_hash_in_one_call_big_hash_by_cursor() {
    let mut h = Harness::new();
    h.run("hset small a 1 b 2 c 3");
    let reply = h.run("hscan small 0 count 1");
    let Reply::Array(parts) = reply else { panic!() };
    assert_eq!(parts[0], bulk("0"));
    let Reply::Array(items) = &parts[1] else {
        panic!()
    };
    assert_eq!(items.len(), 6);
    for index in 0..300 {
        h.run(&format!("hset big field:{index} {index}"));
    }
    let mut cursor = "0".to_owned();
    let mut fields = HashSet::new();
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(calls < 1000);
        let Reply::Array(parts) = h.run(&format!("hscan big {cursor} match field:1* count 20"))
        else {
            panic!()
        };
        let Reply::Array(items) = &parts[1] else {
            panic!()
        };
        for pair in items.chunks(2) {
            fields.insert(format!("{:?}", pair[0]));
        }
        let Reply::Bulk(next) = &parts[0] else {
            panic!()
        };
        cursor = String::from_utf8_lossy(next).into_owned();
        if cursor == "0" {
            break;
        }
    }
    // field:1, field:10-19, field:100-199
    assert_eq!(fields.len(), 111);
    assert!(calls > 5);
    assert_eq!(
        h.run("hscan nokey 0"),
        array(vec![bulk("0"), array(vec![])])
    );
    assert_error(&h.run("hscan small 0 type string"), "ERR syntax error");
    h.run("set str v");
    assert_error(&h.run("hscan str 0"), WRONGTYPE);
}

#[test]
fn hrandfield_shapes_and_errors() {
    let mut h = Harness::new();
    h.run("hset myhash a 1 b 2 c 3");
    run_table(
        &mut h,
        &[
            ("hrandfield myhash 0", array(vec![])),
            ("hrandfield nonexisting_key 100", array(vec![])),
            ("hrandfield nonexisting_key", Reply::Null),
            ("hrandfield myhash -9223372036854770000 withvalues", err("ERR value is out of range")),
            ("hrandfield myhash -9223372036854775808 withvalues", err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")),
            ("hrandfield myhash -9223372036854775808", err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")),
            ("hrandfield myhash 1 foo", err("ERR syntax error")),
            ("hrandfield myhash x", err("ERR value is not an integer or out of range")),
        ],
    );
    assert_eq!(sorted(h.run("hrandfield myhash 10")), ["a", "b", "c"]);
    assert_eq!(
        sorted(h.run("hrandfield myhash 3 withvalues")),
        ["1", "2", "3", "a", "b", "c"]
    );
    let Reply::Array(repeated) = h.run("hrandfield myhash -1001") else {
        panic!()
    };
    assert_eq!(repeated.len(), 1001);
    let Reply::Array(with_values) = h.run("hrandfield myhash -20 withvalues") else {
        panic!()
    };
    assert_eq!(with_values.len(), 40);
    for pair in with_values.chunks(2) {
        let expected = match &pair[0] {
            Reply::Bulk(field) if field.as_ref() == b"a" => "1",
            Reply::Bulk(field) if field.as_ref() == b"b" => "2",
            _ => "3",
        };
        assert_eq!(pair[1], bulk(expected));
    }
    h.protocol = Protocol::Resp3;
    let Reply::Array(pairs) = h.run("hrandfield myhash 3 withvalues") else {
        panic!()
    };
    assert_eq!(pairs.len(), 3);
    assert!(matches!(&pairs[1], Reply::Array(pair) if pair.len() == 2));
    let Reply::Array(plain) = h.run("hrandfield myhash 3") else {
        panic!()
    };
    assert!(matches!(&plain[1], Reply::Bulk(_)));
}

#[test]
fn hrandfield_picks_distinct_fields_uniformly() {
    let mut h = Harness::new();
    for index in 0..10 {
        h.run(&format!("hset myhash f{index} {index}"));
    }
    for size in [2, 8] {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for _ in 0..1000 {
            let picks = sorted(h.run(&format!("hrandfield myhash {size}")));
            let unique: HashSet<&String> = picks.iter().collect();
            assert_eq!(unique.len(), size, "positive counts pick distinct fields");
            for pick in picks {
                *counts.entry(pick).or_default() += 1;
            }
        }
        assert_eq!(counts.len(), 10);
        let expected = 1000 * size / 10;
        for (field, count) in counts {
            assert!(
                count * 10 > expected * 7 && count * 10 < expected * 13,
                "{field}: {count}"
            );
        }
    }
    let mut seen = HashSet::new();
    for _ in 0..100 {
        if let Reply::Bulk(field) = h.run("hrandfield myhash") {
            seen.insert(field);
        }
    }
    assert_eq!(seen.len(), 10);
}

#[test]
fn big_hash_round_trip() {
    let mut h = Harness::new();
    let mut model = HashMap::new();
    let mut random = crate::random::SplitMix64::new(5);
    for _ in 0..2000 {
        let field = format!("f{}", random.below(700));
        if random.below(3) == 0 {
            let expected = i64::from(model.remove(&field).is_some());
            assert_eq!(h.run(&format!("hdel big {field}")), int(expected));
        } else {
            let value = format!("v{}", random.below(1_000_000));
            let expected = i64::from(model.insert(field.clone(), value.clone()).is_none());
            assert_eq!(h.run(&format!("hset big {field} {value}")), int(expected));
        }
    }
    assert_eq!(h.run("hlen big"), int(model.len() as i64));
    for (field, value) in &model {
        assert_eq!(h.run(&format!("hget big {field}")), bulk(value));
    }
}
