use polis_resp::Reply;

use crate::command::Protocol;
use crate::test_support::*;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const TOO_SMALL: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";

fn entry(id: &str, fields: &[&str]) -> Reply {
    array(vec![bulk(id), bulks(fields)])
}

/// Returns the value of `field` in a map reply (flat in RESP2).
fn field(reply: &Reply, name: &str) -> Reply {
    match reply {
        Reply::Map(pairs) => pairs
            .iter()
            .find(|(key, _)| *key == bulk(name))
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("no {name} in {reply:?}")),
        other => panic!("not a map: {other:?}"),
    }
}

#[test]
fn xadd_ids_come_from_the_leader_time_and_the_last_id() {
    let mut h = Harness::new();
    h.run("set str v");
    run_table(
        &mut h,
        &[
            ("xadd s * a 1", bulk("1700000000000-0")),
            ("xadd s * a 2", bulk("1700000000000-1")),
            ("xadd s 1700000000000-* a 3", bulk("1700000000000-2")),
            ("xadd s 1800000000000-* a 4", bulk("1800000000000-0")),
            // The clock is behind the last id: the last id's ms, seq + 1.
            ("xadd s * a 5", bulk("1800000000000-1")),
            ("xadd s 5-0 a 1", err(TOO_SMALL)),
            ("xadd s 1800000000000-1 a 1", err(TOO_SMALL)),
            ("xadd s 42-* a 1", err(TOO_SMALL)),
            ("xlen s", int(5)),
            (
                "xadd s 0-0 a 1",
                err("ERR The ID specified in XADD must be greater than 0-0"),
            ),
            (
                "xadd s * a",
                err("ERR wrong number of arguments for 'xadd' command"),
            ),
            (
                "xadd s a",
                err("ERR wrong number of arguments for 'xadd' command"),
            ),
            ("xadd s x-1 a 1", err(INVALID_ID)),
            ("xadd s + a 1", err(INVALID_ID)),
            ("xadd str * a 1", err(WRONGTYPE)),
            ("xlen str", err(WRONGTYPE)),
            ("xadd n NOMKSTREAM * a 1", Reply::Null),
            ("exists n", int(0)),
            ("xadd z 0-* a 1", bulk("0-1")),
            (
                "xadd o 1-18446744073709551615 a b",
                bulk("1-18446744073709551615"),
            ),
            ("xadd o 1-* c d", err(TOO_SMALL)),
            ("xadd o * c d", bulk("1700000000000-0")),
            (
                "xadd m 18446744073709551615-18446744073709551615 a b",
                bulk("18446744073709551615-18446744073709551615"),
            ),
            (
                "xadd m * c d",
                err("ERR The stream has exhausted the last possible ID, unable to add more items"),
            ),
        ],
    );
}

#[test]
fn xadd_and_xtrim_trim_exactly_or_by_whole_nodes() {
    let mut h = Harness::new();
    for ms in 1..=1000 {
        h.run(&format!("xadd s MAXLEN ~ 555 {ms} xitem {ms}"));
    }
    // Whole nodes of 100 entries: Redis keeps 600.
    assert_eq!(h.run("xlen s"), int(600));
    run_table(
        &mut h,
        &[
            ("xtrim s MAXLEN 555", int(45)),
            ("xtrim s MAXLEN = 500", int(55)),
            ("xtrim s MAXLEN ~ 444", int(0)),
            ("xtrim s MAXLEN ~ 400", int(100)),
            ("xlen s", int(400)),
            ("xtrim s MINID 700", int(99)),
            ("xrange s - + COUNT 1", array(vec![entry("700-0", &["xitem", "700"])])),
            ("xtrim nokey MAXLEN 1", int(0)),
            (
                "xtrim s MAXLEN 1 LIMIT 30",
                err("ERR syntax error, LIMIT cannot be used without the special ~ option"),
            ),
            (
                "xtrim s LIMIT 30",
                err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"),
            ),
            (
                "xtrim s MAXLEN 1 MINID 1",
                err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible"),
            ),
            ("xtrim s MAXLEN -1", err("ERR The MAXLEN argument must be >= 0.")),
            ("xtrim s MAXLEN ~ 1 LIMIT -1", err("ERR The LIMIT argument must be >= 0.")),
            ("xtrim s FOO 1", err("ERR syntax error")),
            ("xtrim s MAXLEN x", err("ERR value is not an integer or out of range")),
            ("xtrim s MINID +", err(INVALID_ID)),
        ],
    );
    // LIMIT stops an approximate trim before a node it cannot take whole.
    h.run("del y");
    for ms in 1..=3 {
        h.run(&format!("xadd y {ms} xitem v"));
    }
    assert_eq!(h.run("xadd y MAXLEN ~ 0 LIMIT 1 4 xitem v"), bulk("4-0"));
    assert_eq!(h.run("xlen y"), int(4));
    assert_eq!(h.run("xtrim y MAXLEN 0"), int(4));
}

