//! Registry tests: the counts Redis answers with, pattern matching, the
//! output limit that disconnects a subscriber that does not read, and
//! forgetting a client that left.

use std::time::Duration;

use super::*;

fn names(list: &[&str]) -> Vec<Bytes> {
    list.iter()
        .map(|name| Bytes::copy_from_slice(name.as_bytes()))
        .collect()
}

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// The (kind word, name, count) of each push, as text.
fn summary(changed: &Changed) -> Vec<(String, Option<String>, i64)> {
    changed
        .pushes
        .iter()
        .map(|push| match push {
            Reply::Push(items) => match items.as_slice() {
                [Reply::Bulk(word), name, Reply::Integer(count)] => (
                    String::from_utf8_lossy(word).into_owned(),
                    match name {
                        Reply::Bulk(name) => Some(String::from_utf8_lossy(name).into_owned()),
                        _ => None,
                    },
                    *count,
                ),
                other => panic!("unexpected push {other:?}"),
            },
            other => panic!("not a push: {other:?}"),
        })
        .collect()
}

fn taken(mailbox: &Mailbox) -> Vec<Reply> {
    match mailbox.take() {
        Taken::Pushes(pushes, _) => pushes,
        Taken::Closed => panic!("mailbox closed"),
    }
}

fn message(channel: &str, text: &str) -> Reply {
    Reply::Push(vec![
        Reply::bulk("message"),
        Reply::bulk(channel),
        Reply::bulk(text),
    ])
}

fn pmessage(pattern: &str, channel: &str, text: &str) -> Reply {
    Reply::Push(vec![
        Reply::bulk("pmessage"),
        Reply::bulk(pattern),
        Reply::bulk(channel),
        Reply::bulk(text),
    ])
}

#[test]
fn subscribe_counts_channels_and_patterns_together_and_shard_channels_apart() {
    let pubsub = PubSub::default();
    let mailbox = Mailbox::new(1);
    let changed = pubsub.subscribe(&mailbox, Kind::Channel, &names(&["a", "b", "a"]));
    let expected = |word: &str, name: &str, count| (word.to_owned(), Some(name.to_owned()), count);
    assert_eq!(
        summary(&changed),
        [
            expected("subscribe", "a", 1),
            expected("subscribe", "b", 2),
            expected("subscribe", "a", 2)
        ]
    );
    assert_eq!(changed.total, 2);
    let changed = pubsub.subscribe(&mailbox, Kind::Pattern, &names(&["n.*"]));
    assert_eq!(summary(&changed), [expected("psubscribe", "n.*", 3)]);
    let changed = pubsub.subscribe(&mailbox, Kind::Shard, &names(&["s"]));
    assert_eq!(summary(&changed), [expected("ssubscribe", "s", 1)]);
    assert_eq!(changed.total, 4);
    assert_eq!(pubsub.counts(1), (2, 1, 1));

    let changed = pubsub.unsubscribe(1, Kind::Channel, &names(&["b", "zzz"]));
    assert_eq!(
        summary(&changed),
        [
            expected("unsubscribe", "b", 2),
            expected("unsubscribe", "zzz", 2)
        ]
    );
    let changed = pubsub.unsubscribe(1, Kind::Pattern, &[]);
    assert_eq!(summary(&changed), [expected("punsubscribe", "n.*", 1)]);
    let changed = pubsub.unsubscribe(1, Kind::Channel, &[]);
    assert_eq!(summary(&changed), [expected("unsubscribe", "a", 0)]);
    assert_eq!(changed.total, 1, "the shard channel remains");
    let changed = pubsub.unsubscribe(1, Kind::Shard, &[]);
    assert_eq!(summary(&changed), [expected("sunsubscribe", "s", 0)]);
    assert_eq!(changed.total, 0);
}

