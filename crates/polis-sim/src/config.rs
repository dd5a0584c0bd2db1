//! Everything a run does is drawn from one seed: the cluster's shape and
//! timing here, and one independent random stream per component.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What the command line may fix instead of the seed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimOptions {
    /// Number of nodes (3 or 5); drawn from the seed when `None`.
    pub nodes: Option<usize>,
    /// Number of shards; drawn from the seed (1 to 4) when `None`.
    pub shards: Option<usize>,
    /// Virtual duration of the workload; drawn from the seed when `None`.
    pub duration_ms: Option<u64>,
    /// Keep every trace event's text in the report (for `--trace-out`);
    /// changes nothing in the run.
    pub keep_trace: bool,
    /// Disks acknowledge writes before they are durable: a fault that
    /// shows the checkers catch lost acknowledged writes.
    pub lying_disks: bool,
}

impl SimOptions {
    /// Returns the command that replays `seed` with these options.
    pub fn replay_command(&self, seed: u64) -> String {
        let mut command = format!("cargo run -p polis-sim --release -- --seed {seed}");
        if let Some(nodes) = self.nodes {
            command.push_str(&format!(" --nodes {nodes}"));
        }
        if let Some(shards) = self.shards {
            command.push_str(&format!(" --shards {shards}"));
        }
        if let Some(duration_ms) = self.duration_ms {
            command.push_str(&format!(" --duration-ms {duration_ms}"));
        }
        if self.lying_disks {
            command.push_str(" --lying-disks");
        }
        command
    }
}

/// The shape and timing of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: usize,
    /// Shards the slots are spread over (each a Raft group of 3 replicas,
    /// or of every node when there are fewer).
    pub shards: usize,
    pub clients: usize,
    pub keys: usize,
    /// Clients start operations until then (virtual time from the start).
    pub duration_ms: u64,
    /// Faults start only before then; afterwards the network heals and
    /// every node runs, so the cluster must make progress again.
    pub faults_until_ms: u64,
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub snapshot_every_entries: u64,
    /// Keys per step of a snapshot encoded in steps.
    pub snapshot_step_keys: usize,
    pub entries_kept_after_snapshot: u64,
    pub request_timeout_ms: u64,
    /// Idle groups park (see polis-raft's `hibernate`).
    pub hibernate: bool,
    /// A leader parks its group after this long without a request.
    pub idle_before_park_ms: u64,
    /// One-way message delay: at least this much, plus up to the jitter.
    pub latency_min_us: u64,
    pub latency_jitter_us: u64,
    /// Share of messages lost when no fault is in force, in percent.
    pub loss_percent: u8,
    /// Share of messages that take much longer (reordering), per mille.
    pub slow_permille: u16,
    pub flush_delay_max_us: u64,
    /// Whether disks acknowledge writes before they are durable.
    pub lying_disks: bool,
    /// How often the nemesis considers starting a fault.
    pub nemesis_tick_min_ms: u64,
    pub nemesis_tick_max_ms: u64,
}

/// Bounds of what the seed may choose.
const DURATION_MS_MIN: u64 = 20_000;
const DURATION_MS_MAX: u64 = 40_000;
/// Virtual time after the faults stop in which the cluster must recover.
const RECOVERY_MS: u64 = 8_000;

impl SimConfig {
    /// Draws a configuration from `seed`, except what `options` fixes.
    pub fn from_seed(seed: u64, options: &SimOptions) -> Self {
        let mut rng = stream(seed, "config");
        let nodes = options
            .nodes
            .unwrap_or(if rng.random_ratio(1, 4) { 5 } else { 3 });
        let duration_ms = options
            .duration_ms
            .unwrap_or_else(|| rng.random_range(DURATION_MS_MIN..=DURATION_MS_MAX));
        let heartbeat_ms = rng.random_range(20..=100);
        let election_timeout_min_ms = heartbeat_ms * rng.random_range(3..=6);
        let election_timeout_max_ms = election_timeout_min_ms * 2;
        let shards = options.shards.unwrap_or_else(|| rng.random_range(1..=4));
        Self {
            seed,
            nodes,
            shards,
            clients: rng.random_range(2..=5),
            keys: rng.random_range(1..=6),
            duration_ms,
            faults_until_ms: duration_ms.saturating_sub(RECOVERY_MS),
            heartbeat_ms,
            election_timeout_min_ms,
            election_timeout_max_ms,
            snapshot_every_entries: rng.random_range(20..=400),
            entries_kept_after_snapshot: rng.random_range(0..=40),
            request_timeout_ms: rng.random_range(1_000..=4_000),
            hibernate: rng.random_ratio(3, 4),
            idle_before_park_ms: rng.random_range(50..=2_000),
            latency_min_us: rng.random_range(100..=2_000),
            latency_jitter_us: rng.random_range(0..=8_000),
            loss_percent: rng.random_range(0..=3),
            slow_permille: rng.random_range(0..=20),
            flush_delay_max_us: if rng.random_ratio(1, 4) {
                rng.random_range(5_000..=100_000)
            } else {
                rng.random_range(50..=5_000)
            },
            lying_disks: options.lying_disks,
            nemesis_tick_min_ms: 300,
            nemesis_tick_max_ms: rng.random_range(800..=4_000),
            // Drawn last, so the draws before it stay as they were.
            snapshot_step_keys: rng.random_range(1..=4),
        }
    }

    /// Returns the node ids, 1 through `nodes`.
    pub fn node_ids(&self) -> Vec<polis_types::NodeId> {
        (1..=self.nodes as u64).map(polis_types::NodeId).collect()
    }
}

/// SplitMix64 finalizer: spreads a seed over all 64 bits.
pub fn mix(seed: u64) -> u64 {
    let mut mixed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    mixed ^ (mixed >> 31)
}

/// Returns the seed of the random stream named `name` of a run.
pub fn stream_seed(seed: u64, name: &str) -> u64 {
    mix(seed ^ polis_raft::mem_log_store::fnv1a64(name.as_bytes()))
}

/// Returns the random stream named `name` of a run: streams are
/// independent, so adding draws to one leaves the others unchanged.
pub fn stream(seed: u64, name: &str) -> StdRng {
    StdRng::seed_from_u64(stream_seed(seed, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_fixes_the_configuration_and_options_override_it() {
        let options = SimOptions::default();
        assert_eq!(
            SimConfig::from_seed(7, &options),
            SimConfig::from_seed(7, &options)
        );
        let differ = (0..20).any(|seed| {
            SimConfig::from_seed(seed, &options) != SimConfig::from_seed(seed + 1, &options)
        });
        assert!(differ);
        let fixed = SimOptions {
            nodes: Some(5),
            shards: None,
            duration_ms: Some(12_000),
            keep_trace: true,
            lying_disks: false,
        };
        let config = SimConfig::from_seed(7, &fixed);
        assert_eq!((config.nodes, config.duration_ms), (5, 12_000));
        assert!(config.election_timeout_min_ms > config.heartbeat_ms);
        assert_eq!(
            fixed.replay_command(7),
            "cargo run -p polis-sim --release -- --seed 7 --nodes 5 --duration-ms 12000"
        );
    }
}
