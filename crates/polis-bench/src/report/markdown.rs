//! The report as markdown (`report.md`).

use std::fmt::Write;

use super::format::{md_cell, mib, ms, thousands, utc, with_ratio};
use super::summary::Summary;
use super::targets::TargetCheck;
use super::Report;
use crate::compare::cases::Case;
use crate::idle::IdleReport;
use crate::memory::MemoryReport;
use crate::peers::SystemKind;

/// Returns the cells of one system's row, each value beside its ratio to polis's.
pub fn row_cells(summary: &Summary, polis: Option<&Summary>) -> Vec<String> {
    let system = summary.system.map_or("?", SystemKind::name).to_owned();
    let runs = format!(
        "{}/{}",
        summary.runs_ok,
        summary.runs_ok + summary.runs_failed
    );
    if !summary.has_result() {
        let why = summary.first_error.as_deref().unwrap_or("no result");
        let mut cells = vec![system, format!("failed: {}", shorten(why, 120))];
        cells.extend(std::iter::repeat_n(String::new(), 7));
        cells.push(runs);
        return cells;
    }
    let is_polis = summary.system == Some(SystemKind::Polis);
    let no_base = Summary::default();
    let base = polis.unwrap_or(&no_base);
    let cell = |text: String, value: f64, base_value: f64| {
        with_ratio(text, value, base_value, is_polis || polis.is_none())
    };
    vec![
        system,
        cell(
            thousands(summary.throughput_per_s),
            summary.throughput_per_s,
            base.throughput_per_s,
        ),
        cell(ms(summary.p50_us), summary.p50_us, base.p50_us),
        cell(ms(summary.p99_us), summary.p99_us, base.p99_us),
        cell(ms(summary.p999_us), summary.p999_us, base.p999_us),
        cell(format!("{:.2}", summary.cpu_s), summary.cpu_s, base.cpu_s),
        cell(
            format!("{:.1}", summary.cpu_us_per_op),
            summary.cpu_us_per_op,
            base.cpu_us_per_op,
        ),
        cell(
            mib(summary.rss_peak_bytes),
            summary.rss_peak_bytes as f64,
            base.rss_peak_bytes as f64,
        ),
        cell(
            mib(summary.rss_peak_process_bytes),
            summary.rss_peak_process_bytes as f64,
            base.rss_peak_process_bytes as f64,
        ),
        runs,
    ]
}

/// The column titles of [`row_cells`].
pub const COLUMNS: [&str; 10] = [
    "system",
    "ops/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "CPU s",
    "CPU µs/op",
    "peak RSS MiB (all processes)",
    "peak RSS MiB (largest process)",
    "runs ok",
];

fn shorten(text: &str, chars_max: usize) -> String {
    if text.chars().count() <= chars_max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(chars_max).collect();
    short.push('…');
    short
}

/// The columns of the targets table.
pub const TARGET_COLUMNS: [&str; 5] = ["target", "measure", "required", "measured", "verdict"];

/// Returns the targets table's rows, one per target, as text.
pub fn target_rows(targets: &[TargetCheck]) -> Vec<Vec<String>> {
    targets
        .iter()
        .map(|check| {
            let (required, measured, verdict) = target_cells(check);
            vec![
                check.name.clone(),
                check.measure.clone(),
                required,
                measured,
                verdict,
            ]
        })
        .collect()
}

/// Returns a target's measured value and verdict as text.
pub fn target_cells(check: &TargetCheck) -> (String, String, String) {
    let required = format!("{} {}{}", check.bound.symbol(), check.required, check.unit);
    let measured = check.measured.map_or_else(
        || "-".to_owned(),
        |value| format!("{value:.2}{}", check.unit),
    );
    let verdict = match check.met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    };
    (required, measured, verdict.to_owned())
}

