//! The queue extensions of consumer groups in virtual time: ack-wait
//! redelivery, max deliveries and the dead-letter stream, XNACK, the
//! options and their errors, what XINFO and XPENDING show, and that a
//! group without options is Redis's.

use polis_resp::Reply;

use super::queue::{dead_letter_keys, uses_queue_extensions};
use crate::test_support::*;

fn entry(id: &str, fields: &[&str]) -> Reply {
    array(vec![bulk(id), bulks(fields)])
}

/// The reply of a group read of `{s}` that served `entries`.
fn served(entries: Vec<Reply>) -> Reply {
    array(vec![array(vec![bulk("{s}"), array(entries)])])
}

fn read(h: &mut Harness, consumer: &str) -> Reply {
    h.run(&format!(
        "xreadgroup group g {consumer} count 10 streams {{s}} >"
    ))
}

/// Returns `[id, consumer, idle, deliveries]` of every pending entry.
fn pending(h: &mut Harness) -> Vec<(String, String, i64)> {
    let Reply::Array(entries) = h.run("xpending {s} g - + 100") else {
        panic!("xpending");
    };
    entries
        .into_iter()
        .map(|entry| match entry {
            Reply::Array(parts) => match (&parts[0], &parts[1], &parts[3]) {
                (Reply::Bulk(id), Reply::Bulk(consumer), Reply::Integer(deliveries)) => (
                    String::from_utf8_lossy(id).into_owned(),
                    String::from_utf8_lossy(consumer).into_owned(),
                    *deliveries,
                ),
                other => panic!("pending entry {other:?}"),
            },
            other => panic!("pending entry {other:?}"),
        })
        .collect()
}

fn field(reply: &Reply, name: &str) -> Option<Reply> {
    match reply {
        Reply::Map(pairs) => pairs
            .iter()
            .find(|(key, _)| *key == bulk(name))
            .map(|(_, value)| value.clone()),
        other => panic!("not a map: {other:?}"),
    }
}

fn first_group(h: &mut Harness) -> Reply {
    match h.run("xinfo groups {s}") {
        Reply::Array(mut groups) => groups.remove(0),
        other => panic!("xinfo groups: {other:?}"),
    }
}

#[test]
fn an_unacknowledged_entry_goes_to_the_next_reader_after_the_ack_wait_and_not_before() {
    let mut h = Harness::new();
    h.run("xgroup create {s} g $ mkstream ackwait 1000");
    h.run("xadd {s} 1-1 f a");
    assert_eq!(read(&mut h, "c1"), served(vec![entry("1-1", &["f", "a"])]));
    h.advance(999);
    assert_eq!(read(&mut h, "c2"), Reply::NullArray);
    assert_eq!(pending(&mut h), [("1-1".into(), "c1".into(), 1)]);
    h.advance(1);
    h.run("xadd {s} 2-1 f b");
    // Claimed for the reader at apply, before the new entry.
    assert_eq!(
        read(&mut h, "c2"),
        served(vec![entry("1-1", &["f", "a"]), entry("2-1", &["f", "b"])])
    );
    assert_eq!(
        pending(&mut h),
        [
            ("1-1".into(), "c2".into(), 2),
            ("2-1".into(), "c2".into(), 1)
        ]
    );
    // The new delivery starts a new ack-wait; an acknowledgement ends it.
    h.advance(500);
    assert_eq!(h.run("xack {s} g 2-1"), int(1));
    h.advance(500);
    assert_eq!(read(&mut h, "c3"), served(vec![entry("1-1", &["f", "a"])]));
    assert_eq!(pending(&mut h), [("1-1".into(), "c3".into(), 3)]);
    let group = first_group(&mut h);
    assert_eq!(field(&group, "redeliveries"), Some(int(2)));
}

#[test]
fn count_bounds_redeliveries_and_new_entries_together() {
    let mut h = Harness::new();
    h.run("xgroup create {s} g $ mkstream ackwait 10");
    for id in ["1-1", "2-1", "3-1"] {
        h.run(&format!("xadd {{s}} {id} f v"));
    }
    h.run("xreadgroup group g c1 count 2 streams {s} >");
    h.advance(10);
    assert_eq!(
        h.run("xreadgroup group g c2 count 1 streams {s} >"),
        served(vec![entry("1-1", &["f", "v"])])
    );
    assert_eq!(
        h.run("xreadgroup group g c2 count 2 streams {s} >"),
        served(vec![entry("2-1", &["f", "v"]), entry("3-1", &["f", "v"])])
    );
}

