//! The latency monitor (LATENCY LATEST/HISTORY/RESET/DOCTOR): per event,
//! the latency spikes of at least `latency-monitor-threshold`
//! milliseconds, as Redis's `latency.c` keeps them.
//!
//! polis reports Redis's two command events: `command` (a command that
//! is not flagged fast) and `fast-command`. Redis's other events (fork,
//! AOF, expire and eviction cycles) have no counterpart in a node: its
//! disk work is the Raft log's, which the Prometheus metrics time.
//!
//! Per event: the highest latency ever seen and the last
//! [`SAMPLES_MAX`] samples, one per second at most (two spikes within a
//! second keep the higher), as in Redis.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Samples an event keeps, the oldest dropped first (Redis's
/// LATENCY_TS_LEN).
pub const SAMPLES_MAX: usize = 160;

/// The event of a command that is not flagged fast.
pub const COMMAND: &str = "command";
/// The event of a command flagged fast.
pub const FAST_COMMAND: &str = "fast-command";
/// Every event polis records: names are never taken from clients, so the
/// table of events stays this small.
const EVENTS: [&str; 2] = [COMMAND, FAST_COMMAND];

/// One latency spike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When, in seconds since the Unix epoch.
    pub unix_secs: i64,
    pub latency_ms: u64,
}

/// The spikes of one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Series {
    /// Oldest first, at most [`SAMPLES_MAX`].
    pub samples: VecDeque<Sample>,
    /// The highest latency seen since the event's last reset.
    pub latency_ms_max: u64,
}

impl Series {
    /// Adds a spike of `latency_ms` at `unix_secs`; within the second of
    /// the previous sample, only keeps the higher of the two.
    fn add(&mut self, unix_secs: i64, latency_ms: u64) {
        self.latency_ms_max = self.latency_ms_max.max(latency_ms);
        if let Some(last) = self.samples.back_mut() {
            if last.unix_secs == unix_secs {
                last.latency_ms = last.latency_ms.max(latency_ms);
                return;
            }
        }
        if self.samples.len() == SAMPLES_MAX {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            unix_secs,
            latency_ms,
        });
    }

    /// Returns the samples' average, mean absolute deviation from it and
    /// the seconds from the oldest to `now_secs` (at least 1), as LATENCY
    /// DOCTOR reports them.
    fn analysis(&self, now_secs: i64) -> (u64, u64, i64) {
        let count = self.samples.len() as u64;
        if count == 0 {
            return (0, 0, 0);
        }
        let average = self
            .samples
            .iter()
            .map(|sample| sample.latency_ms)
            .sum::<u64>()
            / count;
        let deviation = self
            .samples
            .iter()
            .map(|sample| sample.latency_ms.abs_diff(average))
            .sum::<u64>()
            / count;
        let oldest = self
            .samples
            .iter()
            .map(|sample| sample.unix_secs)
            .min()
            .unwrap_or(now_secs);
        (average, deviation, (now_secs - oldest).max(1))
    }
}

/// The node's latency monitor.
#[derive(Default)]
pub struct LatencyMonitor {
    /// `latency-monitor-threshold`, in milliseconds; 0 disables it.
    threshold_ms: AtomicU64,
    events: Mutex<BTreeMap<&'static str, Series>>,
}

/// What LATENCY DOCTOR needs besides the events.
#[derive(Debug, Clone, Copy)]
pub struct DoctorContext {
    pub now_secs: i64,
    pub threshold_ms: u64,
    /// `slowlog-log-slower-than`.
    pub slowlog_slower_than_usec: i64,
}

impl LatencyMonitor {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, Series>> {
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes `latency-monitor-threshold`.
    pub fn configure(&self, threshold_ms: i64) {
        self.threshold_ms
            .store(u64::try_from(threshold_ms).unwrap_or(0), Ordering::Relaxed);
    }

    /// Returns `latency-monitor-threshold` (0: disabled).
    pub fn threshold_ms(&self) -> u64 {
        self.threshold_ms.load(Ordering::Relaxed)
    }