#[test]
fn xrange_and_xrevrange_walk_inclusive_and_exclusive_ranges() {
    let mut h = Harness::new();
    for id in [
        "0-1",
        "1-0",
        "42-0",
        "42-42",
        "18446744073709551615-18446744073709551615",
    ] {
        h.run(&format!("xadd s {id} foo bar"));
    }
    let ids = |reply: Reply| -> Vec<Reply> {
        let Reply::Array(items) = reply else {
            panic!("{reply:?}")
        };
        items
            .into_iter()
            .map(|item| match item {
                Reply::Array(mut pair) => pair.swap_remove(0),
                other => other,
            })
            .collect()
    };
    assert_eq!(ids(h.run("xrange s - +")).len(), 5);
    assert_eq!(ids(h.run("xrange s (0-1 +")).len(), 4);
    assert_eq!(ids(h.run("xrange s (0-1 (42-0")), vec![bulk("1-0")]);
    assert_eq!(
        ids(h.run("xrange s 42 42")),
        vec![bulk("42-0"), bulk("42-42")]
    );
    assert_eq!(
        ids(h.run("xrevrange s + - COUNT 2")),
        vec![
            bulk("18446744073709551615-18446744073709551615"),
            bulk("42-42")
        ]
    );
    run_table(
        &mut h,
        &[
            ("xrange s - + COUNT 0", Reply::NullArray),
            ("xrange s - + COUNT -1", Reply::NullArray),
            ("xrange s 5 1", array(vec![])),
            ("xrange nokey - +", array(vec![])),
            ("xrange s (- +", err(INVALID_ID)),
            ("xrange s - (+", err(INVALID_ID)),
            (
                "xrange s (18446744073709551615-18446744073709551615 +",
                err("ERR invalid start ID for the interval"),
            ),
            (
                "xrange s - (0-0",
                err("ERR invalid end ID for the interval"),
            ),
            ("xrange s - + COUNT", err("ERR syntax error")),
            ("xrange s - + LIMIT 1", err("ERR syntax error")),
            ("xrange s abc +", err(INVALID_ID)),
            // strtoull's leniency: leading zeros are fine.
            ("xrange s 01 01", array(vec![entry("1-0", &["foo", "bar"])])),
        ],
    );
    h.run("set str v");
    assert_error(&h.run("xrange str - +"), WRONGTYPE);
}

#[test]
fn xdel_and_xsetid_keep_the_stream_counters() {
    let mut h = Harness::new();
    for ms in 1..=5 {
        h.run(&format!("xadd s {ms}-0 data a"));
    }
    run_table(
        &mut h,
        &[
            ("xdel s 2-0 9-0", int(1)),
            ("xdel s 1-0", int(1)),
            ("xdel s 1-0 bad", err(INVALID_ID)),
            ("xdel nokey bad", int(0)),
            ("xlen s", int(3)),
            ("xsetid s 4-0", err("ERR The ID specified in XSETID is smaller than the target stream top item")),
            ("xsetid nokey 1-1", err("ERR no such key")),
            ("xsetid s 1-1 0", err("ERR syntax error")),
            ("xsetid s 9-0 ENTRIESADDED -1 MAXDELETEDID 0-0", err("ERR entries_added must be positive")),
            (
                "xsetid s 9-0 ENTRIESADDED 2",
                err("ERR The entries_added specified in XSETID is smaller than the target stream length"),
            ),
            (
                "xsetid s 9-0 MAXDELETEDID 10-0",
                err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"),
            ),
            ("xsetid s 9-0 ENTRIESADDED 7 MAXDELETEDID 8-0", ok()),
            ("xadd s 9-0 a b", err(TOO_SMALL)),
        ],
    );
    let info = h.run("xinfo stream s");
    assert_eq!(field(&info, "last-generated-id"), bulk("9-0"));
    assert_eq!(field(&info, "entries-added"), int(7));
    assert_eq!(field(&info, "max-deleted-entry-id"), bulk("8-0"));
    assert_eq!(field(&info, "recorded-first-entry-id"), bulk("3-0"));
    assert_eq!(field(&info, "length"), int(3));
    assert_eq!(field(&info, "first-entry"), entry("3-0", &["data", "a"]));
}