#[test]
fn an_entry_past_max_deliveries_moves_to_the_dead_letter_stream() {
    let mut h = Harness::new();
    h.record_all_events();
    h.run("xgroup create {s} g $ mkstream ackwait 100 maxdeliveries 2 deadletter {s}:dead");
    h.run("xadd {s} 1-1 f a g b");
    read(&mut h, "c1");
    h.advance(100);
    assert_eq!(
        read(&mut h, "c2"),
        served(vec![entry("1-1", &["f", "a", "g", "b"])])
    );
    h.advance(99);
    assert_eq!(
        h.run("xpending {s} g due - + 10"),
        array(vec![]),
        "not due yet"
    );
    h.advance(1);
    assert_eq!(
        h.run("xpending {s} g due - + 10"),
        array(vec![array(vec![bulk("1-1"), bulk("c2"), int(100), int(2)])])
    );
    h.events();
    // Delivered twice: the read moves it instead of delivering it.
    assert_eq!(read(&mut h, "c3"), Reply::NullArray);
    assert_eq!(
        h.events(),
        [
            ("new", "{s}:dead".to_owned()),
            ("xadd", "{s}:dead".to_owned()),
            ("xdeadletter", "{s}".to_owned()),
        ]
    );
    assert!(pending(&mut h).is_empty());
    let moved_at = h.now_ms;
    assert_eq!(
        h.run("xrange {s}:dead - +"),
        array(vec![entry(
            &format!("{moved_at}-0"),
            &[
                "source-stream",
                "{s}",
                "source-group",
                "g",
                "source-id",
                "1-1",
                "last-consumer",
                "c2",
                "deliveries",
                "2",
                "reason",
                "max-deliveries",
                "f",
                "a",
                "g",
                "b",
            ]
        )])
    );
    let group = first_group(&mut h);
    assert_eq!(field(&group, "dead-lettered"), Some(int(1)));
    assert_eq!(field(&group, "pending"), Some(int(0)));
    // Nothing comes back later.
    h.advance(10_000);
    assert_eq!(read(&mut h, "c1"), Reply::NullArray);
    assert_eq!(h.run("xlen {s}:dead"), int(1));
}

#[test]
fn without_a_dead_letter_stream_an_exhausted_entry_stays_pending_undelivered() {
    let mut h = Harness::new();
    h.run("xgroup create {s} g $ mkstream ackwait 100 maxdeliveries 1");
    h.run("xadd {s} 1-1 f a");
    read(&mut h, "c1");
    h.advance(1000);
    assert_eq!(read(&mut h, "c2"), Reply::NullArray);
    assert_eq!(pending(&mut h), [("1-1".into(), "c1".into(), 1)]);
    // Still there for XCLAIM, and due (XPENDING DUE lists it).
    assert_eq!(
        h.run("xpending {s} g due - + 10"),
        array(vec![array(vec![
            bulk("1-1"),
            bulk("c1"),
            int(1000),
            int(1)
        ])])
    );
    // Configured later, the dead-letter stream takes it at the next read.
    assert_eq!(h.run("xgroup setoptions {s} g deadletter {s}:dead"), ok());
    assert_eq!(read(&mut h, "c2"), Reply::NullArray);
    assert_eq!(h.run("xlen {s}:dead"), int(1));
}

#[test]
fn a_dead_letter_key_of_another_type_keeps_the_entry_pending() {
    let mut h = Harness::new();
    h.run("xgroup create {s} g $ mkstream ackwait 100 maxdeliveries 1 deadletter {s}:dead");
    h.run("xadd {s} 1-1 f a");
    read(&mut h, "c1");
    h.run("set {s}:dead oops");
    h.advance(1000);
    assert_eq!(read(&mut h, "c2"), Reply::NullArray);
    assert_eq!(pending(&mut h), [("1-1".into(), "c1".into(), 1)]);
    h.run("del {s}:dead");
    assert_eq!(read(&mut h, "c2"), Reply::NullArray);
    assert!(pending(&mut h).is_empty());
    assert_eq!(h.run("xlen {s}:dead"), int(1));
}

