//! The timeline page: throughput and latency over the run with the
//! nemesis's faults shaded, as one self-contained HTML file (inline SVG,
//! no scripts), so it opens anywhere and can be attached to a bug report.

use std::collections::HashMap;
use std::fmt::Write;

use super::quantile;
use crate::check::pair::{fault_windows, format_seconds, FaultWindow};
use crate::history::{Event, Kind, NEMESIS_PROCESS};

const WIDTH: f64 = 960.0;
const PLOT_HEIGHT: f64 = 200.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const BOTTOM: f64 = 32.0;
/// Room above a plot for one line of fault labels.
const LABEL_LINE: f64 = 13.0;
/// Bucket widths to choose from, smallest first.
const BUCKET_CHOICES_MS: [u64; 12] = [
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000, 600_000, 3_600_000,
];
/// At most this many buckets, so a long run stays legible.
const BUCKETS_MAX: u64 = 150;
/// Buckets of a second, as is usual, unless the run is so short that it
/// would get fewer than this many.
const BUCKETS_SHORT_RUN_MIN: u64 = 20;
/// Latencies below this are drawn at it, so a log scale has a floor.
const LATENCY_MS_MIN: f64 = 0.001;

const OK_COLOR: &str = "#2a9d8f";
const FAIL_COLOR: &str = "#d62828";
const INFO_COLOR: &str = "#f4a261";
const FAULT_COLOR: &str = "#8d99ae";

/// Per bucket of time: completions by kind, and the latencies of the
/// successful ones.
struct Buckets {
    width_ns: u64,
    ok: Vec<u64>,
    fail: Vec<u64>,
    info: Vec<u64>,
    latencies_ms: Vec<Vec<f64>>,
}

impl Buckets {
    fn new(events: &[Event]) -> Self {
        let end_ns = events.iter().map(|event| event.time_ns).max().unwrap_or(0);
        let wanted_ns =
            (end_ns / BUCKETS_MAX).max((end_ns / BUCKETS_SHORT_RUN_MIN).min(1_000_000_000));
        let width_ns = BUCKET_CHOICES_MS
            .iter()
            .map(|ms| ms * 1_000_000)
            .find(|&width_ns| width_ns >= wanted_ns)
            .unwrap_or(3_600_000_000_000);
        let count = (end_ns / width_ns + 1) as usize;
        let mut buckets = Buckets {
            width_ns,
            ok: vec![0; count],
            fail: vec![0; count],
            info: vec![0; count],
            latencies_ms: vec![Vec::new(); count],
        };
        // Process -> invocation time of its open operation.
        let mut open: HashMap<u64, u64> = HashMap::new();
        for event in events {
            if event.process == NEMESIS_PROCESS {
                continue;
            }
            let bucket = (event.time_ns / width_ns) as usize;
            let invoke_ns = match event.kind {
                Kind::Invoke => {
                    open.insert(event.process, event.time_ns);
                    continue;
                }
                _ => open.remove(&event.process),
            };
            match event.kind {
                Kind::Ok => {
                    buckets.ok[bucket] += 1;
                    if let Some(invoke_ns) = invoke_ns {
                        let latency_ns = event.time_ns.saturating_sub(invoke_ns);
                        buckets.latencies_ms[bucket].push(latency_ns as f64 / 1e6);
                    }
                }
                Kind::Fail => buckets.fail[bucket] += 1,
                Kind::Info | Kind::Invoke => buckets.info[bucket] += 1,
            }
        }
        for latencies in &mut buckets.latencies_ms {
            latencies.sort_by(f64::total_cmp);
        }
        buckets
    }

    fn len(&self) -> usize {
        self.ok.len()
    }

    fn end_ns(&self) -> u64 {
        self.width_ns * self.len() as u64
    }

    /// The middle of bucket `index`, where its point is drawn.
    fn middle_ns(&self, index: usize) -> u64 {
        self.width_ns * index as u64 + self.width_ns / 2
    }

    /// Completions per second in each bucket.
    fn rates(&self, counts: &[u64]) -> Vec<Option<f64>> {
        let seconds = self.width_ns as f64 / 1e9;
        counts
            .iter()
            .map(|&count| Some(count as f64 / seconds))
            .collect()
    }

    fn latency(&self, q: f64) -> Vec<Option<f64>> {
        self.latencies_ms
            .iter()
            .map(|latencies| quantile(latencies, q).map(|ms| ms.max(LATENCY_MS_MIN)))
            .collect()
    }
}

/// One plot's frame: where time and values land in pixels.
struct Frame {
    top: f64,
    end_ns: u64,
}

impl Frame {
    fn height(&self) -> f64 {
        self.top + PLOT_HEIGHT + BOTTOM
    }

    fn x(&self, time_ns: u64) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * (time_ns as f64 / self.end_ns.max(1) as f64)
    }

    /// Maps a fraction of the plot's height (0 at the bottom) to pixels.
    fn y(&self, fraction: f64) -> f64 {
        self.top + PLOT_HEIGHT * (1.0 - fraction.clamp(0.0, 1.0))
    }
}

