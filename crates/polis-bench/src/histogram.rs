//! Latency recording in HDR histograms (microseconds, three significant
//! digits) and the summary of a run.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::spec::{BenchResult, Latency};
use crate::workload::Op;

/// The longest latency recorded exactly; longer ones are recorded as this.
pub const LATENCY_US_MAX: u64 = 60_000_000;

/// How many distinct error messages a run keeps for its report.
pub const ERROR_SAMPLES_MAX: usize = 5;

/// How much of one error message is kept.
const ERROR_SAMPLE_LEN_MAX: usize = 300;

const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies and errors of part of a run (one or more connections);
/// merged into one at the end.
#[derive(Debug, Clone)]
pub struct Recorder {
    overall: Histogram<u64>,
    /// By [`Op::index`]; created on first use (a histogram is ~140 KiB).
    by_op: [Option<Histogram<u64>>; Op::ALL.len()],
    errors: u64,
    error_samples: Vec<String>,
}

impl Recorder {
    /// Returns an empty recorder.
    ///
    /// # Errors
    /// Fails only if hdrhistogram refuses the (constant) bounds.
    pub fn new() -> Result<Self, String> {
        let overall = Histogram::new_with_bounds(1, LATENCY_US_MAX, SIGNIFICANT_DIGITS)
            .map_err(|error| format!("cannot create a latency histogram: {error:?}"))?;
        Ok(Self {
            overall,
            by_op: Default::default(),
            errors: 0,
            error_samples: Vec::new(),
        })
    }

    /// Records one successful operation and its latency.
    pub fn record(&mut self, op: Op, latency: Duration) {
        let latency_us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, LATENCY_US_MAX);
        self.overall.saturating_record(latency_us);
        let overall = &self.overall;
        self.by_op[op.index()]
            .get_or_insert_with(|| Histogram::new_from(overall))
            .saturating_record(latency_us);
    }

    /// Counts `count` failed operations, keeping `message` as a sample if
    /// it is new and there is room.
    pub fn record_errors(&mut self, count: u64, message: &str) {
        if count == 0 {
            return;
        }
        self.errors += count;
        if self.error_samples.len() < ERROR_SAMPLES_MAX {
            let sample: String = message.chars().take(ERROR_SAMPLE_LEN_MAX).collect();
            if !self.error_samples.contains(&sample) {
                self.error_samples.push(sample);
            }
        }
    }

    /// Returns the number of successful operations recorded.
    pub fn ops(&self) -> u64 {
        self.overall.len()
    }

    /// Returns the number of failed operations.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Adds another recorder's latencies and errors to this one.
    pub fn merge(&mut self, other: &Recorder) {
        // Both have the same bounds, so adding cannot fail; saturate anyway.
        let _ = self.overall.add(&other.overall);
        for (mine, theirs) in self.by_op.iter_mut().zip(&other.by_op) {
            if let Some(theirs) = theirs {
                let _ = mine
                    .get_or_insert_with(|| Histogram::new_from(theirs))
                    .add(theirs);
            }
        }
        self.errors += other.errors;
        for sample in &other.error_samples {
            if self.error_samples.len() >= ERROR_SAMPLES_MAX {
                break;
            }
            if !self.error_samples.contains(sample) {
                self.error_samples.push(sample.clone());
            }
        }
    }

    /// Returns the result of a run that recorded this over `elapsed`.
    pub fn into_result(self, elapsed: Duration) -> BenchResult {
        let elapsed_s = elapsed.as_secs_f64();
        let ops = self.ops();
        let by_op = Op::ALL
            .iter()
            .zip(&self.by_op)
            .filter_map(|(op, histogram)| {
                let histogram = histogram.as_ref()?;
                (!histogram.is_empty()).then(|| (op.name().to_string(), summarize(histogram)))
            })
            .collect::<BTreeMap<_, _>>();
        BenchResult {
            ops,
            errors: self.errors,
            error_samples: self.error_samples,
            elapsed_s,
            throughput_per_s: if elapsed_s > 0.0 {
                ops as f64 / elapsed_s
            } else {
                0.0
            },
            latency: summarize(&self.overall),
            by_op,
        }
    }
}

