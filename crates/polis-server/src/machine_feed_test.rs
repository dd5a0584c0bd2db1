//! The change feed's part of the state machine, entry by entry: events
//! recorded at apply, appended once, acknowledged, kept in snapshots, and
//! the feed stream's own slot moving away.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use bytes::Bytes;
use polis_raft::StateMachine;
use polis_resp::Reply;
use polis_types::GroupId;

use crate::machine::tests::{apply, args, logged, own};
use crate::machine::{Applied, DataMachine, Op};

#[test]
fn the_change_feed_records_committed_writes_appends_once_and_survives_a_snapshot() {
    let mut source = DataMachine::new(GroupId(1));
    apply(&mut source, 1, &own(1, &[(0, 16383)]));
    let feeds = crate::feed::Feeds::parse("orders: {feed}orders", 10).unwrap();
    apply(&mut source, 2, &Op::Feeds(feeds.clone()));
    // An older version changes nothing.
    apply(
        &mut source,
        3,
        &Op::Feeds(crate::feed::Feeds::parse("x y", 9).unwrap()),
    );
    assert_eq!(source.feed.feeds, feeds);
    apply(&mut source, 4, &Op::Command(logged("SET orders:1 a")));
    apply(&mut source, 5, &Op::Command(logged("SET other b")));
    apply(&mut source, 6, &Op::Command(logged("INCR orders:1")));
    apply(&mut source, 7, &Op::Command(logged("DEL orders:1")));
    let outbox: Vec<(String, u64)> = source
        .feed
        .outbox
        .iter()
        .map(|event| (event.event.clone(), event.position.0))
        .collect();
    // INCR failed (not an integer): no event for it.
    assert_eq!(
        outbox,
        vec![
            ("new".to_owned(), 4),
            ("set".to_owned(), 4),
            ("del".to_owned(), 7)
        ]
    );

    let mut restored = DataMachine::new(GroupId(1));
    restored.restore(&source.snapshot()).unwrap();
    // What is replicated comes back (the next position is per entry).
    assert_eq!(restored.feed.feeds, source.feed.feeds);
    assert_eq!(restored.feed.outbox, source.feed.outbox);
    assert_eq!(restored.feed.marks, source.feed.marks);

    // The stream's holder appends once, however often it is sent.
    let mut holder = DataMachine::new(GroupId(2));
    apply(&mut holder, 1, &own(1, &[(0, 16383)]));
    let events: Vec<crate::feed::FeedEvent> = source.feed.outbox.iter().cloned().collect();
    for index in [2, 3] {
        apply(
            &mut holder,
            index,
            &Op::FeedAppend {
                source: GroupId(1),
                events: events.clone(),
            },
        );
    }
    let read = polis_commands::execute_read(&holder.db, &args("XLEN {feed}orders"), 5_000);
    assert_eq!(read, Reply::Integer(3));
    let entries = polis_commands::execute_read(&holder.db, &args("XRANGE {feed}orders - +"), 5_000);
    let text = format!("{entries:?}");
    for field in ["orders:1", "index", "seq", "shard", "value"] {
        assert!(text.contains(field), "{text}");
    }
    apply(
        &mut source,
        8,
        &Op::FeedAcked {
            through: events[2].position,
        },
    );
    assert!(source.feed.outbox.is_empty());
}

/// The events shard 1 recorded for `keys`, one SET each (shard 1 owns
/// every slot).
fn recorded_events(keys: &[&str]) -> Vec<crate::feed::FeedEvent> {
    let mut source = DataMachine::new(GroupId(1));
    apply(&mut source, 1, &own(1, &[(0, 16383)]));
    let feeds = crate::feed::Feeds::parse("orders: {feed}orders", 10).unwrap();
    apply(&mut source, 2, &Op::Feeds(feeds));
    for (index, key) in (3..).zip(keys) {
        apply(
            &mut source,
            index,
            &Op::Command(logged(&format!("SET {key} v"))),
        );
    }
    source.feed.outbox.iter().cloned().collect()
}

#[test]
fn entries_appended_to_a_stream_whose_slot_is_copied_away_are_shipped() {
    let stream = Bytes::from_static(b"{feed}orders");
    let slot = polis_types::key_hash_slot(&stream).get();
    let mut holder = DataMachine::new(GroupId(2));
    apply(&mut holder, 1, &own(1, &[(0, 16383)]));
    let tracked = match own(0, &[(slot, slot)]) {
        Op::Own { slots, .. } => slots,
        _ => unreachable!(),
    };
    apply(
        &mut holder,
        2,
        &Op::Track {
            migration: 7,
            slots: tracked,
        },
    );
    let events = recorded_events(&["orders:1", "orders:2"]);
    apply(
        &mut holder,
        3,
        &Op::FeedAppend {
            source: GroupId(1),
            events: events[..2].to_vec(),
        },
    );
    // What the copy ships after it last looked (index 2) holds the stream
    // with the entries appended since: without it, they would stay behind
    // at the switch, and the source, told they arrived, never sends them
    // again.
    let shipped = holder.migrations.changed_after(&holder.db, 2);
    assert_eq!(shipped.len(), 1, "{shipped:?}");
    assert_eq!(shipped[0].0, stream);
    assert!(shipped[0].1.is_some());

    // Frozen for the switch: refused whole, and the marks stay, so the
    // stream's next owner takes the events.
    apply(&mut holder, 4, &Op::Freeze { migration: 7 });
    let refused = apply(
        &mut holder,
        5,
        &Op::FeedAppend {
            source: GroupId(1),
            events: events.clone(),
        },
    );
    assert!(matches!(refused, Applied::Frozen { .. }), "{refused:?}");
    let length = polis_commands::execute_read(&holder.db, &args("XLEN {feed}orders"), 5_000);
    assert_eq!(length, Reply::Integer(2));
    apply(&mut holder, 6, &Op::Thaw { migration: 7 });
    apply(
        &mut holder,
        7,
        &Op::FeedAppend {
            source: GroupId(1),
            events,
        },
    );
    let length = polis_commands::execute_read(&holder.db, &args("XLEN {feed}orders"), 5_000);
    assert_eq!(length, Reply::Integer(4));
}
