//! The list-append checker on hand-made histories: every anomaly class
//! it reports is shown detected, and valid histories (concurrent ones,
//! unknown outcomes) are shown accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::append::{check, AppendReport};
use crate::history::{read_jsonl, write_jsonl, Event, Kind, MicroOp, Op};

fn append(key: &str, value: u64) -> MicroOp {
    MicroOp::Append {
        key: key.into(),
        value,
    }
}

fn read(key: &str, list: &[u64]) -> MicroOp {
    MicroOp::Read {
        key: key.into(),
        value: Some(list.to_vec()),
    }
}

/// Builds a history event by event, 10 ns apart.
#[derive(Default)]
struct History {
    events: Vec<Event>,
}

impl History {
    fn push(&mut self, process: u64, kind: Kind, mops: Vec<MicroOp>) {
        let index = self.events.len() as u64;
        self.events.push(Event {
            index,
            time_ns: index * 10,
            process,
            kind,
            op: Op::Txn { mops },
            error: None,
        });
    }

    /// Invokes a transaction: the reads do not know their values yet.
    fn invoke(&mut self, process: u64, mops: &[MicroOp]) {
        let invoked = mops
            .iter()
            .map(|mop| match mop {
                MicroOp::Read { key, .. } => MicroOp::Read {
                    key: key.clone(),
                    value: None,
                },
                append => append.clone(),
            })
            .collect();
        self.push(process, Kind::Invoke, invoked);
    }

    fn complete(&mut self, process: u64, kind: Kind, mops: &[MicroOp]) {
        if kind == Kind::Ok {
            self.push(process, kind, mops.to_vec());
        } else {
            let before = self.events.len();
            self.invoke(process, mops);
            self.events[before].kind = kind;
        }
    }

    /// A transaction invoked and completed with nothing in between.
    fn txn(&mut self, process: u64, kind: Kind, mops: &[MicroOp]) -> &mut Self {
        self.invoke(process, mops);
        self.complete(process, kind, mops);
        self
    }

    fn check(&self) -> AppendReport {
        check(&self.events)
    }
}

fn assert_detects(report: &AppendReport, class: &str) {
    assert!(!report.is_valid(), "{report:#?}");
    assert!(
        report.counts.get(class).is_some_and(|count| *count > 0),
        "expected {class}: {report:#?}"
    );
    assert!(
        report
            .anomalies
            .iter()
            .any(|anomaly| anomaly.class == class),
        "{report:#?}"
    );
}

#[test]
fn a_serial_history_is_valid() {
    let report = History::default()
        .txn(1, Kind::Ok, &[append("x", 1)])
        .txn(
            2,
            Kind::Ok,
            &[read("x", &[1]), append("x", 2), append("y", 3)],
        )
        .txn(1, Kind::Ok, &[read("x", &[1, 2]), read("y", &[3])])
        .check();
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!(
        (report.transactions, report.ok, report.committed),
        (3, 3, 3)
    );
    assert_eq!(report.keys, 2);
    assert_eq!(report.appends_unchecked, 0);
    // T1 -> T2 (ww, wr, realtime) and T2 -> T3 (wr, realtime), deduplicated.
    assert_eq!(report.edges, 2, "{report:#?}");
}

#[test]
fn concurrent_transactions_may_take_either_order() {
    // T1 and T2 overlap; T2's append lands first, then T1's.
    let mut history = History::default();
    history.invoke(1, &[append("x", 1)]);
    history.invoke(2, &[append("x", 2), read("x", &[2])]);
    history.complete(2, Kind::Ok, &[append("x", 2), read("x", &[2])]);
    history.complete(1, Kind::Ok, &[append("x", 1)]);
    history.txn(3, Kind::Ok, &[read("x", &[2, 1])]);
    let report = history.check();
    assert!(report.is_valid(), "{report:#?}");
}

#[test]
fn an_unknown_append_may_land_or_not() {
    let report = History::default()
        .txn(1, Kind::Info, &[append("x", 1)])
        .txn(2, Kind::Info, &[append("x", 2)])
        .txn(3, Kind::Ok, &[read("x", &[2])])
        .check();
    assert!(report.is_valid(), "{report:#?}");
    // The ok read and the unknown transaction whose append it saw.
    assert_eq!(report.committed, 2);
    assert_eq!(report.info, 2);
}