#[test]
fn unsubscribing_with_nothing_subscribed_answers_a_null_channel() {
    let pubsub = PubSub::default();
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        let changed = pubsub.unsubscribe(7, kind, &[]);
        assert_eq!(
            changed.pushes,
            [Reply::Push(vec![
                Reply::bulk(kind.unsubscribed()),
                Reply::Null,
                Reply::Integer(0)
            ])]
        );
    }
    // A client with a pattern but no channel: the count is the pattern's.
    let mailbox = Mailbox::new(7);
    pubsub.subscribe(&mailbox, Kind::Pattern, &names(&["p*"]));
    let changed = pubsub.unsubscribe(7, Kind::Channel, &[]);
    assert_eq!(summary(&changed), [("unsubscribe".to_owned(), None, 1)]);
}

#[test]
fn publish_reaches_channel_and_pattern_subscribers_and_counts_each_delivery() {
    let pubsub = PubSub::default();
    let first = Mailbox::new(1);
    let second = Mailbox::new(2);
    pubsub.subscribe(&first, Kind::Channel, &names(&["news.art"]));
    pubsub.subscribe(&first, Kind::Pattern, &names(&["news.*", "*"]));
    pubsub.subscribe(&second, Kind::Pattern, &names(&["news.*"]));
    pubsub.subscribe(&second, Kind::Shard, &names(&["news.art"]));

    assert_eq!(pubsub.publish(&bytes("news.art"), &bytes("hi")), 4);
    let mut first_got = taken(&first);
    // Patterns are visited in no particular order: compare as sets.
    let channel_message = first_got.remove(0);
    assert_eq!(channel_message, message("news.art", "hi"));
    first_got.sort_by_key(|push| format!("{push:?}"));
    let mut expected = vec![
        pmessage("news.*", "news.art", "hi"),
        pmessage("*", "news.art", "hi"),
    ];
    expected.sort_by_key(|push| format!("{push:?}"));
    assert_eq!(first_got, expected);
    assert_eq!(taken(&second), [pmessage("news.*", "news.art", "hi")]);

    // Shard channels are apart: SPUBLISH reaches only their subscribers.
    assert_eq!(pubsub.spublish(&bytes("news.art"), &bytes("s")), 1);
    assert!(taken(&first).is_empty());
    assert_eq!(
        taken(&second),
        [Reply::Push(vec![
            Reply::bulk("smessage"),
            Reply::bulk("news.art"),
            Reply::bulk("s")
        ])]
    );
    assert_eq!(pubsub.publish(&bytes("sport"), &bytes("x")), 1, "only `*`");
    assert_eq!(
        pubsub.publish(&bytes(""), &bytes("x")),
        0,
        "`*` needs a byte"
    );
}

#[test]
fn patterns_match_as_redis_stringmatchlen() {
    let pubsub = PubSub::default();
    let mailbox = Mailbox::new(1);
    let patterns = [
        "foo.*",
        "h?llo",
        "h[ae]llo",
        "h[^e]llo",
        "h[a-b]llo",
        "a\\*b",
    ];
    pubsub.subscribe(&mailbox, Kind::Pattern, &names(&patterns));
    let table: &[(&str, usize)] = &[
        ("foo.1", 1),
        ("foo1", 0),
        ("barfoo.1", 0),
        ("hello", 2), // h?llo, h[ae]llo; not h[^e]llo nor h[a-b]llo
        ("hallo", 4), // h?llo, h[ae]llo, h[^e]llo, h[a-b]llo
        ("hbllo", 3), // h?llo, h[^e]llo, h[a-b]llo
        ("a*b", 1),   // the escaped star is a star
        ("axb", 0),
    ];
    for (channel, receivers) in table {
        assert_eq!(
            pubsub.publish(&bytes(channel), &bytes("m")),
            *receivers,
            "{channel}"
        );
    }
    assert_eq!(pubsub.numpat(), patterns.len());
}

