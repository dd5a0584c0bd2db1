//! The reviewer's rules that a compiler does not check: no source file
//! past 600 lines, and no sleeping in tests as a way to synchronize (a
//! test waits for a condition with a deadline). A retry back-off in a
//! test client is allowed when its line is marked `retry-backoff`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use std::path::{Path, PathBuf};

const FILE_LINES_MAX: usize = 600;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, found);
            }
        } else if name.ends_with(".rs") {
            found.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let mut found = Vec::new();
    rust_files(&workspace_root().join("crates"), &mut found);
    assert!(
        found.len() > 20,
        "expected the workspace's sources, found {}",
        found.len()
    );
    found
}

#[test]
fn no_source_file_is_past_the_size_limit() {
    let too_long: Vec<String> = all_rust_files()
        .into_iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(&path).unwrap().lines().count();
            (lines > FILE_LINES_MAX).then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(
        too_long.is_empty(),
        "split these files by concept: {too_long:#?}"
    );
}

#[test]
fn tests_do_not_sleep_to_synchronize() {
    let mut offenders = Vec::new();
    for path in all_rust_files() {
        let text = path.to_string_lossy().to_string();
        let in_tests = text.contains("/tests/") || text.ends_with("_test.rs");
        let source = std::fs::read_to_string(&path).unwrap();
        for (number, line) in source.lines().enumerate() {
            // The patterns are assembled so this line does not match itself.
            let sleeps = line.contains(concat!("thread::", "sleep("))
                || line.contains(concat!("time::", "sleep("));
            let in_test_module =
                in_tests || source.contains("#[cfg(test)]") && is_after_cfg_test(&source, number);
            if sleeps && in_test_module && !line.contains("retry-backoff") {
                offenders.push(format!(
                    "{}:{}: {}",
                    path.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "wait for a condition with a deadline instead: {offenders:#?}"
    );
}

/// Returns true when line `number` comes after the file's `#[cfg(test)]`.
fn is_after_cfg_test(source: &str, number: usize) -> bool {
    source
        .lines()
        .position(|line| line.trim() == "#[cfg(test)]")
        .is_some_and(|start| number > start)
}
