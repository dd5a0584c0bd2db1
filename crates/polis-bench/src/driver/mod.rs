//! The load generator: loads a keyspace and runs a workload against a
//! target, closed or open loop, and measures what comes back.

use crate::spec::{BenchResult, BenchSpec, Target};

/// Loads `spec.keys` keys (and, for the mixed workload, counters and
/// hashes) into the target. Returns the number of keys loaded.
///
/// # Errors
/// Fails if the target cannot be reached or rejects the writes.
pub async fn load(target: &Target, spec: &BenchSpec) -> anyhow::Result<u64> {
    let _ = (target, spec);
    anyhow::bail!("driver::load is not finished yet")
}

/// Runs the workload of `spec` against the target and returns what was
/// measured after the warm-up.
///
/// # Errors
/// Fails if the target cannot be reached at the start.
pub async fn run(target: &Target, spec: &BenchSpec) -> anyhow::Result<BenchResult> {
    let _ = (target, spec);
    anyhow::bail!("driver::run is not finished yet")
}