#[test]
fn xnack_makes_entries_due_at_once_or_after_a_delay() {
    let mut h = Harness::new();
    h.record_all_events();
    // No ack-wait: only XNACK makes entries due again.
    h.run("xgroup create {s} g $ mkstream");
    h.run("xadd {s} 1-1 f a");
    h.run("xadd {s} 2-1 f b");
    read(&mut h, "c1");
    h.events();
    assert_eq!(h.run("xnack {s} g 1-1 9-9"), int(1));
    assert_eq!(h.events(), [("xnack", "{s}".to_owned())]);
    assert_eq!(h.run("xnack {s} g delay 500 2-1"), int(1));
    assert_eq!(read(&mut h, "c2"), served(vec![entry("1-1", &["f", "a"])]));
    h.advance(499);
    assert_eq!(read(&mut h, "c2"), Reply::NullArray);
    h.advance(1);
    assert_eq!(read(&mut h, "c3"), served(vec![entry("2-1", &["f", "b"])]));
    assert_eq!(
        pending(&mut h),
        [
            ("1-1".into(), "c2".into(), 2),
            ("2-1".into(), "c3".into(), 2)
        ]
    );
    // Delivered again, they are not due again: the group has no ack-wait.
    h.advance(100_000);
    assert_eq!(read(&mut h, "c4"), Reply::NullArray);
    // A nack-only group shows Redis's shape again once nothing is nacked.
    assert_eq!(field(&first_group(&mut h), "nacked"), None);
    assert_eq!(h.run("xnack {s} g 1-1"), int(1));
    assert_eq!(field(&first_group(&mut h), "nacked"), Some(int(1)));
}

#[test]
fn nacks_count_toward_max_deliveries() {
    let mut h = Harness::new();
    h.run("xgroup create {s} g $ mkstream maxdeliveries 2 deadletter {s}:dead");
    h.run("xadd {s} 1-1 f a");
    read(&mut h, "c1");
    h.run("xnack {s} g 1-1");
    assert_eq!(read(&mut h, "c1"), served(vec![entry("1-1", &["f", "a"])]));
    h.run("xnack {s} g 1-1");
    assert_eq!(read(&mut h, "c1"), Reply::NullArray);
    assert_eq!(h.run("xlen {s}:dead"), int(1));
}

#[test]
fn noack_readers_acknowledge_what_is_redelivered_to_them() {
    let mut h = Harness::new();
    h.run("xgroup create {s} g $ mkstream ackwait 10");
    h.run("xadd {s} 1-1 f a");
    read(&mut h, "c1");
    h.advance(10);
    assert_eq!(
        h.run("xreadgroup group g c2 noack streams {s} >"),
        served(vec![entry("1-1", &["f", "a"])])
    );
    assert!(pending(&mut h).is_empty());
}

#[test]
fn a_due_entry_deleted_from_the_stream_leaves_the_pending_list() {
    let mut h = Harness::new();
    h.run("xgroup create {s} g $ mkstream ackwait 10");
    h.run("xadd {s} 1-1 f a");
    h.run("xadd {s} 2-1 f b");
    read(&mut h, "c1");
    h.run("xdel {s} 1-1");
    h.advance(10);
    assert_eq!(read(&mut h, "c2"), served(vec![entry("2-1", &["f", "b"])]));
    assert_eq!(pending(&mut h), [("2-1".into(), "c2".into(), 2)]);
}

#[test]
fn reading_ones_own_history_forgets_a_nack() {
    let mut h = Harness::new();
    h.run("xgroup create {s} g $ mkstream");
    h.run("xadd {s} 1-1 f a");
    read(&mut h, "c1");
    h.run("xnack {s} g delay 100 1-1");
    h.run("xreadgroup group g c1 streams {s} 0");
    h.advance(100);
    assert_eq!(read(&mut h, "c2"), Reply::NullArray);
    assert_eq!(pending(&mut h), [("1-1".into(), "c1".into(), 2)]);
}

