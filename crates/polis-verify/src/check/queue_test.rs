//! The queue checker on hand-made histories: each anomaly is caught, and
//! what at-least-once delivery allows is not condemned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::history::Kind;
use crate::workload::QueueMode;

type Step = (u64, Kind, Op);

/// Builds a history from steps with times 10 ns apart.
fn history(steps: &[Step]) -> Vec<Event> {
    steps
        .iter()
        .enumerate()
        .map(|(index, (process, kind, op))| Event {
            index: index as u64,
            time_ns: index as u64 * 10,
            process: *process,
            kind: *kind,
            op: op.clone(),
            error: None,
        })
        .collect()
}

fn entry(id: &str, payload: u64) -> Entry {
    Entry {
        id: id.into(),
        payload,
    }
}

fn xadd(process: u64, payload: u64, id: &str, kind: Kind) -> Vec<Step> {
    let invoked = Op::Xadd { payload, id: None };
    let completed = Op::Xadd {
        payload,
        id: (kind == Kind::Ok).then(|| id.to_string()),
    };
    vec![(process, Kind::Invoke, invoked), (process, kind, completed)]
}

fn read(process: u64, from: &str, entries: &[Entry]) -> Vec<Step> {
    let op = |entries| Op::Xreadgroup {
        consumer: format!("c{process}"),
        from: from.into(),
        entries,
    };
    vec![
        (process, Kind::Invoke, op(None)),
        (process, Kind::Ok, op(Some(entries.to_vec()))),
    ]
}

fn claim(process: u64, entries: &[Entry]) -> Vec<Step> {
    let op = |entries| Op::Xautoclaim {
        consumer: format!("c{process}"),
        entries,
    };
    vec![
        (process, Kind::Invoke, op(None)),
        (process, Kind::Ok, op(Some(entries.to_vec()))),
    ]
}

fn ack(process: u64, ids: &[&str]) -> Vec<Step> {
    let op = Op::Xack {
        ids: ids.iter().map(|id| id.to_string()).collect(),
    };
    vec![(process, Kind::Invoke, op.clone()), (process, Kind::Ok, op)]
}

fn range(entries: &[Entry]) -> Vec<Step> {
    vec![
        (99, Kind::Invoke, Op::Xrange { entries: None }),
        (
            99,
            Kind::Ok,
            Op::Xrange {
                entries: Some(entries.to_vec()),
            },
        ),
    ]
}

fn run(parts: &[Vec<Step>]) -> QueueReport {
    check(&history(&parts.concat()), QueueMode::Claim)
}

/// Checks a history of the redeliver mode.
fn run_redeliver(parts: &[Vec<Step>]) -> QueueReport {
    check(&history(&parts.concat()), QueueMode::Redeliver)
}

/// The final XRANGE of the dead-letter stream, each entry as its source.
fn dead_range(entries: &[Entry]) -> Vec<Step> {
    vec![
        (97, Kind::Invoke, Op::XrangeDead { entries: None }),
        (
            97,
            Kind::Ok,
            Op::XrangeDead {
                entries: Some(entries.to_vec()),
            },
        ),
    ]
}

fn nack(process: u64, ids: &[&str]) -> Vec<Step> {
    let op = Op::Xnack {
        ids: ids.iter().map(|id| id.to_string()).collect(),
    };
    vec![(process, Kind::Invoke, op.clone()), (process, Kind::Ok, op)]
}

#[test]
fn added_delivered_acknowledged_and_ranged_is_valid() {
    let report = run(&[
        xadd(1, 1, "1-0", Kind::Ok),
        xadd(1, 2, "2-0", Kind::Ok),
        read(2, ">", &[entry("1-0", 1), entry("2-0", 2)]),
        ack(2, &["1-0", "2-0"]),
        range(&[entry("1-0", 1), entry("2-0", 2)]),
    ]);
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(
        (report.acknowledged, report.deliveries, report.duplicates),
        (2, 2, 0)
    );
}

#[test]
fn a_redelivery_before_the_ack_is_a_duplicate_not_an_anomaly() {
    let report = run(&[
        xadd(1, 1, "1-0", Kind::Ok),
        read(2, ">", &[entry("1-0", 1)]),
        // Consumer 2 vanished; consumer 3 claims its entry.
        claim(3, &[entry("1-0", 1)]),
        ack(3, &["1-0"]),
        range(&[entry("1-0", 1)]),
    ]);
    assert!(report.is_valid(), "{report:?}");
    assert_eq!((report.deliveries, report.delivered), (2, 1));
    assert_eq!(report.duplicates, 1);
}

