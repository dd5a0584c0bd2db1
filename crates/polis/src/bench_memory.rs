//! `polis bench footprint` and `polis bench eviction`: how close the
//! memory figure `maxmemory` bounds is to the process's own growth, and
//! what keeping within `maxmemory` costs writes.

use clap::Args;
use polis_bench::eviction::{self, EvictionBenchConfig};
use polis_bench::footprint::{self, FootprintConfig};
use polis_bench::spec::SetLoad;

use crate::bench::{data_dir_or_temporary, local_peers, print_ratio, seconds};
use crate::bench_moves::RunPlace;

/// Flags of `polis bench footprint`.
#[derive(Debug, Args)]
pub(crate) struct FootprintArgs {
    /// Elements per case (streams: half as many entries).
    #[arg(long, default_value_t = 400_000)]
    elements: u64,
    #[command(flatten)]
    run: RunPlace,
}

pub(crate) async fn run_footprint(args: FootprintArgs) -> anyhow::Result<()> {
    let (data_dir, temporary) = data_dir_or_temporary(args.run.data_dir.as_ref())?;
    let config = FootprintConfig {
        elements: args.elements,
        cases: footprint::Case::ALL.to_vec(),
        peers: local_peers(&args.run.server_args)?,
        data_dir,
    };
    println!(
        "polis bench footprint: {} elements per case, each on a fresh single-node polis",
        args.elements
    );
    let measured = footprint::measure(&config, &|line| println!("  {line}")).await?;
    println!("\n| case | RSS B/element | used_memory B/element | used_memory ÷ RSS |");
    println!("|---|---|---|---|");
    for case in &measured {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} |",
            case.name,
            case.rss_per_element_bytes,
            case.used_memory_per_element_bytes,
            case.estimate_to_real
        );
    }
    args.run.write_json(&measured)?;
    drop(temporary);
    Ok(())
}

/// The limited side's SETs/s over the unlimited side's, at least.
const EVICTION_RATIO_TARGET: f64 = 0.8;

/// Flags of `polis bench eviction`.
#[derive(Debug, Args)]
pub(crate) struct EvictionArgs {
    /// Keys written (uniformly): many times what fits in maxmemory.
    #[arg(long, default_value_t = 200_000)]
    keys: u64,
    /// The limited cluster's maxmemory per node (memory units accepted).
    #[arg(long, default_value = "8mb")]
    maxmemory: String,
    /// The limited cluster's maxmemory-policy.
    #[arg(long, default_value = "allkeys-lru")]
    policy: String,
    #[command(flatten)]
    load: SetLoadArgs,
    #[command(flatten)]
    run: RunPlace,
}

/// The flags of a SET-only comparison's load (besides its keys).
#[derive(Debug, Args)]
pub(crate) struct SetLoadArgs {
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    pub(crate) value_size: usize,
    #[arg(long, default_value_t = 50)]
    pub(crate) connections: usize,
    #[arg(long, default_value_t = 2.0)]
    warmup_secs: f64,
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

impl SetLoadArgs {
    /// Returns the load over `keys` keys.
    pub(crate) fn load(&self, keys: u64) -> anyhow::Result<SetLoad> {
        Ok(SetLoad {
            keys,
            value_size: self.value_size,
            connections: self.connections,
            warmup: seconds(self.warmup_secs, "warmup-secs")?,
            duration: seconds(self.duration_secs, "duration-secs")?,
            seed: self.seed,
        })
    }
}

/// Parses a size with Redis's memory units (`8mb`, `1gb`, `500k`).
pub(crate) fn parse_bytes(text: &str) -> anyhow::Result<u64> {
    let lower = text.to_ascii_lowercase();
    let units: [(&str, u64); 7] = [
        ("kb", 1 << 10),
        ("mb", 1 << 20),
        ("gb", 1 << 30),
        ("k", 1_000),
        ("m", 1_000_000),
        ("g", 1_000_000_000),
        ("b", 1),
    ];
    let (number, unit) = units
        .iter()
        .find_map(|(suffix, unit)| lower.strip_suffix(suffix).map(|number| (number, *unit)))
        .unwrap_or((lower.as_str(), 1));
    let number: u64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("--maxmemory {text:?}: a size such as 8mb"))?;
    number
        .checked_mul(unit)
        .ok_or_else(|| anyhow::anyhow!("--maxmemory {text:?} is too large"))
}

pub(crate) async fn run_eviction(args: EvictionArgs) -> anyhow::Result<()> {
    let (data_dir, temporary) = data_dir_or_temporary(args.run.data_dir.as_ref())?;
    let config = EvictionBenchConfig {
        load: args.load.load(args.keys)?,
        maxmemory_bytes: parse_bytes(&args.maxmemory)?,
        policy: args.policy.clone(),
        peers: local_peers(&args.run.server_args)?,
        data_dir,
    };
    println!(
        "polis bench eviction: SET over {} keys of {} bytes, {} connections, on 3 nodes: no limit, then maxmemory {} ({})",
        args.keys, args.load.value_size, args.load.connections, args.maxmemory, args.policy
    );
    let report = eviction::measure(&config, &|line| println!("  {line}")).await;
    args.run.write_json(&report)?;
    drop(temporary);
    print_ratio(
        "SET/s at maxmemory / SET/s without a limit",
        report.ratio(),
        EVICTION_RATIO_TARGET,
        &report.errors,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_redis_memory_units() {
        assert_eq!(parse_bytes("8mb").unwrap(), 8 << 20);
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        assert_eq!(parse_bytes("2K").unwrap(), 2000);
        assert!(parse_bytes("lots").is_err());
    }
}