/// Renders the timeline of `events` as a self-contained HTML page.
pub fn timeline_html(events: &[Event], title: &str) -> String {
    let buckets = Buckets::new(events);
    let (faults, faults_problem) = match fault_windows(events) {
        Ok(faults) => (faults, None),
        Err(error) => (Vec::new(), Some(error.to_string())),
    };
    let lanes = label_lanes(&faults);
    let lane_count = lanes.iter().max().map_or(0, |lane| lane + 1);
    let frame = Frame {
        top: 12.0 + LABEL_LINE * lane_count as f64,
        end_ns: buckets.end_ns(),
    };

    let mut html = String::new();
    let title = escape(title);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}\n\
         svg {{ display: block; margin-bottom: 1.5em; }}\n\
         svg text {{ font-size: 11px; }}\n\
         table {{ border-collapse: collapse; }}\n\
         td, th {{ padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; text-align: left; }}\n\
         </style>\n</head>\n<body>\n<h1>{title}</h1>\n<p>{} events over {}; buckets of {}.</p>\n",
        events.len(),
        format_seconds(buckets.end_ns()),
        format_seconds(buckets.width_ns),
    );
    if let Some(problem) = faults_problem {
        let _ = writeln!(html, "<p>Faults not shown: {}</p>", escape(&problem));
    }

    html.push_str("<h2>Throughput (completions per second)</h2>\n");
    let ok = buckets.rates(&buckets.ok);
    let fail = buckets.rates(&buckets.fail);
    let info = buckets.rates(&buckets.info);
    let rate_max = nice_ceiling(
        [&ok, &fail, &info]
            .iter()
            .flat_map(|series| series.iter().flatten())
            .fold(1.0, |max: f64, &rate| max.max(rate)),
    );
    let scale = Scale::Linear { max: rate_max };
    let series = [
        ("ok", OK_COLOR, ok),
        ("fail", FAIL_COLOR, fail),
        ("info", INFO_COLOR, info),
    ];
    html.push_str(&plot(&frame, &buckets, &faults, &lanes, &scale, &series));

    html.push_str("<h2>Latency of successful operations (ms, log scale)</h2>\n");
    // Drawn widest first, so the median stays on top.
    let series = [
        ("max", "#adb5bd", buckets.latency(1.0)),
        ("p99", "#9b5de5", buckets.latency(0.99)),
        ("p50", "#264653", buckets.latency(0.50)),
    ];
    let latencies = series
        .iter()
        .flat_map(|(_, _, values)| values.iter().flatten());
    let (low, high) = latencies.fold((f64::MAX, LATENCY_MS_MIN), |(low, high), &ms| {
        (low.min(ms), high.max(ms))
    });
    let scale = Scale::Log {
        low_exponent: low.min(high).log10().floor() as i32,
        high_exponent: (high.log10().ceil() as i32).max(low.min(high).log10().floor() as i32 + 1),
    };
    html.push_str(&plot(&frame, &buckets, &faults, &lanes, &scale, &series));

    html.push_str(&fault_table(&faults));
    html.push_str("</body>\n</html>\n");
    html
}

/// How values map to heights.
enum Scale {
    Linear {
        max: f64,
    },
    Log {
        low_exponent: i32,
        high_exponent: i32,
    },
}

impl Scale {
    /// Returns the fraction of the plot's height for `value`.
    fn fraction(&self, value: f64) -> f64 {
        match *self {
            Scale::Linear { max } => value / max,
            Scale::Log {
                low_exponent,
                high_exponent,
            } => {
                (value.log10() - f64::from(low_exponent)) / f64::from(high_exponent - low_exponent)
            }
        }
    }

    /// Grid lines: (value, label).
    fn ticks(&self) -> Vec<(f64, String)> {
        match *self {
            Scale::Linear { max } => (0..=4)
                .map(|step| {
                    let value = max * f64::from(step) / 4.0;
                    (value, trim_number(value))
                })
                .collect(),
            Scale::Log {
                low_exponent,
                high_exponent,
            } => (low_exponent..=high_exponent)
                .map(|exponent| {
                    let value = 10f64.powi(exponent);
                    (value, trim_number(value))
                })
                .collect(),
        }
    }
}

