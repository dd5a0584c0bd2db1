//! CPU time and memory of server processes, read from `/proc`: CPU time
//! is `utime + stime` of `/proc/<pid>/stat` (in clock ticks), peak memory
//! is `VmHWM` of `/proc/<pid>/status` (the resident set's high-water
//! mark since the process started).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Clock ticks per second when `getconf CLK_TCK` cannot say (Linux's
/// USER_HZ is 100 on every common architecture).
const CLOCK_TICKS_DEFAULT: u64 = 100;

/// Returns the kernel's clock ticks per second (`getconf CLK_TCK`).
pub fn clock_ticks_per_s() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .filter(|ticks| *ticks > 0)
            .unwrap_or(CLOCK_TICKS_DEFAULT)
    })
}

/// One process at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessSample {
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Peak resident set size so far, in bytes.
    pub rss_peak_bytes: u64,
    /// Resident set size now, in bytes.
    pub rss_bytes: u64,
}

/// Parses `utime + stime` out of the text of `/proc/<pid>/stat`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces,
    // so count fields after its closing parenthesis: that text starts at
    // field 3 (state), which makes utime field 14 the 12th after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Returns the value in bytes of a `Name:   1234 kB` line of `/proc/<pid>/status`.
fn parse_status_kib(status: &str, name: &str) -> Option<u64> {
    let line = status
        .lines()
        .find(|line| line.split(':').next() == Some(name))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Reads process `pid`'s CPU time and memory; `None` if it is gone.
pub fn sample(pid: u32) -> Option<ProcessSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(ProcessSample {
        cpu_ticks: parse_stat_cpu_ticks(&stat)?,
        rss_peak_bytes: parse_status_kib(&status, "VmHWM")?,
        rss_bytes: parse_status_kib(&status, "VmRSS")?,
    })
}

/// What a system's server processes used during one measured run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU seconds (user + system) of all the processes together.
    pub cpu_s: f64,
    /// Peak resident set size, summed over the processes.
    pub rss_peak_bytes_sum: u64,
    /// Peak resident set size of the largest process.
    pub rss_peak_bytes_max: u64,
    /// Processes measured.
    pub processes: usize,
}

/// Samples of every process of a system, taken before a run.
#[derive(Debug, Clone, Default)]
pub struct UsageStart {
    samples: Vec<(u32, ProcessSample)>,
}

impl UsageStart {
    /// Samples every process in `pids`.
    pub fn take(pids: &[u32]) -> Self {
        Self {
            samples: pids
                .iter()
                .filter_map(|pid| sample(*pid).map(|s| (*pid, s)))
                .collect(),
        }
    }

    /// Samples the same processes again and returns what they used since
    /// [`Self::take`]. A process that has gone since counts for nothing.
    pub fn finish(&self) -> Usage {
        let ticks_per_s = clock_ticks_per_s() as f64;
        let mut usage = Usage::default();
        for (pid, before) in &self.samples {
            let Some(after) = sample(*pid) else { continue };
            usage.cpu_s += after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / ticks_per_s;
            usage.rss_peak_bytes_sum += after.rss_peak_bytes;
            usage.rss_peak_bytes_max = usage.rss_peak_bytes_max.max(after.rss_peak_bytes);
            usage.processes += 1;
        }
        usage
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn stat_fields_count_from_after_the_command_name() {
        // A command name with spaces and a parenthesis must not shift the fields.
        let stat = "4242 (redis server) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 17 5 0 0 20 0 4 0 100 1000 200";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(22));
    }

    #[test]
    fn status_values_are_read_in_bytes() {
        let status = "Name:\tetcd\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(2048 * 1024));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(1024 * 1024));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_can_be_sampled_and_uses_cpu() {
        let pid = std::process::id();
        let start = UsageStart::take(&[pid]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        // Burn CPU until the kernel has counted at least two ticks.
        let mut spins = 0u64;
        while sample(pid).unwrap().cpu_ticks < start.samples[0].1.cpu_ticks + 2
            && std::time::Instant::now() < deadline
        {
            spins = spins.wrapping_add(1);
        }
        let usage = start.finish();
        assert_eq!(usage.processes, 1);
        assert!(usage.cpu_s > 0.0, "cpu {} after {spins} spins", usage.cpu_s);
        assert!(usage.rss_peak_bytes_max > 0);
    }
}
