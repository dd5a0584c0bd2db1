//! Tests of the register checker: hand-written histories for each kind
//! of anomaly, and random histories of a simulated linearizable register.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use super::pair::pair;
use super::registers::{check, Budget, RegisterReport};
use crate::history::{Event, Kind, Op};

/// A history written by hand, one event at a time.
#[derive(Default)]
struct History {
    events: Vec<Event>,
}

impl History {
    fn push(&mut self, time_ns: u64, process: u64, kind: Kind, op: Op) -> &mut Self {
        self.events.push(Event {
            index: self.events.len() as u64,
            time_ns,
            process,
            kind,
            op,
            error: None,
        });
        self
    }

    fn check(&self) -> RegisterReport {
        check(&self.events, Budget::default())
    }
}

fn read(value: Option<u64>) -> Op {
    read_key("x", value)
}

fn read_key(key: &str, value: Option<u64>) -> Op {
    Op::Read {
        key: key.into(),
        value,
    }
}

fn write(value: u64) -> Op {
    Op::Write {
        key: "x".into(),
        value,
    }
}

fn cas(from: u64, to: u64) -> Op {
    Op::Cas {
        key: "x".into(),
        from,
        to,
    }
}

/// Adds a complete operation on process `process` from `start` to `end`.
fn op(history: &mut History, process: u64, start: u64, end: u64, kind: Kind, op: Op) {
    let invoked = match &op {
        Op::Read { key, .. } => read_key(key, None),
        other => other.clone(),
    };
    history.push(start, process, Kind::Invoke, invoked);
    history.push(end, process, kind, op);
}

fn assert_valid(report: &RegisterReport) {
    assert!(report.is_valid(), "expected valid: {report:#?}");
}

fn assert_invalid(report: &RegisterReport) {
    assert!(!report.is_valid(), "expected invalid: {report:#?}");
    assert_eq!(report.anomalies.len(), 1, "{report:#?}");
    assert!(report.unknown_keys.is_empty(), "{report:#?}");
}

#[test]
fn a_sequential_history_is_linearizable() {
    let mut history = History::default();
    op(&mut history, 1, 0, 10, Kind::Ok, read(None));
    op(&mut history, 1, 20, 30, Kind::Ok, write(1));
    op(&mut history, 2, 40, 50, Kind::Ok, read(Some(1)));
    op(&mut history, 1, 60, 70, Kind::Ok, write(2));
    op(&mut history, 2, 80, 90, Kind::Ok, read(Some(2)));
    let report = history.check();
    assert_valid(&report);
    assert_eq!((report.keys, report.operations), (1, 5));
}

#[test]
fn concurrent_operations_where_only_one_order_works() {
    // write(2) must go before read(2), which must go before write(1),
    // though write(1) was invoked first.
    let mut history = History::default();
    history.push(0, 1, Kind::Invoke, write(1));
    history.push(10, 2, Kind::Invoke, write(2));
    history.push(20, 3, Kind::Invoke, read(None));
    history.push(90, 2, Kind::Ok, write(2));
    history.push(95, 3, Kind::Ok, read(Some(2)));
    history.push(100, 1, Kind::Ok, write(1));
    op(&mut history, 3, 110, 120, Kind::Ok, read(Some(1)));
    assert_valid(&history.check());
}

#[test]
fn a_stale_read_after_a_completed_write_is_not_linearizable() {
    let mut history = History::default();
    op(&mut history, 1, 0, 10, Kind::Ok, write(1));
    op(&mut history, 1, 20, 30, Kind::Ok, write(2));
    op(&mut history, 2, 40, 50, Kind::Ok, read(Some(1)));
    let report = history.check();
    assert_invalid(&report);
    let anomaly = &report.anomalies[0];
    assert_eq!(anomaly.key, "x");
    assert!(anomaly.explanation.contains("leaves x = 2"), "{anomaly:#?}");
    assert!(anomaly.explanation.contains("read(x) -> 1"), "{anomaly:#?}");
    let last = anomaly.operations.last().unwrap();
    assert_eq!((last.invoke_index, last.complete_index), (4, Some(5)));
}

#[test]
fn a_read_of_a_value_never_written_is_not_linearizable() {
    let mut history = History::default();
    op(&mut history, 1, 0, 10, Kind::Ok, write(1));
    op(&mut history, 2, 5, 15, Kind::Ok, read(Some(7)));
    let report = history.check();
    assert_invalid(&report);
    assert!(report.anomalies[0]
        .explanation
        .contains("no operation on x"));
}

