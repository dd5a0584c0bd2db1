#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_store::event_class;

use super::*;

fn event(key: &str, name: &'static str) -> KeyEvent {
    KeyEvent {
        class: event_class::GENERIC,
        event: name,
        key: Bytes::copy_from_slice(key.as_bytes()),
    }
}

fn state(text: &str) -> FeedState {
    FeedState {
        feeds: Feeds::parse(text, 1).unwrap(),
        ..FeedState::default()
    }
}

fn summary(outbox: &VecDeque<FeedEvent>) -> Vec<(String, String, String, Position)> {
    outbox
        .iter()
        .map(|event| {
            (
                String::from_utf8_lossy(&event.stream).into_owned(),
                String::from_utf8_lossy(&event.key).into_owned(),
                event.event.clone(),
                event.position,
            )
        })
        .collect()
}

#[test]
fn events_of_feed_prefixes_enter_the_outbox_in_order_with_their_positions() {
    let mut feed = state("orders: feed:orders users: feed:users");
    feed.record(
        7,
        &[
            event("orders:1", "set"),
            event("other", "set"),
            event("users:a", "hset"),
            event("orders:1", "expire"),
            // A feed stream is never fed, even when a prefix covers it.
            event("feed:orders", "xadd"),
        ],
        |key| (key == b"orders:1").then(|| Bytes::from_static(b"v")),
    );
    assert_eq!(feed.outbox[0].value, Some(Bytes::from_static(b"v")));
    assert_eq!(feed.outbox[1].value, None);
    feed.record(8, &[event("orders:2", "del")], |_| None);
    let s = |text: &str| text.to_owned();
    assert_eq!(
        summary(&feed.outbox),
        vec![
            (s("feed:orders"), s("orders:1"), s("set"), (7, 0)),
            (s("feed:users"), s("users:a"), s("hset"), (7, 1)),
            (s("feed:orders"), s("orders:1"), s("expire"), (7, 2)),
            (s("feed:orders"), s("orders:2"), s("del"), (8, 0)),
        ]
    );
    feed.acked((7, 2));
    assert_eq!(feed.outbox.len(), 1);
    feed.acked((9, 0));
    assert!(feed.outbox.is_empty());
}

#[test]
fn without_feeds_nothing_is_recorded() {
    let mut feed = FeedState::default();
    feed.record(1, &[event("orders:1", "set")], |_| None);
    assert!(feed.outbox.is_empty());
}

#[test]
fn an_append_sent_again_adds_only_what_is_new_per_stream_and_source() {
    let mut feed = state("a: s");
    feed.record(3, &[event("a:1", "set"), event("a:2", "set")], |_| None);
    feed.record(4, &[event("a:3", "set")], |_| None);
    let events: Vec<FeedEvent> = feed.outbox.iter().cloned().collect();
    let mut holder = FeedState::default();
    assert_eq!(holder.unseen(1, events[..2].to_vec()).len(), 2);
    // The same batch again, longer: only the new event; another source's
    // events at the same positions are its own.
    assert_eq!(holder.unseen(1, events.clone()).len(), 1);
    assert_eq!(holder.unseen(1, events.clone()).len(), 0);
    assert_eq!(holder.unseen(2, events).len(), 3);
}

#[test]
fn config_text_parses_pairs_and_prints_back() {
    let feeds = Feeds::parse("b: s2 a: s1 a: s1", 5).unwrap();
    assert_eq!(feeds.version, 5);
    assert_eq!(feeds.to_text(), "a: s1 b: s2");
    assert!(Feeds::parse("a: s1 b:", 1).is_err());
    assert_eq!(Feeds::parse("", 2).unwrap().feeds, vec![]);
}

#[test]
fn a_full_outbox_is_full() {
    let mut feed = state("k s");
    let events: Vec<KeyEvent> = (0..OUTBOX_EVENTS_MAX).map(|_| event("k", "set")).collect();
    feed.record(1, &events[..OUTBOX_EVENTS_MAX - 1], |_| None);
    assert!(!feed.is_full());
    feed.record(2, &events[..1], |_| None);
    assert!(feed.is_full());
}
