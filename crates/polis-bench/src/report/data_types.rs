//! The report's sections on the data types: each type's writes against
//! polis's own SET, memory per element of each collection against Redis,
//! and the queue on one stream against Redis with replicas.

use std::fmt::Write;

use super::format::{md_cell, ms, thousands};
use super::markdown::table;
use super::Report;
use crate::compare::cases::Case;
use crate::element_memory::ElementMemoryReport;
use crate::queue::QueueReport;

/// Returns polis's throughput in `case` over its SET throughput.
pub fn ratio_to_set(report: &Report, case: Case) -> Option<f64> {
    let set = report.polis_summary(Case::Set)?.throughput_per_s;
    let other = report.polis_summary(case)?.throughput_per_s;
    (set > 0.0).then(|| other / set)
}

/// Writes the three sections that have figures.
pub fn render(out: &mut String, report: &Report) {
    writes_section(out, report);
    if let Some(memory) = &report.comparison.element_memory {
        element_memory_section(out, memory);
    }
    if let Some(queue) = &report.comparison.queue {
        queue_section(out, queue);
    }
}

fn writes_section(out: &mut String, report: &Report) {
    let measured: Vec<Case> = Case::DATA_TYPES
        .into_iter()
        .filter(|case| report.polis_summary(*case).is_some())
        .collect();
    if measured.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Data-type writes against SET\n\npolis (3 nodes, 3 shards, strong), {} \
         connections, one request in flight each; ratios are to polis's SET in the same run.\n",
        report.comparison.settings.connections
    );
    let rows: Vec<Vec<String>> = std::iter::once(Case::Set)
        .chain(measured)
        .filter_map(|case| {
            let summary = report.polis_summary(case)?;
            Some(vec![
                case.name().to_uppercase(),
                thousands(summary.throughput_per_s),
                ratio_to_set(report, case).map_or("-".to_owned(), |r| format!("{r:.2}x")),
                ms(summary.p50_us),
                ms(summary.p99_us),
                thousands(summary.errors as f64),
            ])
        })
        .collect();
    table(
        out,
        &["command", "ops/s", "÷ SET", "p50 ms", "p99 ms", "errors"],
        &rows,
    );
}

fn element_memory_section(out: &mut String, memory: &ElementMemoryReport) {
    let _ = writeln!(
        out,
        "## Memory per element\n\nOne list, set, sorted set and hash of {} elements each \
         (`element:{{n:010}}`, scores `n`, hash values `value:{{n}}`), built with pipelined \
         variadic writes into a fresh 3-node polis and a single Redis without persistence. \
         polis: RSS growth of the node serving the collections; Redis: used_memory growth.\n",
        thousands(memory.elements as f64)
    );
    let bytes = |value: Option<f64>| value.map_or("-".to_owned(), |b| format!("{b:.0}"));
    let rows: Vec<Vec<String>> = memory
        .collections
        .iter()
        .map(|row| {
            vec![
                row.collection.name().to_owned(),
                bytes(row.polis.as_ref().map(|g| g.rss_per_element_bytes)),
                bytes(
                    row.polis
                        .as_ref()
                        .and_then(|g| g.used_memory_per_element_bytes),
                ),
                bytes(
                    row.redis
                        .as_ref()
                        .and_then(|g| g.used_memory_per_element_bytes),
                ),
                bytes(row.redis.as_ref().map(|g| g.rss_per_element_bytes)),
                row.ratio().map_or("-".to_owned(), |r| format!("{r:.2}x")),
            ]
        })
        .collect();
    table(
        out,
        &[
            "collection",
            "polis RSS B/element",
            "polis used_memory B/element",
            "Redis used_memory B/element",
            "Redis RSS B/element",
            "polis RSS ÷ Redis used_memory",
        ],
        &rows,
    );
    for error in &memory.errors {
        let _ = writeln!(out, "- failed: {}", md_cell(error));
    }
}

fn queue_section(out: &mut String, queue: &QueueReport) {
    let _ = writeln!(
        out,
        "## Queue on one stream\n\n{} producers (XADD) and {} consumers (XREADGROUP COUNT {} \
         BLOCK 100, then XACK) on one stream, producing for {:.1} s or {} messages. polis: \
         3 nodes, strong; Redis: a primary and 2 replicas, appendfsync always, WAIT 2 1000 \
         after every XADD and every XACK. Latency: from the XADD to the XACK's reply.\n",
        queue.producers,
        queue.consumers,
        queue.read_count,
        queue.duration_s,
        thousands(queue.messages_max as f64)
    );
    let rows: Vec<Vec<String>> = [("polis", &queue.polis), ("redis-replicated", &queue.redis)]
        .into_iter()
        .filter_map(|(name, side)| {
            let side = side.as_ref()?;
            Some(vec![
                name.to_owned(),
                thousands(side.messages_per_s),
                thousands(side.produced as f64),
                thousands(side.acknowledged as f64),
                ms(side.latency.p50_us as f64),
                ms(side.latency.p99_us as f64),
                thousands(side.errors as f64),
            ])
        })
        .collect();
    table(
        out,
        &[
            "system",
            "messages/s",
            "produced",
            "acknowledged",
            "p50 ms",
            "p99 ms",
            "errors",
        ],
        &rows,
    );
    if let Some(ratio) = queue.ratio() {
        let _ = writeln!(out, "polis ÷ Redis messages/s: **{ratio:.2}x**.\n");
    }
    for side in [&queue.polis, &queue.redis].into_iter().flatten() {
        for sample in &side.error_samples {
            let _ = writeln!(out, "- error: {}", md_cell(sample));
        }
    }
    for error in &queue.errors {
        let _ = writeln!(out, "- failed: {}", md_cell(error));
    }
}