#[test]
fn introspection_answers_for_this_node() {
    let pubsub = PubSub::default();
    let first = Mailbox::new(1);
    let second = Mailbox::new(2);
    pubsub.subscribe(&first, Kind::Channel, &names(&["b", "a"]));
    pubsub.subscribe(&second, Kind::Channel, &names(&["a"]));
    pubsub.subscribe(&first, Kind::Pattern, &names(&["x*", "y*"]));
    pubsub.subscribe(&second, Kind::Pattern, &names(&["x*"]));
    pubsub.subscribe(&second, Kind::Shard, &names(&["s1", "s2"]));
    assert_eq!(pubsub.channels(Kind::Channel, None), names(&["a", "b"]));
    assert_eq!(pubsub.channels(Kind::Channel, Some(b"a*")), names(&["a"]));
    assert_eq!(pubsub.channels(Kind::Shard, None), names(&["s1", "s2"]));
    assert_eq!(
        pubsub.numsub(Kind::Channel, &names(&["a", "b", "c"])),
        [(bytes("a"), 2), (bytes("b"), 1), (bytes("c"), 0)]
    );
    assert_eq!(
        pubsub.numsub(Kind::Shard, &names(&["s1", "a"])),
        [(bytes("s1"), 1), (bytes("a"), 0)]
    );
    assert_eq!(pubsub.numpat(), 2, "unique patterns");
}

#[test]
fn a_client_that_leaves_is_forgotten_everywhere() {
    let pubsub = PubSub::default();
    let leaving = Mailbox::new(1);
    let staying = Mailbox::new(2);
    pubsub.subscribe(&leaving, Kind::Channel, &names(&["a", "b"]));
    pubsub.subscribe(&leaving, Kind::Pattern, &names(&["p*"]));
    pubsub.subscribe(&leaving, Kind::Shard, &names(&["s"]));
    pubsub.subscribe(&staying, Kind::Channel, &names(&["a"]));
    pubsub.forget(1);
    assert_eq!(pubsub.total(1), 0);
    assert_eq!(pubsub.channels(Kind::Channel, None), names(&["a"]));
    assert_eq!(pubsub.channels(Kind::Shard, None), Vec::<Bytes>::new());
    assert_eq!(pubsub.numpat(), 0);
    assert_eq!(pubsub.publish(&bytes("a"), &bytes("m")), 1);
    assert_eq!(pubsub.publish(&bytes("pq"), &bytes("m")), 0);
    assert!(taken(&leaving).is_empty());
}

#[tokio::test]
async fn a_subscriber_past_the_hard_limit_is_closed_and_forgotten() {
    let limit = OutputLimit {
        hard_bytes: 4096,
        soft_bytes: 0,
        soft_seconds: 0,
    };
    let pubsub = PubSub::new(limit);
    let slow = Mailbox::new(1);
    let reader = Mailbox::new(2);
    pubsub.subscribe(&slow, Kind::Channel, &names(&["c"]));
    pubsub.subscribe(&reader, Kind::Channel, &names(&["c"]));
    let payload = Bytes::from(vec![b'x'; 100]);
    let mut published = 0;
    // Each push counts a little over 100 bytes: the slow client reaches
    // 4096 within 41 messages. The reader keeps up.
    while !slow.is_closed() {
        assert!(published < 41, "never closed");
        pubsub.publish(&bytes("c"), &payload);
        published += 1;
        if let Taken::Pushes(_, bytes) = reader.take() {
            reader.written(bytes);
        }
    }
    assert!(published > 20, "closed too early: after {published}");
    assert_eq!(slow.take(), Taken::Closed);
    // Closing wakes its connection.
    tokio::time::timeout(Duration::from_secs(5), slow.closed())
        .await
        .expect("closed() completes");
    assert_eq!(pubsub.total(1), 0);
    assert_eq!(pubsub.numsub(Kind::Channel, &names(&["c"]))[0].1, 1);
    assert_eq!(pubsub.publish(&bytes("c"), &payload), 1);
    assert!(!reader.is_closed());
}

#[test]
fn written_bytes_no_longer_count() {
    let limit = OutputLimit {
        hard_bytes: 1000,
        soft_bytes: 0,
        soft_seconds: 0,
    };
    let pubsub = PubSub::new(limit);
    let mailbox = Mailbox::new(1);
    pubsub.subscribe(&mailbox, Kind::Channel, &names(&["c"]));
    let payload = Bytes::from(vec![b'x'; 300]);
    // Two pushes fit; taken but not written they still count, so a
    // third closes the mailbox unless the first two were written.
    for _ in 0..10 {
        pubsub.publish(&bytes("c"), &payload);
        pubsub.publish(&bytes("c"), &payload);
        let Taken::Pushes(pushes, bytes) = mailbox.take() else {
            panic!("closed");
        };
        assert_eq!(pushes.len(), 2);
        mailbox.written(bytes);
    }
    pubsub.publish(&bytes("c"), &payload);
    pubsub.publish(&bytes("c"), &payload);
    let Taken::Pushes(_, _) = mailbox.take() else {
        panic!("closed");
    };
    pubsub.publish(&bytes("c"), &payload);
    assert!(mailbox.is_closed(), "taken but unwritten bytes still count");
}