#[test]
fn a_failed_transaction_whose_append_is_never_read_is_valid() {
    let report = History::default()
        .txn(1, Kind::Fail, &[append("x", 1)])
        .txn(2, Kind::Ok, &[read("x", &[])])
        .check();
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!(report.fail, 1);
}

#[test]
fn reading_a_failed_append_is_g1a() {
    let report = History::default()
        .txn(1, Kind::Fail, &[append("x", 1)])
        .txn(2, Kind::Ok, &[read("x", &[1])])
        .check();
    assert_detects(&report, "G1a");
}

#[test]
fn reading_a_transactions_intermediate_value_is_g1b() {
    let report = History::default()
        .txn(1, Kind::Ok, &[append("x", 1), append("x", 2)])
        .txn(2, Kind::Ok, &[read("x", &[1])])
        .txn(3, Kind::Ok, &[read("x", &[1, 2])])
        .check();
    assert_detects(&report, "G1b");
}

#[test]
fn a_transaction_reading_its_own_intermediate_value_is_fine() {
    let report = History::default()
        .txn(
            1,
            Kind::Ok,
            &[append("x", 1), read("x", &[1]), append("x", 2)],
        )
        .txn(2, Kind::Ok, &[read("x", &[1, 2])])
        .check();
    assert!(report.is_valid(), "{report:#?}");
}

#[test]
fn a_value_twice_in_a_read_is_a_duplicate() {
    let report = History::default()
        .txn(1, Kind::Ok, &[append("x", 1)])
        .txn(2, Kind::Ok, &[read("x", &[1, 1])])
        .check();
    assert_detects(&report, "duplicate");
}

#[test]
fn a_value_nobody_appended_is_invented() {
    let report = History::default()
        .txn(1, Kind::Ok, &[append("x", 1)])
        .txn(2, Kind::Ok, &[read("x", &[1, 9])])
        .check();
    assert_detects(&report, "invented");
}

#[test]
fn a_value_read_under_another_key_is_invented() {
    let report = History::default()
        .txn(1, Kind::Ok, &[append("y", 1)])
        .txn(2, Kind::Ok, &[read("x", &[1]), read("y", &[1])])
        .check();
    assert_detects(&report, "invented");
}

#[test]
fn reads_that_are_not_prefixes_of_each_other_are_incompatible() {
    let mut history = History::default();
    history.invoke(1, &[append("x", 1)]);
    history.invoke(2, &[append("x", 2)]);
    history.complete(1, Kind::Ok, &[append("x", 1)]);
    history.complete(2, Kind::Ok, &[append("x", 2)]);
    history.txn(3, Kind::Ok, &[read("x", &[1, 2])]);
    history.txn(4, Kind::Ok, &[read("x", &[2, 1])]);
    assert_detects(&history.check(), "incompatible-order");
}

#[test]
fn a_read_that_misses_its_own_append_is_internal() {
    let report = History::default()
        .txn(1, Kind::Ok, &[append("x", 1)])
        .txn(2, Kind::Ok, &[append("x", 2), read("x", &[1])])
        .txn(3, Kind::Ok, &[read("x", &[1, 2])])
        .check();
    assert_detects(&report, "internal");
}

#[test]
fn an_acknowledged_append_missing_from_the_last_read_is_lost() {
    let report = History::default()
        .txn(1, Kind::Ok, &[append("x", 1)])
        .txn(2, Kind::Ok, &[append("x", 2)])
        .txn(3, Kind::Ok, &[read("x", &[1])])
        .check();
    assert_detects(&report, "lost");
    assert_eq!(report.counts["lost"], 1);
}

#[test]
fn an_append_acknowledged_after_the_last_read_began_is_unchecked() {
    let mut history = History::default();
    history.invoke(1, &[append("x", 1)]);
    history.invoke(2, &[read("x", &[])]);
    history.complete(1, Kind::Ok, &[append("x", 1)]);
    history.complete(2, Kind::Ok, &[read("x", &[])]);
    let report = history.check();
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!(report.appends_unchecked, 1);
}

/// T1 and T2 both append to x and y, concurrently; x shows T1 first, y
/// shows T2 first: each write depends on the other.
#[test]
fn write_cycles_are_g0() {
    let mut history = History::default();
    history.invoke(1, &[append("x", 1), append("y", 10)]);
    history.invoke(2, &[append("x", 2), append("y", 20)]);
    history.complete(1, Kind::Ok, &[append("x", 1), append("y", 10)]);
    history.complete(2, Kind::Ok, &[append("x", 2), append("y", 20)]);
    history.txn(3, Kind::Ok, &[read("x", &[1, 2]), read("y", &[20, 10])]);
    assert_detects(&history.check(), "G0");
}

