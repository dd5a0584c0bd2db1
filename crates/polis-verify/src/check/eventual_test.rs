//! The eventual checker on hand-made histories: a valid one (unknown and
//! failed writes, an SREM that missed its add, a DEL that saw nothing,
//! nodes that differed before converging) passes, and each rule is shown
//! to fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::eventual::{check, EventualReport};
use crate::history::{Event, Kind, Op};

const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// Builds a history event by event, 1 ms apart.
#[derive(Default)]
struct History {
    events: Vec<Event>,
    /// Process numbers for the final reads.
    next_reader: u64,
}

impl History {
    fn push(&mut self, process: u64, kind: Kind, op: Op, error: Option<&str>) -> &mut Self {
        let index = self.events.len() as u64;
        self.events.push(Event {
            index,
            time_ns: index * 1_000_000,
            process,
            kind,
            op,
            error: error.map(str::to_owned),
        });
        self
    }

    /// `invoked` then, unless `kind` is `Invoke` (never completed),
    /// `completed` ending as `kind`.
    fn op(&mut self, process: u64, kind: Kind, invoked: Op, completed: Op) -> &mut Self {
        self.push(process, Kind::Invoke, invoked, None);
        if kind != Kind::Invoke {
            self.push(process, kind, completed, None);
        }
        self
    }

    fn set(&mut self, process: u64, kind: Kind, key: &str, value: u64) -> &mut Self {
        let op = |node: Option<&str>| Op::EventualSet {
            key: key.into(),
            value,
            node: node.map(str::to_owned),
        };
        self.op(process, kind, op(None), op(Some("n1")))
    }

    fn incrby(
        &mut self,
        process: u64,
        kind: Kind,
        key: &str,
        delta: u64,
        answer: i64,
    ) -> &mut Self {
        let op = |value, node: Option<&str>| Op::EventualIncrby {
            key: key.into(),
            delta,
            value,
            node: node.map(str::to_owned),
        };
        let answered = op((kind == Kind::Ok).then_some(answer), Some("n2"));
        self.op(process, kind, op(None, None), answered)
    }

    fn sadd(&mut self, process: u64, kind: Kind, key: &str, element: u64) -> &mut Self {
        let op = |node: Option<&str>| Op::EventualSadd {
            key: key.into(),
            element,
            node: node.map(str::to_owned),
        };
        self.op(process, kind, op(None), op(Some("n3")))
    }

    fn srem(
        &mut self,
        process: u64,
        kind: Kind,
        key: &str,
        element: u64,
        removed: u64,
    ) -> &mut Self {
        let op = |removed, node: Option<&str>| Op::EventualSrem {
            key: key.into(),
            element,
            removed,
            node: node.map(str::to_owned),
        };
        let answered = op((kind == Kind::Ok).then_some(removed), Some("n1"));
        self.op(process, kind, op(None, None), answered)
    }

    fn del(&mut self, process: u64, kind: Kind, key: &str, removed: u64) -> &mut Self {
        let op = |removed, node: Option<&str>| Op::EventualDel {
            key: key.into(),
            removed,
            node: node.map(str::to_owned),
        };
        let answered = op((kind == Kind::Ok).then_some(removed), Some("n2"));
        self.op(process, kind, op(None, None), answered)
    }

    /// The wait for convergence: `ok` after `ms` or failed.
    fn converge(&mut self, converged: bool) -> &mut Self {
        let process = 1 << 30;
        let op = |keys, digest| Op::EventualConverge { keys, digest };
        self.push(process, Kind::Invoke, op(None, None), None);
        if converged {
            self.push(process, Kind::Ok, op(Some(4), Some("ab".into())), None);
        } else {
            let error = "digests still differ: n1 4 keys ab, n2 3 keys cd";
            self.push(process, Kind::Fail, op(None, None), Some(error));
        }
        self
    }

    /// A GET of `key` from `node`.
    fn get(&mut self, node: &str, key: &str, converged: bool, value: Option<&str>) -> &mut Self {
        self.next_reader += 1;
        let op = |value: Option<&str>| Op::EventualGet {
            key: key.into(),
            node: node.into(),
            converged,
            value: value.map(str::to_owned),
        };
        self.op(1 << 31 | self.next_reader, Kind::Ok, op(None), op(value))
    }

    /// An SMEMBERS of `key` from `node`.
    fn members(&mut self, node: &str, key: &str, converged: bool, members: &[u64]) -> &mut Self {
        self.next_reader += 1;
        let op = |members: Option<Vec<String>>| Op::EventualMembers {
            key: key.into(),
            node: node.into(),
            converged,
            members,
        };
        let found = members.iter().map(u64::to_string).collect();
        self.op(
            1 << 31 | self.next_reader,
            Kind::Ok,
            op(None),
            op(Some(found)),
        )
    }

    /// The same GET answer from every node, after converging.
    fn get_everywhere(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        for node in NODES {
            self.get(node, key, true, value);
        }
        self
    }