#[test]
fn a_lost_write_is_not_linearizable() {
    let mut history = History::default();
    op(&mut history, 1, 0, 10, Kind::Ok, write(1));
    op(&mut history, 2, 20, 30, Kind::Ok, read(Some(1)));
    op(&mut history, 1, 40, 50, Kind::Ok, write(2));
    op(&mut history, 2, 60, 70, Kind::Ok, read(Some(1)));
    assert_invalid(&history.check());
}

#[test]
fn an_unknown_write_that_appears_later_is_linearizable() {
    let mut history = History::default();
    op(&mut history, 1, 0, 10, Kind::Info, write(1));
    op(&mut history, 2, 20, 30, Kind::Ok, read(None));
    op(&mut history, 2, 500, 510, Kind::Ok, read(Some(1)));
    assert_valid(&history.check());
}

#[test]
fn an_unknown_write_never_seen_is_linearizable() {
    let mut history = History::default();
    op(&mut history, 1, 0, 10, Kind::Info, write(1));
    history.push(15, 3, Kind::Invoke, write(3));
    op(&mut history, 2, 20, 30, Kind::Ok, read(None));
    assert_valid(&history.check());
}

#[test]
fn an_unknown_write_seen_then_undone_is_not_linearizable() {
    let mut history = History::default();
    op(&mut history, 1, 0, 10, Kind::Ok, write(1));
    op(&mut history, 2, 20, 30, Kind::Info, write(2));
    op(&mut history, 3, 40, 50, Kind::Ok, read(Some(2)));
    op(&mut history, 3, 60, 70, Kind::Ok, read(Some(1)));
    assert_invalid(&history.check());
}

#[test]
fn a_successful_cas_needs_its_expected_value() {
    let mut history = History::default();
    op(&mut history, 1, 0, 10, Kind::Ok, write(1));
    op(&mut history, 1, 20, 30, Kind::Ok, cas(1, 2));
    op(&mut history, 2, 40, 50, Kind::Ok, read(Some(2)));
    assert_valid(&history.check());

    let mut history = History::default();
    op(&mut history, 1, 0, 10, Kind::Ok, write(1));
    op(&mut history, 1, 20, 30, Kind::Ok, write(3));
    op(&mut history, 1, 40, 50, Kind::Ok, cas(1, 2));
    let report = history.check();
    assert_invalid(&report);
    assert!(report.anomalies[0]
        .explanation
        .contains("found x = 1 but x held 3"));
}

#[test]
fn a_failed_cas_did_not_happen() {
    let mut history = History::default();
    op(&mut history, 1, 0, 10, Kind::Ok, write(1));
    op(&mut history, 1, 20, 30, Kind::Fail, cas(3, 2));
    op(&mut history, 2, 40, 50, Kind::Ok, read(Some(1)));
    assert_valid(&history.check());

    let mut history = History::default();
    op(&mut history, 1, 0, 10, Kind::Ok, write(1));
    op(&mut history, 1, 20, 30, Kind::Fail, cas(1, 2));
    op(&mut history, 2, 40, 50, Kind::Ok, read(Some(2)));
    assert_invalid(&history.check());
}

#[test]
fn an_unknown_cas_may_or_may_not_have_happened() {
    for (seen, valid) in [
        ([1, 2], true),
        ([1, 1], true),
        ([2, 2], true),
        ([2, 1], false),
    ] {
        let mut history = History::default();
        op(&mut history, 1, 0, 10, Kind::Ok, write(1));
        op(&mut history, 1, 20, 30, Kind::Info, cas(1, 2));
        op(&mut history, 2, 40, 50, Kind::Ok, read(Some(seen[0])));
        op(&mut history, 2, 60, 70, Kind::Ok, read(Some(seen[1])));
        assert_eq!(history.check().is_valid(), valid, "reads saw {seen:?}");
    }
}

#[test]
fn keys_are_checked_independently() {
    let mut history = History::default();
    op(&mut history, 1, 0, 10, Kind::Ok, write(1));
    op(&mut history, 1, 20, 30, Kind::Ok, read_key("y", Some(1)));
    op(&mut history, 1, 40, 50, Kind::Ok, read(Some(1)));
    let report = history.check();
    assert_eq!(report.keys, 2);
    assert_invalid(&report);
    assert_eq!(report.anomalies[0].key, "y");
}

#[test]
fn a_search_over_budget_is_unknown_not_valid() {
    let mut history = History::default();
    for process in 0..6 {
        history.push(process, process, Kind::Invoke, write(process + 1));
    }
    for process in 0..6 {
        history.push(100 + process, process, Kind::Ok, write(process + 1));
    }
    op(&mut history, 9, 200, 210, Kind::Ok, read(Some(1)));
    let budget = Budget {
        states_max: 3,
        time_max: Duration::from_secs(10),
    };
    let report = check(&history.events, budget);
    assert!(!report.is_valid(), "{report:#?}");
    assert_eq!(report.unknown_keys, ["x"]);
    assert!(report.anomalies.is_empty());
    assert_valid(&history.check());
}