/// The soft limit goes by the clock the publisher passes in.
#[test]
fn a_subscriber_over_the_soft_limit_for_its_seconds_is_closed() {
    let limit = OutputLimit {
        hard_bytes: 0,
        soft_bytes: 200,
        soft_seconds: 10,
    };
    let mailbox = Mailbox::new(1);
    let push = message("c", "m");
    let start = Instant::now();
    assert!(mailbox.deliver(push.clone(), 150, &limit, start));
    assert!(
        mailbox.deliver(push.clone(), 150, &limit, start),
        "over the soft limit from now"
    );
    let later = start + Duration::from_secs(10);
    assert!(
        mailbox.deliver(push.clone(), 150, &limit, later),
        "for 10 s: not yet"
    );
    // Back under the soft limit resets the clock.
    let Taken::Pushes(_, bytes) = mailbox.take() else {
        panic!("closed");
    };
    mailbox.written(bytes);
    assert!(mailbox.deliver(push.clone(), 250, &limit, later));
    let much_later = later + Duration::from_secs(10);
    assert!(
        mailbox.deliver(push.clone(), 10, &limit, much_later),
        "10 s again: not yet"
    );
    let too_late = much_later + Duration::from_secs(1);
    assert!(
        !mailbox.deliver(push, 10, &limit, too_late),
        "over it for 11 s"
    );
    assert!(mailbox.is_closed());
    assert_eq!(mailbox.take(), Taken::Closed);
}

#[tokio::test]
async fn ready_wakes_when_a_message_arrives() {
    let pubsub = std::sync::Arc::new(PubSub::default());
    let mailbox = Mailbox::new(1);
    pubsub.subscribe(&mailbox, Kind::Channel, &names(&["c"]));
    let publisher = {
        let pubsub = pubsub.clone();
        tokio::spawn(async move { pubsub.publish(&bytes("c"), &bytes("m")) })
    };
    tokio::time::timeout(Duration::from_secs(5), mailbox.ready())
        .await
        .expect("ready() completes");
    assert_eq!(publisher.await.unwrap(), 1);
    assert_eq!(taken(&mailbox), [message("c", "m")]);
}

#[test]
fn shard_channels_of_a_lost_slot_end_with_a_sunsubscribe_push() {
    let pubsub = PubSub::new(OutputLimit::REDIS_DEFAULT);
    let (one, two) = (Mailbox::new(1), Mailbox::new(2));
    pubsub.subscribe(&one, Kind::Shard, &names(&["{a}x", "{b}y"]));
    pubsub.subscribe(&one, Kind::Channel, &names(&["plain"]));
    pubsub.subscribe(&two, Kind::Shard, &names(&["{a}x"]));
    taken(&one);
    taken(&two);

    let ended = pubsub.drop_shard_channels(|channel| channel.starts_with(b"{a}"));

    assert_eq!(ended, 2);
    let sunsubscribe = |name: &str, count| {
        Reply::Push(vec![
            Reply::bulk("sunsubscribe"),
            Reply::bulk(name),
            Reply::Integer(count),
        ])
    };
    assert_eq!(taken(&one), vec![sunsubscribe("{a}x", 1)]);
    assert_eq!(taken(&two), vec![sunsubscribe("{a}x", 0)]);
    // The channel is gone for both; the others stay.
    assert_eq!(pubsub.spublish(&bytes("{a}x"), &bytes("m")), 0);
    assert_eq!(pubsub.spublish(&bytes("{b}y"), &bytes("m")), 1);
    assert_eq!(pubsub.counts(1), (1, 0, 1));
    assert_eq!(pubsub.total(2), 0);
    assert_eq!(pubsub.drop_shard_channels(|_| false), 0);
}
