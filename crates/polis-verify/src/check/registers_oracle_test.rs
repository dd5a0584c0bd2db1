//! Checks the register checker against a brute-force oracle on many tiny
//! random histories, valid or not: the oracle tries every order, so it
//! is slow but obviously right, and it shares no code with the checker
//! (not the pairing, the pruning, the bounding nor the search's rules).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::registers::{check, Budget};
use crate::history::{Event, Kind, Op};

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
}

/// One operation as the oracle sees it.
#[derive(Debug, Clone)]
struct Interval {
    call: u64,
    /// `None`: it may take effect at any time after `call`, or never.
    ret: Option<u64>,
    op: Op,
}

/// Whether some order of `ops` explains every result: every operation
/// with a return is placed, each after everything that returned before
/// it was called; the others are placed or not.
fn oracle(ops: &[Interval]) -> bool {
    fn search(ops: &[Interval], placed: &mut Vec<bool>, register: Option<u64>) -> bool {
        let done = ops
            .iter()
            .zip(placed.iter())
            .all(|(op, &placed)| placed || op.ret.is_none());
        if done {
            return true;
        }
        for candidate in 0..ops.len() {
            if placed[candidate] {
                continue;
            }
            let blocked = ops.iter().zip(placed.iter()).any(|(other, &placed)| {
                !placed && other.ret.is_some_and(|ret| ret < ops[candidate].call)
            });
            if blocked {
                continue;
            }
            let certain = ops[candidate].ret.is_some();
            let after = match ops[candidate].op {
                Op::Read { value, .. } => (value == register).then_some(register),
                Op::Write { value, .. } => Some(Some(value)),
                Op::Cas { from, to, .. } if register == Some(from) => Some(Some(to)),
                Op::Cas { .. } if certain => None,
                Op::Cas { .. } => Some(register),
                _ => None,
            };
            if let Some(after) = after {
                placed[candidate] = true;
                if search(ops, placed, after) {
                    return true;
                }
                placed[candidate] = false;
            }
        }
        false
    }
    search(ops, &mut vec![false; ops.len()], None)
}

/// A random tiny history on one key: a few processes, each running a
/// few operations one after another, with random results. Returns the
/// events and the intervals the oracle checks.
fn random_history(rng: &mut Rng) -> (Vec<Event>, Vec<Interval>) {
    let mut timed: Vec<(u64, u64, Kind, Op)> = Vec::new();
    let mut intervals = Vec::new();
    let mut next_process = 0;
    for _ in 0..3 {
        let mut process = next_process;
        next_process += 1;
        let mut time = rng.below(20);
        for _ in 0..1 + rng.below(3) {
            let key = "x".to_string();
            let value = 1 + rng.below(3);
            let (invoked, seen) = match rng.below(3) {
                0 => {
                    let seen = [None, Some(1), Some(2), Some(3)][rng.below(4) as usize];
                    (
                        Op::Read {
                            key: key.clone(),
                            value: None,
                        },
                        Op::Read { key, value: seen },
                    )
                }
                1 => {
                    let op = Op::Write { key, value };
                    (op.clone(), op)
                }
                _ => {
                    let from = 1 + rng.below(3);
                    let op = Op::Cas {
                        key,
                        from,
                        to: value,
                    };
                    (op.clone(), op)
                }
            };
            let call = time;
            let ret = call + 1 + rng.below(30);
            time = ret + 1 + rng.below(10);
            timed.push((call, process, Kind::Invoke, invoked.clone()));
            let kind =
                [Kind::Ok, Kind::Ok, Kind::Ok, Kind::Fail, Kind::Info][rng.below(5) as usize];
            let missing = kind == Kind::Info && rng.below(2) == 0;
            if !missing {
                timed.push((ret, process, kind, seen.clone()));
            }
            match kind {
                Kind::Ok => intervals.push(Interval {
                    call,
                    ret: Some(ret),
                    op: seen,
                }),
                Kind::Info if !matches!(invoked, Op::Read { .. }) => intervals.push(Interval {
                    call,
                    ret: None,
                    op: invoked,
                }),
                _ => {}
            }
            if kind == Kind::Info {
                process = next_process;
                next_process += 1;
            }
        }
    }
    // Stable, so a process's invocation stays before its completion.
    timed.sort_by_key(|(time, ..)| *time);
    let events = timed
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
        .collect();
    (events, intervals)
}

#[test]
fn agrees_with_a_brute_force_oracle_on_tiny_random_histories() {
    let seed = std::env::var("POLIS_VERIFY_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x0c0f_fee5);
    println!(
        "seed {seed}; replay: POLIS_VERIFY_SEED={seed} cargo test -p polis-verify registers_oracle"
    );
    let mut rng = Rng(seed);
    let mut valid = 0;
    for case in 0..3_000 {
        let (events, intervals) = random_history(&mut rng);
        let expected = oracle(&intervals);
        let report = check(&events, Budget::default());
        assert!(report.unknown_keys.is_empty(), "case {case}: {report:#?}");
        assert_eq!(
            report.is_valid(),
            expected,
            "case {case}: the oracle says {expected}\n{events:#?}\n{report:#?}"
        );
        valid += usize::from(expected);
    }
    // Both verdicts must be well represented for the test to mean much.
    println!("{valid} of 3000 valid");
    assert!((300..2_700).contains(&valid), "{valid} of 3000 valid");
}