#[test]
fn a_malformed_history_is_an_anomaly() {
    let mut history = History::default();
    history.push(0, 1, Kind::Ok, write(1));
    let report = history.check();
    assert!(!report.is_valid());
    assert!(report.anomalies[0].explanation.contains("malformed"));
}

/// A deterministic generator (SplitMix64), so a seed replays a history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The shape of a random history.
struct Shape {
    keys: u64,
    clients: u64,
    operations: usize,
    /// Chance that a write or compare-and-set ends unknown.
    uncertain_percent: u64,
    /// Values written are drawn from `1..=values_max`; 0: every value
    /// written is new.
    values_max: u64,
}

/// One simulated operation before its result is known.
struct Planned {
    process: u64,
    key: String,
    op: Op,
    invoke_ns: u64,
    effect_ns: u64,
    complete_ns: u64,
    /// The client will not learn the outcome.
    uncertain: bool,
    /// A read that fails without reaching the register.
    fails: bool,
}

/// Simulates clients on a real register: every operation takes effect
/// atomically at a random instant inside its interval, so the history is
/// linearizable by construction. Values written are unique.
fn random_history(seed: u64, shape: &Shape) -> Vec<Event> {
    let mut rng = Rng(seed);
    let mut planned: Vec<Planned> = Vec::new();
    let mut written: Vec<Vec<u64>> = vec![Vec::new(); shape.keys as usize];
    let mut next_value = 1;
    let mut next_process = shape.clients;
    let mut clients: Vec<(u64, u64)> = (0..shape.clients).map(|client| (client, 0)).collect();
    for round in 0..shape.operations {
        let client = round % clients.len();
        let (process, free_ns) = clients[client];
        let key_number = rng.below(shape.keys) as usize;
        let key = format!("k{key_number}");
        let op = match rng.below(10) {
            0..=3 => read_key(&key, None),
            4..=6 => Op::Write {
                key: key.clone(),
                value: next_value,
            },
            _ => {
                let recent = &written[key_number];
                let from = if recent.is_empty() {
                    0
                } else {
                    recent[recent.len() - 1 - rng.below(recent.len().min(3) as u64) as usize]
                };
                Op::Cas {
                    key: key.clone(),
                    from,
                    to: next_value,
                }
            }
        };
        if !matches!(op, Op::Read { .. }) {
            written[key_number].push(next_value);
            next_value = if shape.values_max == 0 {
                next_value + 1
            } else {
                1 + rng.below(shape.values_max)
            };
        }
        let invoke_ns = free_ns + 1 + rng.below(50);
        let duration_ns = 1 + if rng.chance(5) {
            rng.below(2_000)
        } else {
            rng.below(200)
        };
        let uncertain = !matches!(op, Op::Read { .. }) && rng.chance(shape.uncertain_percent);
        let fails = matches!(op, Op::Read { .. }) && rng.chance(2);
        planned.push(Planned {
            process,
            key,
            op,
            invoke_ns,
            effect_ns: invoke_ns + rng.below(duration_ns + 1),
            complete_ns: invoke_ns + duration_ns,
            uncertain,
            fails,
        });
        let next = if uncertain { next_process } else { process };
        next_process += u64::from(uncertain);
        clients[client] = (next, invoke_ns + duration_ns);
    }

    let mut by_effect: Vec<usize> = (0..planned.len()).collect();
    by_effect.sort_by_key(|&position| (planned[position].effect_ns, position));
    let mut registers: std::collections::HashMap<String, u64> = Default::default();
    // Position -> (completion kind, what it saw); `None`: no completion.
    let mut results: Vec<Option<(Kind, Op)>> = vec![None; planned.len()];
    for position in by_effect {
        let plan = &planned[position];
        let register = registers.get(&plan.key).copied();
        let applies = !plan.uncertain || rng.chance(50);
        let (kind, seen) = match &plan.op {
            Op::Read { key, .. } if plan.fails => (Kind::Fail, read_key(key, None)),
            Op::Read { key, .. } => (Kind::Ok, read_key(key, register)),
            Op::Write { value, .. } => {
                if applies {
                    registers.insert(plan.key.clone(), *value);
                }
                (Kind::Ok, plan.op.clone())
            }
            Op::Cas { from, to, .. } => {
                let matches = register == Some(*from);
                if applies && matches {
                    registers.insert(plan.key.clone(), *to);
                }
                (if matches { Kind::Ok } else { Kind::Fail }, plan.op.clone())
            }
            other => panic!("unexpected op {other:?}"),
        };
        results[position] = match (plan.uncertain, rng.chance(50)) {
            (false, _) => Some((kind, seen)),
            (true, true) => Some((Kind::Info, plan.op.clone())),
            (true, false) => None,
        };
    }

    let mut timed: Vec<(u64, u64, Kind, Op)> = Vec::new();
    for (plan, result) in planned.iter().zip(results) {
        timed.push((plan.invoke_ns, plan.process, Kind::Invoke, plan.op.clone()));
        if let Some((kind, seen)) = result {
            timed.push((plan.complete_ns, plan.process, kind, seen));
        }
    }
    timed.sort_by_key(|(time_ns, ..)| *time_ns);
    timed
        .into_iter()
        .enumerate()
        .map(|(index, (time_ns, process, kind, op))| Event {
            index: index as u64,
            time_ns,
            process,
            kind,
            op,
            error: None,
        })
        .collect()
}

