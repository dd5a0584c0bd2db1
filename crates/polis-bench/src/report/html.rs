//! The report as one self-contained HTML page (`report.html`): the same
//! tables as the markdown, and bar charts drawn as inline SVG. No
//! scripts, no external style sheets or fonts.

use std::fmt::Write;

use super::format::{html_escape, thousands, utc};
use super::markdown::{row_cells, target_rows, COLUMNS, TARGET_COLUMNS};
use super::Report;
use crate::peers::SystemKind;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;\
text-align:right;font-variant-numeric:tabular-nums}td:first-child,th:first-child{text-align:left}\
table.text td{text-align:left}.met{color:#17702b;font-weight:600}.not{color:#b00020;font-weight:600}.charts{display:flex;\
flex-wrap:wrap;gap:1.5em}.note{color:#555}";

/// Bar colour of polis, and of every peer.
const POLIS_COLOUR: &str = "#3b6fd8";
const PEER_COLOUR: &str = "#9aa5b1";

/// One bar: label, value, and whether it is polis's.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub polis: bool,
}

/// Returns a horizontal bar chart as an `<svg>` element.
pub fn bar_chart(title: &str, unit: &str, bars: &[Bar]) -> String {
    let label_width = 140.0;
    let bar_area = 260.0;
    let value_width = 110.0;
    let row_height = 24.0;
    let top = 26.0;
    let width = label_width + bar_area + value_width;
    let height = top + row_height * bars.len() as f64 + 6.0;
    let max = bars.iter().map(|bar| bar.value).fold(0.0, f64::max);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{title}\" \
         font-family=\"system-ui,sans-serif\" font-size=\"12\">\
         <text x=\"0\" y=\"16\" font-weight=\"600\">{title}</text>",
        title = html_escape(title)
    );
    for (index, bar) in bars.iter().enumerate() {
        let y = top + row_height * index as f64;
        let length = if max > 0.0 {
            (bar.value / max * bar_area).max(1.0)
        } else {
            0.0
        };
        let colour = if bar.polis { POLIS_COLOUR } else { PEER_COLOUR };
        let value = if bar.value >= 100.0 {
            thousands(bar.value)
        } else {
            format!("{:.2}", bar.value)
        };
        let _ = write!(
            svg,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect x=\"{label_width}\" y=\"{y}\" width=\"{length:.1}\" height=\"{bh}\" fill=\"{colour}\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\">{value} {unit}</text>",
            lx = label_width - 6.0,
            ty = y + 15.0,
            label = html_escape(&bar.label),
            bh = row_height - 6.0,
            vx = label_width + length + 4.0,
            unit = html_escape(unit),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Writes a table; `numeric` right-aligns every column but the first.
fn html_table(out: &mut String, header: &[&str], rows: &[Vec<String>], numeric: bool) {
    out.push_str(if numeric {
        "<table><tr>"
    } else {
        "<table class=\"text\"><tr>"
    });
    for cell in header {
        let _ = write!(out, "<th>{}</th>", html_escape(cell));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let class = match cell.as_str() {
                "met" => " class=\"met\"",
                "NOT met" => " class=\"not\"",
                _ => "",
            };
            let _ = write!(out, "<td{class}>{}</td>", html_escape(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn memory_chart(report: &Report) -> Option<String> {
    let memory = report.comparison.memory.as_ref()?;
    let mut bars = Vec::new();
    if let Some(polis) = &memory.polis {
        bars.push(Bar {
            label: "polis leader RSS".to_owned(),
            value: polis.leader_rss_per_key_bytes,
            polis: true,
        });
        if let Some(used) = polis.used_memory_per_key_bytes {
            bars.push(Bar {
                label: "polis used_memory".to_owned(),
                value: used,
                polis: true,
            });
        }
    }
    if let Some(redis) = &memory.redis {
        bars.push(Bar {
            label: "redis used_memory".to_owned(),
            value: redis.used_memory_per_key_bytes,
            polis: false,
        });
        bars.push(Bar {
            label: "redis RSS".to_owned(),
            value: redis.rss_per_key_bytes,
            polis: false,
        });
    }
    (!bars.is_empty()).then(|| {
        bar_chart(
            &format!(
                "memory per key ({} keys of {} bytes)",
                thousands(memory.keys as f64),
                memory.value_size
            ),
            "B",
            &bars,
        )
    })
}

/// Renders the whole page.
pub fn render(report: &Report) -> String {
    let settings = &report.comparison.settings;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>polis benchmark report</title><style>{STYLE}</style></head><body>\
         <h1>polis benchmark report</h1><p class=\"note\">Profile <b>{}</b>, started {}, \
         {} repetition(s), {} keys of {}-byte values, {} connections, {:.1} s warm-up, \
         {:.1} s measured per run. Medians over repetitions; ratios are to polis. \
         Machine: {} CPUs ({}), kernel {}, load average {} before, {} after; polis {} ({} build); \
         {}; {}.</p>",
        html_escape(&settings.profile),
        utc(report.comparison.started_unix_s),
        settings.repetitions,
        thousands(settings.keys as f64),
        settings.value_size,
        settings.connections,
        settings.warmup_s,
        settings.duration_s,
        report.machine.cpus,
        html_escape(&report.machine.cpu_model),
        html_escape(&report.machine.kernel),
        html_escape(&report.machine.load_average_before),
        html_escape(&report.machine.load_average_after),
        html_escape(&report.versions.polis_commit),
        html_escape(&report.versions.polis_build),
        html_escape(&report.versions.redis),
        html_escape(&report.versions.etcd),
    );
    out.push_str("<h2>Targets</h2>");
    html_table(
        &mut out,
        &TARGET_COLUMNS,
        &target_rows(&report.targets),
        false,
    );
    for case in report.cases() {
        let summaries = report.case_summaries(*case);
        if summaries.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "<h2>{}</h2><p class=\"note\">{}</p>",
            html_escape(case.name()),
            html_escape(case.title())
        );
        let with_results: Vec<_> = summaries.iter().filter(|s| s.has_result()).collect();
        let bars = |value: &dyn Fn(&super::summary::Summary) -> f64| -> Vec<Bar> {
            with_results
                .iter()
                .map(|s| Bar {
                    label: s.system.map_or("?", SystemKind::name).to_owned(),
                    value: value(s),
                    polis: s.system.is_some_and(SystemKind::is_polis),
                })
                .collect()
        };
        let _ = write!(
            out,
            "<div class=\"charts\">{}{}</div>",
            bar_chart("throughput", "ops/s", &bars(&|s| s.throughput_per_s)),
            bar_chart("p99 latency", "ms", &bars(&|s| s.p99_us / 1000.0)),
        );
        let polis = report.polis_summary(*case);
        let rows: Vec<Vec<String>> = summaries.iter().map(|s| row_cells(s, polis)).collect();
        html_table(&mut out, &COLUMNS, &rows, true);
    }
    if let Some(chart) = memory_chart(report) {
        let _ = write!(out, "<h2>Memory per key</h2>{chart}");
    }
    out.push_str("<h2>Systems</h2><ul>");
    for system in &settings.systems {
        let _ = write!(
            out,
            "<li><code>{}</code>: {}</li>",
            system.name(),
            html_escape(system.description())
        );
    }
    out.push_str("</ul></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_text_is_escaped() {
        let svg = bar_chart(
            "a <b>",
            "ops/s",
            &[
                Bar {
                    label: "polis".into(),
                    value: 50.0,
                    polis: true,
                },
                Bar {
                    label: "redis & co".into(),
                    value: 100.0,
                    polis: false,
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("a &lt;b&gt;") && svg.contains("redis &amp; co"));
        assert!(svg.contains("width=\"130.0\""), "{svg}");
        assert!(svg.contains("width=\"260.0\""), "{svg}");
        assert!(!svg.contains("<script"));
    }
}