#[test]
fn xread_serves_entries_after_each_id() {
    let mut h = Harness::new();
    h.run("xadd s1 1-0 a 1");
    h.run("xadd s1 2-0 b 2");
    h.run("set str v");
    run_table(
        &mut h,
        &[
            (
                "xread COUNT 1 STREAMS nokey s1 0 0",
                array(vec![array(vec![bulk("s1"), array(vec![entry("1-0", &["a", "1"])])])]),
            ),
            ("xread STREAMS s1 $", Reply::NullArray),
            ("xread BLOCK 100 STREAMS s1 2-0", Reply::NullArray),
            ("xread STREAMS nokey 0", Reply::NullArray),
            ("xread STREAMS str 0", err(WRONGTYPE)),
            ("xread STREAMS s1 +", err(INVALID_ID)),
            (
                "xread STREAMS s1 >",
                err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."),
            ),
            (
                "xread STREAMS s1 s2 0",
                err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."),
            ),
            ("xread COUNT 1 s1 0", err("ERR syntax error")),
            ("xread BLOCK -1 STREAMS s1 0", err("ERR timeout is negative")),
            (
                "xread BLOCK x STREAMS s1 0",
                err("ERR timeout is not an integer or out of range"),
            ),
            (
                "xread GROUP g c STREAMS s1 0",
                err("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."),
            ),
        ],
    );
    h.protocol = Protocol::Resp3;
    assert_eq!(
        h.run("xread STREAMS s1 1-0"),
        Reply::Map(vec![(bulk("s1"), array(vec![entry("2-0", &["b", "2"])]))])
    );
}

