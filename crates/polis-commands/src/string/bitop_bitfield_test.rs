use polis_resp::Reply;

use crate::test_support::*;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const BAD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

fn ints(values: &[i64]) -> Reply {
    array(values.iter().map(|value| int(*value)).collect())
}

#[test]
fn bitop() {
    let mut h = Harness::new();
    h.run("hset h f v");
    run_table(
        &mut h,
        &[
            ("set a ABC", ok()),
            ("set b \\s\\s\\s\\s\\s", ok()),
            ("bitop or dest a b", int(5)),
            ("get dest", bulk("abc  ")),
            ("bitop and dest a b", int(5)),
            ("get dest", bulk("\0\0\0\0\0")),
            ("bitop xor dest a b", int(5)),
            ("get dest", bulk("abc  ")),
            ("bitop not dest a", int(3)),
            ("getrange dest 0 0", Reply::Bulk(vec![!b'A'].into())),
            // A single source is copied by AND, OR and XOR.
            ("bitop and dest a", int(3)),
            ("get dest", bulk("ABC")),
            // A missing source is a stream of zero bytes.
            ("bitop or dest nokey a", int(3)),
            ("get dest", bulk("ABC")),
            ("bitop and dest nokey a", int(3)),
            ("get dest", bulk("\0\0\0")),
            // Destination among the sources.
            ("bitop not a a", int(3)),
            ("bitop not a a", int(3)),
            ("get a", bulk("ABC")),
            // No data at all deletes the destination.
            ("bitop or dest nokey1 nokey2", int(0)),
            ("exists dest", int(0)),
            ("set empty \"\"", ok()),
            ("set dest x", ok()),
            ("bitop not dest empty", int(0)),
            ("exists dest", int(0)),
            // Errors.
            ("bitop nand dest a", err("ERR syntax error")),
            (
                "bitop not dest a b",
                err("ERR BITOP NOT must be called with a single source key."),
            ),
            (
                "bitop or dest",
                err("ERR wrong number of arguments for 'bitop' command"),
            ),
            ("bitop or dest a h", err(WRONGTYPE)),
            ("bitop or dest h nokey", err(WRONGTYPE)),
            // The destination's type does not matter: it is replaced.
            ("bitop or h a", int(3)),
            ("get h", bulk("ABC")),
        ],
    );
}

#[test]
fn bitop_replaces_the_deadline() {
    let mut h = Harness::new();
    h.run("set a x");
    h.run("set dest y ex 100");
    assert_eq!(h.run("bitop or dest a"), int(1));
    assert_eq!(h.run("ttl dest"), int(-1));
}

#[test]
fn bitfield_set_get_incrby() {
    let mut h = Harness::new();
    run_table(
        &mut h,
        &[
            ("bitfield bits set i8 0 -100", ints(&[0])),
            ("bitfield bits set i8 0 101", ints(&[-100])),
            ("bitfield bits get i8 0", ints(&[101])),
            ("del bits", int(1)),
            (
                "bitfield bits set i8 0 255 set i8 0 100 get i8 0",
                ints(&[0, -1, 100]),
            ),
            ("del bits", int(1)),
            (
                "bitfield bits set u8 0 255 incrby u8 0 100 get u8 0",
                ints(&[0, 99, 99]),
            ),
            ("bitfield bits", ints(&[])),
            ("bitfield nokey get u8 0 get i64 100", ints(&[0, 0])),
            ("exists nokey", int(0)),
            ("del bits", int(1)),
            (
                "bitfield bits set u8 #0 65 set u8 #1 66 set u8 #2 67",
                ints(&[0, 0, 0]),
            ),
            ("get bits", bulk("ABC")),
            (
                "bitfield bits get u4 #1 get u4 4 get i4 4",
                ints(&[1, 1, 1]),
            ),
            ("set bits 1", ok()),
            ("bitfield bits get u1 0", ints(&[0])),
            ("del bits", int(1)),
            (
                "bitfield bits set i8 0 10 set i8 64 10 incrby i8 10 99900",
                ints(&[0, 0, 60]),
            ),
            ("strlen bits", int(9)),
            // Unaligned, wide fields.
            ("del bits", int(1)),
            (
                "bitfield bits set i64 3 -2 get i64 3 get u63 4",
                ints(&[0, -2, i64::MAX - 1]),
            ),
            (
                "bitfield bits set u63 1 9223372036854775807 get u63 1",
                ints(&[(1 << 61) - 1, i64::MAX]),
            ),
            ("bitfield_ro bits get u63 1 get u1 0", ints(&[i64::MAX, 0])),
        ],
    );
}

