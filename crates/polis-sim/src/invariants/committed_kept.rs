//! Committed entries are never lost: an entry once committed is in the
//! log (or the snapshot) of every leader of every later term — Leader
//! Completeness (Raft, section 5.4.1 and figure 3). Also: no two
//! different entries are ever committed at one index.
//!
//! A node records its commit point on its disk; at that moment its term
//! is at least the term of the leader that committed the entry, so every
//! leader elected in a higher term must hold the entry. A leader's log is
//! taken when it saves the committed vote for itself. The check runs both
//! ways as events arrive: a new commit against the leaders seen so far, a
//! new leader against the commits seen so far.

use std::collections::BTreeMap;

use polis_raft::mem_log_store::{DiskEvent, EntrySummary, LogSummary};
use polis_types::NodeId;

use crate::trace::TraceEvent;

pub const NAME: &str = "committed-entries-kept";

/// What is known of the entry committed at one index.
#[derive(Debug, Clone, Copy)]
struct Commit {
    term: u64,
    digest: u64,
    /// The lowest term of a node when it recorded the commit: every
    /// leader of a higher term must hold the entry.
    vote_term_min: u64,
    node: NodeId,
}

struct Election {
    term: u64,
    node: NodeId,
    log: LogSummary,
}

/// Commits and elections seen so far.
#[derive(Default)]
pub struct CommittedKept {
    commits: BTreeMap<u64, Commit>,
    elections: Vec<Election>,
}

fn entry_at(log: &LogSummary, index: u64) -> Option<&EntrySummary> {
    let position = log
        .entries
        .binary_search_by_key(&index, |entry| entry.index)
        .ok()?;
    log.entries.get(position)
}

/// Checks that `election`'s log holds the entry committed at `index`.
fn holds(election: &Election, index: u64, commit: &Commit) -> Result<(), String> {
    let leader = format!("node {}, leader of term {}", election.node, election.term);
    let committed = format!(
        "the entry committed at index {index} (term {}, recorded by node {} in term {})",
        commit.term, commit.node, commit.vote_term_min
    );
    if let Some(purged) = election.log.purged {
        if index < purged.index || (index == purged.index && purged.term == commit.term) {
            return Ok(());
        }
        if index == purged.index {
            return Err(format!(
                "{leader} compacted index {index} of term {} but {committed}",
                purged.term
            ));
        }
    }
    match entry_at(&election.log, index) {
        None => Err(format!("{leader} lacks {committed}")),
        Some(entry) if entry.term != commit.term || entry.digest != commit.digest => Err(format!(
            "{leader} has {entry:?} instead of {committed} (digest {})",
            commit.digest
        )),
        Some(_) => Ok(()),
    }
}

impl CommittedKept {
    /// Checks one event.
    ///
    /// # Errors
    /// Describes the first committed entry found missing or replaced.
    pub fn observe(&mut self, event: &TraceEvent) -> Result<(), String> {
        let TraceEvent::Disk { node, event, .. } = event else {
            return Ok(());
        };
        match event {
            DiskEvent::Committed {
                index,
                term,
                digest: Some(digest),
                vote_term,
            } => self.commit(*node, *index, *term, *digest, *vote_term),
            DiskEvent::LeaderElected { term, log } => {
                let election = Election {
                    term: *term,
                    node: *node,
                    log: log.clone(),
                };
                for (index, commit) in &self.commits {
                    if commit.vote_term_min < election.term {
                        holds(&election, *index, commit)?;
                    }
                }
                self.elections.push(election);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn commit(
        &mut self,
        node: NodeId,
        index: u64,
        term: u64,
        digest: u64,
        vote_term: u64,
    ) -> Result<(), String> {
        let commit = self.commits.entry(index).or_insert(Commit {
            term,
            digest,
            vote_term_min: vote_term,
            node,
        });
        if (commit.term, commit.digest) != (term, digest) {
            return Err(format!(
                "two entries committed at index {index}: node {} recorded term {} digest {}, \
                 node {node} term {term} digest {digest}",
                commit.node, commit.term, commit.digest
            ));
        }
        if vote_term < commit.vote_term_min {
            commit.vote_term_min = vote_term;
            commit.node = node;
        }
        let commit = *commit;
        for election in &self.elections {
            if commit.vote_term_min < election.term {
                holds(election, index, &commit)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.
mod tests {
    use polis_raft::mem_log_store::LogPosition;

    use super::*;

    fn committed(node: u64, index: u64, term: u64, digest: u64, vote_term: u64) -> TraceEvent {
        TraceEvent::Disk {
            node: NodeId(node),
            group: polis_types::GroupId(1),
            event: DiskEvent::Committed {
                index,
                term,
                digest: Some(digest),
                vote_term,
            },
        }
    }

    fn elected(node: u64, term: u64, entries: &[(u64, u64, u64)]) -> TraceEvent {
        TraceEvent::Disk {
            node: NodeId(node),
            group: polis_types::GroupId(1),
            event: DiskEvent::LeaderElected {
                term,
                log: LogSummary {
                    purged: None,
                    entries: entries
                        .iter()
                        .map(|&(index, term, digest)| EntrySummary {
                            index,
                            term,
                            digest,
                        })
                        .collect(),
                },
            },
        }
    }

    #[test]
    fn later_leaders_holding_the_commit_pass() {
        let mut checker = CommittedKept::default();
        checker.observe(&committed(1, 1, 1, 10, 1)).unwrap();
        checker.observe(&elected(2, 2, &[(1, 1, 10)])).unwrap();
        // A leader of the same term as the commit is not constrained.
        checker.observe(&elected(3, 1, &[])).unwrap();
        checker.observe(&committed(2, 2, 2, 20, 2)).unwrap();
    }

    #[test]
    fn a_later_leader_without_the_commit_fails_in_either_order() {
        let mut checker = CommittedKept::default();
        checker.observe(&committed(1, 2, 1, 20, 1)).unwrap();
        let error = checker.observe(&elected(2, 3, &[(1, 1, 10)])).unwrap_err();
        assert!(error.contains("lacks"), "{error}");

        let mut checker = CommittedKept::default();
        checker
            .observe(&elected(2, 3, &[(1, 1, 10), (2, 2, 21)]))
            .unwrap();
        let error = checker.observe(&committed(1, 2, 1, 20, 1)).unwrap_err();
        assert!(error.contains("instead of"), "{error}");
    }

    #[test]
    fn two_entries_committed_at_one_index_fail() {
        let mut checker = CommittedKept::default();
        checker.observe(&committed(1, 5, 2, 50, 2)).unwrap();
        let error = checker.observe(&committed(2, 5, 3, 51, 3)).unwrap_err();
        assert!(
            error.contains("two entries committed at index 5"),
            "{error}"
        );
    }

    #[test]
    fn a_snapshot_covers_the_commits_before_it() {
        let mut checker = CommittedKept::default();
        checker.observe(&committed(1, 4, 1, 40, 1)).unwrap();
        let mut event = elected(2, 2, &[(9, 2, 90)]);
        if let TraceEvent::Disk {
            event: DiskEvent::LeaderElected { log, .. },
            ..
        } = &mut event
        {
            log.purged = Some(LogPosition { index: 8, term: 1 });
        }
        checker.observe(&event).unwrap();
    }
}
