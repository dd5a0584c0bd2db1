//! One line per (workload, system): the repetitions folded into medians
//! (throughput, latency percentiles, CPU) and maxima (peak memory).

use serde::{Deserialize, Serialize};

use crate::compare::cases::Case;
use crate::compare::record::RunRecord;
use crate::peers::SystemKind;

/// A workload on a system over every repetition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub case: Option<Case>,
    pub system: Option<SystemKind>,
    /// Runs that produced a result with no process dying.
    pub runs_ok: u32,
    pub runs_failed: u32,
    /// Median over the good runs.
    pub throughput_per_s: f64,
    pub throughput_min_per_s: f64,
    pub throughput_max_per_s: f64,
    /// Medians over the good runs of each run's percentile.
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// Median CPU seconds of the system's processes over a run.
    pub cpu_s: f64,
    /// CPU microseconds per operation (median of the runs).
    pub cpu_us_per_op: f64,
    /// Largest peak RSS, summed over the system's processes.
    pub rss_peak_bytes: u64,
    /// Largest peak RSS of one process.
    pub rss_peak_process_bytes: u64,
    /// Operations that failed, over every run.
    pub errors: u64,
    /// The first error seen (a failed run's, or a sample of the driver's).
    pub first_error: Option<String>,
}

impl Summary {
    /// Returns true if at least one run produced numbers.
    pub fn has_result(&self) -> bool {
        self.runs_ok > 0
    }
}

/// Returns the median of `values` (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// Folds the runs of `case` on `system`.
pub fn summarize(runs: &[RunRecord], case: Case, system: SystemKind) -> Summary {
    let mine: Vec<&RunRecord> = runs
        .iter()
        .filter(|run| run.case == case && run.system == system)
        .collect();
    let mut summary = Summary {
        case: Some(case),
        system: Some(system),
        ..Summary::default()
    };
    let mut throughput = Vec::new();
    let (mut p50, mut p99, mut p999) = (Vec::new(), Vec::new(), Vec::new());
    let (mut cpu, mut cpu_per_op) = (Vec::new(), Vec::new());
    for run in mine {
        if let Some(error) = &run.error {
            summary.first_error.get_or_insert_with(|| error.clone());
        }
        let Some(result) = run.result.as_ref().filter(|_| run.error.is_none()) else {
            summary.runs_failed += 1;
            continue;
        };
        summary.runs_ok += 1;
        summary.errors += result.errors;
        if let Some(sample) = result.error_samples.first() {
            summary.first_error.get_or_insert_with(|| sample.clone());
        }
        throughput.push(result.throughput_per_s);
        p50.push(result.latency.p50_us as f64);
        p99.push(result.latency.p99_us as f64);
        p999.push(result.latency.p999_us as f64);
        if let Some(usage) = &run.usage {
            cpu.push(usage.cpu_s);
            if result.ops > 0 {
                cpu_per_op.push(usage.cpu_s * 1e6 / result.ops as f64);
            }
            summary.rss_peak_bytes = summary.rss_peak_bytes.max(usage.rss_peak_bytes_sum);
            summary.rss_peak_process_bytes =
                summary.rss_peak_process_bytes.max(usage.rss_peak_bytes_max);
        }
    }
    summary.throughput_min_per_s = throughput.iter().copied().fold(f64::INFINITY, f64::min);
    summary.throughput_max_per_s = throughput.iter().copied().fold(0.0, f64::max);
    if throughput.is_empty() {
        summary.throughput_min_per_s = 0.0;
    }
    summary.throughput_per_s = median(&mut throughput);
    summary.p50_us = median(&mut p50);
    summary.p99_us = median(&mut p99);
    summary.p999_us = median(&mut p999);
    summary.cpu_s = median(&mut cpu);
    summary.cpu_us_per_op = median(&mut cpu_per_op);
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::usage::Usage;
    use crate::spec::{BenchResult, Latency};

    fn run(repetition: u32, throughput: f64, p99_us: u64, rss: u64) -> RunRecord {
        RunRecord {
            repetition,
            system: SystemKind::Polis,
            case: Case::Set,
            result: Some(BenchResult {
                ops: 1000,
                throughput_per_s: throughput,
                latency: Latency {
                    p99_us,
                    ..Latency::default()
                },
                ..BenchResult::default()
            }),
            usage: Some(Usage {
                cpu_s: 0.5,
                rss_peak_bytes_sum: rss,
                rss_peak_bytes_max: rss / 3,
                processes: 3,
            }),
            error: None,
        }
    }

    #[test]
    fn medians() {
        assert!((median(&mut [3.0, 1.0, 2.0]) - 2.0).abs() < 1e-9);
        assert!((median(&mut [4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-9);
        assert!(median(&mut []).abs() < 1e-9);
    }

    #[test]
    fn repetitions_fold_into_medians_and_maxima_and_failures_are_counted() {
        let runs = vec![
            run(0, 100.0, 900, 300),
            run(1, 300.0, 100, 900),
            run(2, 200.0, 500, 600),
            RunRecord::failed(3, SystemKind::Polis, Case::Set, "boom".to_owned()),
            RunRecord::failed(0, SystemKind::Etcd, Case::Set, "other system".to_owned()),
        ];
        let summary = summarize(&runs, Case::Set, SystemKind::Polis);
        assert_eq!((summary.runs_ok, summary.runs_failed), (3, 1));
        assert!((summary.throughput_per_s - 200.0).abs() < 1e-9);
        assert!((summary.throughput_min_per_s - 100.0).abs() < 1e-9);
        assert!((summary.throughput_max_per_s - 300.0).abs() < 1e-9);
        assert!((summary.p99_us - 500.0).abs() < 1e-9);
        assert_eq!(summary.rss_peak_bytes, 900);
        assert_eq!(summary.rss_peak_process_bytes, 300);
        assert!((summary.cpu_us_per_op - 500.0).abs() < 1e-9);
        assert_eq!(summary.first_error.as_deref(), Some("boom"));
    }
}