/// Draws one plot: fault windows behind, grid, axes, series, legend.
fn plot(
    frame: &Frame,
    buckets: &Buckets,
    faults: &[FaultWindow],
    lanes: &[usize],
    scale: &Scale,
    series: &[(&str, &str, Vec<Option<f64>>)],
) -> String {
    let mut svg = String::new();
    let bottom = frame.y(0.0);
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{:.0}\" \
         viewBox=\"0 0 {WIDTH} {:.0}\">",
        frame.height(),
        frame.height()
    );
    for (fault, lane) in faults.iter().zip(lanes) {
        let start = frame.x(fault.start_ns);
        let stop = frame.x(fault.stop_ns.unwrap_or(frame.end_ns));
        let label = escape(&fault.fault);
        let _ = writeln!(
            svg,
            "<g class=\"fault\"><title>{label}</title>\
             <rect x=\"{start:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{PLOT_HEIGHT}\" \
             fill=\"{FAULT_COLOR}\" fill-opacity=\"0.25\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#495057\">{label}</text></g>",
            frame.top,
            (stop - start).max(1.0),
            start + 2.0,
            frame.top - 3.0 - LABEL_LINE * *lane as f64,
        );
    }
    for (value, label) in scale.ticks() {
        let y = frame.y(scale.fraction(value));
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e9ecef\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for (time_ns, label) in time_ticks(frame.end_ns) {
        let x = frame.x(time_ns);
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{bottom:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#495057\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            bottom + 4.0,
            bottom + 16.0
        );
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{bottom:.1}\" x2=\"{:.1}\" y2=\"{bottom:.1}\" stroke=\"#495057\"/>\
         <line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{LEFT}\" y2=\"{bottom:.1}\" stroke=\"#495057\"/>",
        WIDTH - RIGHT,
        frame.top
    );
    for (name, color, values) in series {
        let path = series_path(frame, buckets, scale, values);
        if !path.is_empty() {
            let _ = writeln!(
                svg,
                "<path class=\"series\" d=\"{path}\" fill=\"none\" stroke=\"{color}\" \
                 stroke-width=\"1.5\"><title>{name}</title></path>"
            );
        }
    }
    // The legend sits on a pale box so the lines under it do not hide it.
    let legend_x = WIDTH - RIGHT - 60.0 * series.len() as f64 - 6.0;
    let _ = writeln!(
        svg,
        "<rect x=\"{legend_x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"18\" fill=\"#ffffff\" \
         fill-opacity=\"0.85\"/>",
        frame.top + 1.0,
        60.0 * series.len() as f64 + 4.0
    );
    for (position, (name, color, _)) in series.iter().enumerate() {
        let x = WIDTH - RIGHT - 60.0 * (series.len() - position) as f64;
        let _ = writeln!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{name}</text>",
            frame.top + 4.0,
            x + 14.0,
            frame.top + 13.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// A path through the buckets that have a value, broken where one has
/// none, so an empty bucket does not look like a zero.
fn series_path(frame: &Frame, buckets: &Buckets, scale: &Scale, values: &[Option<f64>]) -> String {
    let mut path = String::new();
    let mut drawing = false;
    for (index, value) in values.iter().enumerate() {
        let Some(value) = value else {
            drawing = false;
            continue;
        };
        let x = frame.x(buckets.middle_ns(index));
        let y = frame.y(scale.fraction(*value));
        let command = if drawing { 'L' } else { 'M' };
        let _ = write!(path, "{command}{x:.1},{y:.1} ");
        // A lone point would be invisible as a path: draw a short dash.
        if !drawing && values.get(index + 1).is_none_or(Option::is_none) {
            let _ = write!(path, "L{:.1},{y:.1} ", x + 2.0);
        }
        drawing = true;
    }
    path.trim_end().to_string()
}

/// Gives each fault window the lowest label line that no window still
/// in place at its start uses, so overlapping labels do not collide.
fn label_lanes(faults: &[FaultWindow]) -> Vec<usize> {
    let mut lanes: Vec<usize> = Vec::with_capacity(faults.len());
    for (position, fault) in faults.iter().enumerate() {
        let taken: Vec<usize> = faults[..position]
            .iter()
            .zip(&lanes)
            .filter(|(earlier, _)| earlier.stop_ns.is_none_or(|stop| stop > fault.start_ns))
            .map(|(_, &lane)| lane)
            .collect();
        let lane = (0..).find(|lane| !taken.contains(lane)).unwrap_or(0);
        lanes.push(lane);
    }
    lanes
}

/// Tick marks for the time axis: about eight, at round seconds.
fn time_ticks(end_ns: u64) -> Vec<(u64, String)> {
    let step_s = nice_ceiling(end_ns as f64 / 1e9 / 8.0);
    let step_ns = ((step_s * 1e9) as u64).max(1);
    (0..)
        .map(|count| count * step_ns)
        .take_while(|&time_ns| time_ns <= end_ns)
        .map(|time_ns| (time_ns, format!("{}s", trim_number(time_ns as f64 / 1e9))))
        .collect()
}

/// Returns the smallest of 1, 2 or 5 times a power of ten that is at
/// least `value`.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|factor| factor * power)
        .find(|&nice| nice >= value * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

fn trim_number(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn fault_table(faults: &[FaultWindow]) -> String {
    if faults.is_empty() {
        return "<p>No faults.</p>\n".to_string();
    }
    let mut table = String::from(
        "<h2>Faults</h2>\n<table>\n<tr><th>start</th><th>stop</th><th>fault</th></tr>\n",
    );
    for fault in faults {
        let stop = fault
            .stop_ns
            .map_or_else(|| "(end)".to_string(), format_seconds);
        let _ = writeln!(
            table,
            "<tr><td>{}</td><td>{stop}</td><td>{}</td></tr>",
            format_seconds(fault.start_ns),
            escape(&fault.fault)
        );
    }
    table.push_str("</table>\n");
    table
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "timeline_test.rs"]
mod tests;
