use std::collections::{BTreeSet, HashMap};

use polis_resp::Reply;

use crate::command::Protocol;
use crate::test_support::*;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// Returns the bulk texts of an array or set reply, sorted.
fn sorted(reply: Reply) -> Vec<String> {
    let items = match reply {
        Reply::Array(items) | Reply::Set(items) => items,
        other => panic!("not an array: {other:?}"),
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

fn set(items: &[&str]) -> Reply {
    Reply::Set(items.iter().map(|item| bulk(item)).collect())
}

#[test]
fn add_remove_membership() {
    let mut h = Harness::new();
    h.run("set str v");
    run_table(
        &mut h,
        &[
            ("sadd s a b c", int(3)),
            ("sadd s A a b c B", int(2)),
            ("sadd s a", int(0)),
            ("scard s", int(5)),
            ("scard nokey", int(0)),
            ("sismember s a", int(1)),
            ("sismember s z", int(0)),
            ("sismember nokey a", int(0)),
            ("smismember s a z B", array(vec![int(1), int(0), int(1)])),
            ("smismember nokey a b", array(vec![int(0), int(0)])),
            ("srem s z z", int(0)),
            ("srem s a b z", int(2)),
            ("srem nokey a", int(0)),
            (
                "sadd s",
                err("ERR wrong number of arguments for 'sadd' command"),
            ),
            (
                "srem s",
                err("ERR wrong number of arguments for 'srem' command"),
            ),
            (
                "smismember s",
                err("ERR wrong number of arguments for 'smismember' command"),
            ),
            (
                "scard s x",
                err("ERR wrong number of arguments for 'scard' command"),
            ),
            ("sadd str a", err(WRONGTYPE)),
            ("srem str a", err(WRONGTYPE)),
            ("smembers str", err(WRONGTYPE)),
            ("sismember str a", err(WRONGTYPE)),
            ("smismember str a", err(WRONGTYPE)),
            ("scard str", err(WRONGTYPE)),
            ("smembers nokey", set(&[])),
        ],
    );
    assert_eq!(sorted(h.run("smembers s")), ["A", "B", "c"]);
    assert_eq!(h.run("type s"), Reply::Simple("set".to_owned()));
}

#[test]
fn removing_the_last_member_deletes_the_key() {
    let mut h = Harness::new();
    h.run("sadd s 1 2 3");
    assert_eq!(h.run("srem s 1 2 3 4 5 6"), int(3));
    assert_eq!(h.run("exists s"), int(0));
    assert_eq!(h.db.len(), 0);
}

#[test]
fn sadd_of_present_members_leaves_the_version() {
    let mut h = Harness::new();
    h.db.begin_write(1, 0);
    h.run("sadd s a b");
    h.db.begin_write(2, 0);
    assert_eq!(h.run("sadd s a b"), int(0));
    assert_eq!(h.run("srem s z"), int(0));
    assert_eq!(h.db.version_of(b"s", h.now_ms), Some(1));
    assert_eq!(h.run("sadd s c"), int(1));
    assert_eq!(h.db.version_of(b"s", h.now_ms), Some(2));
}

#[test]
fn smove() {
    let mut h = Harness::new();
    h.run("set str v");
    h.run("sadd src 1 a b");
    h.run("sadd dst 2 3 4");
    run_table(
        &mut h,
        &[
            ("smove src dst a", int(1)),
            ("smove src dst foo", int(0)),
            ("smove src src foo", int(0)),
            ("smove src src b", int(1)),
            ("smove nosrc dst foo", int(0)),
            ("smove nosrc str foo", int(0)),
            ("smove str dst foo", err(WRONGTYPE)),
            ("smove src str 1", err(WRONGTYPE)),
            ("smove src new 1", int(1)),
            ("smove src dst b", int(1)),
            (
                "smove src dst",
                err("ERR wrong number of arguments for 'smove' command"),
            ),
        ],
    );
    assert_eq!(sorted(h.run("smembers dst")), ["2", "3", "4", "a", "b"]);
    assert_eq!(sorted(h.run("smembers new")), ["1"]);
    assert_eq!(h.run("exists src"), int(0));
    // A member already in the destination still leaves the source.
    h.run("sadd x m n");
    h.run("sadd y m");
    assert_eq!(h.run("smove x y m"), int(1));
    assert_eq!(sorted(h.run("smembers x")), ["n"]);
    assert_eq!(sorted(h.run("smembers y")), ["m"]);
}

#[test]
fn inter_union_diff() {
    let mut h = Harness::new();
    h.run("set str v");
    h.run("sadd s1 a b c d");
    h.run("sadd s2 b c d e");
    h.run("sadd s3 c d x");
    assert_eq!(sorted(h.run("sinter s1 s2")), ["b", "c", "d"]);
    assert_eq!(sorted(h.run("sinter s1 s2 s3")), ["c", "d"]);
    assert_eq!(sorted(h.run("sinter s1 s1 s1")), ["a", "b", "c", "d"]);
    assert_eq!(h.run("sinter s1 nokey"), set(&[]));
    assert_eq!(
        sorted(h.run("sunion s1 nokey s3")),
        ["a", "b", "c", "d", "x"]
    );
    assert_eq!(sorted(h.run("sdiff s1 s2")), ["a"]);
    assert_eq!(sorted(h.run("sdiff s1 s3 nokey")), ["a", "b"]);
    assert_eq!(h.run("sdiff s1 s1"), set(&[]));
    assert_eq!(h.run("sdiff nokey s1"), set(&[]));
    run_table(
        &mut h,
        &[
            ("sinter str nokey", err(WRONGTYPE)),
            ("sinter nokey str", err(WRONGTYPE)),
            ("sunion s1 str", err(WRONGTYPE)),
            ("sdiff nokey str", err(WRONGTYPE)),
            ("sdiff s1 str", err(WRONGTYPE)),
            (
                "sinter",
                err("ERR wrong number of arguments for 'sinter' command"),
            ),
            (
                "sunion",
                err("ERR wrong number of arguments for 'sunion' command"),
            ),
            (
                "sdiff",
                err("ERR wrong number of arguments for 'sdiff' command"),
            ),
        ],
    );
}

#[test]
fn store_forms() {
    let mut h = Harness::new();
    h.run("set str v");
    h.run("sadd s1 a b c");
    h.run("sadd s2 b c d");
    h.run("sadd dst e");
    run_table(
        &mut h,
        &[
            ("sinterstore dst s1 s2", int(2)),
            ("sunionstore u s1 s2", int(4)),
            ("sdiffstore d s1 s2", int(1)),
            // WRONGTYPE leaves the destination alone.
            ("sinterstore dst str s1", err(WRONGTYPE)),
            ("sunionstore dst nokey str", err(WRONGTYPE)),
            ("sdiffstore dst s1 str", err(WRONGTYPE)),
            // An empty result deletes the destination, whatever it held.
            ("sinterstore str s1 nokey", int(0)),
            ("exists str", int(0)),
            ("sdiffstore d nokey s1", int(0)),
            ("exists d", int(0)),
            ("sunionstore u nokey1 nokey2", int(0)),
            ("exists u", int(0)),
            (
                "sinterstore dst",
                err("ERR wrong number of arguments for 'sinterstore' command"),
            ),
        ],
    );
    assert_eq!(sorted(h.run("smembers dst")), ["b", "c"]);
    // A destination among the sources is computed first, then replaced.
    assert_eq!(h.run("sunionstore s1 s1 s2"), int(4));
    assert_eq!(sorted(h.run("smembers s1")), ["a", "b", "c", "d"]);
    // Storing replaces a deadline.
    h.run("expire s1 100");
    h.run("sinterstore s1 s1 s2");
    assert_eq!(h.run("ttl s1"), int(-1));
}

#[test]
fn sintercard() {
    let mut h = Harness::new();
    h.run("set str v");
    h.run("sadd s1 a b c d");
    h.run("sadd s2 b c d e");
    run_table(
        &mut h,
        &[
            ("sintercard 2 s1 s2", int(3)),
            ("sintercard 2 s1 s2 limit 0", int(3)),
            ("sintercard 2 s1 s2 LIMIT 2", int(2)),
            ("sintercard 2 s1 s2 limit 10", int(3)),
            ("sintercard 1 nokey", int(0)),
            ("sintercard 1 nokey limit 5", int(0)),
            ("sintercard 1 str", err(WRONGTYPE)),
            ("sintercard 2 str nokey", err(WRONGTYPE)),
            ("sintercard 2 nokey str", err(WRONGTYPE)),
            (
                "sintercard 1",
                err("ERR wrong number of arguments for 'sintercard' command"),
            ),
            (
                "sintercard 0 s1",
                err("ERR numkeys should be greater than 0"),
            ),
            (
                "sintercard a s1",
                err("ERR numkeys should be greater than 0"),
            ),
            (
                "sintercard 2 s1",
                err("ERR Number of keys can't be greater than number of args"),
            ),
            ("sintercard 1 s1 s2", err("ERR syntax error")),
            ("sintercard 1 s1 LIMIT", err("ERR syntax error")),
            (
                "sintercard 1 s1 LIMIT -1",
                err("ERR LIMIT can't be negative"),
            ),
            (
                "sintercard 1 s1 LIMIT a",
                err("ERR LIMIT can't be negative"),
            ),
        ],
    );
}

#[test]
fn spop_takes_random_members_deterministically() {
    let mut h = Harness::new();
    h.run("set str v");
    run_table(
        &mut h,
        &[
            ("spop nokey", Reply::Null),
            ("spop nokey 3", set(&[])),
            ("spop str", err(WRONGTYPE)),
            ("spop str 1", err(WRONGTYPE)),
            (
                "spop s -1",
                err("ERR value is out of range, must be positive"),
            ),
            (
                "spop s x",
                err("ERR value is out of range, must be positive"),
            ),
            ("spop s 1 2", err("ERR syntax error")),
        ],
    );
    h.run("sadd s 1 2 3 4 5 6 7 8 9 10");
    assert_eq!(h.run("spop s 0"), set(&[]));
    let mut popped = sorted(h.run("spop s 3"));
    assert_eq!(popped.len(), 3);
    assert_eq!(h.run("scard s"), int(7));
    let Reply::Bulk(one) = h.run("spop s") else {
        panic!("not a bulk")
    };
    popped.push(String::from_utf8_lossy(&one).into_owned());
    popped.extend(sorted(h.run("spop s 100")));
    popped.sort_by_key(|member| member.parse::<u32>().unwrap_or(0));
    assert_eq!(popped, ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);
    assert_eq!(h.run("exists s"), int(0));

    // The same draws pick the same members: two replicas agree.
    let mut left = Harness::new();
    let mut right = Harness::new();
    for harness in [&mut left, &mut right] {
        harness.run("sadd s a b c d e f g h i j");
        harness.db.begin_write(5, 1234);
    }
    assert_eq!(left.run("spop s 4"), right.run("spop s 4"));
    assert_eq!(left.run("spop s"), right.run("spop s"));
}

#[test]
fn srandmember() {
    let mut h = Harness::new();
    h.run("set str v");
    run_table(
        &mut h,
        &[
            ("srandmember nokey", Reply::Null),
            ("srandmember nokey 5", array(vec![])),
            ("srandmember str", err(WRONGTYPE)),
            ("srandmember str 1", err(WRONGTYPE)),
            (
                "srandmember s x",
                err("ERR value is not an integer or out of range"),
            ),
            (
                "srandmember s -9223372036854775808",
                err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"),
            ),
            ("srandmember s -9223372036854775807", err("ERR value is out of range")),
            ("srandmember s 1 2", err("ERR syntax error")),
        ],
    );
    h.run("sadd s a b c d e");
    assert_eq!(h.run("srandmember s 0"), array(vec![]));
    assert_eq!(sorted(h.run("srandmember s 5")), ["a", "b", "c", "d", "e"]);
    assert_eq!(sorted(h.run("srandmember s 50")), ["a", "b", "c", "d", "e"]);
    for _ in 0..20 {
        let picks = sorted(h.run("srandmember s 3"));
        assert_eq!(picks.len(), 3);
        assert_eq!(picks.iter().collect::<BTreeSet<_>>().len(), 3, "{picks:?}");
    }
    let many = sorted(h.run("srandmember s -1000"));
    assert_eq!(many.len(), 1000);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for member in many {
        *counts.entry(member).or_default() += 1;
    }
    // Roughly uniform: each of the five near 200.
    assert_eq!(counts.len(), 5);
    assert!(
        counts.values().all(|&count| (120..280).contains(&count)),
        "{counts:?}"
    );
    let Reply::Bulk(_) = h.run("srandmember s") else {
        panic!("not a bulk")
    };
    h.protocol = Protocol::Resp3;
    assert!(matches!(h.run("srandmember s 2"), Reply::Array(_)));
}

#[test]
fn sscan() {
    let mut h = Harness::new();
    h.run("set str v");
    run_table(
        &mut h,
        &[
            ("sscan nokey 0", array(vec![bulk("0"), array(vec![])])),
            ("sscan str 0", err(WRONGTYPE)),
            ("sscan s x", err("ERR invalid cursor")),
            ("sscan s 0 count 0", err("ERR syntax error")),
            ("sscan s 0 count", err("ERR syntax error")),
            ("sscan s 0 type string", err("ERR syntax error")),
            (
                "sscan s",
                err("ERR wrong number of arguments for 'sscan' command"),
            ),
        ],
    );
    // An intset comes back whole.
    h.run("sadd ints 1 2 3 4 5 6 7 8 9 10 11 12");
    let Reply::Array(parts) = h.run("sscan ints 0 count 2") else {
        panic!("not an array")
    };
    assert_eq!(parts[0], bulk("0"));
    assert_eq!(sorted(parts[1].clone()).len(), 12);
    // A hashtable set comes back in pages, every member at least once.
    for index in 0..100 {
        h.run(&format!("sadd big m{index}"));
    }
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_owned();
    for round in 0.. {
        assert!(round < 1000, "sscan does not terminate");
        let Reply::Array(parts) = h.run(&format!("sscan big {cursor} count 7 match m1*")) else {
            panic!("not an array")
        };
        let Reply::Bulk(next) = &parts[0] else {
            panic!("no cursor")
        };
        cursor = String::from_utf8_lossy(next).into_owned();
        seen.extend(sorted(parts[1].clone()));
        if cursor == "0" {
            break;
        }
    }
    let expected: BTreeSet<String> = std::iter::once("m1".to_owned())
        .chain((10..20).map(|index| format!("m{index}")))
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn resp3_shapes() {
    let mut h = Harness::new();
    h.protocol = Protocol::Resp3;
    h.run("sadd s a");
    assert_eq!(h.run("smembers s"), set(&["a"]));
    assert_eq!(h.run("sunion s nokey"), set(&["a"]));
    assert_eq!(h.run("smismember s a"), array(vec![int(1)]));
}
