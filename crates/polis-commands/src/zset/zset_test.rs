use bytes::Bytes;
use polis_resp::Reply;
use polis_store::{SetValue, Value};

use crate::command::Protocol;
use crate::test_support::*;
use crate::zset::BlockingPop;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn double(value: f64) -> Reply {
    Reply::Double(value)
}

/// Members and scores, flat, as RESP2 WITHSCORES replies.
fn scored(items: &[(&str, f64)]) -> Reply {
    array(
        items
            .iter()
            .flat_map(|(member, score)| [bulk(member), double(*score)])
            .collect(),
    )
}

#[test]
fn zadd_options_and_errors() {
    let mut h = Harness::new();
    h.run("set str v");
    run_table(
        &mut h,
        &[
            ("zadd z 1 a 2 b", int(2)),
            ("zadd z 3 a 2 b", int(0)),
            ("zscore z a", double(3.0)),
            ("zadd z ch 4 a 2 b 5 c", int(2)),
            ("zadd z nx 10 a 6 d", int(1)),
            ("zscore z a", double(4.0)),
            ("zadd z xx 10 a 7 e", int(0)),
            ("zscore z a", double(10.0)),
            ("zscore z e", Reply::Null),
            ("zadd z gt ch 5 a 11 b", int(1)),
            ("zadd z lt ch 5 a 20 b", int(1)),
            ("zscore z a", double(5.0)),
            ("zscore z b", double(11.0)),
            ("zadd z incr 1.5 a", double(6.5)),
            ("zadd z nx incr 1 a", Reply::Null),
            ("zadd z gt incr -1 a", Reply::Null),
            ("zadd nokey xx 1 a", int(0)),
            ("exists nokey", int(0)),
            ("zadd nokey xx incr 1 a", Reply::Null),
            (
                "zadd z xx nx 1 a",
                err("ERR XX and NX options at the same time are not compatible"),
            ),
            (
                "zadd z gt nx 1 a",
                err("ERR GT, LT, and/or NX options at the same time are not compatible"),
            ),
            (
                "zadd z lt gt 1 a",
                err("ERR GT, LT, and/or NX options at the same time are not compatible"),
            ),
            (
                "zadd z incr 1 a 2 b",
                err("ERR INCR option supports a single increment-element pair"),
            ),
            ("zadd z 1 a 2", err("ERR syntax error")),
            (
                "zadd z nx",
                err("ERR wrong number of arguments for 'zadd' command"),
            ),
            ("zadd z nx ch", err("ERR syntax error")),
            ("zadd z nan a", err("ERR value is not a valid float")),
            ("zadd z 1 a 2x b", err("ERR value is not a valid float")),
            ("zadd str 1 a", err(WRONGTYPE)),
            ("zadd inf +inf a", int(1)),
            (
                "zincrby inf -inf a",
                err("ERR resulting score is not a number (NaN)"),
            ),
            ("zincrby inf 1 a", double(f64::INFINITY)),
            ("zincrby z 2 new", double(2.0)),
            (
                "zincrby z 1 a 2",
                err("ERR wrong number of arguments for 'zincrby' command"),
            ),
            ("zincrby z x a", err("ERR value is not a valid float")),
            ("zincrby str 1 a", err(WRONGTYPE)),
        ],
    );
}

#[test]
fn zrem_card_rank_count() {
    let mut h = Harness::new();
    h.run("set str v");
    h.run("zadd z 1 a 2 b 3 c 4 d");
    run_table(
        &mut h,
        &[
            ("zcard z", int(4)),
            ("zcard nokey", int(0)),
            ("zrank z a", int(0)),
            ("zrank z d", int(3)),
            ("zrevrank z a", int(3)),
            ("zrank z x", Reply::Null),
            ("zrank nokey a", Reply::Null),
            ("zcount z 2 3", int(2)),
            ("zcount z (2 +inf", int(2)),
            ("zcount z -inf (1", int(0)),
            ("zcount z x 1", err("ERR min or max is not a float")),
            (
                "zmscore z a x d",
                array(vec![double(1.0), Reply::Null, double(4.0)]),
            ),
            ("zmscore nokey a", array(vec![Reply::Null])),
            (
                "zmscore z",
                err("ERR wrong number of arguments for 'zmscore' command"),
            ),
            ("zrem z a x", int(1)),
            ("zrem nokey a", int(0)),
            ("zrem z b c d", int(3)),
            ("exists z", int(0)),
            ("zcard str", err(WRONGTYPE)),
            ("zrank str a", err(WRONGTYPE)),
            ("zrem str a", err(WRONGTYPE)),
        ],
    );
}

