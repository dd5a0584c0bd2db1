//! Due entries of a group with queue options, and how the options and
//! their state are stored.

use bytes::Bytes;

use super::*;
use crate::stream::{NodeLimits, StreamValue};
use crate::{Db, Value};

fn name(text: &str) -> Bytes {
    Bytes::from(text.to_owned())
}

/// A group with entries 1..=3 delivered to `c` at time 100, once each.
fn group_with_three_pending() -> ConsumerGroup {
    let mut group = ConsumerGroup::new(StreamId::new(3, 0), Some(3));
    group.create_consumer(&name("c"), 100);
    for ms in 1..=3 {
        let entry = group.assign(StreamId::new(ms, 0), &name("c"), 100);
        entry.delivered_ms = 100;
        entry.deliveries = 1;
    }
    group
}

fn ids(list: &[u64]) -> Vec<StreamId> {
    list.iter().map(|ms| StreamId::new(*ms, 0)).collect()
}

#[test]
fn a_redis_group_has_nothing_due_ever() {
    let group = group_with_three_pending();
    assert_eq!(group.due_entries(u64::MAX, 10, 10), DueEntries::default());
    assert_eq!(group.next_due_after(0), None);
    assert!(group.queue().is_none());
}

#[test]
fn entries_are_due_once_the_ack_wait_passed_and_not_before() {
    let mut group = group_with_three_pending();
    group.set_options(QueueOptions {
        ack_wait_ms: Some(50),
        ..QueueOptions::default()
    });
    assert_eq!(group.due_entries(149, 10, 10).redeliver, ids(&[]));
    assert_eq!(group.due_entries(150, 10, 10).redeliver, ids(&[1, 2, 3]));
    // The read's count bounds what it takes, in id order.
    assert_eq!(group.due_entries(150, 2, 10).redeliver, ids(&[1, 2]));
    assert_eq!(group.next_due_after(0), Some(150));
    assert_eq!(group.next_due_after(150), None);
}

#[test]
fn exhausted_entries_go_to_the_dead_letter_list_only_with_a_dead_letter_stream() {
    let mut group = group_with_three_pending();
    group
        .pending
        .get_mut(&StreamId::new(2, 0))
        .unwrap()
        .deliveries = 3;
    let mut options = QueueOptions {
        ack_wait_ms: Some(50),
        max_deliveries: Some(3),
        dead_letter: None,
    };
    group.set_options(options.clone());
    let entry = group.pending[&StreamId::new(2, 0)].clone();
    assert_eq!(
        group.due_state(StreamId::new(2, 0), &entry, 150),
        DueState::Exhausted
    );
    assert_eq!(
        group.due_state(StreamId::new(2, 0), &entry, 120),
        DueState::Later(150)
    );
    let due = group.due_entries(150, 10, 10);
    assert_eq!((due.redeliver, due.dead), (ids(&[1, 3]), ids(&[])));
    options.dead_letter = Some(name("{s}:dead"));
    group.set_options(options);
    let due = group.due_entries(150, 10, 10);
    assert_eq!((due.redeliver, due.dead), (ids(&[1, 3]), ids(&[2])));
}

#[test]
fn a_negative_acknowledgement_sets_the_due_time_until_the_entry_moves() {
    let mut group = group_with_three_pending();
    assert!(group.nack(StreamId::new(2, 0), 100));
    assert!(!group.nack(StreamId::new(9, 0), 100));
    assert_eq!(group.due_entries(100, 10, 10).redeliver, ids(&[2]));
    assert!(group.nack(StreamId::new(3, 0), 400));
    assert_eq!(group.due_entries(399, 10, 10).redeliver, ids(&[2]));
    assert_eq!(group.next_due_after(100), Some(400));
    // Delivered again in place, claimed, acknowledged: the nack goes.
    group.redelivered_in_place(StreamId::new(2, 0), 500);
    assert_eq!(group.pending[&StreamId::new(2, 0)].deliveries, 2);
    assert_eq!(group.due_entries(500, 10, 10).redeliver, ids(&[3]));
    group.assign(StreamId::new(3, 0), &name("c"), 500);
    assert!(group.due_entries(500, 10, 10).redeliver.is_empty());
    // Nothing left: a plain Redis group again.
    assert!(group.queue().is_none());
    group.nack(StreamId::new(1, 0), 0);
    assert!(group.ack(StreamId::new(1, 0)));
    assert!(group.queue().is_none());
    group.nack(StreamId::new(2, 0), 0);
    assert_eq!(group.delete_consumer(b"c"), Some(2));
    assert!(group.queue().is_none());
}