pub(super) fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        header.iter().map(|_| "---|").collect::<String>()
    );
    for row in rows {
        let cells: Vec<String> = row.iter().map(|cell| md_cell(cell)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

fn memory_section(out: &mut String, memory: &MemoryReport) {
    let _ = writeln!(
        out,
        "## Memory per key\n\n{} keys of {}-byte values, loaded into a fresh 3-node polis and a \
         single Redis without persistence.\n",
        thousands(memory.keys as f64),
        memory.value_size
    );
    let mut rows = Vec::new();
    if let Some(polis) = &memory.polis {
        rows.push(vec![
            "polis".to_owned(),
            "leader RSS growth".to_owned(),
            format!("{:.0}", polis.leader_rss_per_key_bytes),
        ]);
        rows.push(vec![
            "polis".to_owned(),
            "follower RSS growth (mean)".to_owned(),
            format!("{:.0}", polis.follower_rss_per_key_bytes),
        ]);
        if let Some(used) = polis.used_memory_per_key_bytes {
            rows.push(vec![
                "polis".to_owned(),
                "INFO used_memory growth (keyspace estimate)".to_owned(),
                format!("{used:.0}"),
            ]);
        }
    }
    if let Some(redis) = &memory.redis {
        rows.push(vec![
            "redis-memory".to_owned(),
            "INFO used_memory growth".to_owned(),
            format!("{:.0}", redis.used_memory_per_key_bytes),
        ]);
        rows.push(vec![
            "redis-memory".to_owned(),
            "RSS growth".to_owned(),
            format!("{:.0}", redis.rss_per_key_bytes),
        ]);
    }
    table(out, &["system", "measure", "bytes per key"], &rows);
    if let Some(ratio) = memory.ratio() {
        let _ = writeln!(
            out,
            "polis leader RSS per key ÷ Redis used_memory per key: **{ratio:.2}x**.\n"
        );
    }
    for error in &memory.errors {
        let _ = writeln!(out, "- failed: {}", md_cell(error));
    }
}

fn idle_section(out: &mut String, idle: &IdleReport) {
    let _ = writeln!(
        out,
        "## Idle shards

A fresh 3-node polis per shard count (3 replicas a shard), no \
         requests: time until every shard serves, then, once every shard is parked, CPU and \
         resident memory of the three processes over {:.0} s. Memory per replica is the \
         growth over the smallest shard count, per replica added.\n",
        idle.window_s
    );
    let rows: Vec<Vec<String>> = idle
        .runs
        .iter()
        .map(|run| {
            vec![
                run.shards.to_string(),
                run.replicas.to_string(),
                format!("{:.1}", run.ready_s),
                run.parked_s
                    .map_or_else(|| "not all".to_owned(), |s| format!("{s:.1}")),
                format!("{:.3}", run.cpu_cores),
                format!("{:.1}", run.rss_bytes_sum as f64 / (1024.0 * 1024.0)),
                run.rss_per_replica_bytes
                    .map_or_else(|| "-".to_owned(), |b| format!("{:.0}", b / 1024.0)),
            ]
        })
        .collect();
    table(
        out,
        &[
            "shards",
            "replicas",
            "serving after (s)",
            "parked after (s)",
            "CPU idle (cores, 3 nodes)",
            "RSS (MiB, 3 nodes)",
            "per replica (KiB)",
        ],
        &rows,
    );
    for error in &idle.errors {
        let _ = writeln!(out, "- failed: {}", md_cell(error));
    }
}

/// Renders the whole report.
pub fn render(report: &Report) -> String {
    let settings = &report.comparison.settings;
    let mut out = String::new();
    let _ = writeln!(out, "# polis benchmark report\n");
    let _ = writeln!(
        out,
        "Profile **{}**, started {}, took {:.1} min. {} repetition(s); every system started \
         fresh per repetition (order rotated), loaded with {} keys of {}-byte values; each \
         workload {} connections, closed loop, {:.1} s warm-up then {:.1} s measured{}; seed {}. \
         Values are medians over the repetitions (peak RSS: the maximum), ratios are to polis. \
         CPU is the user + system time of the system's server processes over the measured \
         time (after the warm-up), not the load generator's; peak RSS is their VmHWM at the \
         end of the run.\n",
        settings.profile,
        utc(report.comparison.started_unix_s),
        report.comparison.elapsed_s / 60.0,
        settings.repetitions,
        thousands(settings.keys as f64),
        settings.value_size,
        settings.connections,
        settings.warmup_s,
        settings.duration_s,
        settings.ops_max.map_or_else(String::new, |ops| format!(
            " (at most {} ops)",
            thousands(ops as f64)
        )),
        settings.seed,
    );
    let _ = writeln!(out, "## Targets\n");
    table(&mut out, &TARGET_COLUMNS, &target_rows(&report.targets));
    let _ = writeln!(out, "## Results\n");
    for case in report.cases() {
        let summaries = report.case_summaries(*case);
        if summaries.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {} — {}\n", case.name(), case.title());
        let polis = report.polis_summary(*case);
        let rows: Vec<Vec<String>> = summaries.iter().map(|s| row_cells(s, polis)).collect();
        table(&mut out, &COLUMNS, &rows);
        skipped_note(&mut out, *case, &settings.systems);
    }
    if let Some(memory) = &report.comparison.memory {
        memory_section(&mut out, memory);
    }
    if let Some(idle) = &report.comparison.idle {
        idle_section(&mut out, idle);
    }
    super::data_types::render(&mut out, report);
    let _ = writeln!(out, "## Systems\n");
    for system in &settings.systems {
        let _ = writeln!(out, "- `{}`: {}", system.name(), system.description());
    }
    let machine = &report.machine;
    let versions = &report.versions;
    let _ = writeln!(
        out,
        "\n## Machine and versions\n\n- {} CPUs: {}\n- memory: {} MiB\n- kernel: {}\n- load average (1, 5, 15 \
         min) before the run: {}, after: {}\n- data on: {} ({})\n- polis {} at {} ({} build)\n- {}\n- {}\n- loads: {}\n",
        machine.cpus,
        machine.cpu_model,
        mib(machine.memory_total_bytes),
        machine.kernel,
        machine.load_average_before,
        machine.load_average_after,
        machine.data_file_system,
        settings.data_dir,
        versions.polis,
        versions.polis_commit,
        versions.polis_build,
        versions.redis,
        versions.etcd,
        load_summary(report),
    );
    out
}

fn skipped_note(out: &mut String, case: Case, systems: &[SystemKind]) {
    let skipped: Vec<&str> = systems
        .iter()
        .filter(|system| !case.applies_to(**system))
        .map(|system| system.name())
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "Not applicable to: {}.\n", skipped.join(", "));
    }
}

fn load_summary(report: &Report) -> String {
    report
        .comparison
        .loads
        .iter()
        .map(|load| {
            format!(
                "{} rep {}: {}",
                load.system.name(),
                load.repetition + 1,
                load.summary()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
