use bytes::Bytes;
use polis_resp::Reply;

use crate::command::Protocol;
use crate::list::{pop_first, End};
use crate::test_support::*;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn push_and_length() {
    let mut h = Harness::new();
    h.run("set str v");
    run_table(
        &mut h,
        &[
            ("lpush l a b", int(2)),
            ("rpush l c", int(3)),
            ("lrange l 0 -1", bulks(&["b", "a", "c"])),
            ("lpushx nokey a", int(0)),
            ("rpushx nokey a", int(0)),
            ("exists nokey", int(0)),
            ("lpushx l x y", int(5)),
            ("rpushx l z", int(6)),
            ("lrange l 0 -1", bulks(&["y", "x", "b", "a", "c", "z"])),
            ("llen l", int(6)),
            ("llen nokey", int(0)),
            ("type l", Reply::Simple("list".to_owned())),
            ("lpush str a", err(WRONGTYPE)),
            ("rpushx str a", err(WRONGTYPE)),
            ("llen str", err(WRONGTYPE)),
            (
                "lpush l",
                err("ERR wrong number of arguments for 'lpush' command"),
            ),
            ("get l", err(WRONGTYPE)),
        ],
    );
}

#[test]
fn pops_with_and_without_count() {
    let mut h = Harness::new();
    h.run("set str v");
    run_table(
        &mut h,
        &[
            ("rpush l a b c d e", int(5)),
            ("lpop l", bulk("a")),
            ("rpop l", bulk("e")),
            ("lpop l 2", bulks(&["b", "c"])),
            ("lpop l 0", array(vec![])),
            ("rpop l 10", bulks(&["d"])),
            ("exists l", int(0)),
            ("lpop l", Reply::Null),
            ("lpop l 2", Reply::NullArray),
            ("lpop l 0", Reply::NullArray),
            ("rpush l a b c", int(3)),
            ("rpop l 2", bulks(&["c", "b"])),
            (
                "lpop l -1",
                err("ERR value is out of range, must be positive"),
            ),
            (
                "lpop l x",
                err("ERR value is out of range, must be positive"),
            ),
            (
                "lpop l 1 2",
                err("ERR wrong number of arguments for 'lpop' command"),
            ),
            ("lpop str", err(WRONGTYPE)),
            ("rpop str 1", err(WRONGTYPE)),
        ],
    );
}

#[test]
fn ranges_and_indexes() {
    let mut h = Harness::new();
    h.run("set str v");
    run_table(
        &mut h,
        &[
            ("rpush l 0 1 2 3 4 5", int(6)),
            ("lrange l 1 -2", bulks(&["1", "2", "3", "4"])),
            ("lrange l -100 1", bulks(&["0", "1"])),
            ("lrange l 4 100", bulks(&["4", "5"])),
            ("lrange l 3 2", array(vec![])),
            ("lrange l 6 10", array(vec![])),
            ("lrange l -1 -3", array(vec![])),
            ("lrange nokey 0 -1", array(vec![])),
            (
                "lrange l a 1",
                err("ERR value is not an integer or out of range"),
            ),
            ("lrange str 0 -1", err(WRONGTYPE)),
            ("lindex l 0", bulk("0")),
            ("lindex l -1", bulk("5")),
            ("lindex l 6", Reply::Null),
            ("lindex l -7", Reply::Null),
            ("lindex nokey 0", Reply::Null),
            ("lindex nokey x", Reply::Null),
            (
                "lindex l x",
                err("ERR value is not an integer or out of range"),
            ),
            ("lindex str 0", err(WRONGTYPE)),
        ],
    );
}

#[test]
fn edits_inside_a_list() {
    let mut h = Harness::new();
    h.run("set str v");
    run_table(
        &mut h,
        &[
            ("rpush l a b c", int(3)),
            ("lset l 1 B", ok()),
            ("lset l -1 C", ok()),
            ("lset l 3 x", err("ERR index out of range")),
            ("lset nokey 0 x", err("ERR no such key")),
            ("lset nokey x x", err("ERR no such key")),
            ("lset str 0 x", err(WRONGTYPE)),
            (
                "lset l x x",
                err("ERR value is not an integer or out of range"),
            ),
            ("lrange l 0 -1", bulks(&["a", "B", "C"])),
            ("linsert l before B x", int(4)),
            ("linsert l after C y", int(5)),
            ("linsert l after nopivot z", int(-1)),
            ("linsert nokey after a z", int(0)),
            ("linsert l middle a z", err("ERR syntax error")),
            ("linsert str before a z", err(WRONGTYPE)),
            ("lrange l 0 -1", bulks(&["a", "x", "B", "C", "y"])),
            ("del l", int(1)),
            ("rpush l a b a c a b a", int(7)),
            ("lrem l 2 a", int(2)),
            ("lrange l 0 -1", bulks(&["b", "c", "a", "b", "a"])),
            ("lrem l -1 b", int(1)),
            ("lrange l 0 -1", bulks(&["b", "c", "a", "a"])),
            ("lrem l 0 a", int(2)),
            ("lrem l 0 nothing", int(0)),
            ("lrem nokey 0 a", int(0)),
            ("lrem str 0 a", err(WRONGTYPE)),
            ("lrem l 0 b", int(1)),
            ("lrem l 0 c", int(1)),
            ("exists l", int(0)),
            ("rpush l 1 2 3 4 5", int(5)),
            ("ltrim l 1 -2", ok()),
            ("lrange l 0 -1", bulks(&["2", "3", "4"])),
            ("ltrim l -100 100", ok()),
            ("llen l", int(3)),
            ("ltrim l 2 1", ok()),
            ("exists l", int(0)),
            ("ltrim nokey 0 1", ok()),
            ("ltrim str 0 1", err(WRONGTYPE)),
            (
                "ltrim l x 1",
                err("ERR value is not an integer or out of range"),
            ),
        ],
    );
}

