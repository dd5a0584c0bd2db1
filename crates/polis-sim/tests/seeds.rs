//! Runs a bounded number of seeds and fails, printing the command that
//! replays it, on the first seed that breaks an invariant. The release
//! command line runs thousands: `polis-sim --seeds 1000`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_sim::{run, SimOptions};

/// Seeds per test; the tests run in parallel, one per core.
const SEEDS_PER_TEST: u64 = 40;

fn run_seeds(start: u64, options: &SimOptions) {
    let mut failures = Vec::new();
    for seed in start..start + SEEDS_PER_TEST {
        let report = run(seed, options);
        if !report.passed() {
            failures.push(report.summary());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {SEEDS_PER_TEST} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn seeds_0_to_39_keep_every_invariant() {
    run_seeds(0, &SimOptions::default());
}

#[test]
fn seeds_40_to_79_with_five_nodes_keep_every_invariant() {
    let options = SimOptions {
        nodes: Some(5),
        ..SimOptions::default()
    };
    run_seeds(40, &options);
}
