//! What a comparison records: every run and every load as it happened,
//! failures included. The report summarizes these.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::cases::{Case, CaseBase};
use super::CompareConfig;
use crate::element_memory::ElementMemoryReport;
use crate::idle::IdleReport;
use crate::memory::MemoryReport;
use crate::peers::usage::Usage;
use crate::peers::SystemKind;
use crate::queue::QueueReport;
use crate::spec::BenchResult;

/// Returns the seconds since the Unix epoch.
pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The parameters of a comparison, as recorded in the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub profile: String,
    pub systems: Vec<SystemKind>,
    pub cases: Vec<Case>,
    pub repetitions: u32,
    pub keys: u64,
    pub value_size: usize,
    pub connections: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub ops_max: Option<u64>,
    pub seed: u64,
    pub memory_keys: u64,
    #[serde(default)]
    pub idle_shards: Vec<usize>,
    /// Elements per collection in the element-memory measurement (0: skipped).
    #[serde(default)]
    pub elements: u64,
    /// Seconds the queue's producers produce (0: skipped).
    #[serde(default)]
    pub queue_s: f64,
    pub data_dir: String,
}

impl Settings {
    /// Records `config`.
    pub fn from_config(config: &CompareConfig) -> Self {
        let CaseBase {
            keys,
            value_size,
            connections,
            warmup,
            duration,
            ops_max,
            seed,
        } = config.base.clone();
        Self {
            profile: config.profile.clone(),
            systems: config.systems.clone(),
            cases: config.cases.clone(),
            repetitions: config.repetitions,
            keys,
            value_size,
            connections,
            warmup_s: warmup.as_secs_f64(),
            duration_s: duration.as_secs_f64(),
            ops_max,
            seed,
            memory_keys: config.memory_keys,
            idle_shards: config.idle_shards.clone(),
            elements: config.elements,
            queue_s: config.queue_duration.as_secs_f64(),
            data_dir: config.data_dir.display().to_string(),
        }
    }
}

/// One measured run of one case on one system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// 0-based.
    pub repetition: u32,
    pub system: SystemKind,
    pub case: Case,
    pub result: Option<BenchResult>,
    /// CPU time and peak memory of the system's servers over the run.
    pub usage: Option<Usage>,
    /// Why the run failed, or a process that died during it.
    pub error: Option<String>,
}

impl RunRecord {
    /// A run that produced no result.
    pub fn failed(repetition: u32, system: SystemKind, case: Case, error: String) -> Self {
        Self {
            repetition,
            system,
            case,
            result: None,
            usage: None,
            error: Some(error),
        }
    }

    /// Returns one line for the progress log.
    pub fn summary(&self) -> String {
        match (&self.result, &self.error) {
            (Some(result), error) => {
                let mut line = format!(
                    "{:.0} ops/s, p50 {:.2} ms, p99 {:.2} ms, {} ops, {} errors",
                    result.throughput_per_s,
                    result.latency.p50_us as f64 / 1000.0,
                    result.latency.p99_us as f64 / 1000.0,
                    result.ops,
                    result.errors,
                );
                if let Some(usage) = &self.usage {
                    line.push_str(&format!(", cpu {:.2} s", usage.cpu_s));
                }
                if let Some(sample) = result.error_samples.first() {
                    line.push_str(&format!(" (first error: {sample})"));
                }
                if let Some(error) = error {
                    line.push_str(&format!("; {error}"));
                }
                line
            }
            (None, Some(error)) => format!("FAILED: {error}"),
            (None, None) => "no result".to_owned(),
        }
    }
}

/// Loading the keyspace into one system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadRecord {
    pub repetition: u32,
    pub system: SystemKind,
    pub keys_loaded: u64,
    pub elapsed_s: f64,
    pub error: Option<String>,
}

impl LoadRecord {
    /// Returns one line for the progress log.
    pub fn summary(&self) -> String {
        match &self.error {
            None => format!(
                "loaded {} keys in {:.1} s",
                self.keys_loaded, self.elapsed_s
            ),
            Some(error) => format!("load FAILED after {:.1} s: {error}", self.elapsed_s),
        }
    }
}

/// Everything a comparison measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub settings: Settings,
    pub started_unix_s: u64,
    pub elapsed_s: f64,
    pub loads: Vec<LoadRecord>,
    pub runs: Vec<RunRecord>,
    pub memory: Option<MemoryReport>,
    /// What idle shards cost (absent from reports made before it was
    /// measured).
    #[serde(default)]
    pub idle: Option<IdleReport>,
    /// Memory per element of each collection type.
    #[serde(default)]
    pub element_memory: Option<ElementMemoryReport>,
    /// The queue on one stream.
    #[serde(default)]
    pub queue: Option<QueueReport>,
}
