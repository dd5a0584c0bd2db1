//! The blocking-pop checker on hand-made histories: each anomaly is
//! caught, and what unknown outcomes allow is not condemned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::history::Kind;
use crate::workload::pop::JOBS_BLPOP;

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

fn push(process: u64, list: &str, element: u64, kind: Kind) -> Vec<Step> {
    let op = Op::Rpush {
        list: list.into(),
        element,
    };
    vec![(process, Kind::Invoke, op.clone()), (process, kind, op)]
}

fn pop(process: u64, list: &str, element: Option<u64>, kind: Kind) -> Vec<Step> {
    let op = |element| Op::Pop {
        list: list.into(),
        element,
    };
    let seen = if kind == Kind::Ok { element } else { None };
    vec![(process, Kind::Invoke, op(None)), (process, kind, op(seen))]
}

fn lrange(list: &str, elements: &[u64]) -> Vec<Step> {
    let op = |elements| Op::Lrange {
        list: list.into(),
        elements,
    };
    vec![
        (99, Kind::Invoke, op(None)),
        (99, Kind::Ok, op(Some(elements.to_vec()))),
    ]
}

/// The final reads: the jobs, processing and BLPOP lists' contents.
fn finals(jobs: &[u64], processing: &[u64], blpop: &[u64]) -> Vec<Step> {
    [
        lrange(JOBS, jobs),
        lrange(PROCESSING, processing),
        lrange(JOBS_BLPOP, blpop),
    ]
    .concat()
}

fn run(parts: &[Vec<Step>]) -> PopReport {
    check(&history(&parts.concat()))
}

#[test]
fn pushed_popped_or_queued_is_valid() {
    let report = run(&[
        push(1, JOBS, 1, Kind::Ok),
        push(1, JOBS, 2, Kind::Ok),
        push(1, JOBS, 3, Kind::Ok),
        push(1, JOBS_BLPOP, 4, Kind::Ok),
        pop(2, JOBS, Some(1), Kind::Ok),
        pop(2, JOBS, Some(2), Kind::Ok),
        pop(3, JOBS_BLPOP, Some(4), Kind::Ok),
        pop(3, JOBS_BLPOP, None, Kind::Ok),
        // 1 was finished (LREM), 2 is still being processed, 3 queued.
        finals(&[3], &[2], &[]),
    ]);
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(
        (report.pops, report.empty_pops, report.remaining),
        (3, 1, 2)
    );
}

#[test]
fn two_pops_of_one_element_are_a_double_pop() {
    let report = run(&[
        push(1, JOBS_BLPOP, 1, Kind::Ok),
        pop(2, JOBS_BLPOP, Some(1), Kind::Ok),
        pop(3, JOBS_BLPOP, Some(1), Kind::Ok),
        finals(&[], &[], &[]),
    ]);
    assert!(!report.is_valid());
    assert_eq!(report.double_pops, [1]);
    assert!(report.details[0].starts_with("double-pop: 1"), "{report:?}");
}

#[test]
fn a_popped_element_still_queued_is_a_double_pop() {
    let report = run(&[
        push(1, JOBS, 1, Kind::Ok),
        pop(2, JOBS, Some(1), Kind::Ok),
        finals(&[1], &[], &[]),
    ]);
    assert!(!report.is_valid());
    assert_eq!(report.double_pops, [1]);
}

#[test]
fn an_element_in_two_final_lists_is_duplicated() {
    let report = run(&[push(1, JOBS, 1, Kind::Ok), finals(&[1], &[1], &[])]);
    assert!(!report.is_valid());
    assert_eq!(report.duplicated, [1]);
}

#[test]
fn an_acknowledged_element_gone_without_a_pop_is_lost() {
    let report = run(&[
        push(1, JOBS, 1, Kind::Ok),
        push(1, JOBS, 2, Kind::Ok),
        finals(&[2], &[], &[]),
    ]);
    assert!(!report.is_valid());
    assert_eq!(report.lost, [1]);
}

#[test]
fn an_unknown_blmove_does_not_excuse_a_loss() {
    let report = run(&[
        push(1, JOBS, 1, Kind::Ok),
        pop(2, JOBS, None, Kind::Info),
        finals(&[], &[], &[]),
    ]);
    assert_eq!(report.lost, [1]);
}

#[test]
fn an_unknown_blpop_may_have_taken_one_element() {
    let one = run(&[
        push(1, JOBS_BLPOP, 1, Kind::Ok),
        pop(2, JOBS_BLPOP, None, Kind::Info),
        finals(&[], &[], &[]),
    ]);
    assert!(one.is_valid(), "{one:?}");
    let two = run(&[
        push(1, JOBS_BLPOP, 1, Kind::Ok),
        push(1, JOBS_BLPOP, 2, Kind::Ok),
        pop(2, JOBS_BLPOP, None, Kind::Info),
        finals(&[], &[], &[]),
    ]);
    assert!(!two.is_valid());
    assert_eq!(two.lost, [1, 2]);
}

#[test]
fn an_element_never_pushed_is_invented() {
    let report = run(&[
        push(1, JOBS, 1, Kind::Ok),
        pop(2, JOBS, Some(7), Kind::Ok),
        finals(&[1], &[8], &[]),
    ]);
    assert!(!report.is_valid());
    assert_eq!(report.invented, [7, 8]);
}

#[test]
fn a_failed_push_that_shows_up_is_invented() {
    let report = run(&[push(1, JOBS, 1, Kind::Fail), finals(&[1], &[], &[])]);
    assert_eq!(report.invented, [1]);
    assert_eq!(report.failed, 1);
}

#[test]
fn unknown_pushes_may_show_up_or_not() {
    let report = run(&[
        push(1, JOBS, 1, Kind::Info),
        push(3, JOBS, 2, Kind::Info),
        finals(&[1], &[], &[]),
    ]);
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.indeterminate, 2);
}

#[test]
fn a_missing_final_read_is_invalid_with_a_reason() {
    let report = run(&[push(1, JOBS, 1, Kind::Ok), lrange(JOBS, &[1])]);
    assert!(!report.is_valid());
    assert!(report
        .problem
        .unwrap()
        .contains("no successful final LRANGE"));
}