    /// Records a command that ran `usec` microseconds, under `fast-command`
    /// when `fast`, when the monitor is on and that reaches its threshold;
    /// `unix_secs` tells the time then (only then: most commands pay one
    /// atomic load here).
    pub fn record_command(&self, fast: bool, usec: u64, unix_secs: impl FnOnce() -> i64) {
        let threshold_ms = self.threshold_ms();
        let latency_ms = usec / 1000;
        if threshold_ms == 0 || latency_ms < threshold_ms {
            return;
        }
        let event = if fast { FAST_COMMAND } else { COMMAND };
        self.add(event, latency_ms, unix_secs());
    }

    /// Adds a spike of `latency_ms` to `event`, whatever the threshold.
    pub fn add(&self, event: &'static str, latency_ms: u64, unix_secs: i64) {
        self.lock()
            .entry(event)
            .or_default()
            .add(unix_secs, latency_ms);
    }

    /// Returns every event with spikes, by name.
    pub fn events(&self) -> BTreeMap<&'static str, Series> {
        self.lock().clone()
    }

    /// Returns the spikes of `event` (case-sensitive, as Redis looks it
    /// up), if it has any.
    pub fn series(&self, event: &[u8]) -> Option<Series> {
        let events = self.lock();
        EVENTS
            .iter()
            .find(|name| name.as_bytes() == event)
            .and_then(|name| events.get(name).cloned())
    }

    /// Forgets the events named (case-insensitive), or all of them with
    /// none named; returns how many were forgotten.
    pub fn reset(&self, names: &[&[u8]]) -> usize {
        let mut events = self.lock();
        let before = events.len();
        if names.is_empty() {
            events.clear();
        } else {
            events.retain(|event, _| {
                !names
                    .iter()
                    .any(|name| name.eq_ignore_ascii_case(event.as_bytes()))
            });
        }
        before - events.len()
    }

    /// Returns LATENCY DOCTOR's report: what the events show, and what
    /// to look at, in Redis's words where they apply to polis.
    pub fn doctor(&self, context: DoctorContext) -> String {
        doctor(&self.events(), context)
    }
}

