//! A run is a function of its seed: the same seed gives the same ordered
//! trace and history (compared by digest), on the same thread, on another
//! thread, and after other runs; different seeds give different runs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_sim::{run, SimOptions};

/// Short runs: determinism does not need long ones.
fn options() -> SimOptions {
    SimOptions {
        duration_ms: Some(12_000),
        ..SimOptions::default()
    }
}

#[test]
fn the_same_seed_gives_the_same_trace_and_history() {
    let options = options();
    let first = run(7, &options);
    let other = run(8, &options);
    let again = run(7, &options);
    let elsewhere = std::thread::spawn(move || run(7, &options)).join().unwrap();
    assert!(first.trace_events > 1_000, "a run does something");
    assert!(first.history_events > 100, "clients did something");
    assert_eq!(first.digest, again.digest, "seed 7 twice in one thread");
    assert_eq!(first.digest, elsewhere.digest, "seed 7 on another thread");
    assert_eq!(first.history, again.history);
    assert_eq!(first.counts, again.counts);
    assert_ne!(first.digest, other.digest, "seeds 7 and 8 differ");
}

#[test]
fn different_seeds_give_different_runs() {
    let options = options();
    let digests: std::collections::BTreeSet<u64> =
        (100..106).map(|seed| run(seed, &options).digest).collect();
    assert_eq!(digests.len(), 6, "six seeds, six different runs");
}