#[test]
fn an_acknowledged_add_never_delivered_is_undelivered() {
    let report = run(&[
        xadd(1, 1, "1-0", Kind::Ok),
        xadd(1, 2, "2-0", Kind::Ok),
        read(2, ">", &[entry("1-0", 1)]),
        range(&[entry("1-0", 1), entry("2-0", 2)]),
    ]);
    assert!(!report.is_valid());
    assert_eq!(report.undelivered, [2]);
    assert!(report.lost.is_empty());
}

#[test]
fn an_acknowledged_add_missing_from_the_stream_is_lost() {
    let report = run(&[
        xadd(1, 1, "1-0", Kind::Ok),
        read(2, ">", &[entry("1-0", 1)]),
        range(&[]),
    ]);
    assert!(!report.is_valid());
    assert_eq!(report.lost, [1]);
    assert!(report.details[0].starts_with("lost: 1-0=1"), "{report:?}");
}

#[test]
fn a_payload_never_added_is_invented() {
    let report = run(&[
        xadd(1, 1, "1-0", Kind::Ok),
        read(2, ">", &[entry("1-0", 1), entry("2-0", 7)]),
        range(&[entry("1-0", 1)]),
    ]);
    assert!(!report.is_valid());
    assert_eq!(report.invented, [7]);
}

#[test]
fn a_failed_add_in_the_stream_is_invented() {
    let report = run(&[
        xadd(1, 1, "1-0", Kind::Ok),
        xadd(1, 2, "2-0", Kind::Fail),
        read(2, ">", &[entry("1-0", 1)]),
        range(&[entry("1-0", 1), entry("2-0", 2)]),
    ]);
    assert!(!report.is_valid());
    assert_eq!(report.invented, [2]);
    assert_eq!(report.failed, 1);
}

#[test]
fn an_entry_under_another_id_than_its_add_got_is_invented() {
    let report = run(&[
        xadd(1, 1, "1-0", Kind::Ok),
        read(2, ">", &[entry("5-0", 1)]),
        range(&[entry("1-0", 1)]),
    ]);
    assert!(!report.is_valid());
    assert_eq!(report.invented, [1]);
}

#[test]
fn unknown_adds_may_be_delivered_or_not() {
    let report = run(&[
        xadd(1, 1, "1-0", Kind::Info),
        xadd(3, 2, "2-0", Kind::Info),
        read(2, ">", &[entry("1-0", 1)]),
        range(&[entry("1-0", 1)]),
    ]);
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.indeterminate, 2);
}

#[test]
fn a_delivery_after_an_acknowledged_xack_is_ack_lost() {
    let report = run(&[
        xadd(1, 1, "1-0", Kind::Ok),
        read(2, ">", &[entry("1-0", 1)]),
        ack(2, &["1-0"]),
        // After a failover the entry is pending again, and claimed.
        claim(3, &[entry("1-0", 1)]),
        range(&[entry("1-0", 1)]),
    ]);
    assert!(!report.is_valid());
    assert_eq!(report.ack_lost, [1]);
    assert!(report.details[0].contains("ack-lost: 1-0=1"), "{report:?}");
}

#[test]
fn an_acknowledged_entry_pending_in_the_final_drain_is_ack_lost() {
    let report = run(&[
        xadd(1, 1, "1-0", Kind::Ok),
        read(2, ">", &[entry("1-0", 1)]),
        ack(2, &["1-0"]),
        read(98, "0", &[entry("1-0", 1)]),
        range(&[entry("1-0", 1)]),
    ]);
    assert_eq!(report.ack_lost, [1]);
}

#[test]
fn a_read_concurrent_with_the_xack_is_not_ack_lost() {
    let op = Op::Xack {
        ids: vec!["1-0".into()],
    };
    let claimed = Op::Xautoclaim {
        consumer: "c3".into(),
        entries: Some(vec![entry("1-0", 1)]),
    };
    let report = run(&[
        xadd(1, 1, "1-0", Kind::Ok),
        read(2, ">", &[entry("1-0", 1)]),
        vec![
            (2, Kind::Invoke, op.clone()),
            (
                3,
                Kind::Invoke,
                Op::Xautoclaim {
                    consumer: "c3".into(),
                    entries: None,
                },
            ),
            (2, Kind::Ok, op),
            (3, Kind::Ok, claimed),
        ],
        range(&[entry("1-0", 1)]),
    ]);
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.duplicates, 1);
}