#[test]
fn lpos_options() {
    let mut h = Harness::new();
    h.run("set str v");
    run_table(
        &mut h,
        &[
            ("rpush l a b c 1 2 3 c c", int(8)),
            ("lpos l c", int(2)),
            ("lpos l x", Reply::Null),
            ("lpos l c rank 2", int(6)),
            ("lpos l c rank -1", int(7)),
            ("lpos l c rank -3", int(2)),
            ("lpos l c count 0", array(vec![int(2), int(6), int(7)])),
            ("lpos l c count 2", array(vec![int(2), int(6)])),
            ("lpos l c count 0 rank -1", array(vec![int(7), int(6), int(2)])),
            ("lpos l c count 0 maxlen 7", array(vec![int(2), int(6)])),
            ("lpos l c rank -1 maxlen 1", int(7)),
            ("lpos l c rank 4", Reply::Null),
            ("lpos l x count 0", array(vec![])),
            ("lpos nokey c", Reply::Null),
            ("lpos nokey c count 1", array(vec![])),
            ("lpos str c", err(WRONGTYPE)),
            (
                "lpos l c rank 0",
                err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"),
            ),
            ("lpos l c count -1", err("ERR COUNT can't be negative")),
            ("lpos l c maxlen -1", err("ERR MAXLEN can't be negative")),
            ("lpos l c count", err("ERR syntax error")),
            ("lpos l c foo 1", err("ERR syntax error")),
        ],
    );
}

#[test]
fn moves_between_lists() {
    let mut h = Harness::new();
    h.run("set str v");
    run_table(
        &mut h,
        &[
            ("rpush src a b c", int(3)),
            ("lmove src dst left right", bulk("a")),
            ("lmove src dst right left", bulk("c")),
            ("lrange dst 0 -1", bulks(&["c", "a"])),
            ("rpoplpush src dst", bulk("b")),
            ("exists src", int(0)),
            ("lrange dst 0 -1", bulks(&["b", "c", "a"])),
            ("lmove dst dst left right", bulk("b")),
            ("lrange dst 0 -1", bulks(&["c", "a", "b"])),
            ("lmove nokey dst left left", Reply::Null),
            ("lmove dst str left left", err(WRONGTYPE)),
            ("lmove str dst left left", err(WRONGTYPE)),
            ("lmove dst dst up left", err("ERR syntax error")),
            ("lrange dst 0 -1", bulks(&["c", "a", "b"])),
        ],
    );
    // A one-element list rotated onto itself keeps its TTL.
    h.run("rpush one x");
    h.run("expire one 100");
    assert_eq!(h.run("lmove one one left right"), bulk("x"));
    assert_eq!(h.run("ttl one"), int(100));
}

#[test]
fn lmpop_takes_from_the_first_nonempty_list() {
    let mut h = Harness::new();
    h.run("set str v");
    run_table(
        &mut h,
        &[
            ("rpush b 1 2 3", int(3)),
            ("lmpop 2 a b left", array(vec![bulk("b"), bulks(&["1"])])),
            (
                "lmpop 2 a b right count 5",
                array(vec![bulk("b"), bulks(&["3", "2"])]),
            ),
            ("lmpop 2 a b left", Reply::NullArray),
            ("lmpop 2 str b left", err(WRONGTYPE)),
            (
                "lmpop 0 a left",
                err("ERR numkeys should be greater than 0"),
            ),
            (
                "lmpop x a left",
                err("ERR numkeys should be greater than 0"),
            ),
            ("lmpop 2 a left", err("ERR syntax error")),
            ("lmpop 1 a up", err("ERR syntax error")),
            (
                "lmpop 1 a left count 0",
                err("ERR count should be greater than 0"),
            ),
            ("lmpop 1 a left count 1 count 1", err("ERR syntax error")),
            ("lmpop 1 a left count", err("ERR syntax error")),
        ],
    );
}

#[test]
fn pop_first_serves_blocking_pops() {
    let mut h = Harness::new();
    h.run("rpush b x y");
    let keys = [Bytes::from("a"), Bytes::from("b")];
    let popped = pop_first(&mut h.db, &keys, End::Right, 5, h.now_ms);
    assert_eq!(
        popped,
        Ok(Some((
            Bytes::from("b"),
            vec![Bytes::from("y"), Bytes::from("x")]
        )))
    );
    assert_eq!(
        pop_first(&mut h.db, &keys, End::Left, 1, h.now_ms),
        Ok(None)
    );
}

#[test]
fn replies_keep_their_shape_in_resp3() {
    let mut h = Harness::new();
    h.protocol = Protocol::Resp3;
    h.run("rpush l a");
    assert_eq!(h.run("lpos l x"), Reply::Null);
    assert_eq!(h.run("lindex l 5"), Reply::Null);
}