#[test]
fn ranges_by_rank_score_and_lex() {
    let mut h = Harness::new();
    h.run("zadd z 1 a 2 b 3 c 4 d");
    h.run("zadd lex 0 alpha 0 bar 0 cool 0 down 0 elephant");
    run_table(
        &mut h,
        &[
            ("zrange z 0 -1", bulks(&["a", "b", "c", "d"])),
            ("zrange z 1 2 withscores", scored(&[("b", 2.0), ("c", 3.0)])),
            ("zrange z -2 100", bulks(&["c", "d"])),
            ("zrange z 3 1", bulks(&[])),
            ("zrevrange z 0 1", bulks(&["d", "c"])),
            ("zrange z 0 -1 rev", bulks(&["d", "c", "b", "a"])),
            ("zrange z (1 3 byscore", bulks(&["b", "c"])),
            ("zrange z 3 (1 byscore rev", bulks(&["c", "b"])),
            ("zrange z -inf +inf byscore limit 1 2", bulks(&["b", "c"])),
            ("zrange z -inf +inf byscore limit -1 2", bulks(&[])),
            ("zrange z -inf +inf byscore limit 1 -1", bulks(&["b", "c", "d"])),
            ("zrangebyscore z 2 +inf withscores limit 0 1", scored(&[("b", 2.0)])),
            ("zrevrangebyscore z +inf 3", bulks(&["d", "c"])),
            ("zrangebyscore z 1 2 rev", err("ERR syntax error")),
            ("zrange z 0 1 limit 0 1", err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")),
            ("zrange lex - + bylex withscores", err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")),
            ("zrange z a 1", err("ERR value is not an integer or out of range")),
            ("zrangebyscore z a 1", err("ERR min or max is not a float")),
            ("zrangebylex lex - +", bulks(&["alpha", "bar", "cool", "down", "elephant"])),
            ("zrangebylex lex [bar (down", bulks(&["bar", "cool"])),
            ("zrangebylex lex (bar + limit 1 1", bulks(&["down"])),
            ("zrevrangebylex lex [d -", bulks(&["cool", "bar", "alpha"])),
            ("zrange lex (down [a bylex rev", bulks(&["cool", "bar", "alpha"])),
            ("zrangebylex lex + -", bulks(&[])),
            ("zrangebylex lex a b", err("ERR min or max not valid string range item")),
            ("zlexcount lex [b [d", int(2)),
            ("zlexcount lex - +", int(5)),
            ("zrange nokey 0 -1", bulks(&[])),
        ],
    );
    h.protocol = Protocol::Resp3;
    assert_eq!(
        h.run("zrange z 0 0 withscores"),
        array(vec![array(vec![bulk("a"), double(1.0)])])
    );
}

#[test]
fn lex_ranges_over_mixed_scores_walk_in_score_order() {
    let mut h = Harness::new();
    h.run("zadd z 1 b 2 a 3 c");
    assert_eq!(h.run("zrangebylex z - +"), bulks(&["b", "a", "c"]));
    assert_eq!(h.run("zrangebylex z [b +"), bulks(&["b", "a", "c"]));
}

#[test]
fn store_and_remove_ranges() {
    let mut h = Harness::new();
    h.run("set str v");
    h.run("zadd z 1 a 2 b 3 c 4 d 5 e");
    run_table(
        &mut h,
        &[
            ("zrangestore dst z 1 2", int(2)),
            (
                "zrange dst 0 -1 withscores",
                scored(&[("b", 2.0), ("c", 3.0)]),
            ),
            ("zrangestore dst z 10 20", int(0)),
            ("exists dst", int(0)),
            ("zrangestore str z 0 0", int(1)),
            ("type str", Reply::Simple("zset".to_owned())),
            ("zrangestore dst z 0 -1 withscores", err("ERR syntax error")),
            ("zrangestore dst nokey 0 -1", int(0)),
            ("zremrangebyrank z 0 0", int(1)),
            ("zremrangebyscore z (2 3", int(1)),
            ("zremrangebylex z - +", int(3)),
            ("exists z", int(0)),
            ("zremrangebyrank z 0 -1", int(0)),
            (
                "zremrangebyrank z a 1",
                err("ERR value is not an integer or out of range"),
            ),
            (
                "zremrangebyscore z 1 x",
                err("ERR min or max is not a float"),
            ),
        ],
    );
}

#[test]
fn pops_reply_in_each_shape() {
    let mut h = Harness::new();
    h.run("set str v");
    h.run("zadd z 1 a 2 b 3 c 4 d");
    run_table(
        &mut h,
        &[
            ("zpopmin z", array(vec![bulk("a"), double(1.0)])),
            (
                "zpopmax z 2",
                Reply::Pairs(vec![(bulk("d"), double(4.0)), (bulk("c"), double(3.0))]),
            ),
            ("zpopmin z 0", Reply::Pairs(vec![])),
            (
                "zpopmin z -1",
                err("ERR value is out of range, must be positive"),
            ),
            ("zpopmin z 1 2", err("ERR syntax error")),
            ("zpopmin nokey", bulks(&[])),
            ("zpopmin str", err(WRONGTYPE)),
            (
                "zmpop 2 nokey z min count 10",
                array(vec![
                    bulk("z"),
                    array(vec![array(vec![bulk("b"), double(2.0)])]),
                ]),
            ),
            ("exists z", int(0)),
            ("zmpop 1 z min", Reply::NullArray),
            ("zmpop 2 nokey str max", err(WRONGTYPE)),
            ("zmpop 0 z min", err("ERR numkeys should be greater than 0")),
            (
                "zmpop 1 z min count 0",
                err("ERR count should be greater than 0"),
            ),
            ("zmpop 1 z max count 1 count 2", err("ERR syntax error")),
            ("zmpop 1 z bad", err("ERR syntax error")),
            ("zmpop 5 z min", err("ERR syntax error")),
        ],
    );
}

#[test]
fn blocking_pops_run_as_zmpop() {
    let words = |line: &str| args(line);
    let pop = BlockingPop::parse(&words("BZPOPMAX a b 0.5")).unwrap();
    assert_eq!(pop.timeout, Bytes::from("0.5"));
    assert_eq!(pop.zmpop_args(), words("ZMPOP 2 a b MAX COUNT 1"));
    let mut h = Harness::new();
    h.run("zadd b 1 x 2 y");
    let reply = h.run_args(&pop.zmpop_args());
    assert_eq!(
        pop.reply(reply),
        array(vec![bulk("b"), bulk("y"), double(2.0)])
    );
    let reply = h.run_args(&words("ZMPOP 1 nokey MIN COUNT 1"));
    assert_eq!(pop.reply(reply), Reply::NullArray);
    let pop = BlockingPop::parse(&words("BZMPOP 0 1 b MIN COUNT 5")).unwrap();
    assert_eq!(pop.zmpop_args(), words("ZMPOP 1 b MIN COUNT 5"));
    assert!(BlockingPop::parse(&words("BZMPOP 0 0 b MIN")).is_err());
    assert!(BlockingPop::parse(&words("BZPOPMIN 0")).is_err());
}

#[test]
fn unions_intersections_and_differences() {
    let mut h = Harness::new();
    h.run("set str v");
    h.run("zadd a 1 x 2 y 3 z");
    h.run("zadd b 10 y 20 z 30 w");
    let mut set = SetValue::new();
    set.insert(&Bytes::from("x"));
    set.insert(&Bytes::from("w"));
    h.db.insert(Bytes::from("s"), Value::set(set), None, h.now_ms);
    run_table(
        &mut h,
        &[
            (
                "zunion 2 a b withscores",
                scored(&[("x", 1.0), ("y", 12.0), ("z", 23.0), ("w", 30.0)]),
            ),
            ("zinter 2 a b", bulks(&["y", "z"])),
            (
                "zinter 2 a b weights 2 0.5 withscores",
                scored(&[("y", 9.0), ("z", 16.0)]),
            ),
            (
                "zinter 2 a b aggregate max withscores",
                scored(&[("y", 10.0), ("z", 20.0)]),
            ),
            (
                "zunion 2 a b aggregate min withscores",
                scored(&[("x", 1.0), ("y", 2.0), ("z", 3.0), ("w", 30.0)]),
            ),
            ("zdiff 2 a b withscores", scored(&[("x", 1.0)])),
            ("zdiff 1 nokey", bulks(&[])),
            ("zintercard 2 a b", int(2)),
            ("zintercard 2 a b limit 1", int(1)),
            (
                "zintercard 2 a b limit -1",
                err("ERR LIMIT can't be negative"),
            ),
            ("zintercard 2 a b withscores", err("ERR syntax error")),
            ("zunionstore dst 2 a b", int(4)),
            ("zrange dst 0 -1", bulks(&["x", "y", "z", "w"])),
            ("zinterstore dst 2 a nokey", int(0)),
            ("exists dst", int(0)),
            ("zdiffstore dst 2 a b", int(1)),
            ("zunionstore dst 2 a b withscores", err("ERR syntax error")),
            ("zdiff 2 a b weights 1 2", err("ERR syntax error")),
            (
                "zunion 0 a",
                err("ERR at least 1 input key is needed for 'zunion' command"),
            ),
            (
                "zinterstore dst 0 a",
                err("ERR at least 1 input key is needed for 'zinterstore' command"),
            ),
            ("zunion 3 a b", err("ERR syntax error")),
            (
                "zunion x a",
                err("ERR value is not an integer or out of range"),
            ),
            (
                "zunion 2 a b weights 1 x",
                err("ERR weight value is not a float"),
            ),
            ("zunion 2 a b aggregate avg", err("ERR syntax error")),
            ("zunion 2 a str", err(WRONGTYPE)),
            ("zinter 2 a s withscores", scored(&[("x", 2.0)])),
            (
                "zunion 2 s b aggregate max withscores",
                scored(&[("x", 1.0), ("y", 10.0), ("z", 20.0), ("w", 30.0)]),
            ),
        ],
    );
    h.run("zadd p +inf m");
    h.run("zadd n -inf m");
    assert_eq!(h.run("zunion 2 p n withscores"), scored(&[("m", 0.0)]));
    assert_eq!(
        h.run("zinter 1 p weights 0 withscores"),
        scored(&[("m", 0.0)])
    );
}

#[test]
fn random_members_and_scan() {
    let mut h = Harness::new();
    h.run("zadd z 1 a 2 b 3 c");
    let Reply::Array(items) = h.run("zrandmember z -5") else {
        panic!("not an array")
    };
    assert_eq!(items.len(), 5);
    let Reply::Array(items) = h.run("zrandmember z 2 withscores") else {
        panic!("not an array")
    };
    assert_eq!(items.len(), 4);
    assert_eq!(h.run("zrandmember z 10"), bulks(&["a", "b", "c"]));
    assert_eq!(h.run("zrandmember z 0"), bulks(&[]));
    assert_eq!(h.run("zrandmember nokey"), Reply::Null);
    assert_eq!(h.run("zrandmember nokey 3"), bulks(&[]));
    assert_error(
        &h.run("zrandmember z -9223372036854775808"),
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
    );
    assert_error(&h.run("zrandmember z 1 x"), "ERR syntax error");
    assert_eq!(
        h.run("zscan z 0"),
        array(vec![bulk("0"), bulks(&["a", "1", "b", "2", "c", "3"])])
    );
    assert_eq!(
        h.run("zscan z 0 match b*"),
        array(vec![bulk("0"), bulks(&["b", "2"])])
    );
    h.protocol = Protocol::Resp3;
    let Reply::Array(items) = h.run("zrandmember z 2 withscores") else {
        panic!("not an array")
    };
    assert!(matches!(&items[0], Reply::Array(pair) if pair.len() == 2));
}

#[test]
fn writes_that_change_nothing_leave_the_key_version_alone() {
    let mut h = Harness::new();
    h.db.begin_write(1, 0);
    h.run("zadd z 1 a 2 b");
    let version = |h: &Harness| h.db.version_of(b"z", h.now_ms);
    assert_eq!(version(&h), Some(1));
    h.db.begin_write(2, 0);
    for line in [
        "zadd z 1 a",
        "zadd z nx 5 a",
        "zadd z xx 5 c",
        "zadd z gt 0 b",
        "zincrby z 0 a",
        "zrem z c",
        "zpopmin z 0",
        "zremrangebyscore z 5 6",
    ] {
        h.run(line);
        assert_eq!(version(&h), Some(1), "{line}");
    }
    assert_eq!(h.run("zadd z 1 a 3 b"), int(0));
    assert_eq!(version(&h), Some(2));
    assert_eq!(h.run("zscore z b"), double(3.0));
}