#[test]
fn consumer_groups_deliver_track_and_acknowledge() {
    let mut h = Harness::new();
    h.run("xadd s 1-0 a 1");
    run_table(
        &mut h,
        &[
            ("xgroup create s g $", ok()),
            ("xgroup create s g $", err("BUSYGROUP Consumer Group name already exists")),
            (
                "xgroup create nokey g $",
                err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."),
            ),
            ("xgroup create new g $ MKSTREAM", ok()),
            ("xgroup create s g2 0 ENTRIESREAD -2", err("ERR value for ENTRIESREAD must be positive or -1")),
            (
                "xgroup create s g2 0 BOGUS",
                err("ERR unknown subcommand or wrong number of arguments for 'create'. Try XGROUP HELP."),
            ),
            ("xgroup setid s nog 0", err("NOGROUP No such consumer group 'nog' for key name 's'")),
            ("xgroup foo s g", err("ERR unknown subcommand 'foo'. Try XGROUP HELP.")),
            ("xgroup help x", err("ERR wrong number of arguments for 'xgroup|help' command")),
            ("xreadgroup GROUP g alice STREAMS s >", Reply::NullArray),
            ("xadd s 2-0 b 2", bulk("2-0")),
            ("xadd s 3-0 c 3", bulk("3-0")),
            (
                "xreadgroup GROUP g alice COUNT 1 STREAMS s >",
                array(vec![array(vec![bulk("s"), array(vec![entry("2-0", &["b", "2"])])])]),
            ),
            (
                "xreadgroup GROUP g bob STREAMS s >",
                array(vec![array(vec![bulk("s"), array(vec![entry("3-0", &["c", "3"])])])]),
            ),
            (
                "xreadgroup GROUP g alice STREAMS s 0",
                array(vec![array(vec![bulk("s"), array(vec![entry("2-0", &["b", "2"])])])]),
            ),
            (
                "xreadgroup GROUP nog alice STREAMS s >",
                err("NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option"),
            ),
            (
                "xreadgroup GROUP g alice STREAMS s $",
                err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."),
            ),
            ("xreadgroup STREAMS s >", err("ERR wrong number of arguments for 'xreadgroup' command")),
            ("xreadgroup COUNT 1 NOACK STREAMS s >", err("ERR Missing GROUP option for XREADGROUP")),
            (
                "xpending s g",
                array(vec![
                    int(2),
                    bulk("2-0"),
                    bulk("3-0"),
                    array(vec![bulks(&["alice", "1"]), bulks(&["bob", "1"])]),
                ]),
            ),
            ("xack s g 2-0 2-0 9-0", int(1)),
            ("xack s g bad", err(INVALID_ID)),
            ("xack s nog bad", int(0)),
            ("xack nokey g 1-0", int(0)),
            ("xgroup createconsumer s g carol", int(1)),
            ("xgroup createconsumer s g carol", int(0)),
            ("xgroup delconsumer s g bob", int(1)),
            ("xpending s g", array(vec![int(0), Reply::Null, Reply::Null, Reply::NullArray])),
            ("xgroup destroy s g", int(1)),
            ("xgroup destroy s g", int(0)),
            ("xgroup setid s g 0", err("NOGROUP No such consumer group 'g' for key name 's'")),
        ],
    );
    let help = h.run("xgroup help");
    let Reply::Array(lines) = help else {
        panic!("{help:?}")
    };
    assert_eq!(
        lines[0],
        Reply::Simple("XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".into())
    );
}

#[test]
fn pending_entries_age_with_the_leader_time_and_can_be_claimed() {
    let mut h = Harness::new();
    for ms in 1..=4 {
        h.run(&format!("xadd s {ms}-0 f {ms}"));
    }
    h.run("xgroup create s g 0");
    h.run("xreadgroup GROUP g alice STREAMS s >");
    h.advance(200);
    run_table(
        &mut h,
        &[
            ("xpending s g IDLE 201 - + 10", array(vec![])),
            (
                "xpending s g IDLE 200 - + 1",
                array(vec![array(vec![
                    bulk("1-0"),
                    bulk("alice"),
                    int(200),
                    int(1),
                ])]),
            ),
            (
                "xpending s g (1-0 (4-0 10 alice",
                array(vec![
                    array(vec![bulk("2-0"), bulk("alice"), int(200), int(1)]),
                    array(vec![bulk("3-0"), bulk("alice"), int(200), int(1)]),
                ]),
            ),
            ("xpending s g - + 10 nobody", array(vec![])),
            (
                "xpending s nog",
                err("NOGROUP No such key 's' or consumer group 'nog'"),
            ),
            ("xpending s g - +", err("ERR syntax error")),
            ("xpending s g IDLE 1 - + ", err("ERR syntax error")),
            // Claims: too young, then taken.
            ("xclaim s g bob 500 1-0", array(vec![])),
            (
                "xclaim s g bob 100 1-0",
                array(vec![entry("1-0", &["f", "1"])]),
            ),
            ("xclaim s g carol 0 1-0 JUSTID", array(vec![bulk("1-0")])),
            ("xdel s 2-0", int(1)),
            ("xclaim s g carol 0 2-0", array(vec![])),
            (
                "xclaim s g carol 0 3-0 IDLE 50 RETRYCOUNT 7",
                array(vec![entry("3-0", &["f", "3"])]),
            ),
            (
                "xpending s g - + 10",
                array(vec![
                    array(vec![bulk("1-0"), bulk("carol"), int(0), int(2)]),
                    array(vec![bulk("3-0"), bulk("carol"), int(50), int(7)]),
                    array(vec![bulk("4-0"), bulk("alice"), int(200), int(1)]),
                ]),
            ),
            (
                "xclaim s g carol 0 1-0 BOGUS",
                err("ERR Unrecognized XCLAIM option 'BOGUS'"),
            ),
            (
                "xclaim s g carol x 1-0",
                err("ERR Invalid min-idle-time argument for XCLAIM"),
            ),
            (
                "xclaim s g carol 0 1-0 IDLE x",
                err("ERR Invalid IDLE option argument for XCLAIM"),
            ),
            (
                "xclaim s nog carol 0 1-0",
                err("NOGROUP No such key 's' or consumer group 'nog'"),
            ),
            // Autoclaim: 4-0 is old enough; deleted entries are reported.
            (
                "xautoclaim s g dave 100 - COUNT 1",
                array(vec![
                    bulk("0-0"),
                    array(vec![entry("4-0", &["f", "4"])]),
                    array(vec![]),
                ]),
            ),
            (
                "xautoclaim s g dave 0 0 COUNT 0",
                err("ERR COUNT must be > 0"),
            ),
            ("xautoclaim s g dave 0 0 FOO", err("ERR syntax error")),
            (
                "xautoclaim s g dave x 0",
                err("ERR Invalid min-idle-time argument for XAUTOCLAIM"),
            ),
        ],
    );
    h.run("xdel s 1-0");
    assert_eq!(
        h.run("xautoclaim s g dave 0 0-0 JUSTID"),
        array(vec![bulk("0-0"), bulks(&["3-0", "4-0"]), bulks(&["1-0"])])
    );
}