/// Returns the count, mean and percentiles of a histogram of microseconds.
pub fn summarize(histogram: &Histogram<u64>) -> Latency {
    if histogram.is_empty() {
        return Latency::default();
    }
    Latency {
        count: histogram.len(),
        mean_us: histogram.mean(),
        p50_us: histogram.value_at_quantile(0.50),
        p99_us: histogram.value_at_quantile(0.99),
        p999_us: histogram.value_at_quantile(0.999),
        max_us: histogram.max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(value: u64) -> Duration {
        Duration::from_micros(value)
    }

    #[test]
    fn summary_of_one_to_a_thousand() {
        let mut recorder = Recorder::new().unwrap();
        for value in 1..=1000 {
            recorder.record(Op::Get, us(value));
        }
        let result = recorder.into_result(Duration::from_secs(2));
        assert_eq!(result.ops, 1000);
        assert_eq!(result.latency.count, 1000);
        assert!(
            (result.latency.mean_us - 500.5).abs() < 1.0,
            "{:?}",
            result.latency
        );
        // Three significant digits: within 0.1 % of the exact percentile.
        assert!((499..=501).contains(&result.latency.p50_us));
        assert!((989..=991).contains(&result.latency.p99_us));
        assert!((998..=1000).contains(&result.latency.p999_us));
        assert!((999..=1001).contains(&result.latency.max_us));
        assert!((result.throughput_per_s - 500.0).abs() < 1e-9);
        assert_eq!(result.by_op.keys().collect::<Vec<_>>(), vec!["get"]);
        assert_eq!(result.by_op["get"], result.latency);
    }

    #[test]
    fn tail_shows_in_p99_and_max_but_not_the_median() {
        let mut recorder = Recorder::new().unwrap();
        for _ in 0..990 {
            recorder.record(Op::Set, us(100));
        }
        for _ in 0..10 {
            recorder.record(Op::Set, us(50_000));
        }
        let latency = recorder.into_result(us(1)).latency;
        assert!((100..=101).contains(&latency.p50_us));
        assert!(latency.p999_us >= 49_900, "{latency:?}");
        assert!(latency.max_us >= 49_900);
        assert!((latency.mean_us - (990.0 * 100.0 + 10.0 * 50_000.0) / 1000.0).abs() < 10.0);
    }

    #[test]
    fn out_of_range_latencies_saturate() {
        let mut recorder = Recorder::new().unwrap();
        recorder.record(Op::Get, Duration::ZERO);
        recorder.record(Op::Get, Duration::from_secs(3600));
        let latency = recorder.into_result(us(1)).latency;
        assert_eq!(latency.count, 2);
        assert_eq!(latency.p50_us, 1);
        assert!(latency.max_us >= LATENCY_US_MAX * 999 / 1000);
    }

    #[test]
    fn merge_adds_counts_ops_and_distinct_errors() {
        let mut left = Recorder::new().unwrap();
        let mut right = Recorder::new().unwrap();
        left.record(Op::Get, us(10));
        right.record(Op::Set, us(20));
        right.record(Op::Set, us(30));
        left.record_errors(1, "ERR a");
        right.record_errors(2, "ERR a");
        for n in 0..10 {
            right.record_errors(1, &format!("ERR {n}"));
        }
        left.merge(&right);
        assert_eq!(left.ops(), 3);
        assert_eq!(left.errors(), 13);
        assert_eq!(left.error_samples.len(), ERROR_SAMPLES_MAX);
        assert_eq!(left.error_samples[0], "ERR a");
        let result = left.into_result(us(1));
        assert_eq!(result.by_op["get"].count, 1);
        assert_eq!(result.by_op["set"].count, 2);
        assert!(!result.by_op.contains_key("incr"));
    }

    #[test]
    fn empty_run_summarizes_to_zeros() {
        let result = Recorder::new().unwrap().into_result(Duration::ZERO);
        assert_eq!(result.ops, 0);
        assert_eq!(result.throughput_per_s, 0.0);
        assert_eq!(result.latency, Latency::default());
    }
}