/// Makes one late read see a value two writes back, which no order
/// allows: both writes finished before the read began, in order.
fn make_stale_read(events: &mut [Event]) -> bool {
    let operations = pair(events).unwrap().operations;
    let writes: Vec<_> = operations
        .iter()
        .filter(|operation| {
            matches!(operation.op, Op::Write { .. }) && operation.complete_ns.is_some()
        })
        .collect();
    for read in operations.iter().rev() {
        let (Op::Read { key, value: seen }, Some(_)) = (&read.seen, read.complete_ns) else {
            continue;
        };
        let before: Vec<_> = writes
            .iter()
            .filter(|write| {
                matches!(&write.op, Op::Write { key: written, .. } if written == key)
                    && write.complete_ns.unwrap() < read.invoke_ns
            })
            .collect();
        for (older, newer) in before.iter().zip(before.iter().skip(1)).rev() {
            let Op::Write { value: stale, .. } = older.op else {
                continue;
            };
            if older.complete_ns.unwrap() < newer.invoke_ns && *seen != Some(stale) {
                let event = &mut events[read.complete_index.unwrap() as usize];
                event.op = read_key(key, Some(stale));
                return true;
            }
        }
    }
    false
}

fn seed_from_env_or_clock() -> u64 {
    std::env::var("POLIS_VERIFY_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos() as u64)
        })
}

fn check_random(seed: u64, shape: &Shape) {
    println!(
        "seed {seed}; replay: POLIS_VERIFY_SEED={seed} cargo test -p polis-verify registers_test"
    );
    let mut events = random_history(seed, shape);
    let started = Instant::now();
    let report = check(&events, Budget::default());
    println!(
        "{} events, {} operations on {} keys checked in {:?}",
        events.len(),
        report.operations,
        report.keys,
        started.elapsed()
    );
    assert_valid(&report);

    let mut impossible = events.clone();
    let read = impossible
        .iter_mut()
        .rev()
        .find(|event| event.kind == Kind::Ok && matches!(event.op, Op::Read { .. }))
        .unwrap();
    if let Op::Read { value, .. } = &mut read.op {
        *value = Some(u64::MAX);
    }
    assert_invalid(&check(&impossible, Budget::default()));

    if shape.values_max > 0 {
        // With values written more than once, a stale read may have an
        // explanation.
        return;
    }
    assert!(make_stale_read(&mut events), "no read to make stale");
    let started = Instant::now();
    let report = check(&events, Budget::default());
    println!("stale read found in {:?}", started.elapsed());
    assert_invalid(&report);
}

#[test]
fn random_linearizable_histories_pass_and_mutations_fail() {
    let shape = Shape {
        keys: 3,
        clients: 10,
        operations: 3_000,
        uncertain_percent: 2,
        values_max: 0,
    };
    for seed in [1, 2, 3, seed_from_env_or_clock()] {
        check_random(seed, &shape);
    }
}

#[test]
fn random_histories_with_few_distinct_values_pass() {
    let shape = Shape {
        keys: 2,
        clients: 10,
        operations: 3_000,
        uncertain_percent: 2,
        values_max: 5,
    };
    for seed in [4, 5, seed_from_env_or_clock()] {
        check_random(seed, &shape);
    }
}

/// A large history; run with `cargo test --release -p polis-verify
/// large_random -- --ignored --nocapture` to see how long it takes.
#[test]
#[ignore]
fn large_random_history() {
    let shape = Shape {
        keys: 1,
        clients: 10,
        operations: 20_000,
        uncertain_percent: 10,
        values_max: 0,
    };
    check_random(seed_from_env_or_clock(), &shape);
}
