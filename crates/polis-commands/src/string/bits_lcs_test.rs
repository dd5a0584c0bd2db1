use polis_resp::Reply;

use crate::test_support::*;

#[test]
fn bit_commands() {
    let mut h = Harness::new();
    h.run("hset h f v");
    run_table(
        &mut h,
        &[
            ("setbit mykey 1 1", int(0)),
            ("get mykey", Reply::bulk([0b0100_0000u8])),
            ("set mykey @", ok()),
            ("setbit mykey 2 1", int(0)),
            ("setbit mykey 1 0", int(1)),
            ("get mykey", Reply::bulk([0b0010_0000u8])),
            (
                "setbit mykey 4294967296 1",
                err("ERR bit offset is not an integer or out of range"),
            ),
            (
                "setbit mykey -1 1",
                err("ERR bit offset is not an integer or out of range"),
            ),
            (
                "setbit mykey 0 -1",
                err("ERR bit is not an integer or out of range"),
            ),
            (
                "setbit mykey 0 2",
                err("ERR bit is not an integer or out of range"),
            ),
            (
                "setbit h 0 1",
                err("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
            ("set mykey `", ok()),
            ("getbit mykey 0", int(0)),
            ("getbit mykey 1", int(1)),
            ("getbit mykey 2", int(1)),
            ("getbit mykey 3", int(0)),
            ("getbit mykey 10000", int(0)),
            ("getbit nokey 0", int(0)),
            ("set bits foobar", ok()),
            ("bitcount bits", int(26)),
            ("bitcount bits 0 0", int(4)),
            ("bitcount bits 1 1", int(6)),
            ("bitcount bits 1 1 byte", int(6)),
            ("bitcount bits 5 30 bit", int(17)),
            ("bitcount bits -2 -1", int(7)),
            ("bitcount bits 1", err("ERR syntax error")),
            ("bitcount bits 0 1 nibble", err("ERR syntax error")),
            ("bitcount nokey", int(0)),
            ("bitpos nokey 1", int(-1)),
            ("bitpos nokey 0", int(0)),
            ("bitpos bits 2", err("ERR The bit argument must be 1 or 0.")),
        ],
    );
    h.db = polis_store::Db::new();
    h.run_args(&[
        bytes::Bytes::from("set"),
        "k".into(),
        bytes::Bytes::from_static(&[0xff, 0xf0, 0x00]),
    ]);
    run_table(
        &mut h,
        &[
            ("bitpos k 0", int(12)),
            ("bitpos k 1 2", int(-1)),
            ("bitpos k 0 2", int(16)),
            ("bitpos k 1 1", int(8)),
            ("bitpos k 0 0 0", int(-1)),
            ("bitpos k 0 0 -1", int(12)),
            ("bitpos k 1 7 15 bit", int(7)),
            ("bitpos k 0 7 11 bit", int(-1)),
        ],
    );
    h.run_args(&[
        bytes::Bytes::from("set"),
        "full".into(),
        bytes::Bytes::from_static(&[0xff, 0xff]),
    ]);
    assert_eq!(h.run("bitpos full 0"), int(16));
    assert_eq!(h.run("bitpos full 0 0 -1"), int(-1));
}

#[test]
fn setbit_matches_a_model_bit_string() {
    let mut h = Harness::new();
    let mut model = [0u8; 32];
    let mut random = crate::random::SplitMix64::new(99);
    for _ in 0..500 {
        let bit = random.below(256);
        let on = random.below(2) == 1;
        let mask = 0x80u8 >> (bit % 8);
        let previous = model[bit / 8] & mask != 0;
        if on {
            model[bit / 8] |= mask;
        } else {
            model[bit / 8] &= !mask;
        }
        assert_eq!(
            h.run(&format!("setbit k {bit} {}", u8::from(on))),
            int(i64::from(previous))
        );
    }
    let last = model.iter().rposition(|byte| *byte != 0).unwrap_or(0);
    let got = h.run("get k");
    let Reply::Bulk(bytes) = got else {
        panic!("not a bulk: {got:?}")
    };
    assert_eq!(&bytes[..=last], &model[..=last]);
}

const RNA1: &str = "CACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTTCGTCCGGGTGTG";
const RNA2: &str = "ATTAAAGGTTTATACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT";

const RNALCS: &str = "ACCTTCCCAGGTAACAAACCAACCAACTTTCGATCTCTTGTAGATCTGTTCTCTAAACGAACTTTAAAATCTGTGTGGCTGTCACTCGGCTGCATGCTTAGTGCACTCACGCAGTATAATTAATAACTAATTACTGTCGTTGACAGGACACGAGTAACTCGTCTATCTTCTGCAGGCTGCTTACGGTTTCGTCCGTGTTGCAGCCGATCATCAGCACATCTAGGTTT";

fn span(a: i64, b: i64) -> Reply {
    array(vec![int(a), int(b)])
}

#[test]
fn lcs_matches_redis_reference() {
    let mut h = Harness::new();
    h.run(&format!("set virus1{{t}} {RNA1}"));
    h.run(&format!("set virus2{{t}} {RNA2}"));
    assert_eq!(h.run("lcs virus1{t} virus2{t}"), bulk(RNALCS));
    let len = match h.run("lcs virus1{t} virus2{t} len") {
        Reply::Integer(len) => len,
        other => panic!("{other:?}"),
    };
    assert_eq!(len, 227);
    let matches = vec![
        array(vec![span(238, 238), span(239, 239), int(1)]),
        array(vec![span(236, 236), span(238, 238), int(1)]),
        array(vec![span(229, 230), span(236, 237), int(2)]),
        array(vec![span(224, 224), span(235, 235), int(1)]),
        array(vec![span(1, 222), span(13, 234), int(222)]),
    ];
    assert_eq!(
        h.run("lcs virus1{t} virus2{t} idx withmatchlen"),
        Reply::Map(vec![
            (bulk("matches"), array(matches.clone())),
            (bulk("len"), int(227))
        ])
    );
    assert_eq!(
        h.run("lcs virus1{t} virus2{t} idx withmatchlen minmatchlen 5"),
        Reply::Map(vec![
            (bulk("matches"), array(vec![matches[4].clone()])),
            (bulk("len"), int(227))
        ])
    );
    let without_len: Vec<Reply> = matches
        .iter()
        .map(|entry| match entry {
            Reply::Array(items) => array(items[..2].to_vec()),
            other => other.clone(),
        })
        .collect();
    assert_eq!(
        h.run("lcs virus1{t} virus2{t} idx"),
        Reply::Map(vec![
            (bulk("matches"), array(without_len)),
            (bulk("len"), int(227))
        ])
    );
    h.run("hset h f v");
    run_table(
        &mut h,
        &[
            (
                "lcs virus1{t} virus2{t} len idx",
                err("ERR If you want both the length and indexes, please just use IDX."),
            ),
            ("lcs virus1{t} virus2{t} foo", err("ERR syntax error")),
            (
                "lcs virus1{t} h",
                err("ERR The specified keys must contain string values"),
            ),
            ("lcs nokey1 nokey2", bulk("")),
            ("set a ohmytext", ok()),
            ("set b mynewtext", ok()),
            ("lcs a b", bulk("mytext")),
            ("lcs a b len", int(6)),
        ],
    );
}
