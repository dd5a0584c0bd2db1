//! The report end to end on a made-up comparison: tables, ratios,
//! failures, targets, and the three files.

#![allow(clippy::unwrap_used)]

use super::machine::{Machine, Versions};
use super::Report;
use crate::compare::cases::Case;
use crate::compare::record::{Comparison, RunRecord, Settings};
use crate::idle::{IdleReport, IdleRun};
use crate::peers::usage::Usage;
use crate::peers::SystemKind;
use crate::spec::{BenchResult, Latency};

fn run(system: SystemKind, case: Case, throughput: f64, p99_us: u64) -> RunRecord {
    RunRecord {
        repetition: 0,
        system,
        case,
        result: Some(BenchResult {
            ops: (throughput * 2.0) as u64,
            elapsed_s: 2.0,
            throughput_per_s: throughput,
            latency: Latency {
                count: (throughput * 2.0) as u64,
                p50_us: p99_us / 4,
                p99_us,
                p999_us: p99_us * 2,
                ..Latency::default()
            },
            ..BenchResult::default()
        }),
        usage: Some(Usage {
            cpu_s: 1.0,
            rss_peak_bytes_sum: 300 << 20,
            rss_peak_bytes_max: 100 << 20,
            processes: 3,
        }),
        error: None,
    }
}

fn report() -> Report {
    let comparison = Comparison {
        settings: Settings {
            profile: "test".to_owned(),
            systems: vec![SystemKind::Polis, SystemKind::Etcd, SystemKind::RedisMemory],
            cases: vec![Case::Get, Case::Set],
            repetitions: 1,
            keys: 1000,
            value_size: 100,
            connections: 50,
            warmup_s: 1.0,
            duration_s: 2.0,
            ..Settings::default()
        },
        runs: vec![
            run(SystemKind::Polis, Case::Set, 30_000.0, 4_000),
            run(SystemKind::Etcd, Case::Set, 6_000.0, 20_000),
            run(SystemKind::RedisMemory, Case::Set, 60_000.0, 1_000),
            run(SystemKind::Polis, Case::Get, 40_000.0, 2_000),
            RunRecord::failed(
                0,
                SystemKind::Etcd,
                Case::Get,
                "start: etcd | exited".to_owned(),
            ),
            run(SystemKind::RedisMemory, Case::Get, 100_000.0, 1_000),
        ],
        idle: Some(IdleReport {
            window_s: 20.0,
            runs: vec![
                IdleRun {
                    shards: 3,
                    replicas: 12,
                    ready_s: 1.5,
                    parked_s: Some(2.5),
                    window_s: 20.0,
                    cpu_cores: 0.004,
                    rss_bytes_sum: 60 << 20,
                    rss_per_replica_bytes: None,
                },
                IdleRun {
                    shards: 128,
                    replicas: 387,
                    ready_s: 12.0,
                    parked_s: None,
                    window_s: 20.0,
                    cpu_cores: 0.05,
                    rss_bytes_sum: 135 << 20,
                    rss_per_replica_bytes: Some(200.0 * 1024.0),
                },
            ],
            errors: vec!["32 shards: exited".to_owned()],
        }),
        ..Comparison::default()
    };
    Report::build(comparison, Machine::default(), Versions::default())
}

#[test]
fn markdown_shows_ratios_to_polis_failures_and_verdicts() {
    let text = super::markdown::render(&report());
    assert!(
        text.contains("| etcd | 6,000 (0.20x) | 5.00 (5.00x) | 20.00 (5.00x)"),
        "{text}"
    );
    assert!(text.contains("| polis | 30,000 | 1.00 | 4.00 |"), "{text}");
    // The pipe in the error must not split the cell.
    assert!(
        text.contains("| etcd | failed: start: etcd \\| exited |"),
        "{text}"
    );
    assert!(text.contains("| ≥ 3x | 5.00x | met |"), "{text}");
    assert!(text.contains("| < 10ms | 4.00ms | met |"), "{text}");
    assert!(text.contains("| ≥ 0.5x | 0.40x | NOT met |"), "{text}");
    assert!(text.contains("| ≤ 2x | - | not measured |"), "{text}");
    // Idle shards: the table, and the targets judged on the largest run.
    assert!(
        text.contains("| 128 | 387 | 12.0 | not all | 0.050 | 135.0 | 200 |"),
        "{text}"
    );
    assert!(text.contains("- failed: 32 shards: exited"), "{text}");
    assert!(text.contains("| ≤ 10s | 12.00s | NOT met |"), "{text}");
    assert!(
        text.contains("| ≤ 0.1 cores | 0.05 cores | met |"),
        "{text}"
    );
    assert!(text.contains("| ≤ 256 KiB | 200.00 KiB | met |"), "{text}");
}

#[test]
fn html_is_self_contained_with_one_chart_pair_per_workload() {
    let page = super::html::render(&report());
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    assert_eq!(page.matches("<svg").count(), 4, "{page}");
    assert!(!page.contains("<script") && !page.contains("<link"));
    assert!(page.contains("class=\"not\">NOT met"));
}

#[test]
fn the_three_files_are_written_and_the_json_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let report = report();
    let files = report.write(&dir.path().join("out")).unwrap();
    for path in [&files.markdown, &files.json, &files.html] {
        assert!(
            std::fs::metadata(path).unwrap().len() > 100,
            "{}",
            path.display()
        );
    }
    let read: Report = serde_json::from_slice(&std::fs::read(&files.json).unwrap()).unwrap();
    assert_eq!(read, report);
}
