//! The report of a comparison: per workload and system the throughput,
//! latency percentiles, CPU and peak memory, each beside polis's as a
//! ratio; the targets and whether they were met; the machine and the
//! versions. Written as `report.md`, `report.json` (everything, raw runs
//! included) and `report.html` (self-contained, bar charts in inline SVG).

pub mod data_types;
pub mod format;
pub mod html;
pub mod machine;
pub mod markdown;
pub mod summary;
pub mod targets;

#[cfg(test)]
mod report_test;

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use self::machine::{Machine, Versions};
use self::summary::{summarize, Summary};
use self::targets::TargetCheck;
use crate::compare::cases::Case;
use crate::compare::record::Comparison;
use crate::peers::SystemKind;

/// Everything the report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub machine: Machine,
    pub versions: Versions,
    pub summaries: Vec<Summary>,
    pub targets: Vec<TargetCheck>,
    pub comparison: Comparison,
}

/// The files a report was written to.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    pub markdown: PathBuf,
    pub json: PathBuf,
    pub html: PathBuf,
}

impl Report {
    /// Summarizes `comparison` and checks the targets.
    pub fn build(comparison: Comparison, machine: Machine, versions: Versions) -> Self {
        let mut summaries = Vec::new();
        for case in &comparison.settings.cases {
            for system in &comparison.settings.systems {
                if case.applies_to(*system) {
                    summaries.push(summarize(&comparison.runs, *case, *system));
                }
            }
        }
        // A run of the data-type scenarios alone (`--data-types`) measures
        // none of the other targets: they would only read "not measured".
        let cases = &comparison.settings.cases;
        let data_types_alone = cases.iter().any(|case| Case::DATA_TYPES.contains(case))
            && cases
                .iter()
                .all(|case| *case == Case::Set || Case::DATA_TYPES.contains(case))
            && comparison.memory.is_none()
            && comparison.idle.is_none();
        let mut targets = if data_types_alone {
            Vec::new()
        } else {
            targets::check(
                &summaries,
                comparison.memory.as_ref(),
                comparison.idle.as_ref(),
            )
        };
        targets.extend(targets::check_data_types(
            &summaries,
            comparison.element_memory.as_ref(),
            comparison.queue.as_ref(),
        ));
        Self {
            machine,
            versions,
            summaries,
            targets,
            comparison,
        }
    }

    /// Returns the summaries of `case`, in the order of the systems.
    pub fn case_summaries(&self, case: Case) -> Vec<&Summary> {
        self.summaries
            .iter()
            .filter(|summary| summary.case == Some(case))
            .collect()
    }

    /// Returns polis's summary of `case`, if it has a result.
    pub fn polis_summary(&self, case: Case) -> Option<&Summary> {
        self.summaries.iter().find(|summary| {
            summary.case == Some(case)
                && summary.system == Some(SystemKind::Polis)
                && summary.has_result()
        })
    }

    /// Returns the cases that were run, in order.
    pub fn cases(&self) -> &[Case] {
        &self.comparison.settings.cases
    }

    /// Writes `report.md`, `report.json` and `report.html` into `dir`.
    ///
    /// # Errors
    /// Returns an error if a file cannot be written.
    pub fn write(&self, dir: &Path) -> anyhow::Result<ReportFiles> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = ReportFiles {
            markdown: dir.join("report.md"),
            json: dir.join("report.json"),
            html: dir.join("report.html"),
        };
        let write = |path: &Path, text: &str| {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        };
        write(&files.markdown, &markdown::render(self))?;
        write(&files.json, &serde_json::to_string_pretty(self)?)?;
        write(&files.html, &html::render(self))?;
        Ok(files)
    }
}
