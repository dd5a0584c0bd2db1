//! Log matching: if two logs contain an entry with the same index and
//! term, the logs are identical in all entries up through that index
//! (Raft, section 5.3 and figure 3). Also: a log has no holes.
//!
//! Checked on the logs of all nodes together, as they are at one moment;
//! entries a node compacted into its snapshot are not compared.

use polis_raft::mem_log_store::{EntrySummary, LogSummary};
use polis_types::NodeId;

pub const NAME: &str = "log-matching";

/// Checks the logs of all nodes against each other.
///
/// # Errors
/// Describes the first pair of logs that breaks the property, or the
/// first log with a hole.
pub fn check(logs: &[(NodeId, LogSummary)]) -> Result<(), String> {
    for (node, log) in logs {
        check_contiguous(*node, log)?;
    }
    for (position, (node_a, log_a)) in logs.iter().enumerate() {
        for (node_b, log_b) in &logs[position + 1..] {
            check_pair(*node_a, &log_a.entries, *node_b, &log_b.entries)?;
        }
    }
    Ok(())
}

fn check_contiguous(node: NodeId, log: &LogSummary) -> Result<(), String> {
    if let (Some(purged), Some(first)) = (log.purged, log.entries.first()) {
        if first.index != purged.index + 1 {
            return Err(format!(
                "node {node}: log starts at index {} after a snapshot up to {}",
                first.index, purged.index
            ));
        }
    }
    for pair in log.entries.windows(2) {
        if pair[1].index != pair[0].index + 1 {
            return Err(format!(
                "node {node}: log jumps from index {} to {}",
                pair[0].index, pair[1].index
            ));
        }
    }
    Ok(())
}

/// Returns the entry at `index` of contiguous `entries`.
fn at(entries: &[EntrySummary], index: u64) -> Option<&EntrySummary> {
    let first = entries.first()?.index;
    let offset = usize::try_from(index.checked_sub(first)?).ok()?;
    entries.get(offset)
}

fn check_pair(
    node_a: NodeId,
    a: &[EntrySummary],
    node_b: NodeId,
    b: &[EntrySummary],
) -> Result<(), String> {
    let (Some(a_first), Some(b_first), Some(a_last), Some(b_last)) =
        (a.first(), b.first(), a.last(), b.last())
    else {
        return Ok(());
    };
    let low = a_first.index.max(b_first.index);
    let high = a_last.index.min(b_last.index);
    // Walking down from the highest common index: once both logs hold an
    // entry of the same term, they must agree from there down.
    let mut matched_at = None;
    for index in (low..=high).rev() {
        let (Some(entry_a), Some(entry_b)) = (at(a, index), at(b, index)) else {
            continue;
        };
        if matched_at.is_none() && entry_a.term == entry_b.term {
            matched_at = Some(index);
        }
        if let Some(matched) = matched_at {
            if entry_a != entry_b {
                return Err(format!(
                    "nodes {node_a} and {node_b} agree on index {matched} (term {}) but differ \
                     at index {index}: {entry_a:?} vs {entry_b:?}",
                    at(a, matched).map_or(0, |entry| entry.term)
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.
mod tests {
    use polis_raft::mem_log_store::LogPosition;

    use super::*;

    fn log(entries: &[(u64, u64, u64)]) -> LogSummary {
        LogSummary {
            purged: None,
            entries: entries
                .iter()
                .map(|&(index, term, digest)| EntrySummary {
                    index,
                    term,
                    digest,
                })
                .collect(),
        }
    }

    #[test]
    fn diverging_uncommitted_suffixes_pass() {
        let a = log(&[(1, 1, 10), (2, 1, 20), (3, 2, 30)]);
        let b = log(&[(1, 1, 10), (2, 1, 20), (3, 3, 31), (4, 3, 41)]);
        assert!(check(&[(NodeId(1), a), (NodeId(2), b)]).is_ok());
    }

    #[test]
    fn same_index_and_term_with_another_entry_fails() {
        let a = log(&[(1, 1, 10), (2, 1, 20)]);
        let b = log(&[(1, 1, 10), (2, 1, 99)]);
        let error = check(&[(NodeId(1), a), (NodeId(2), b)]).unwrap_err();
        assert!(error.contains("differ at index 2"), "{error}");
    }

    #[test]
    fn a_matching_entry_over_a_different_prefix_fails() {
        let a = log(&[(1, 1, 10), (2, 2, 20), (3, 3, 30)]);
        let b = log(&[(1, 1, 10), (2, 1, 21), (3, 3, 30)]);
        let error = check(&[(NodeId(1), a), (NodeId(2), b)]).unwrap_err();
        assert!(error.contains("agree on index 3"), "{error}");
    }

    #[test]
    fn a_hole_or_a_gap_after_the_snapshot_fails() {
        let holed = log(&[(1, 1, 10), (3, 1, 30)]);
        assert!(check(&[(NodeId(1), holed)]).unwrap_err().contains("jumps"));
        let mut gapped = log(&[(5, 1, 50)]);
        gapped.purged = Some(LogPosition { index: 3, term: 1 });
        assert!(check(&[(NodeId(1), gapped)])
            .unwrap_err()
            .contains("after a snapshot"));
    }
}