/// Returns LATENCY DOCTOR's report of `events`.
pub fn doctor(events: &BTreeMap<&'static str, Series>, context: DoctorContext) -> String {
    if events.is_empty() && context.threshold_ms == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this polis node. \
                You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. \
                If we weren't in a deep space mission I'd suggest to take a look at \
                https://redis.io/topics/latency-monitor.\n"
            .to_owned();
    }
    if events.is_empty() {
        return "Dave, no latency spike was observed during the lifetime of this polis node, \
                not in the slightest bit. I honestly think you ought to sit down calmly, take a \
                stress pill, and think things over.\n"
            .to_owned();
    }
    let mut report = String::from(
        "Dave, I have observed latency spikes in this polis node. You don't mind talking about it, do you Dave?\n\n",
    );
    let mut advice = Vec::new();
    for (number, (event, series)) in events.iter().enumerate() {
        let (average, deviation, period) = series.analysis(context.now_secs);
        let samples = series.samples.len().max(1);
        let _ = writeln!(
            report,
            "{}. {event}: {} latency spikes (average {average}ms, mean deviation {deviation}ms, period {:.2} sec). Worst all time event {}ms.",
            number + 1,
            series.samples.len(),
            period as f64 / samples as f64,
            series.latency_ms_max,
        );
        match *event {
            COMMAND => {
                let slower_than = context.slowlog_slower_than_usec;
                let threshold_usec = context.threshold_ms.saturating_mul(1000);
                if slower_than < 0 {
                    advice.push(format!(
                        "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log using the command 'CONFIG SET slowlog-log-slower-than {threshold_usec}'. If the Slow log is disabled polis is not able to log slow commands execution for you."
                    ));
                } else if u64::try_from(slower_than).is_ok_and(|slower_than| slower_than / 1000 > context.threshold_ms) {
                    advice.push(format!(
                        "- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {threshold_usec}'."
                    ));
                }
                advice.push("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.".to_owned());
                advice.push("- Commands over large values (big sets, sorted sets, lists or hashes read or deleted whole) take long to run on every replica of their shard. If you have very large values, try to split them into several smaller keys.".to_owned());
                advice.push("- A write waits for a quorum of its shard's replicas to log it: a slow disk (fsync) or a slow network between nodes shows here. See polis_raft_proposal_duration_seconds and polis_fsync_duration_seconds in /metrics.".to_owned());
            }
            FAST_COMMAND => advice.push(
                "- The system is slow to execute polis code paths that are fast by design. This usually means the system does not give polis CPU time for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for polis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.".to_owned(),
            ),
            _ => {}
        }
    }
    if advice.is_empty() {
        report.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the polis community to get some help, providing this report in your help request.\n");
    } else {
        report.push_str("\nI have a few advices for you:\n\n");
        for line in advice {
            report.push_str(&line);
            report.push('\n');
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn spikes_under_the_threshold_or_with_the_monitor_off_are_not_kept() {
        let monitor = LatencyMonitor::default();
        let now = || NOW;
        monitor.record_command(false, 500_000, now);
        assert!(monitor.events().is_empty(), "threshold 0 disables it");
        monitor.configure(100);
        monitor.record_command(false, 99_999, now);
        assert!(monitor.events().is_empty());
        monitor.record_command(false, 100_000, now);
        monitor.record_command(true, 250_000, now);
        let events = monitor.events();
        assert_eq!(events[COMMAND].samples[0].latency_ms, 100);
        assert_eq!(events[FAST_COMMAND].samples[0].latency_ms, 250);
    }

    #[test]
    fn one_sample_per_second_keeps_the_highest_and_the_history_is_bounded() {
        let monitor = LatencyMonitor::default();
        monitor.add(COMMAND, 300, NOW);
        monitor.add(COMMAND, 500, NOW);
        monitor.add(COMMAND, 400, NOW);
        let series = monitor.series(b"command").unwrap_or_default();
        assert_eq!(
            series.samples,
            VecDeque::from([Sample {
                unix_secs: NOW,
                latency_ms: 500
            }])
        );
        for second in 1..=200 {
            monitor.add(COMMAND, 10, NOW + second);
        }
        let series = monitor.series(b"command").unwrap_or_default();
        assert_eq!(series.samples.len(), SAMPLES_MAX);
        assert_eq!(
            series.samples.front().map(|sample| sample.unix_secs),
            Some(NOW + 41)
        );
        assert_eq!(series.latency_ms_max, 500);
        // Looked up as named, as Redis does.
        assert!(monitor.series(b"COMMAND").is_none());
        assert!(monitor.series(b"blabla").is_none());
    }

    #[test]
    fn reset_forgets_the_events_named_or_all() {
        let monitor = LatencyMonitor::default();
        monitor.add(COMMAND, 1, NOW);
        monitor.add(FAST_COMMAND, 1, NOW);
        assert_eq!(monitor.reset(&[b"blabla"]), 0);
        assert_eq!(monitor.reset(&[b"Fast-Command", b"fast-command"]), 1);
        assert_eq!(monitor.reset(&[]), 1);
        assert!(monitor.events().is_empty());
    }

    #[test]
    fn the_doctor_says_what_it_sees() {
        let context = DoctorContext {
            now_secs: NOW + 10,
            threshold_ms: 0,
            slowlog_slower_than_usec: 10_000,
        };
        let disabled = doctor(&BTreeMap::new(), context);
        assert!(
            disabled.contains("CONFIG SET latency-monitor-threshold"),
            "{disabled}"
        );
        let on = DoctorContext {
            threshold_ms: 100,
            ..context
        };
        assert!(doctor(&BTreeMap::new(), on).contains("no latency spike was observed"));
        let monitor = LatencyMonitor::default();
        monitor.add(COMMAND, 300, NOW);
        monitor.add(COMMAND, 500, NOW + 2);
        let report = monitor.doctor(on);
        assert!(
            report.contains("1. command: 2 latency spikes (average 400ms, mean deviation 100ms, period 5.00 sec). Worst all time event 500ms."),
            "{report}"
        );
        assert!(report.contains("Check your Slow Log"), "{report}");
        // The slow log misses what the monitor sees: say how to fix it.
        let blind = DoctorContext {
            slowlog_slower_than_usec: 1_000_000,
            ..on
        };
        assert!(monitor
            .doctor(blind)
            .contains("CONFIG SET slowlog-log-slower-than 100000"));
        let off = DoctorContext {
            slowlog_slower_than_usec: -1,
            ..on
        };
        assert!(monitor.doctor(off).contains("Try to enable the Slow Log"));
    }
}
