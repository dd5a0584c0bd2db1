//! The results of a run, written under its output directory:
//! `history.jsonl` (every event), `summary.txt` and `summary.json` (the
//! checkers' verdicts), `timeline.html` (throughput and latency with the
//! faults shaded).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use crate::check::append::{self, AppendReport};
use crate::check::changefeed::{self, FeedReport};
use crate::check::eventual::{self, EventualReport};
use crate::check::locks::{self, LockReport};
use crate::check::pops::{self, PopReport};
use crate::check::queue::{self, QueueReport};
use crate::check::registers::{self, Budget, RegisterReport};
use crate::check::set::{self, SetReport};
use crate::history::{write_jsonl, Event};
use crate::report;
use crate::run::RunConfig;
use crate::workload::Workload;

/// What a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub seed: u64,
    /// True when the checkers showed the history correct.
    pub valid: bool,
    pub registers: Option<RegisterReport>,
    pub set: Option<SetReport>,
    pub queue: Option<QueueReport>,
    pub pops: Option<PopReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub append: Option<AppendReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locks: Option<LockReport>,
    pub changefeed: Option<FeedReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eventual: Option<EventualReport>,
    /// The human summary, as in summary.txt.
    pub text: String,
    pub out_dir: PathBuf,
}

/// Checks `events` and writes every result file.
///
/// # Errors
/// Returns an error if a file cannot be written.
pub fn write(config: &RunConfig, events: &[Event]) -> anyhow::Result<Results> {
    let dir = &config.out_dir;
    let mut history = std::io::BufWriter::new(std::fs::File::create(dir.join("history.jsonl"))?);
    write_jsonl(&mut history, events)?;
    history.flush()?;

    let (registers, set) = match config.workload {
        Workload::Register { .. } => (Some(registers::check(events, Budget::default())), None),
        Workload::Set => (None, Some(set::check(events))),
        Workload::Queue { .. }
        | Workload::Pop
        | Workload::Append { .. }
        | Workload::Lock
        | Workload::Changefeed { .. }
        | Workload::Eventual { .. } => (None, None),
    };
    let queue = match config.workload {
        Workload::Queue { mode } => Some(queue::check(events, mode)),
        _ => None,
    };
    let pops = (config.workload == Workload::Pop).then(|| pops::check(events));
    let append = matches!(config.workload, Workload::Append { .. }).then(|| append::check(events));
    let locks = (config.workload == Workload::Lock).then(|| locks::check(events));
    let changefeed =
        matches!(config.workload, Workload::Changefeed { .. }).then(|| changefeed::check(events));
    let eventual =
        matches!(config.workload, Workload::Eventual { .. }).then(|| eventual::check(events));
    let valid = registers.as_ref().is_none_or(RegisterReport::is_valid)
        && set.as_ref().is_none_or(SetReport::is_valid)
        && queue.as_ref().is_none_or(QueueReport::is_valid)
        && pops.as_ref().is_none_or(PopReport::is_valid)
        && append.as_ref().is_none_or(AppendReport::is_valid)
        && locks.as_ref().is_none_or(LockReport::is_valid)
        && changefeed.as_ref().is_none_or(FeedReport::is_valid)
        && eventual.as_ref().is_none_or(EventualReport::is_valid);
    let mut text = format!(
        "polis verify: seed {} workload {:?} target {:?}\n",
        config.seed, config.workload, config.target
    );
    let mut summary = report::Summary::new(events, registers.as_ref(), set.as_ref());
    if let Some(report) = &queue {
        summary.add_queue(report);
    }
    if let Some(report) = &pops {
        summary.add_pops(report);
    }
    if let Some(report) = &append {
        summary = summary.with_append(report);
    }
    if let Some(report) = &locks {
        summary.add_locks(report);
    }
    if let Some(report) = &changefeed {
        summary = summary.with_changefeed(report);
    }
    if let Some(report) = &eventual {
        summary = summary.with_eventual(report);
    }
    text.push_str(&summary.render_text());
    text.push_str(if valid {
        "verdict: valid (no anomalies)\n"
    } else {
        "verdict: INVALID (see the anomalies above)\n"
    });
    std::fs::write(dir.join("summary.txt"), &text)?;
    let results = Results {
        seed: config.seed,
        valid,
        registers,
        set,
        queue,
        pops,
        append,
        locks,
        changefeed,
        eventual,
        text,
        out_dir: dir.clone(),
    };
    let json = serde_json::json!({ "results": &results, "summary": &summary });
    std::fs::write(dir.join("summary.json"), serde_json::to_vec_pretty(&json)?)
        .context("writing summary.json")?;
    let title = format!("polis verify, seed {}", config.seed);
    std::fs::write(
        dir.join("timeline.html"),
        report::timeline_html(events, &title),
    )
    .context("writing timeline.html")?;
    Ok(results)
}