/// Each of two concurrent transactions reads the other's append.
#[test]
fn circular_information_flow_is_g1c() {
    let t1 = [append("x", 1), read("y", &[2])];
    let t2 = [append("y", 2), read("x", &[1])];
    let mut history = History::default();
    history.invoke(1, &t1);
    history.invoke(2, &t2);
    history.complete(1, Kind::Ok, &t1);
    history.complete(2, Kind::Ok, &t2);
    assert_detects(&history.check(), "G1c");
}

/// Read skew: T1 sees T2's append to y but not its append to x.
#[test]
fn a_cycle_with_one_anti_dependency_is_g_single() {
    let t1 = [read("x", &[]), read("y", &[2])];
    let t2 = [append("x", 1), append("y", 2)];
    let mut history = History::default();
    history.invoke(1, &t1);
    history.invoke(2, &t2);
    history.complete(2, Kind::Ok, &t2);
    history.complete(1, Kind::Ok, &t1);
    history.txn(3, Kind::Ok, &[read("x", &[1]), read("y", &[2])]);
    let report = history.check();
    assert_detects(&report, "G-single");
    let anomaly = report
        .anomalies
        .iter()
        .find(|anomaly| anomaly.class == "G-single")
        .unwrap();
    assert!(
        anomaly.steps.iter().any(|step| step.contains("-rw->")),
        "{anomaly:#?}"
    );
}

/// Write skew: each reads the key the other appends to, before it.
#[test]
fn a_cycle_of_anti_dependencies_is_g2() {
    let t1 = [read("x", &[]), append("y", 1)];
    let t2 = [read("y", &[]), append("x", 2)];
    let mut history = History::default();
    history.invoke(1, &t1);
    history.invoke(2, &t2);
    history.complete(1, Kind::Ok, &t1);
    history.complete(2, Kind::Ok, &t2);
    history.txn(3, Kind::Ok, &[read("x", &[2]), read("y", &[1])]);
    assert_detects(&history.check(), "G2");
}

/// A stale read: serializable (the read could go first), but it began
/// after the append was acknowledged.
#[test]
fn a_stale_read_is_a_realtime_cycle() {
    let report = History::default()
        .txn(1, Kind::Ok, &[append("x", 1)])
        .txn(2, Kind::Ok, &[read("x", &[])])
        .txn(3, Kind::Ok, &[read("x", &[1])])
        .check();
    assert_detects(&report, "G-single-realtime");
    assert_eq!(report.counts.len(), 1, "{report:#?}");
}

#[test]
fn real_time_edges_reach_through_the_frontier() {
    // T1 completes, T2 runs after it, T3 after T2: T3's read missing
    // T1's append contradicts real time only through T2.
    let report = History::default()
        .txn(1, Kind::Ok, &[append("x", 1)])
        .txn(2, Kind::Ok, &[append("y", 2)])
        .txn(3, Kind::Ok, &[read("x", &[])])
        .txn(4, Kind::Ok, &[read("x", &[1]), read("y", &[2])])
        .check();
    assert_detects(&report, "G-single-realtime");
}

#[test]
fn a_malformed_history_is_a_problem() {
    let mut history = History::default();
    history.push(1, Kind::Ok, vec![append("x", 1)]);
    let report = history.check();
    assert!(!report.is_valid());
    assert!(report.problem.unwrap().contains("malformed"));
}

#[test]
fn a_value_appended_twice_is_a_problem() {
    let report = History::default()
        .txn(1, Kind::Ok, &[append("x", 1)])
        .txn(2, Kind::Ok, &[append("x", 1)])
        .check();
    assert!(report.problem.unwrap().contains("appended twice"));
}

#[test]
fn transactions_round_trip_through_json_lines() {
    let mut history = History::default();
    history.txn(1, Kind::Ok, &[append("x", 1), read("x", &[1])]);
    let mut bytes = Vec::new();
    write_jsonl(&mut bytes, &history.events).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains(r#""f":"txn""#), "{text}");
    assert!(
        text.contains(r#"{"f":"append","key":"x","value":1}"#),
        "{text}"
    );
    assert_eq!(read_jsonl(bytes.as_slice()).unwrap(), history.events);
}
