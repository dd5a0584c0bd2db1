//! The change-feed checker on hand-made histories: a valid one (with an
//! unknown APPEND that applied, a failed one, and a duplicate delivery)
//! passes, and each way a feed can be wrong is caught.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::changefeed::{check, FeedReport};
use crate::history::{Event, FeedEntry, Kind, Op};

/// Builds a history event by event, 10 ns apart.
#[derive(Default)]
struct History {
    events: Vec<Event>,
    entries: Vec<FeedEntry>,
}

fn append_op(key: &str, token: &str, length: Option<u64>) -> Op {
    Op::FeedAppend {
        key: key.into(),
        token: token.into(),
        length,
    }
}

impl History {
    fn push(&mut self, process: u64, kind: Kind, op: Op) -> &mut Self {
        let index = self.events.len() as u64;
        self.events.push(Event {
            index,
            time_ns: index * 10,
            process,
            kind,
            op,
            error: None,
        });
        self
    }

    fn invoke(&mut self, process: u64, key: &str, token: &str) -> &mut Self {
        self.push(process, Kind::Invoke, append_op(key, token, None))
    }

    fn complete(
        &mut self,
        process: u64,
        kind: Kind,
        key: &str,
        token: &str,
        length: u64,
    ) -> &mut Self {
        let length = (kind == Kind::Ok).then_some(length);
        self.push(process, kind, append_op(key, token, length))
    }

    /// An APPEND invoked and completed with nothing in between.
    fn append(
        &mut self,
        process: u64,
        kind: Kind,
        key: &str,
        token: &str,
        length: u64,
    ) -> &mut Self {
        self.invoke(process, key, token);
        self.complete(process, kind, key, token, length)
    }

    /// A feed entry, in stream order.
    fn entry(
        &mut self,
        key: &str,
        event: &str,
        position: (u64, u64, u64),
        value: &str,
    ) -> &mut Self {
        let (shard, index, seq) = position;
        self.entries.push(FeedEntry {
            id: format!("{}-0", self.entries.len() + 1),
            key: key.into(),
            event: event.into(),
            shard,
            index,
            seq,
            value: Some(value.into()),
        });
        self
    }

    /// The final reads: every key's value, then the stream.
    fn finish(&mut self, finals: &[(&str, &str)]) -> FeedReport {
        for (n, (key, value)) in finals.iter().enumerate() {
            let process = 1000 + n as u64;
            let get = |value: Option<String>| Op::FeedGet {
                key: (*key).into(),
                value,
            };
            self.push(process, Kind::Invoke, get(None));
            self.push(process, Kind::Ok, get(Some((*value).into())));
        }
        let read = |entries| Op::FeedRead {
            stream: "s".into(),
            entries,
        };
        self.push(2000, Kind::Invoke, read(None));
        let entries = self.entries.clone();
        self.push(2000, Kind::Ok, read(Some(entries)));
        check(&self.events)
    }
}

/// Two keys on two shards: k1 gets 0.1 (ok), 1.1 (ok), 2.1 (unknown,
/// applied) and 0.2 (failed); k2 gets 1.2 (ok) and 3.1 (unknown, not
/// applied).
fn valid() -> History {
    let mut history = History::default();
    history
        .append(0, Kind::Ok, "k1", "0.1,", 4)
        .append(1, Kind::Ok, "k1", "1.1,", 8)
        .append(2, Kind::Info, "k1", "2.1,", 0)
        .append(0, Kind::Fail, "k1", "0.2,", 0)
        .append(1, Kind::Ok, "k2", "1.2,", 4)
        .append(3, Kind::Info, "k2", "3.1,", 0);
    history
        .entry("k1", "new", (1, 4, 0), "0.1,")
        .entry("k1", "append", (1, 4, 1), "0.1,")
        .entry("k1", "append", (1, 5, 0), "0.1,1.1,")
        .entry("k2", "new", (2, 3, 0), "1.2,")
        .entry("k2", "append", (2, 3, 1), "1.2,");
    history
}

const FINALS: [(&str, &str); 2] = [("k1", "0.1,1.1,2.1,"), ("k2", "1.2,")];

fn with_last_k1_append(mut history: History) -> History {
    history.entry("k1", "append", (1, 7, 0), "0.1,1.1,2.1,");
    history
}

fn assert_detects(report: &FeedReport, class: &str) {
    assert!(!report.is_valid(), "{report:#?}");
    assert!(
        report.counts.contains_key(class),
        "expected {class}, found {:?}: {:#?}",
        report.counts,
        report.anomalies
    );
}

#[test]
fn a_feed_listing_every_applied_write_once_in_order_is_valid() {
    let report = with_last_k1_append(valid()).finish(&FINALS);
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!(
        (report.appends, report.ok, report.fail, report.info),
        (6, 3, 1, 2)
    );
    assert_eq!((report.keys, report.entries, report.events), (2, 6, 6));
    assert_eq!(report.unknown_applied, 1);
}

#[test]
fn an_event_delivered_twice_at_its_own_position_is_no_anomaly() {
    let mut history = with_last_k1_append(valid());
    history.entry("k1", "append", (1, 5, 0), "0.1,1.1,");
    let report = history.finish(&FINALS);
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!(report.duplicates, 1);
}

#[test]
fn a_missing_event_is_caught_in_the_middle_and_at_the_end() {
    let mut history = valid();
    history.entries.remove(2); // k1's append of 1.1
    history.entry("k1", "append", (1, 7, 0), "0.1,1.1,2.1,");
    assert_detects(&history.finish(&FINALS), "missing-event");

    // k2's only append never reached the feed.
    let mut history = with_last_k1_append(valid());
    history
        .entries
        .retain(|entry| !(entry.key == "k2" && entry.event == "append"));
    let report = history.finish(&FINALS);
    assert_detects(&report, "lost-event");
    assert_detects(&report, "final-mismatch");
}