    /// The same members from every node, after converging.
    fn members_everywhere(&mut self, key: &str, members: &[u64]) -> &mut Self {
        for node in NODES {
            self.members(node, key, true, members);
        }
        self
    }

    fn check(&self) -> EventualReport {
        check(&self.events)
    }
}

/// Every kind of key, with unknown and failed writes, and the final reads
/// that fit them (`finals: false` leaves the final reads out).
fn valid(finals: bool) -> History {
    let mut history = History::default();
    history
        // A register: 1 acknowledged, 2 unknown (it won), 3 failed.
        .set(0, Kind::Ok, "r", 1)
        .set(1, Kind::Info, "r", 2)
        .set(11, Kind::Fail, "r", 3)
        // A counter: 5 and 7 acknowledged, 100 unknown (not applied).
        .incrby(0, Kind::Ok, "c", 5, 5)
        .incrby(0, Kind::Ok, "c", 7, 12)
        .incrby(2, Kind::Info, "c", 100, 0)
        // A set: 10 added and removed; 11 added, an SREM that missed it;
        // 12 unknown (applied); 13 failed; 14 added, SREM unknown.
        .sadd(0, Kind::Ok, "s", 10)
        .srem(0, Kind::Ok, "s", 10, 1)
        .sadd(0, Kind::Ok, "s", 11)
        .srem(0, Kind::Ok, "s", 11, 0)
        .sadd(3, Kind::Info, "s", 12)
        .sadd(0, Kind::Fail, "s", 13)
        .sadd(0, Kind::Ok, "s", 14)
        .srem(4, Kind::Info, "s", 14, 0)
        // Deleted keys: d1 deleted (1); d2's DEL saw nothing (0).
        .set(0, Kind::Ok, "d1", 20)
        .del(0, Kind::Ok, "d1", 1)
        .set(0, Kind::Ok, "d2", 21)
        .del(0, Kind::Ok, "d2", 0);
    if finals {
        // Right after healing, n3 was behind on r and d1.
        history
            .get("n1", "r", false, Some("2"))
            .get("n3", "r", false, Some("1"))
            .get("n1", "d1", false, None)
            .get("n3", "d1", false, Some("20"))
            .converge(true)
            .get_everywhere("r", Some("2"))
            .get_everywhere("c", Some("12"))
            .members_everywhere("s", &[11, 12])
            .get_everywhere("d1", None)
            .get_everywhere("d2", Some("21"));
    }
    history
}

fn assert_anomaly(report: &EventualReport, class: &str, key: &str, says: &str) {
    let found = report
        .anomalies
        .iter()
        .find(|anomaly| anomaly.class == class && anomaly.key == key);
    let anomaly = found.unwrap_or_else(|| panic!("no {class} on {key}: {report:#?}"));
    assert!(anomaly.explanation.contains(says), "{anomaly:#?}");
    assert!(!report.is_valid());
}

#[test]
fn a_history_that_keeps_every_promise_is_valid() {
    let report = valid(true).check();
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!(
        (
            report.registers,
            report.counters,
            report.sets,
            report.deleted
        ),
        (1, 1, 1, 2)
    );
    assert_eq!(report.keys(), 5);
    assert_eq!(report.nodes, 3);
    assert_eq!((report.srem_removed, report.srem_missed), (1, 1));
    assert_eq!((report.del_removed, report.del_missed), (1, 1));
    assert_eq!(report.divergent_before, Some(2));
    assert_eq!(report.divergent, 0);
    assert_eq!(report.converged, Some(true));
    assert_eq!(report.converge_ms, Some(1));
}

#[test]
fn nodes_that_answer_differently_diverge() {
    let mut history = valid(false);
    history
        .converge(true)
        .get("n1", "r", true, Some("2"))
        .get("n2", "r", true, Some("2"))
        .get("n3", "r", true, Some("1"))
        .get_everywhere("c", Some("12"))
        .members_everywhere("s", &[11, 12])
        .get_everywhere("d1", None)
        .get_everywhere("d2", Some("21"));
    let report = history.check();
    assert_eq!(report.divergent, 1);
    assert_anomaly(&report, "divergent", "r", "n3: \"1\"");
    assert_eq!(report.counts.len(), 1, "{report:#?}");
}

#[test]
fn a_node_without_a_final_read_is_reported() {
    let mut history = valid(false);
    history
        .converge(true)
        .get_everywhere("r", Some("2"))
        .get("n1", "c", true, Some("12"))
        .get("n2", "c", true, Some("12"))
        .members_everywhere("s", &[11, 12])
        .get_everywhere("d1", None)
        .get_everywhere("d2", Some("21"));
    assert_anomaly(&history.check(), "no-final-read", "c", "node n3");
}

#[test]
fn digests_that_never_agree_are_reported() {
    let mut history = valid(false);
    history
        .converge(false)
        .get_everywhere("r", Some("2"))
        .get_everywhere("c", Some("12"))
        .members_everywhere("s", &[11, 12])
        .get_everywhere("d1", None)
        .get_everywhere("d2", Some("21"));
    let report = history.check();
    assert_eq!(report.converged, Some(false));
    assert_anomaly(&report, "not-converged", "", "digests still differ");
}