#[test]
fn xinfo_reports_groups_consumers_and_lag() {
    let mut h = Harness::new();
    for ms in 1..=5 {
        h.run(&format!("xadd x {ms}-0 data {ms}"));
    }
    h.run("xgroup create x g1 0");
    h.run("xreadgroup GROUP g1 c1 COUNT 1 STREAMS x >");
    h.advance(30);
    let groups = h.run("xinfo groups x");
    let Reply::Array(groups) = groups else {
        panic!("{groups:?}")
    };
    assert_eq!(field(&groups[0], "entries-read"), int(1));
    assert_eq!(field(&groups[0], "lag"), int(4));
    assert_eq!(field(&groups[0], "pending"), int(1));
    let consumers = h.run("xinfo consumers x g1");
    let Reply::Array(consumers) = consumers else {
        panic!("{consumers:?}")
    };
    assert_eq!(field(&consumers[0], "idle"), int(30));
    h.run("xdel x 3-0");
    let full = h.run("xinfo stream x FULL COUNT 2");
    let Reply::Array(groups) = field(&full, "groups") else {
        panic!("{full:?}")
    };
    assert_eq!(field(&groups[0], "lag"), Reply::Null);
    assert_eq!(
        field(&full, "entries"),
        array(vec![
            entry("1-0", &["data", "1"]),
            entry("2-0", &["data", "2"])
        ])
    );
    assert_eq!(field(&full, "radix-tree-keys"), int(1));
    run_table(
        &mut h,
        &[
            ("xinfo stream nokey", err("ERR no such key")),
            ("xinfo consumers x nog", err("NOGROUP No such consumer group 'nog' for key name 'x'")),
            (
                "xinfo stream x FOO",
                err("ERR unknown subcommand or wrong number of arguments for 'stream'. Try XINFO HELP."),
            ),
            ("xinfo help x", err("ERR wrong number of arguments for 'xinfo|help' command")),
        ],
    );
    h.run("set str v");
    assert_error(&h.run("xinfo stream str"), WRONGTYPE);
}

#[test]
fn copies_of_a_stream_are_equal_and_independent() {
    let mut h = Harness::new();
    h.run("xadd x{t} 1-0 a 1");
    h.run("xgroup create x{t} g 0");
    h.run("xreadgroup GROUP g c STREAMS x{t} >");
    assert_eq!(h.run("copy x{t} y{t}"), int(1));
    assert_eq!(
        h.run("xinfo stream x{t} FULL"),
        h.run("xinfo stream y{t} FULL")
    );
    h.run("xadd x{t} 2-0 a 2");
    assert_eq!(h.run("xlen y{t}"), int(1));
    assert_eq!(h.run("type y{t}"), Reply::Simple("stream".into()));
}