#[test]
fn clearing_every_option_makes_a_redis_group_again() {
    let mut group = group_with_three_pending();
    group.set_options(QueueOptions {
        ack_wait_ms: Some(5),
        ..QueueOptions::default()
    });
    assert!(group.queue().is_some());
    group.set_options(QueueOptions::default());
    assert!(group.queue().is_none());
}

/// A stream with one plain group, and one with queue options and a nack.
fn stream_with_queue_state() -> StreamValue {
    let mut stream = StreamValue::new();
    for ms in 1..=3 {
        stream.append(
            StreamId::new(ms, 0),
            vec![name("f"), name("v")],
            NodeLimits::default(),
        );
    }
    stream
        .groups
        .insert(name("plain"), group_with_three_pending());
    let mut queue = group_with_three_pending();
    queue.set_options(QueueOptions {
        ack_wait_ms: Some(30_000),
        max_deliveries: Some(5),
        dead_letter: Some(name("{s}:dead")),
    });
    queue.nack(StreamId::new(2, 0), 1_000);
    queue.queue_mut().redeliveries = 4;
    queue.queue_mut().dead_lettered = 1;
    stream.groups.insert(name("queue"), queue);
    stream
}

#[test]
fn queue_state_survives_encoding_and_snapshots() {
    let value = Value::stream(stream_with_queue_state());
    let encoded = postcard::to_stdvec(&value).unwrap();
    // Its own tag (after the lock's 6): an older binary refuses it rather
    // than drop the state.
    assert_eq!(encoded[0], 7);
    let decoded: Value = postcard::from_bytes(&encoded).unwrap();
    assert_eq!(decoded, value);
    let mut db = Db::new();
    db.insert(name("{s}"), value.clone(), None, 0);
    let restored = Db::from_snapshot(&db.to_snapshot()).unwrap();
    assert_eq!(restored.get(b"{s}", 0), Some(&value));
}

#[test]
fn a_stream_of_redis_groups_keeps_the_bytes_older_binaries_read() {
    let mut stream = stream_with_queue_state();
    stream.groups.remove(b"queue".as_slice());
    let encoded = postcard::to_stdvec(&Value::stream(stream)).unwrap();
    assert_eq!(encoded[0], 5);
}

// Reference: written by the binary before queue options (commit a335107):
// stream `s` with entries 1-0 and 2-0, group `g` at 2-0 with two entries
// read, consumer `c` seen at 5 holding 1-0, delivered at 7, three times.
const SNAPSHOT_BEFORE_QUEUE_OPTIONS: &[u8] = &[
    2, 1, 1, 115, 5, 2, 1, 0, 2, 1, 102, 1, 97, 2, 0, 2, 1, 102, 1, 98, 1, 1, 0, 2, 0, 2, 0, 1, 1,
    102, 36, 2, 0, 1, 0, 0, 0, 2, 1, 1, 103, 2, 0, 1, 2, 1, 1, 0, 1, 99, 7, 3, 1, 1, 99, 5, 1, 1,
    0, 4, 0, 0, 0,
];

#[test]
fn a_snapshot_written_before_queue_options_still_loads() {
    let db = Db::from_snapshot(SNAPSHOT_BEFORE_QUEUE_OPTIONS).unwrap();
    let stream = db.get(b"s", 0).and_then(Value::as_stream).unwrap();
    assert_eq!(stream.len(), 2);
    let group = &stream.groups[b"g".as_slice()];
    assert_eq!(group.last_delivered, StreamId::new(2, 0));
    assert_eq!(group.entries_read, Some(2));
    assert!(group.queue().is_none());
    let entry = &group.pending[&StreamId::new(1, 0)];
    assert_eq!((entry.delivered_ms, entry.deliveries), (7, 3));
    assert_eq!(group.consumers[b"c".as_slice()].seen_ms, 5);
    // Written again, the stream is the same bytes: its encoding did not
    // change. (The snapshot is format 3 now, which adds the evicted-keys
    // counter, 0, after the expired one.)
    assert_eq!(
        db.to_snapshot(),
        crate::snapshot::in_current_format(SNAPSHOT_BEFORE_QUEUE_OPTIONS)
    );
}