#[test]
fn the_event_of_a_failed_write_is_caught() {
    let mut history = with_last_k1_append(valid());
    history.entry("k1", "append", (1, 9, 0), "0.1,1.1,2.1,0.2,");
    let report = history.finish(&[("k1", "0.1,1.1,2.1,0.2,"), ("k2", "1.2,")]);
    assert_detects(&report, "failed-write-seen");
    assert_eq!(report.counts.len(), 1, "{report:#?}");
}

#[test]
fn two_events_out_of_order_are_caught() {
    let mut history = with_last_k1_append(valid());
    history.entries.swap(2, 5);
    assert_detects(&history.finish(&FINALS), "out-of-order");
}

#[test]
fn a_duplicate_at_another_position_is_caught() {
    // The same value again at a later position: one write's event twice.
    let mut history = with_last_k1_append(valid());
    history.entry("k1", "append", (1, 8, 0), "0.1,1.1,2.1,");
    assert_detects(&history.finish(&FINALS), "duplicate");

    // One token applied twice: the value holds it twice.
    let mut history = with_last_k1_append(valid());
    history.entry("k1", "append", (1, 8, 0), "0.1,1.1,2.1,1.1,");
    assert_detects(
        &history.finish(&[("k1", "0.1,1.1,2.1,1.1,"), ("k2", "1.2,")]),
        "duplicate",
    );
}

#[test]
fn two_entries_at_one_position_that_differ_are_caught() {
    let mut history = with_last_k1_append(valid());
    history.entry("k1", "append", (1, 5, 0), "0.1,2.1,");
    assert_detects(&history.finish(&FINALS), "conflicting-duplicate");
}

#[test]
fn a_write_acknowledged_before_another_began_must_come_first() {
    let mut history = History::default();
    history
        .append(0, Kind::Ok, "k1", "0.1,", 8)
        .append(1, Kind::Ok, "k1", "1.1,", 4);
    history
        .entry("k1", "append", (1, 4, 0), "1.1,")
        .entry("k1", "append", (1, 5, 0), "1.1,0.1,");
    let report = history.finish(&[("k1", "1.1,0.1,")]);
    assert_detects(&report, "realtime");
    assert_eq!(report.counts.len(), 1, "{report:#?}");

    // Concurrent, either order is fine.
    let mut history = History::default();
    history
        .invoke(0, "k1", "0.1,")
        .invoke(1, "k1", "1.1,")
        .complete(0, Kind::Ok, "k1", "0.1,", 8)
        .complete(1, Kind::Ok, "k1", "1.1,", 4);
    history
        .entry("k1", "append", (1, 4, 0), "1.1,")
        .entry("k1", "append", (1, 5, 0), "1.1,0.1,");
    let report = history.finish(&[("k1", "1.1,0.1,")]);
    assert!(report.is_valid(), "{report:#?}");
}

#[test]
fn an_acknowledged_write_missing_from_the_final_value_is_lost() {
    let report = with_last_k1_append(valid()).finish(&[("k1", "0.1,2.1,"), ("k2", "1.2,")]);
    assert_detects(&report, "lost-write");
    assert_detects(&report, "final-mismatch");
}

#[test]
fn an_event_whose_value_is_not_the_length_append_answered_is_caught() {
    let mut history = History::default();
    history
        .append(0, Kind::Ok, "k1", "0.1,", 4)
        .append(1, Kind::Ok, "k1", "1.1,", 12);
    history
        .entry("k1", "append", (1, 4, 0), "0.1,")
        .entry("k1", "append", (1, 5, 0), "0.1,1.1,");
    assert_detects(&history.finish(&[("k1", "0.1,1.1,")]), "length");
}

#[test]
fn events_other_than_new_and_append_are_caught() {
    let mut history = with_last_k1_append(valid());
    history.entry("k2", "del", (2, 9, 0), "");
    assert_detects(&history.finish(&FINALS), "unexpected-event");

    let mut history = valid();
    history.entry("k1", "new", (1, 6, 0), "0.1,1.1,");
    history.entry("k1", "append", (1, 7, 0), "0.1,1.1,2.1,");
    assert_detects(&history.finish(&FINALS), "unexpected-event");
}

#[test]
fn tokens_and_keys_nobody_wrote_are_invented() {
    let mut history = with_last_k1_append(valid());
    history.entry("k1", "append", (1, 9, 0), "0.1,1.1,2.1,9.9,");
    assert_detects(
        &history.finish(&[("k1", "0.1,1.1,2.1,9.9,"), ("k2", "1.2,")]),
        "invented",
    );

    let mut history = with_last_k1_append(valid());
    history.entry("k9", "append", (3, 2, 0), "x,");
    assert_detects(&history.finish(&FINALS), "invented");
}

#[test]
fn without_a_read_of_the_feed_nothing_is_checked() {
    let mut history = valid();
    history.push(
        1000,
        Kind::Invoke,
        Op::FeedGet {
            key: "k1".into(),
            value: None,
        },
    );
    let report = check(&history.events);
    assert!(!report.is_valid());
    assert!(report.problem.unwrap().contains("no successful read"));

    // A key never read back is an anomaly.
    let report = with_last_k1_append(valid()).finish(&[("k1", "0.1,1.1,2.1,")]);
    assert_detects(&report, "no-final-read");
}