#[test]
fn xinfo_shows_the_options_only_when_a_group_has_them() {
    let mut h = Harness::new();
    h.run("xgroup create {s} g $ mkstream");
    let redis_shape = |group: &Reply| match group {
        Reply::Map(pairs) => pairs.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(redis_shape(&first_group(&mut h)), 6);
    h.run("xgroup setoptions {s} g ackwait 30000 maxdeliveries 5 deadletter {s}:dead");
    let group = first_group(&mut h);
    assert_eq!(field(&group, "ack-wait"), Some(int(30_000)));
    assert_eq!(field(&group, "max-deliveries"), Some(int(5)));
    assert_eq!(field(&group, "dead-letter"), Some(bulk("{s}:dead")));
    assert_eq!(field(&group, "due"), Some(int(0)));
    // SETOPTIONS changes only what it names.
    h.run("xgroup setoptions {s} g maxdeliveries 0 nodeadletter");
    let group = first_group(&mut h);
    assert_eq!(field(&group, "ack-wait"), Some(int(30_000)));
    assert_eq!(field(&group, "max-deliveries"), Some(Reply::Null));
    assert_eq!(field(&group, "dead-letter"), Some(Reply::Null));
    let full = h.run("xinfo stream {s} full");
    let Some(Reply::Array(groups)) = field(&full, "groups") else {
        panic!("{full:?}");
    };
    assert_eq!(field(&groups[0], "ack-wait"), Some(int(30_000)));
    // Every option cleared: Redis's shape again.
    h.run("xgroup setoptions {s} g ackwait 0");
    assert_eq!(redis_shape(&first_group(&mut h)), 6);
    let full = h.run("xinfo stream {s} full");
    let Some(Reply::Array(groups)) = field(&full, "groups") else {
        panic!("{full:?}");
    };
    assert_eq!(field(&groups[0], "ack-wait"), None);
}

#[test]
fn a_group_without_options_redelivers_nothing_as_in_redis() {
    let mut h = Harness::new();
    h.run("xgroup create {s} g $ mkstream");
    h.run("xadd {s} 1-1 f a");
    read(&mut h, "c1");
    h.advance(365 * 24 * 3600 * 1000);
    assert_eq!(read(&mut h, "c2"), Reply::NullArray);
    assert_eq!(h.run("xpending {s} g due - + 10"), array(vec![]));
    assert_eq!(pending(&mut h), [("1-1".into(), "c1".into(), 1)]);
}

#[test]
fn options_are_validated_with_redis_style_errors() {
    let mut h = Harness::new();
    h.run("set {s}:str v");
    h.run("xgroup create {s} g $ mkstream");
    let not_integer = "ERR value is not an integer or out of range";
    let cases: &[(&str, &str)] = &[
        ("xgroup create {s} h $ ackwait abc", not_integer),
        (
            "xgroup create {s} h $ ackwait -1",
            "ERR value for ACKWAIT must be positive or 0",
        ),
        (
            "xgroup create {s} h $ ackwait 31536000001",
            "ERR value for ACKWAIT must be at most 31536000000 milliseconds",
        ),
        (
            "xgroup create {s} h $ maxdeliveries -2",
            "ERR value for MAXDELIVERIES must be positive or 0",
        ),
        ("xgroup create {s} h $ ackwait 1 ackwait 2", "ERR syntax error"),
        (
            "xgroup create {s} h $ deadletter other",
            "CROSSSLOT Keys in request don't hash to the same slot",
        ),
        (
            "xgroup create {s} h $ deadletter {s}",
            "ERR the dead-letter stream must be another key than the stream",
        ),
        (
            "xgroup create {s} h $ deadletter {s}:str",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            "xgroup create {s} h $ deadletter {s}:d nodeadletter",
            "ERR syntax error",
        ),
        (
            "xgroup create {s} g $ ackwait 5",
            "BUSYGROUP Consumer Group name already exists",
        ),
        (
            "xgroup setoptions {s} nogroup ackwait 5",
            "NOGROUP No such consumer group 'nogroup' for key name '{s}'",
        ),
        (
            "xgroup setoptions {s}:nokey g ackwait 5",
            "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
        ),
        (
            "xgroup setoptions {s} g mkstream",
            "ERR unknown subcommand or wrong number of arguments for 'setoptions'. Try XGROUP HELP.",
        ),
        (
            "xgroup setoptions {s} g",
            "ERR wrong number of arguments for 'xgroup|setoptions' command",
        ),
        (
            "xnack {s} nogroup 1-1",
            "NOGROUP No such key '{s}' or consumer group 'nogroup'",
        ),
        (
            "xnack {s}:nokey g 1-1",
            "NOGROUP No such key '{s}:nokey' or consumer group 'g'",
        ),
        (
            "xnack {s}:str g 1-1",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            "xnack {s} g delay -1 1-1",
            "ERR value for DELAY must be positive or 0",
        ),
        (
            "xnack {s} g 1-x",
            "ERR Invalid stream ID specified as stream command argument",
        ),
        (
            "xnack {s} g delay 5",
            "ERR wrong number of arguments for 'xnack' command",
        ),
        (
            "xpending {s} g due - + 10 c extra",
            "ERR syntax error",
        ),
    ];
    for (line, error) in cases {
        assert_error(&h.run(line), error);
    }
    // Nothing was created by a refused command.
    let Reply::Array(groups) = h.run("xinfo groups {s}") else {
        panic!("xinfo groups");
    };
    assert_eq!(groups.len(), 1);
    // Redis's forms are unchanged.
    assert_eq!(h.run("xgroup create {s} h $ entriesread 0"), ok());
    assert_eq!(h.run("xgroup create {s} i 0 ackwait 0"), ok());
}

#[test]
fn only_the_extensions_need_the_newer_entry_format() {
    let table: &[(&str, bool)] = &[
        ("xnack {s} g 1-1", true),
        ("xgroup setoptions {s} g ackwait 5", true),
        ("xgroup create {s} g $ ackwait 5", true),
        ("xgroup create {s} g $ mkstream nodeadletter", true),
        ("xgroup create {s} g $ mkstream", false),
        ("xgroup create {s} g $ entriesread 3", false),
        ("xgroup setid {s} g 0", false),
        ("xreadgroup group g c streams {s} >", false),
        ("xack {s} g 1-1", false),
        ("xadd {s} * f v", false),
    ];
    for (line, extended) in table {
        assert_eq!(uses_queue_extensions(&args(line)), *extended, "{line}");
    }
}

#[test]
fn a_group_read_may_append_to_its_dead_letter_stream() {
    let mut h = Harness::new();
    h.run("xgroup create {s} g $ mkstream deadletter {s}:dead");
    h.run("xgroup create {s} plain $");
    let keys = |h: &Harness, line: &str| dead_letter_keys(&h.db, &args(line), h.now_ms);
    assert_eq!(
        keys(&h, "xreadgroup group g c streams {s} >"),
        [bytes::Bytes::from("{s}:dead")]
    );
    assert!(keys(&h, "xreadgroup group plain c streams {s} >").is_empty());
    assert!(keys(&h, "xack {s} g 1-1").is_empty());
}

#[test]
fn setoptions_records_its_event() {
    let mut h = Harness::new();
    h.record_all_events();
    h.run("xgroup create {s} g $ mkstream ackwait 5");
    assert_events(
        &mut h,
        &[
            (
                "xgroup setoptions {s} g ackwait 10",
                &[("xgroup-setoptions", "{s}")],
            ),
            ("xgroup setoptions {s} nogroup ackwait 10", &[]),
            ("xnack {s} g 1-1", &[]),
        ],
    );
}

#[test]
fn a_group_read_reply_takes_resp3_shape_for_resp3_clients() {
    let mut h = Harness::new();
    h.run("xgroup create {s} g $ mkstream");
    h.run("xadd {s} 1-1 f a");
    let reply = super::streams_reply_resp3(read(&mut h, "c"));
    assert_eq!(
        reply,
        Reply::Map(vec![(bulk("{s}"), array(vec![entry("1-1", &["f", "a"])]))])
    );
    assert_eq!(
        super::streams_reply_resp3(Reply::NullArray),
        Reply::NullArray
    );
}
