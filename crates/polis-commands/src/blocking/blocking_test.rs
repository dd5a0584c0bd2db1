use bytes::Bytes;
use polis_resp::Reply;
use polis_store::{ListValue, Value};

use crate::test_support::*;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn list(harness: &mut Harness, key: &str, items: &[&str]) {
    let list: ListValue = items
        .iter()
        .map(|item| Bytes::from(item.to_string()))
        .collect();
    harness.db.insert(
        Bytes::from(key.to_owned()),
        Value::list(list),
        None,
        harness.now_ms,
    );
}

fn items(harness: &Harness, key: &str) -> Vec<String> {
    harness
        .db
        .get(key.as_bytes(), harness.now_ms)
        .and_then(Value::as_list)
        .map(|list| {
            list.iter()
                .map(|item| String::from_utf8_lossy(item).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn blocking_pops_serve_at_once_from_the_first_nonempty_list_or_answer_null() {
    let mut h = Harness::new();
    list(&mut h, "b", &["1", "2", "3"]);
    h.run("set s x");
    run_table(
        &mut h,
        &[
            ("blpop a b 0", bulks(&["b", "1"])),
            ("brpop a b 1.5", bulks(&["b", "3"])),
            ("blpop a c 0", Reply::NullArray),
            ("blpop s 0", err(WRONGTYPE)),
            // An absent key before a wrong type is passed over.
            ("blpop a s 0", err(WRONGTYPE)),
            (
                "blpop b",
                err("ERR wrong number of arguments for 'blpop' command"),
            ),
            (
                "blpop b x",
                err("ERR timeout is not a float or out of range"),
            ),
            ("blpop b -1", err("ERR timeout is negative")),
            (
                "blpop b inf",
                err("ERR timeout is not a float or out of range"),
            ),
            ("brpop b 0", bulks(&["b", "2"])),
            // The last element took the key with it.
            ("exists b", int(0)),
        ],
    );
}

#[test]
fn blocking_moves_check_both_types_before_moving() {
    let mut h = Harness::new();
    list(&mut h, "src", &["a", "b", "c"]);
    h.run("set s x");
    run_table(
        &mut h,
        &[
            ("blmove src dst left right 0", bulk("a")),
            ("brpoplpush src dst 0", bulk("c")),
            ("blmove src s left left 0", err(WRONGTYPE)),
            ("blmove s dst left left 0", err(WRONGTYPE)),
            ("blmove src dst up left 0", err("ERR syntax error")),
            ("blmove nothing dst left left 0", Reply::Null),
            ("brpoplpush nothing dst 0", Reply::Null),
        ],
    );
    assert_eq!(items(&h, "src"), ["b"]);
    assert_eq!(items(&h, "dst"), ["c", "a"]);
    // A list moved onto itself rotates.
    list(&mut h, "ring", &["1", "2", "3"]);
    h.run("blmove ring ring left right 0");
    assert_eq!(items(&h, "ring"), ["2", "3", "1"]);
}

#[test]
fn blmpop_pops_up_to_count_from_the_first_nonempty_list() {
    let mut h = Harness::new();
    list(&mut h, "b", &["1", "2", "3"]);
    run_table(
        &mut h,
        &[
            (
                "blmpop 0 2 a b left count 2",
                array(vec![bulk("b"), bulks(&["1", "2"])]),
            ),
            (
                "blmpop 0 2 a b right count 10",
                array(vec![bulk("b"), bulks(&["3"])]),
            ),
            ("blmpop 0 2 a b left", Reply::NullArray),
            (
                "blmpop 0 0 a left",
                err("ERR numkeys should be greater than 0"),
            ),
            ("blmpop 0 3 a b left", err("ERR syntax error")),
            ("blmpop 0 1 a middle", err("ERR syntax error")),
            (
                "blmpop 0 1 a left count 0",
                err("ERR count should be greater than 0"),
            ),
            ("blmpop 0 1 a left count 1 count 1", err("ERR syntax error")),
            ("blmpop -1 1 a left", err("ERR timeout is negative")),
        ],
    );
}

#[test]
fn blocking_sorted_set_pops_serve_at_once_or_answer_null() {
    let mut h = Harness::new();
    h.run("zadd z 1 a 2 b 3 c");
    h.run("set s x");
    run_table(
        &mut h,
        &[
            (
                "bzpopmin none z 0",
                array(vec![bulk("z"), bulk("a"), Reply::Double(1.0)]),
            ),
            (
                "bzpopmax z 0.5",
                array(vec![bulk("z"), bulk("c"), Reply::Double(3.0)]),
            ),
            ("bzpopmin none 0", Reply::NullArray),
            ("bzpopmin s 0", err(WRONGTYPE)),
            ("bzpopmin z -1", err("ERR timeout is negative")),
            (
                "bzpopmin z",
                err("ERR wrong number of arguments for 'bzpopmin' command"),
            ),
            (
                "bzmpop 0 2 none z min count 5",
                array(vec![
                    bulk("z"),
                    array(vec![array(vec![bulk("b"), Reply::Double(2.0)])]),
                ]),
            ),
            ("bzmpop 0 1 z max", Reply::NullArray),
        ],
    );
}
