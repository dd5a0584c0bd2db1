//! Encoder tests: every reply shape in both protocol versions, byte for
//! byte, then decoded back with `redis-protocol` to check the framing.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::decode::ProtocolError;
use crate::reply::ReplyError;

fn encode(reply: &Reply, version: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_reply(reply, version, &mut out);
    out.to_vec()
}

/// Every reply variant with its RESP2 and RESP3 encodings.
fn table() -> Vec<(Reply, &'static [u8], &'static [u8])> {
    vec![
        (Reply::ok(), b"+OK\r\n", b"+OK\r\n"),
        (Reply::Simple(String::new()), b"+\r\n", b"+\r\n"),
        (
            Reply::Simple("two\r\nlines\n".to_owned()),
            b"+two  lines \r\n",
            b"+two  lines \r\n",
        ),
        (
            Reply::Error(ReplyError::WrongType),
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ),
        (
            Reply::Error(ReplyError::err("bad\r\nthing")),
            b"-ERR bad  thing\r\n",
            b"-ERR bad  thing\r\n",
        ),
        (
            Reply::Error(ProtocolError::ExpectedBulk { got: b'\r' }.into()),
            b"-ERR Protocol error: expected '$', got ' '\r\n",
            b"-ERR Protocol error: expected '$', got ' '\r\n",
        ),
        (Reply::Integer(0), b":0\r\n", b":0\r\n"),
        (Reply::Integer(-42), b":-42\r\n", b":-42\r\n"),
        (
            Reply::Integer(i64::MIN),
            b":-9223372036854775808\r\n",
            b":-9223372036854775808\r\n",
        ),
        (
            Reply::Integer(i64::MAX),
            b":9223372036854775807\r\n",
            b":9223372036854775807\r\n",
        ),
        (Reply::bulk("hi"), b"$2\r\nhi\r\n", b"$2\r\nhi\r\n"),
        (Reply::bulk(""), b"$0\r\n\r\n", b"$0\r\n\r\n"),
        (
            Reply::bulk(b"a\r\n\0b"),
            b"$5\r\na\r\n\0b\r\n",
            b"$5\r\na\r\n\0b\r\n",
        ),
        (Reply::Null, b"$-1\r\n", b"_\r\n"),
        (Reply::NullArray, b"*-1\r\n", b"_\r\n"),
        (Reply::Array(vec![]), b"*0\r\n", b"*0\r\n"),
        (
            Reply::Array(vec![Reply::Integer(1), Reply::bulk("x"), Reply::Null]),
            b"*3\r\n:1\r\n$1\r\nx\r\n$-1\r\n",
            b"*3\r\n:1\r\n$1\r\nx\r\n_\r\n",
        ),
        (
            Reply::Array(vec![
                Reply::Array(vec![Reply::Boolean(true)]),
                Reply::NullArray,
            ]),
            b"*2\r\n*1\r\n:1\r\n*-1\r\n",
            b"*2\r\n*1\r\n#t\r\n_\r\n",
        ),
        (Reply::Map(vec![]), b"*0\r\n", b"%0\r\n"),
        (
            Reply::Map(vec![
                (Reply::bulk("b"), Reply::Integer(2)),
                (Reply::bulk("a"), Reply::Double(0.5)),
            ]),
            b"*4\r\n$1\r\nb\r\n:2\r\n$1\r\na\r\n$3\r\n0.5\r\n",
            b"%2\r\n$1\r\nb\r\n:2\r\n$1\r\na\r\n,0.5\r\n",
        ),
        (
            Reply::Set(vec![Reply::bulk("m")]),
            b"*1\r\n$1\r\nm\r\n",
            b"~1\r\n$1\r\nm\r\n",
        ),
        (Reply::Double(1.5), b"$3\r\n1.5\r\n", b",1.5\r\n"),
        (Reply::Double(3.0), b"$1\r\n3\r\n", b",3\r\n"),
        (
            Reply::Double(1.1),
            b"$18\r\n1.1000000000000001\r\n",
            b",1.1000000000000001\r\n",
        ),
        (Reply::Double(f64::INFINITY), b"$3\r\ninf\r\n", b",inf\r\n"),
        (
            Reply::Double(f64::NEG_INFINITY),
            b"$4\r\n-inf\r\n",
            b",-inf\r\n",
        ),
        (Reply::Boolean(true), b":1\r\n", b"#t\r\n"),
        (Reply::Boolean(false), b":0\r\n", b"#f\r\n"),
        (
            Reply::Verbatim {
                format: "txt".to_owned(),
                text: Bytes::from_static(b"Some string"),
            },
            b"$11\r\nSome string\r\n",
            b"=15\r\ntxt:Some string\r\n",
        ),
        (
            Reply::Verbatim {
                format: "markdown".to_owned(),
                text: Bytes::from_static(b"# x"),
            },
            b"$3\r\n# x\r\n",
            b"=7\r\ntxt:# x\r\n",
        ),
        (
            Reply::Pairs(vec![(Reply::bulk("a"), Reply::Double(1.0))]),
            b"*2\r\n$1\r\na\r\n$1\r\n1\r\n",
            b"*1\r\n*2\r\n$1\r\na\r\n,1\r\n",
        ),
        (Reply::Pairs(vec![]), b"*0\r\n", b"*0\r\n"),
        (
            Reply::Push(vec![
                Reply::bulk("message"),
                Reply::bulk("news"),
                Reply::bulk("hi"),
            ]),
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n",
            b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n",
        ),
        (
            Reply::Push(vec![
                Reply::bulk("unsubscribe"),
                Reply::Null,
                Reply::Integer(0),
            ]),
            b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n",
            b">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n",
        ),
        (
            Reply::Frames(vec![Reply::Push(vec![
                Reply::bulk("subscribe"),
                Reply::bulk("a"),
                Reply::Integer(1),
            ])]),
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
            b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
        ),
    ]
}