#[test]
fn pending_samples_are_counted() {
    let op = |count| Op::Xpending { count };
    let report = run(&[
        vec![(5, Kind::Invoke, op(None)), (5, Kind::Ok, op(Some(3)))],
        vec![(5, Kind::Invoke, op(None)), (5, Kind::Ok, op(Some(1)))],
        range(&[]),
    ]);
    assert_eq!((report.pending_samples, report.pending_max), (2, 3));
}

#[test]
fn no_final_range_is_invalid_with_a_reason() {
    let report = run(&[xadd(1, 1, "1-0", Kind::Ok)]);
    assert!(!report.is_valid());
    assert!(report
        .problem
        .unwrap()
        .contains("no successful final XRANGE"));
}

#[test]
fn redelivered_acknowledged_and_dead_lettered_entries_are_valid() {
    let report = run_redeliver(&[
        xadd(1, 1, "1-0", Kind::Ok),
        xadd(1, 2, "2-0", Kind::Ok),
        xadd(1, 3, "3-0", Kind::Ok),
        read(2, ">", &[entry("1-0", 1), entry("2-0", 2)]),
        // Consumer 2 crashed; 1-0 and 2-0 come back after the ack-wait.
        read(4, ">", &[entry("1-0", 1), entry("2-0", 2)]),
        ack(4, &["1-0"]),
        nack(4, &["2-0"]),
        // 3-0 was delivered by reads whose replies were lost, then moved:
        // dead-lettered, it need not have been seen delivered.
        read(6, ">", &[entry("2-0", 2)]),
        range(&[entry("1-0", 1), entry("2-0", 2), entry("3-0", 3)]),
        dead_range(&[entry("2-0", 2), entry("3-0", 3)]),
    ]);
    assert!(report.is_valid(), "{report:?}");
    assert_eq!((report.dead_lettered, report.duplicates), (2, 3));
}

#[test]
fn an_entry_neither_acknowledged_nor_dead_lettered_is_unresolved() {
    let report = run_redeliver(&[
        xadd(1, 1, "1-0", Kind::Ok),
        xadd(1, 2, "2-0", Kind::Ok),
        read(2, ">", &[entry("1-0", 1), entry("2-0", 2)]),
        ack(2, &["1-0"]),
        // 2-0 vanished from the group: no XACK, not dead-lettered.
        range(&[entry("1-0", 1), entry("2-0", 2)]),
        dead_range(&[]),
    ]);
    assert!(!report.is_valid());
    assert_eq!(report.unresolved, [2]);
    assert!(
        report.details[0].starts_with("unresolved: 2-0=2"),
        "{report:?}"
    );
    // The claim mode does not ask where entries ended.
    let claim_mode = run(&[
        xadd(1, 1, "1-0", Kind::Ok),
        read(2, ">", &[entry("1-0", 1)]),
        range(&[entry("1-0", 1)]),
    ]);
    assert!(claim_mode.is_valid(), "{claim_mode:?}");
}

#[test]
fn a_dead_letter_never_added_or_moved_twice_is_an_anomaly() {
    let report = run_redeliver(&[
        xadd(1, 1, "1-0", Kind::Ok),
        xadd(1, 2, "2-0", Kind::Fail),
        read(2, ">", &[entry("1-0", 1)]),
        range(&[entry("1-0", 1)]),
        dead_range(&[
            entry("1-0", 1),
            entry("1-0", 1),
            entry("2-0", 2),
            entry("7-0", 7),
        ]),
    ]);
    assert!(!report.is_valid());
    assert_eq!(report.dead_twice, [1]);
    assert_eq!(report.dead_invented, [2, 7]);
    assert!(report.unresolved.is_empty());
}

#[test]
fn the_redeliver_mode_needs_the_dead_letter_range() {
    let report = run_redeliver(&[
        xadd(1, 1, "1-0", Kind::Ok),
        read(2, ">", &[entry("1-0", 1)]),
        ack(2, &["1-0"]),
        range(&[entry("1-0", 1)]),
    ]);
    assert!(!report.is_valid());
    assert!(report.problem.unwrap().contains("dead-letter stream"));
}
