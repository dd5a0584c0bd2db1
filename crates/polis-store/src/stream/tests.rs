use super::*;

fn fields(items: &[&str]) -> Vec<Bytes> {
    items
        .iter()
        .map(|item| Bytes::from(item.to_string()))
        .collect()
}

fn stream_of(count: u64, limits: NodeLimits) -> StreamValue {
    let mut stream = StreamValue::new();
    for ms in 1..=count {
        stream.append(StreamId::new(ms, 0), fields(&["xitem", "v"]), limits);
    }
    stream
}

#[test]
fn appends_fill_nodes_up_to_the_entry_limit() {
    let stream = stream_of(250, NodeLimits::default());
    assert_eq!(stream.len(), 250);
    assert_eq!(stream.nodes().len(), 3);
    assert_eq!(stream.first_id, StreamId::new(1, 0));
    assert_eq!(stream.last_id, StreamId::new(250, 0));
    assert_eq!(stream.entries_added, 250);
}

#[test]
fn large_entries_fill_nodes_by_bytes() {
    let mut stream = StreamValue::new();
    let big = "x".repeat(1000);
    for ms in 1..=10 {
        stream.append(
            StreamId::new(ms, 0),
            fields(&["f", &big]),
            NodeLimits::default(),
        );
    }
    // About 1 KB an entry and 4 KB a node: four nodes at least.
    assert!(stream.nodes().len() >= 3, "{}", stream.nodes().len());
}

#[test]
fn approximate_trims_remove_whole_nodes_only() {
    // Redis: 1000 entries, MAXLEN ~ 555 with 100 a node leaves 600.
    let mut stream = stream_of(1000, NodeLimits::default());
    let trim = Trim {
        strategy: TrimStrategy::MaxLen(555),
        approx: true,
        limit: 10_000,
    };
    assert_eq!(stream.trim(trim), 400);
    assert_eq!(stream.len(), 600);
    assert_eq!(stream.first_id, StreamId::new(401, 0));
    // Exact trims cut inside a node.
    let exact = Trim {
        strategy: TrimStrategy::MaxLen(555),
        approx: false,
        limit: 0,
    };
    assert_eq!(stream.trim(exact), 45);
    assert_eq!(stream.len(), 555);
    assert_eq!(stream.nodes().len(), 6);
}

#[test]
fn trims_respect_the_limit() {
    let limits = NodeLimits {
        max_entries: 10,
        max_bytes: 4096,
    };
    let mut stream = stream_of(100, limits);
    stream.append(StreamId::new(101, 0), fields(&["xitem", "v"]), limits);
    let trim = Trim {
        strategy: TrimStrategy::MaxLen(55),
        approx: true,
        limit: 30,
    };
    assert_eq!(stream.trim(trim), 30);
    assert_eq!(stream.len(), 71);
}

#[test]
fn minid_trims_and_deletes_track_the_first_and_largest_deleted_ids() {
    let mut stream = stream_of(5, NodeLimits::default());
    assert_eq!(stream.delete(&[StreamId::new(2, 0)]), 1);
    assert_eq!(stream.first_id, StreamId::new(1, 0));
    assert_eq!(
        stream.delete(&[StreamId::new(1, 0), StreamId::new(9, 0)]),
        1
    );
    assert_eq!(stream.first_id, StreamId::new(3, 0));
    assert_eq!(stream.max_deleted_id, StreamId::new(2, 0));
    let trim = Trim {
        strategy: TrimStrategy::MinId(StreamId::new(4, 0)),
        approx: false,
        limit: 0,
    };
    assert_eq!(stream.trim(trim), 1);
    assert_eq!(stream.first_id, StreamId::new(4, 0));
}

#[test]
fn a_node_goes_when_its_last_live_entry_is_deleted() {
    let mut stream = stream_of(2, NodeLimits::default());
    stream.delete(&[StreamId::new(1, 0), StreamId::new(2, 0)]);
    assert!(stream.nodes().is_empty());
    assert_eq!(stream.first_id, StreamId::MIN);
    assert_eq!(stream.last_id, StreamId::new(2, 0));
}

#[test]
fn lag_follows_redis_estimates() {
    let mut stream = stream_of(5, NodeLimits::default());
    stream.groups.insert(
        Bytes::from_static(b"g"),
        ConsumerGroup::new(StreamId::MIN, None),
    );
    let lag = |stream: &StreamValue| stream.lag(&stream.groups[&b"g"[..]]);
    assert_eq!(lag(&stream), Some(5));
    stream.advance_group(b"g", StreamId::new(1, 0));
    assert_eq!(stream.groups[&b"g"[..]].entries_read, Some(1));
    assert_eq!(lag(&stream), Some(4));
    stream.delete(&[StreamId::new(3, 0)]);
    assert_eq!(lag(&stream), None);
}

#[test]
fn pending_entries_move_between_consumers() {
    let mut group = ConsumerGroup::new(StreamId::MIN, None);
    let alice = Bytes::from_static(b"alice");
    let bob = Bytes::from_static(b"bob");
    group.touch_consumer(&alice, 10);
    group.touch_consumer(&bob, 10);
    let id = StreamId::new(1, 0);
    group.assign(id, &alice, 10).deliveries = 1;
    group.assign(id, &bob, 20);
    assert!(group.consumers[&alice].pending.is_empty());
    assert!(group.consumers[&bob].pending.contains(&id));
    assert_eq!(group.pending[&id].consumer, bob);
    assert!(group.ack(id));
    assert!(!group.ack(id));
    assert!(group.consumers[&bob].pending.is_empty());
}
