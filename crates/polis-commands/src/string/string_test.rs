use polis_resp::Reply;

use crate::test_support::*;

#[test]
fn set_ifeq_is_a_compare_and_set() {
    let mut h = Harness::new();
    run_table(
        &mut h,
        &[
            ("set reg 1 ifeq 1", Reply::Null),
            ("exists reg", int(0)),
            ("set reg 1", ok()),
            ("set reg 2 ifeq 9", Reply::Null),
            ("get reg", bulk("1")),
            ("set reg 2 ifeq 1", ok()),
            ("get reg", bulk("2")),
            ("set reg 3 ifeq 2 get", bulk("2")),
            ("set reg 4 ifeq 9 get", bulk("3")),
            ("get reg", bulk("3")),
            ("set reg 4 ifeq 3 nx", err("ERR syntax error")),
            ("set reg 4 xx ifeq 3", err("ERR syntax error")),
            ("set reg 4 ifeq", err("ERR syntax error")),
            ("hset hash f v", int(1)),
            (
                "set hash 4 ifeq v",
                err("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
        ],
    );
}

#[test]
fn set_options_and_errors() {
    let mut h = Harness::new();
    run_table(
        &mut h,
        &[
            ("set foo bar", ok()),
            ("get foo", bulk("bar")),
            ("set foo bar non-existing-option", err("ERR syntax error")),
            ("set foo 1 nx", Reply::Null),
            ("set new 1 nx", ok()),
            ("set absent 1 xx", Reply::Null),
            ("set foo 2 xx", ok()),
            ("set foo 3 nx xx", err("ERR syntax error")),
            ("set foo 3 xx nx", err("ERR syntax error")),
            ("set foo bar2 get", bulk("2")),
            ("set nokey bar get", Reply::Null),
            ("set foo baz get nx", bulk("bar2")),
            ("get foo", bulk("bar2")),
            ("set nokey2 v get xx", Reply::Null),
            ("exists nokey2", int(0)),
            ("set foo v ex 10 px 100", err("ERR syntax error")),
            ("set foo v ex 10 keepttl", err("ERR syntax error")),
            ("set foo v keepttl ex 10", err("ERR syntax error")),
            ("set foo v ex", err("ERR syntax error")),
            ("set foo v ex 10 ex 20", ok()),
            ("ttl foo", int(20)),
            (
                "set foo v ex abc",
                err("ERR value is not an integer or out of range"),
            ),
            (
                "set foo v ex 0",
                err("ERR invalid expire time in 'set' command"),
            ),
            (
                "set foo v px -1",
                err("ERR invalid expire time in 'set' command"),
            ),
            (
                "set foo bar EX 10000000000000000",
                err("ERR invalid expire time in 'set' command"),
            ),
            (
                "SET foo bar EX -9999999999999999",
                err("ERR invalid expire time in 'set' command"),
            ),
            ("set foo v pxat 9223372036854775807", ok()),
            (
                "set foo v px 9223372036854775807",
                err("ERR invalid expire time in 'set' command"),
            ),
            (
                "setex z -10 foo",
                err("ERR invalid expire time in 'setex' command"),
            ),
            (
                "psetex z 0 foo",
                err("ERR invalid expire time in 'psetex' command"),
            ),
            ("setnx foo x", int(0)),
            ("setnx fresh x", int(1)),
        ],
    );
}

#[test]
fn set_expiry_variants_become_absolute_deadlines() {
    let mut h = Harness::new();
    let now = h.now_ms;
    let seconds = now / 1000;
    run_table(
        &mut h,
        &[
            ("set a v ex 10", ok()),
            ("set b v px 10000", ok()),
            (&format!("set c v exat {}", seconds + 10), ok()),
            (&format!("set d v pxat {}", now + 10_000), ok()),
            ("setex e 10 v", ok()),
            ("psetex f 10000 v", ok()),
        ],
    );
    for key in ["a", "b", "d", "e", "f"] {
        assert_eq!(
            h.run(&format!("pexpiretime {key}")),
            int((now + 10_000) as i64),
            "{key}"
        );
    }
    assert_eq!(h.run("expiretime c"), int((seconds + 10) as i64));
    // Plain SET clears the deadline, KEEPTTL keeps it.
    assert_eq!(h.run("set a w keepttl"), ok());
    assert_eq!(h.run("pttl a"), int(10_000));
    assert_eq!(h.run("set a w"), ok());
    assert_eq!(h.run("ttl a"), int(-1));
    // A PXAT deadline already past makes the key invisible at once.
    assert_eq!(h.run(&format!("set g v pxat {}", now - 1)), ok());
    assert_eq!(h.run("get g"), Reply::Null);
}

#[test]
fn setnx_and_set_nx_treat_expired_keys_as_absent() {
    let mut h = Harness::new();
    h.run("set x 10");
    h.run("expire x 1");
    assert_eq!(h.run("setnx x 20"), int(0));
    h.advance(1_000);
    assert_eq!(h.run("setnx x 20"), int(1));
    assert_eq!(h.run("get x"), bulk("20"));
    assert_eq!(h.db.stats().expired_keys, 1);
}

#[test]
fn get_family() {
    let mut h = Harness::new();
    h.run("hset h f v");
    run_table(
        &mut h,
        &[
            ("get nokey", Reply::Null),
            (
                "get h",
                err("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
            ("set foo{t} BAR", ok()),
            ("set bar{t} FOO", ok()),
            (
                "mget foo{t} baazz{t} bar{t} h",
                array(vec![bulk("BAR"), Reply::Null, bulk("FOO"), Reply::Null]),
            ),
            ("getset foo{t} xyz", bulk("BAR")),
            ("getset newkey xyz", Reply::Null),
            ("get newkey", bulk("xyz")),
            (
                "getset h x",
                err("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
            ("getdel foo{t}", bulk("xyz")),
            ("getdel foo{t}", Reply::Null),
            ("strlen notakey", int(0)),
            ("set myinteger -555", ok()),
            ("strlen myinteger", int(4)),
            (
                "strlen h",
                err("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
        ],
    );
}

#[test]
fn getex_options() {
    let mut h = Harness::new();
    let now = h.now_ms;
    run_table(
        &mut h,
        &[
            ("set foo bar", ok()),
            ("getex foo", bulk("bar")),
            ("ttl foo", int(-1)),
            ("getex foo ex 10", bulk("bar")),
            ("ttl foo", int(10)),
            ("getex foo px 5000", bulk("bar")),
            ("pttl foo", int(5000)),
            ("getex foo persist", bulk("bar")),
            ("ttl foo", int(-1)),
            (&format!("getex foo pxat {}", now + 3000), bulk("bar")),
            ("pttl foo", int(3000)),
            (&format!("getex foo exat {}", now / 1000 - 100), bulk("bar")),
            ("exists foo", int(0)),
            ("getex foo non-existent-option", err("ERR syntax error")),
            ("getex foo nx", err("ERR syntax error")),
            ("getex foo persist ex 10", err("ERR syntax error")),
            (
                "getex",
                err("ERR wrong number of arguments for 'getex' command"),
            ),
            // The expire value is checked only for an existing string.
            ("getex missing ex abc", Reply::Null),
            ("set foo bar", ok()),
            (
                "GETEX foo EX 10000000000000000",
                err("ERR invalid expire time in 'getex' command"),
            ),
            (
                "GETEX foo EX -9999999999999999",
                err("ERR invalid expire time in 'getex' command"),
            ),
            (
                "getex foo ex abc",
                err("ERR value is not an integer or out of range"),
            ),
        ],
    );
}

#[test]
fn mset_and_msetnx() {
    let mut h = Harness::new();
    run_table(
        &mut h,
        &[
            (
                "mset x{t} 10 y{t} foo\\sbar z{t}",
                err("ERR wrong number of arguments for 'mset' command"),
            ),
            (
                "msetnx x{t} 20 y{t} foo z{t}",
                err("ERR wrong number of arguments for 'msetnx' command"),
            ),
            ("mset x{t} 10 y{t} foo\\sbar", ok()),
            ("mget x{t} y{t}", bulks(&["10", "foo bar"])),
            ("msetnx x1{t} xxx y2{t} yyy x{t} 20", int(0)),
            ("exists x1{t} y2{t}", int(0)),
            ("msetnx x1{t} xxx y2{t} yyy", int(1)),
            ("mget x1{t} y2{t}", bulks(&["xxx", "yyy"])),
            ("del x1{t}", int(1)),
            ("msetnx x1{t} xxx x1{t} yyy", int(1)),
            ("get x1{t}", bulk("yyy")),
            ("msetnx x1{t} xxx x1{t} zzz", int(0)),
            ("get x1{t}", bulk("yyy")),
        ],
    );
}

#[test]
fn incr_family() {
    let mut h = Harness::new();
    h.run("hset h f v");
    run_table(
        &mut h,
        &[
            ("incr novar", int(1)),
            ("incr novar", int(2)),
            ("set novar 17179869184", ok()),
            ("incr novar", int(17179869185)),
            ("incrby novar 17179869184", int(34359738369)),
            ("decr novar", int(34359738368)),
            ("decrby novar 34359738369", int(-1)),
            ("set novar \\s\\s\\s11", ok()),
            (
                "incr novar",
                err("ERR value is not an integer or out of range"),
            ),
            ("set novar 11\\s", ok()),
            (
                "incr novar",
                err("ERR value is not an integer or out of range"),
            ),
            ("set novar 01", ok()),
            (
                "incr novar",
                err("ERR value is not an integer or out of range"),
            ),
            ("set x 0", ok()),
            (
                "decrby x -9223372036854775808",
                err("ERR decrement would overflow"),
            ),
            ("set x 9223372036854775807", ok()),
            ("incr x", err("ERR increment or decrement would overflow")),
            (
                "incrby x abc",
                err("ERR value is not an integer or out of range"),
            ),
            (
                "incr h",
                err("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
        ],
    );
}

#[test]
fn incr_keeps_the_deadline() {
    let mut h = Harness::new();
    h.run("set counter 5 ex 100");
    assert_eq!(h.run("incr counter"), int(6));
    assert_eq!(h.run("ttl counter"), int(100));
    assert_eq!(h.run("incrbyfloat counter 0.5"), bulk("6.5"));
    assert_eq!(h.run("ttl counter"), int(100));
}

#[test]
fn incrbyfloat() {
    let mut h = Harness::new();
    h.run("hset h f v");
    run_table(
        &mut h,
        &[
            ("incrbyfloat novar 1", bulk("1")),
            ("incrbyfloat novar 0.25", bulk("1.25")),
            ("set novar 1.5", ok()),
            ("incrbyfloat novar 1.5", bulk("3")),
            ("set novar 17179869184", ok()),
            ("incrbyfloat novar 1.5", bulk("17179869185.5")),
            ("set novar 17179869184", ok()),
            ("incrbyfloat novar 17179869184", bulk("34359738368")),
            ("set novar \\s11", ok()),
            (
                "incrbyfloat novar 1.0",
                err("ERR value is not a valid float"),
            ),
            ("set novar 11\\s", ok()),
            (
                "incrbyfloat novar 1.0",
                err("ERR value is not a valid float"),
            ),
            ("set foo 0", ok()),
            (
                "incrbyfloat foo +inf",
                err("ERR increment would produce NaN or Infinity"),
            ),
            ("incrbyfloat foo abc", err("ERR value is not a valid float")),
            ("set foo 1", ok()),
            ("incrbyfloat foo -1.1", bulk("-0.10000000000000009")),
            (
                "incrbyfloat h 1",
                err("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
        ],
    );
}

#[test]
fn incrbyfloat_rejects_embedded_nul() {
    let mut h = Harness::new();
    h.run("set foo 1");
    h.run("setrange foo 2 2");
    assert_eq!(h.run("get foo"), Reply::bulk(b"1\x002"));
    assert_error(
        &h.run("incrbyfloat foo 1"),
        "ERR value is not a valid float",
    );
}

#[test]
fn no_negative_zero_after_cancelling_increments() {
    // Redis test "No negative zero": 1/41 then -1/41 as TCL prints them.
    let mut h = Harness::new();
    h.run("incrbyfloat foo 0.024390243902439025");
    h.run("incrbyfloat foo -0.024390243902439025");
    assert_eq!(h.run("get foo"), bulk("0"));
}

#[test]
fn append_and_setrange() {
    let mut h = Harness::new();
    h.run("hset h f v");
    run_table(
        &mut h,
        &[
            ("append k hello", int(5)),
            ("append k \\sworld", int(11)),
            ("get k", bulk("hello world")),
            (
                "append h x",
                err("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
            ("setrange mykey 0 foo", int(3)),
            ("get mykey", bulk("foo")),
            ("del mykey", int(1)),
            ("setrange mykey 0 \"\"", int(0)),
            ("exists mykey", int(0)),
            ("setrange mykey 1 foo", int(4)),
            ("set mykey foo", ok()),
            ("setrange mykey 0 b", int(3)),
            ("get mykey", bulk("boo")),
            ("setrange mykey 0 \"\"", int(3)),
            ("setrange mykey 4 bar", int(7)),
            ("set mykey 1234", ok()),
            ("setrange mykey 5 2", int(6)),
            ("setrange mykey -1 world", err("ERR offset is out of range")),
            (
                "setrange mykey 536870908 world",
                err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
            ),
            (
                "setrange K 9223372036854775807 A",
                err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
            ),
            (
                "setrange mykey abc x",
                err("ERR value is not an integer or out of range"),
            ),
            (
                "setrange h 0 x",
                err("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
        ],
    );
    assert_eq!(h.run("get mykey"), Reply::bulk(b"1234\x002"));
}

#[test]
fn getrange_table() {
    let mut h = Harness::new();
    h.run("set mykey Hello\\sWorld");
    h.run("set num 1234");
    run_table(
        &mut h,
        &[
            ("getrange nokey 0 -1", bulk("")),
            ("getrange mykey 0 3", bulk("Hell")),
            ("getrange mykey 0 -1", bulk("Hello World")),
            ("getrange mykey -4 -1", bulk("orld")),
            ("getrange mykey 5 3", bulk("")),
            ("getrange mykey 5 5000", bulk(" World")),
            ("getrange mykey -5000 10000", bulk("Hello World")),
            ("getrange mykey -1 -5", bulk("")),
            ("getrange mykey 0 4294967297", bulk("Hello World")),
            ("substr mykey 0 3", bulk("Hell")),
            ("getrange num 3 5000", bulk("4")),
            ("getrange num -3 -1", bulk("234")),
            (
                "getrange mykey a 1",
                err("ERR value is not an integer or out of range"),
            ),
        ],
    );
}
