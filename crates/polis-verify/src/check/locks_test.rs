//! The lock checker on hand-made histories: a correct one passes, each
//! anomaly is caught, and what concurrency allows is not condemned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::history::Kind;

const LOCK: &str = "verify:{lk0}";

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

fn acquire_op(process: u64, token: Option<u64>) -> Op {
    Op::LockAcquire {
        lock: LOCK.into(),
        owner: format!("c{process}"),
        token,
    }
}

/// An ACQUIRE by `process` answered `token`: its invocation and its
/// completion, to be placed apart or together.
fn acquire(process: u64, token: Option<u64>) -> [Step; 2] {
    [
        (process, Kind::Invoke, acquire_op(process, None)),
        (process, Kind::Ok, acquire_op(process, token)),
    ]
}

fn write(process: u64, token: u64, element: u64, kind: Kind) -> [Step; 2] {
    let op = Op::FencedPush {
        lock: LOCK.into(),
        token,
        element,
    };
    [(process, Kind::Invoke, op.clone()), (process, kind, op)]
}

fn final_read(elements: &[u64]) -> [Step; 2] {
    let op = |elements| Op::Lrange {
        list: guarded_list(LOCK),
        elements,
    };
    [
        (99, Kind::Invoke, op(None)),
        (99, Kind::Ok, op(Some(elements.to_vec()))),
    ]
}

fn run(parts: &[&[Step]]) -> LockReport {
    let steps: Vec<Step> = parts.iter().flat_map(|part| part.iter().cloned()).collect();
    check(&history(&steps))
}

fn kinds(report: &LockReport) -> Vec<&str> {
    report.anomalies.iter().map(|a| a.kind.as_str()).collect()
}

#[test]
fn a_paused_holder_fenced_off_is_valid() {
    let report = run(&[
        &acquire(1, Some(10)),
        &write(1, 10, 1, Kind::Ok),
        &acquire(2, None), // busy while 1's lease runs
        // 1 stalls; its lease lapses; 2 acquires and writes.
        &acquire(2, Some(20)),
        &write(2, 20, 2, Kind::Ok),
        // 1 wakes up and writes with its old token: refused.
        &write(1, 10, 3, Kind::Fail),
        // A write of unknown outcome that did not take effect.
        &write(2, 20, 4, Kind::Info),
        &final_read(&[1, 2]),
    ]);
    assert!(report.is_valid(), "{report:#?}");
    assert_eq!((report.grants, report.busy), (2, 1));
    assert_eq!(
        (
            report.writes_ok,
            report.writes_refused,
            report.writes_unknown
        ),
        (2, 1, 1)
    );
    assert_eq!((report.stale_refused, report.applied), (1, 2));
}

#[test]
fn a_write_overlapping_the_next_grant_may_apply_before_it() {
    // 1's write is invoked before 2's grant is acknowledged, so it may
    // have applied before the grant: in the list before 2's element.
    let [write_invoke, write_ok] = write(1, 10, 2, Kind::Ok);
    let [grant_invoke, grant_ok] = acquire(2, Some(20));
    let report = run(&[
        &acquire(1, Some(10)),
        &[write_invoke, grant_invoke, write_ok, grant_ok],
        &write(2, 20, 3, Kind::Ok),
        &final_read(&[2, 3]),
    ]);
    assert!(report.is_valid(), "{report:#?}");
}

#[test]
fn a_stale_write_that_took_effect_is_caught() {
    // Acknowledged after a larger token's grant was acknowledged.
    let report = run(&[
        &acquire(1, Some(10)),
        &acquire(2, Some(20)),
        &write(2, 20, 1, Kind::Ok),
        &write(1, 10, 2, Kind::Ok),
        &final_read(&[1, 2]),
    ]);
    assert_eq!(
        kinds(&report),
        ["stale-applied", "list-order"],
        "{report:#?}"
    );
    assert!(!report.is_valid());
    assert!(
        report.anomalies[0]
            .explanation
            .contains("fenced-push(verify:{lk0}, 10, 2)"),
        "{report:#?}"
    );

    // Unknown outcome, but its element is in the list.
    let report = run(&[
        &acquire(1, Some(10)),
        &acquire(2, Some(20)),
        &write(1, 10, 2, Kind::Info),
        &final_read(&[2]),
    ]);
    assert_eq!(kinds(&report), ["stale-applied"], "{report:#?}");
}

#[test]
fn tokens_out_of_order_are_caught() {
    // In the list: a smaller token after a larger one.
    let [first_invoke, first_ok] = write(1, 10, 2, Kind::Ok);
    let report = run(&[
        &acquire(1, Some(10)),
        &[first_invoke],
        &acquire(2, Some(20)),
        &write(2, 20, 1, Kind::Ok),
        &[first_ok],
        &final_read(&[1, 2]),
    ]);
    assert_eq!(kinds(&report), ["list-order"], "{report:#?}");

    // Granted a smaller token after a larger one was acknowledged.
    let report = run(&[
        &acquire(1, Some(20)),
        &acquire(2, Some(10)),
        &final_read(&[]),
    ]);
    assert_eq!(kinds(&report), ["grant-order"], "{report:#?}");

    // One token for two owners.
    let [a_invoke, a_ok] = acquire(1, Some(10));
    let [b_invoke, b_ok] = acquire(2, Some(10));
    let report = run(&[&[a_invoke, b_invoke, a_ok, b_ok], &final_read(&[])]);
    assert_eq!(kinds(&report), ["token-shared"], "{report:#?}");
    // The same owner acquiring again gets its token again: no anomaly.
    let report = run(&[
        &acquire(1, Some(10)),
        &acquire(1, Some(10)),
        &final_read(&[]),
    ]);
    assert!(report.is_valid(), "{report:#?}");
}

#[test]
fn refused_lost_invented_and_duplicated_elements_are_caught() {
    let report = run(&[
        &acquire(1, Some(10)),
        &write(1, 10, 1, Kind::Fail),
        &write(1, 10, 2, Kind::Ok),
        &write(1, 10, 3, Kind::Ok),
        &final_read(&[1, 3, 3, 77]),
    ]);
    assert_eq!(
        kinds(&report),
        ["refused-applied", "duplicated", "invented", "lost"],
        "{report:#?}"
    );
}

#[test]
fn writes_without_a_final_read_cannot_be_judged() {
    let report = run(&[&acquire(1, Some(10)), &write(1, 10, 1, Kind::Ok)]);
    assert!(report.problem.is_some());
    assert!(!report.is_valid());
}