#[test]
fn encodes_every_variant_in_both_versions() {
    for (reply, resp2, resp3) in table() {
        assert_eq!(
            encode(&reply, ProtocolVersion::Resp2),
            resp2,
            "RESP2 of {reply:?}: {:?}",
            String::from_utf8_lossy(&encode(&reply, ProtocolVersion::Resp2))
        );
        assert_eq!(
            encode(&reply, ProtocolVersion::Resp3),
            resp3,
            "RESP3 of {reply:?}: {:?}",
            String::from_utf8_lossy(&encode(&reply, ProtocolVersion::Resp3))
        );
    }
}

#[test]
fn encodings_decode_back_with_redis_protocol() {
    for (reply, _, _) in table() {
        let resp2 = encode(&reply, ProtocolVersion::Resp2);
        let decoded = redis_protocol::resp2::decode::decode(&resp2);
        assert!(
            matches!(decoded, Ok(Some((_, len))) if len == resp2.len()),
            "RESP2 of {reply:?} decoded as {decoded:?}"
        );
        let resp3 = encode(&reply, ProtocolVersion::Resp3);
        let decoded = redis_protocol::resp3::decode::complete::decode(&resp3);
        assert!(
            matches!(decoded, Ok(Some((_, len))) if len == resp3.len()),
            "RESP3 of {reply:?} decoded as {decoded:?}"
        );
    }
}

/// Frames are whole replies back to back: two pushes decode as two
/// frames, not one.
#[test]
fn frames_are_written_back_to_back() {
    let push = |channel: &str, count| {
        Reply::Push(vec![
            Reply::bulk("subscribe"),
            Reply::bulk(channel),
            Reply::Integer(count),
        ])
    };
    let frames = Reply::Frames(vec![push("a", 1), push("b", 2)]);
    assert!(frames.is_push());
    assert!(!Reply::Frames(vec![push("a", 1), Reply::ok()]).is_push());
    let resp3 = encode(&frames, ProtocolVersion::Resp3);
    assert_eq!(
        resp3,
        b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n>3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
    );
    let (first, len) = redis_protocol::resp3::decode::complete::decode(&resp3)
        .unwrap()
        .unwrap();
    assert!(matches!(
        first,
        redis_protocol::resp3::types::OwnedFrame::Push { .. }
    ));
    assert!(
        redis_protocol::resp3::decode::complete::decode(&resp3[len..])
            .unwrap()
            .is_some()
    );
    let resp2 = encode(&frames, ProtocolVersion::Resp2);
    assert_eq!(
        resp2,
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
    );
}

