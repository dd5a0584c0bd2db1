//! The key events stream commands record: the sequences Redis 7.0
//! notifies (`notifyKeyspaceEvent` in t_stream.c; tests/unit/pubsub.tcl,
//! "Keyspace notifications: stream events test").

use polis_store::event_class;

use crate::test_support::*;

// Reference: pubsub.tcl, "Keyspace notifications: stream events test".
#[test]
fn stream_events_of_groups_and_consumers() {
    let mut h = Harness::new();
    h.db.set_events_mask(event_class::STREAM);
    h.run("xgroup create mystream mygroup $ mkstream");
    h.run("xgroup createconsumer mystream mygroup Bob");
    h.run("xadd mystream 1 field1 A");
    h.run("xreadgroup group mygroup Alice STREAMS mystream >");
    h.run("xclaim mystream mygroup Mike 0 1-0 force");
    // Not recorded: Lee does not exist.
    h.run("xgroup delconsumer mystream mygroup Lee");
    // Not recorded: Bob exists.
    h.run("xautoclaim mystream mygroup Bob 0 1-0");
    h.run("xgroup delconsumer mystream mygroup Bob");
    let events: Vec<&str> = h.events().iter().map(|(event, _)| *event).collect();
    assert_eq!(
        events,
        [
            "xgroup-create",
            "xgroup-createconsumer",
            "xadd",
            "xgroup-createconsumer",
            "xgroup-createconsumer",
            "xgroup-delconsumer",
        ]
    );
}

#[test]
fn stream_events() {
    let mut h = Harness::new();
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            ("xadd s 1 f v", &[("new", "s"), ("xadd", "s")]),
            ("xadd s 2 f v", &[("xadd", "s")]),
            // XADD records xtrim after xadd when its MAXLEN trimmed.
            ("xadd s maxlen 2 3 f v", &[("xadd", "s"), ("xtrim", "s")]),
            ("xadd s maxlen 5 4 f v", &[("xadd", "s")]),
            ("xadd s 1 f v", &[]),
            ("xadd nokey nomkstream * f v", &[]),
            ("xtrim s maxlen 10", &[]),
            ("xtrim s maxlen 2", &[("xtrim", "s")]),
            ("xtrim nokey maxlen 2", &[]),
            ("xdel s 999", &[]),
            ("xdel s 3", &[("xdel", "s")]),
            // A stream left empty stays: no del.
            ("xdel s 4", &[("xdel", "s")]),
            ("xsetid s 100", &[("xsetid", "s")]),
            ("xsetid nokey 100", &[]),
        ],
    );
}

#[test]
fn stream_group_events() {
    let mut h = Harness::new();
    h.run("xadd s 1 f v");
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            ("xgroup create s g $", &[("xgroup-create", "s")]),
            ("xgroup create s g $", &[]),
            ("xgroup setid s g 0", &[("xgroup-setid", "s")]),
            ("xgroup destroy s nogroup", &[]),
            ("xgroup destroy s g", &[("xgroup-destroy", "s")]),
            (
                "xgroup create ns g $ mkstream",
                &[("new", "ns"), ("xgroup-create", "ns")],
            ),
            (
                "xgroup createconsumer ns g c",
                &[("xgroup-createconsumer", "ns")],
            ),
            ("xgroup createconsumer ns g c", &[]),
            // Nothing to serve: Redis 7.0 creates no consumer then.
            ("xreadgroup group g c2 streams ns >", &[]),
            ("xadd ns 5 f v", &[("xadd", "ns")]),
            (
                "xreadgroup group g c2 streams ns >",
                &[("xgroup-createconsumer", "ns")],
            ),
            ("xreadgroup group g c2 streams ns 0", &[]),
            ("xack ns g 5", &[]),
            ("xclaim ns g c 0 5 force", &[]),
            ("xautoclaim ns g c3 0 0", &[("xgroup-createconsumer", "ns")]),
            (
                "xgroup delconsumer ns g c3",
                &[("xgroup-delconsumer", "ns")],
            ),
        ],
    );
}