/// The valid history's final reads, with `key` answering `value` on
/// every node instead.
fn finals_with(key: &str, value: Option<&str>) -> EventualReport {
    let mut history = valid(false);
    history.converge(true);
    for (name, fitting) in [
        ("r", Some("2")),
        ("c", Some("12")),
        ("d1", None),
        ("d2", Some("21")),
    ] {
        let answer = if name == key { value } else { fitting };
        history.get_everywhere(name, answer);
    }
    history.members_everywhere("s", &[11, 12]);
    history.check()
}

#[test]
fn a_register_holds_only_written_values_and_keeps_acknowledged_ones() {
    assert_anomaly(
        &finals_with("r", Some("99")),
        "invented",
        "r",
        "\"99\" was never written",
    );
    assert_anomaly(
        &finals_with("r", Some("3")),
        "failed-write-seen",
        "r",
        "set(r, 3) fail",
    );
    assert_anomaly(
        &finals_with("r", None),
        "lost-write",
        "r",
        "set(r, 1) @n1 ok",
    );
    // d2's DEL answered 0: it removed nothing, so its SET must remain.
    assert_anomaly(
        &finals_with("d2", None),
        "lost-write",
        "d2",
        "set(d2, 21) @n1 ok",
    );
}

#[test]
fn a_counter_stays_between_its_acknowledged_and_possible_increments() {
    assert_anomaly(
        &finals_with("c", Some("11")),
        "lost-increment",
        "c",
        "below the 12",
    );
    assert_anomaly(&finals_with("c", None), "lost-increment", "c", "ends at 0");
    assert_anomaly(
        &finals_with("c", Some("113")),
        "invented-increment",
        "c",
        "above the 112",
    );
    assert!(finals_with("c", Some("112")).is_valid());
    assert_anomaly(&finals_with("c", Some("x")), "invented", "c", "\"x\"");

    // An INCRBY answered 30 (it saw another client's count): the counter
    // may not end below it, even if the deltas alone allow it.
    let mut history = History::default();
    history
        .incrby(0, Kind::Ok, "c", 5, 30)
        .incrby(1, Kind::Info, "c", 25, 0)
        .converge(true)
        .get_everywhere("c", Some("5"));
    assert_anomaly(&history.check(), "lost-increment", "c", "below the 30 of");
}

/// The valid history's final reads, with the set answering `members` on
/// every node instead.
fn set_with(members: &[u64]) -> EventualReport {
    let mut history = valid(false);
    history
        .converge(true)
        .get_everywhere("r", Some("2"))
        .get_everywhere("c", Some("12"))
        .members_everywhere("s", members)
        .get_everywhere("d1", None)
        .get_everywhere("d2", Some("21"));
    history.check()
}

#[test]
fn a_set_holds_only_added_members_keeps_acknowledged_ones_and_drops_removed_ones() {
    assert!(set_with(&[11, 12, 14]).is_valid());
    assert!(set_with(&[11]).is_valid());
    assert_anomaly(
        &set_with(&[11, 99]),
        "invented",
        "s",
        "member 99 was never added",
    );
    assert_anomaly(
        &set_with(&[11, 13]),
        "failed-write-seen",
        "s",
        "sadd(s, 13) fail",
    );
    // 11's SREM answered 0: it removed nothing, so 11 must remain.
    assert_anomaly(
        &set_with(&[12]),
        "lost-add",
        "s",
        "its SREMs removed nothing",
    );
    assert_anomaly(
        &set_with(&[10, 11]),
        "removed-present",
        "s",
        "srem(s, 10) @n1 -> 1 ok",
    );

    // An SREM that removed an element no SADD may have added.
    let mut history = History::default();
    history
        .sadd(0, Kind::Fail, "s", 1)
        .srem(0, Kind::Ok, "s", 1, 1)
        .converge(true)
        .members_everywhere("s", &[]);
    assert_anomaly(&history.check(), "saw-unwritten", "s", "no SADD of 1");
}

#[test]
fn a_deleted_key_does_not_come_back() {
    assert_anomaly(
        &finals_with("d1", Some("20")),
        "resurrected",
        "d1",
        "del(d1) @n2 -> 1 ok",
    );

    let mut history = History::default();
    history
        .set(0, Kind::Fail, "d", 1)
        .del(0, Kind::Ok, "d", 1)
        .converge(true)
        .get_everywhere("d", None);
    assert_anomaly(&history.check(), "saw-unwritten", "d", "no SET of it");
}

#[test]
fn a_history_without_final_reads_cannot_be_checked() {
    let report = valid(false).check();
    assert!(report.problem.unwrap().contains("no successful final read"));

    let mut history = valid(false);
    // A completion of an operation never invoked.
    history.push(
        77,
        Kind::Ok,
        Op::EventualDel {
            key: "d1".into(),
            removed: Some(1),
            node: None,
        },
        None,
    );
    assert!(history.check().problem.unwrap().contains("malformed"));
    assert!(check(&[]).is_valid());
}