#[test]
fn appends_to_what_is_already_in_the_buffer() {
    let mut out = BytesMut::from(&b"+first\r\n"[..]);
    encode_reply(&Reply::Integer(7), ProtocolVersion::Resp3, &mut out);
    assert_eq!(&out[..], b"+first\r\n:7\r\n");
}

/// `%.17g` as printed by glibc, for comparison with [`format_double`].
#[test]
fn formats_doubles_like_printf_17g() {
    let table: &[(f64, &str)] = &[
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (-1.0, "-1"),
        (1.1, "1.1000000000000001"),
        (0.1, "0.10000000000000001"),
        (4.35, "4.3499999999999996"),
        (100.0, "100"),
        (123.0, "123"),
        (1e15, "1000000000000000"),
        (1e16, "10000000000000000"),
        (1e17, "1e+17"),
        (1.5e17, "1.5e+17"),
        (123456789012345678.0, "1.2345678901234568e+17"),
        (1e-4, "0.0001"),
        (1e-5, "1.0000000000000001e-05"),
        (0.00012345, "0.00012344999999999999"),
        (2.5, "2.5"),
        (-2.5e-300, "-2.5e-300"),
        (f64::MAX, "1.7976931348623157e+308"),
        (5e-324, "4.9406564584124654e-324"),
        (1e21, "1e+21"),
        (12345.678, "12345.678"),
        (0.3, "0.29999999999999999"),
        (1.0 / 3.0, "0.33333333333333331"),
        (9007199254740993.0, "9007199254740992"),
        (1e-300, "1e-300"),
        (123e-7, "1.2300000000000001e-05"),
        (6.02214076e23, "6.0221407599999999e+23"),
        (-1e100, "-1e+100"),
        (2.0 / 3.0, "0.66666666666666663"),
        // Exact ties at the 17th digit (odd/4: two decimals ending in 5)
        // round to even, as glibc does.
        (9007199254740989.0 / 4.0, "2251799813685247.2"),
        (9007199254740987.0 / 4.0, "2251799813685246.8"),
        (9007199254740981.0 / 4.0, "2251799813685245.2"),
        (9007199254740985.0 / 8.0, "1125899906842623.1"),
        (4503599627370495.5, "4503599627370495.5"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
        (f64::NAN, "nan"),
    ];
    for &(value, text) in table {
        assert_eq!(format_double(value), text, "value {value:e}");
    }
    // Random bit patterns, printed by glibc from the same xorshift64
    // sequence (seed 88172645463325252).
    let random: &[(u64, &str)] = &[
        (0x79690975fbde15b0, "6.9346982451126944e+276"),
        (0x2a337357ae2cc59b, "2.1201840400810927e-105"),
        (0x2fef107a27529ad0, "8.3836588386268093e-78"),
        (0xe4093df8432a8be5, "-7.8039139586272442e+173"),
        (0xc9ddc8f042775a71, "-6.8016724383802016e+47"),
        (0xfe5defe9c5610885, "-5.012175857090046e+300"),
        (0xa3a03fe4de4f1c43, "-4.3665082231147242e-137"),
        (0xb494d6880418a99e, "-2.1245996709086885e-55"),
        (0x01239ff2c4a06a73, "3.5771699383255836e-303"),
        (0x2e6f66b049cdc80b, "5.051222246941584e-85"),
        (0xf991db0c819b315b, "-3.956506804880179e+277"),
    ];
    for &(bits, text) in random {
        assert_eq!(format_double(f64::from_bits(bits)), text, "bits {bits:#x}");
    }
}

#[test]
fn formatted_doubles_parse_back_to_the_same_value() {
    // 17 significant digits always round-trip an f64.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..10_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let value = f64::from_bits(state);
        if value.is_nan() {
            continue;
        }
        let text = format_double(value);
        assert_eq!(text.parse::<f64>().ok(), Some(value), "{text}");
    }
}
