//! Nodes join and leave a running cluster while the nemesis's faults hit
//! it: a node that joins applies the cluster's entries; a node asked to
//! leave is drained, removed, and stops; every invariant holds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_sim::config::SimOptions;
use polis_sim::run::run;

fn five_nodes() -> SimOptions {
    SimOptions {
        nodes: Some(5),
        keep_trace: true,
        ..SimOptions::default()
    }
}

/// Returns the index of the first trace line containing `text` at or
/// after `from`.
fn find(trace: &[String], from: usize, text: &str) -> Option<usize> {
    trace
        .iter()
        .skip(from)
        .position(|line| line.contains(text))
        .map(|at| at + from)
}

#[test]
fn a_node_joins_and_applies_the_clusters_entries() {
    // Seed 36's nemesis adds node 6 while faults hit the others.
    let report = run(36, &five_nodes());
    assert!(report.passed(), "{}", report.summary());
    let trace = &report.full_trace;
    let joined = find(trace, 0, "join node 6")
        .expect("seed 36 no longer draws a join: pick another (polis-sim --seed N --nodes 5 --trace-out FILE)");
    let applied = trace
        .iter()
        .skip(joined)
        .any(|line| line.contains("Applied") && line.contains("node: NodeId(6)"));
    assert!(applied, "node 6 applied nothing after it joined");
}

#[test]
fn a_node_asked_to_leave_is_drained_removed_and_stops() {
    // Seed 38's nemesis asks node 5 to leave.
    let report = run(38, &five_nodes());
    assert!(report.passed(), "{}", report.summary());
    let trace = &report.full_trace;
    let asked = find(trace, 0, "remove node 5")
        .expect("seed 38 no longer draws a removal: pick another (polis-sim --seed N --nodes 5 --trace-out FILE)");
    // The run passed, so no node was left leaving; the removed node
    // stopped (its crash is how the simulation stops it) and never ran
    // again.
    let stopped = find(trace, asked, "Crash { node: NodeId(5) }").expect("node 5 never stopped");
    assert!(
        find(trace, stopped, "Restart { node: NodeId(5)").is_none(),
        "the removed node ran again"
    );
}
