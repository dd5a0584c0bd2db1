//! Tests of the timeline page.

use super::*;
use crate::history::{Op, Phase};

const MS: u64 = 1_000_000;

fn nemesis(time_ns: u64, fault: &str, phase: Phase) -> Event {
    Event {
        index: 0,
        time_ns,
        process: NEMESIS_PROCESS,
        kind: Kind::Info,
        op: Op::Nemesis {
            fault: fault.into(),
            phase,
        },
        error: None,
    }
}

/// Twenty seconds of writes from three processes, some failing or
/// unknown, with a partition from 5 s to 10 s and a kill from 8 s on.
fn history() -> Vec<Event> {
    let mut events = Vec::new();
    for step in 0..600u64 {
        let process = step % 3;
        let invoke_ns = step * 33 * MS;
        let kind = match step % 17 {
            0 => Kind::Fail,
            1 => Kind::Info,
            _ => Kind::Ok,
        };
        // Unknown outcomes end the process; give the next its own number.
        let process = process + 3 * (step / 17);
        let op = Op::Write {
            key: "x".into(),
            value: step,
        };
        for (time_ns, kind) in [
            (invoke_ns, Kind::Invoke),
            (invoke_ns + (step % 7 + 1) * MS, kind),
        ] {
            events.push(Event {
                index: 0,
                time_ns,
                process,
                kind,
                op: op.clone(),
                error: None,
            });
        }
    }
    events.push(nemesis(5_000 * MS, "partition 1 | 2,3", Phase::Start));
    events.push(nemesis(8_000 * MS, "kill <n2>", Phase::Start));
    events.push(nemesis(10_000 * MS, "partition 1 | 2,3", Phase::Stop));
    events.sort_by_key(|event| event.time_ns);
    for (index, event) in events.iter_mut().enumerate() {
        event.index = index as u64;
    }
    events
}

/// Checks that every element opened is closed, in order; void elements
/// and self-closing tags need no end tag.
fn assert_balanced(html: &str) {
    const VOID: [&str; 2] = ["meta", "!DOCTYPE"];
    let mut open: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = start + rest[start..].find('>').expect("an unclosed tag");
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|character| !character.is_whitespace() && *character != '/')
            .collect();
        if VOID.contains(&name.as_str()) || tag.ends_with('/') {
            continue;
        }
        if tag.starts_with('/') {
            assert_eq!(
                open.pop().as_deref(),
                Some(name.as_str()),
                "near {rest:.80}"
            );
        } else {
            open.push(name);
        }
    }
    assert!(open.is_empty(), "left open: {open:?}");
}

#[test]
fn shades_every_fault_window_in_both_plots() {
    let html = timeline_html(&history(), "run <7>");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 2);
    assert_eq!(html.matches("</svg>").count(), 2);
    assert_eq!(html.matches("<g class=\"fault\">").count(), 4);
    assert_eq!(html.matches(">partition 1 | 2,3</text>").count(), 2);
    assert_eq!(html.matches(">kill &lt;n2&gt;</text>").count(), 2);
    assert!(html.contains("<title>run &lt;7&gt;</title>"));
    assert!(html.contains("<td>8.000s</td><td>(end)</td><td>kill &lt;n2&gt;</td>"));
    assert!(!html.contains("<script"));
    for external in ["src=", "href=", "<link", "@import"] {
        assert!(!html.contains(external), "loads something: {external}");
    }
    assert_balanced(&html);
}

#[test]
fn draws_throughput_and_latency_series() {
    let html = timeline_html(&history(), "run");
    // ok, fail and info; p50, p99 and max.
    assert_eq!(html.matches("<path class=\"series\"").count(), 6);
    for name in ["ok", "fail", "info", "p50", "p99", "max"] {
        assert!(
            html.contains(&format!("<title>{name}</title></path>")),
            "{name}"
        );
    }
    assert!(html.contains("buckets of 1.000s"), "{html:.400}");
    let short = timeline_html(&history()[..200], "short");
    assert!(short.contains("buckets of 0.200s"), "{short:.400}");
}

#[test]
fn puts_overlapping_labels_on_separate_lines() {
    let windows = fault_windows(&history()).unwrap();
    assert_eq!(label_lanes(&windows), [0, 1]);
    let later = [
        nemesis(0, "a", Phase::Start),
        nemesis(MS, "a", Phase::Stop),
        nemesis(2 * MS, "b", Phase::Start),
    ];
    assert_eq!(label_lanes(&fault_windows(&later).unwrap()), [0, 0]);
}

#[test]
fn renders_an_empty_history() {
    let html = timeline_html(&[], "empty");
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(html.contains("No faults."));
    assert_balanced(&html);
}

#[test]
fn reports_unreadable_faults_instead_of_drawing_them() {
    let html = timeline_html(&[nemesis(0, "heal", Phase::Stop)], "bad");
    assert!(html.contains("Faults not shown"));
    assert_eq!(html.matches("class=\"fault\"").count(), 0);
}

#[test]
fn rounds_up_to_one_two_or_five() {
    let cases = [
        (0.0, 1.0),
        (0.7, 1.0),
        (1.0, 1.0),
        (1.2, 2.0),
        (3.0, 5.0),
        (7.0, 10.0),
        (420.0, 500.0),
    ];
    for (value, nice) in cases {
        assert!(
            (nice_ceiling(value) - nice).abs() < 1e-9,
            "{value} -> {}",
            nice_ceiling(value)
        );
    }
}