#[test]
fn bitfield_overflow() {
    let mut h = Harness::new();
    run_table(
        &mut h,
        &[
            ("bitfield bits set u8 #0 100", ints(&[0])),
            ("bitfield bits overflow wrap incrby u8 #0 257", ints(&[101])),
            ("bitfield bits overflow wrap incrby u8 #0 255", ints(&[100])),
            ("bitfield bits overflow sat incrby u8 #0 257", ints(&[255])),
            ("bitfield bits overflow sat incrby u8 #0 -300", ints(&[0])),
            ("bitfield bits set i8 #0 100", ints(&[0])),
            ("bitfield bits overflow wrap incrby i8 #0 257", ints(&[101])),
            ("bitfield bits overflow wrap incrby i8 #0 255", ints(&[100])),
            ("bitfield bits overflow sat incrby i8 #0 257", ints(&[127])),
            ("bitfield bits overflow sat incrby i8 #0 -255", ints(&[-128])),
            (
                "bitfield bits overflow fail incrby i8 #0 -1 incrby i8 #0 1",
                array(vec![Reply::Null, int(-127)]),
            ),
            // The rule applies to the operations after it.
            (
                "bitfield bits incrby u2 100 7 overflow sat incrby u2 102 7 overflow fail incrby u2 104 7",
                array(vec![int(3), int(3), Reply::Null]),
            ),
            // SET wraps or saturates too; an unsigned SET of a negative
            // value takes its two's complement bits.
            ("bitfield bits set u8 #0 -1 get u8 #0", ints(&[129, 255])),
            ("bitfield bits overflow sat set u8 #0 -1", ints(&[255])),
            ("bitfield bits overflow sat set i4 #0 100 get i4 #0", ints(&[-1, 7])),
            ("bitfield bits overflow fail set i4 #0 8", array(vec![Reply::Null])),
            // 64-bit signed fields.
            (
                "bitfield w set i64 0 9223372036854775807 incrby i64 0 1",
                ints(&[0, i64::MIN]),
            ),
            ("bitfield w overflow sat incrby i64 0 -1", ints(&[i64::MIN])),
            ("bitfield w overflow sat set i64 0 -5 incrby i64 0 -9223372036854775807", ints(&[i64::MIN, i64::MIN])),
        ],
    );
    // OVERFLOW FAIL writes nothing but still creates the zeroed string.
    assert_eq!(
        h.run("bitfield fresh overflow fail set u2 8 9"),
        array(vec![Reply::Null])
    );
    assert_eq!(h.run("get fresh"), bulk("\0\0"));
}

#[test]
fn bitfield_keeps_the_deadline_and_leaves_unchanged_keys() {
    let mut h = Harness::new();
    h.db.begin_write(1, 0);
    h.run("set k a ex 100");
    h.db.begin_write(2, 0);
    assert_eq!(h.run("bitfield k set u8 0 97"), ints(&[97]));
    assert_eq!(h.db.version_of(b"k", h.now_ms), Some(1));
    assert_eq!(h.run("bitfield k set u8 0 98"), ints(&[97]));
    assert_eq!(h.db.version_of(b"k", h.now_ms), Some(2));
    assert_eq!(h.run("ttl k"), int(100));
}

#[test]
fn bitfield_errors() {
    let mut h = Harness::new();
    h.run("hset h f v");
    run_table(
        &mut h,
        &[
            ("bitfield k get u64 0", err(BAD_TYPE)),
            ("bitfield k get i65 0", err(BAD_TYPE)),
            ("bitfield k get i0 0", err(BAD_TYPE)),
            ("bitfield k get I8 0", err(BAD_TYPE)),
            ("bitfield k get x8 0", err(BAD_TYPE)),
            ("bitfield k get u08 0", err(BAD_TYPE)),
            ("bitfield k get u 0", err(BAD_TYPE)),
            ("bitfield k get u8 -1", err(BAD_OFFSET)),
            ("bitfield k get u8 x", err(BAD_OFFSET)),
            ("bitfield k get u8 4294967296", err(BAD_OFFSET)),
            ("bitfield k get u8 #536870912", err(BAD_OFFSET)),
            ("bitfield k get u8 #-1", err(BAD_OFFSET)),
            ("bitfield k get i64 #9223372036854775807", err(BAD_OFFSET)),
            (
                "bitfield k set u8 0 x",
                err("ERR value is not an integer or out of range"),
            ),
            ("bitfield k set u8 0", err("ERR syntax error")),
            ("bitfield k get u8", err("ERR syntax error")),
            ("bitfield k foo u8 0", err("ERR syntax error")),
            ("bitfield k overflow", err("ERR syntax error")),
            (
                "bitfield k overflow maybe",
                err("ERR Invalid OVERFLOW type specified"),
            ),
            (
                "bitfield",
                err("ERR wrong number of arguments for 'bitfield' command"),
            ),
            ("bitfield h get u8 0", err(WRONGTYPE)),
            ("bitfield h set u8 0 1", err(WRONGTYPE)),
            ("bitfield h", err(WRONGTYPE)),
            ("bitfield_ro h get u8 0", err(WRONGTYPE)),
            ("bitfield_ro k", ints(&[])),
            (
                "bitfield_ro k set u8 0 100 get u8 0",
                err("ERR BITFIELD_RO only supports the GET subcommand"),
            ),
            (
                "bitfield_ro k overflow sat incrby u8 0 1",
                err("ERR BITFIELD_RO only supports the GET subcommand"),
            ),
            ("bitfield_ro k get u64 0", err(BAD_TYPE)),
        ],
    );
    assert_eq!(h.run("exists k"), int(0));
}
