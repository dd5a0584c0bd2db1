//! Node beats: every node tells every peer, a few times per election
//! timeout, that it is alive and which groups it leads (with the figures
//! `polis status` shows). One message per node pair per beat, however many
//! groups there are.
//!
//! Two things rest on them:
//! - routing: a node learns the leader of every shard, including shards it
//!   hosts no replica of, so it can redirect a client (`MOVED`) and render
//!   `CLUSTER SLOTS` from one table;
//! - hibernation ([`crate::hibernate`]): a parked group sends no Raft
//!   heartbeats, so its followers take the leader node's beats, which name
//!   the parked groups it leads, as the sign that their leader lives.
//!
//! Beats are soft state: a claim is believed for one liveness timeout after
//! it arrived, and of two claims for one group the higher term wins.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use polis_types::limits::BEAT_LEADERSHIPS_MAX;
use polis_types::{GroupId, NodeId, ReplicaId};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::transport::DispatchError;

/// The format of a beat on the wire.
const BEAT_FORMAT: u8 = 2;

/// What a node says of one group it leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leadership {
    pub group: GroupId,
    /// The leading replica.
    pub replica: ReplicaId,
    pub term: u64,
    /// The group is parked: no Raft heartbeats until it wakes.
    pub parked: bool,
    pub last_log_index: u64,
    pub committed: u64,
    pub applied: u64,
    /// Items in the state machine (keys, for a data group).
    pub items: u64,
    /// Bytes in the state machine, as it estimates them.
    pub bytes: u64,
    /// The state machine's own version (see `StateMachine::version`).
    pub version: u64,
    /// Every member but the leader (voters and learners), with the highest
    /// log index known replicated on it (0: nothing yet). A replica the
    /// group still counts is listed even before the first append reaches
    /// it after an election, so a node never takes a member for gone.
    pub matched: Vec<(ReplicaId, u64)>,
}

impl Leadership {
    /// Returns the group's members as the leader counts them: itself and
    /// every member it lists.
    pub fn members(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        std::iter::once(self.replica).chain(self.matched.iter().map(|(member, _)| *member))
    }
}

/// One beat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Beat {
    pub(crate) format: u8,
    pub(crate) leads: Vec<Leadership>,
}

impl Beat {
    pub(crate) fn new(mut leads: Vec<Leadership>) -> Self {
        leads.truncate(BEAT_LEADERSHIPS_MAX);
        Self {
            format: BEAT_FORMAT,
            leads,
        }
    }
}

/// A leadership claim as this node believes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderClaim {
    pub node: NodeId,
    pub leadership: Leadership,
    /// When the beat carrying it arrived.
    pub seen_at: Instant,
}

struct Seen {
    at: Instant,
    /// When the node's current run of beats began (after a silence of a
    /// liveness timeout, or the first beat).
    since: Instant,
    leads: Vec<Leadership>,
}

/// What this node heard from its peers.
pub struct Beats {
    me: NodeId,
    liveness_timeout: Duration,
    seen: Mutex<BTreeMap<NodeId, Seen>>,
}

impl Beats {
    /// Returns an empty table for node `me`; a peer is alive for
    /// `liveness_timeout` after its last beat.
    pub fn new(me: NodeId, liveness_timeout: Duration) -> Self {
        Self {
            me,
            liveness_timeout,
            seen: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Seen>> {
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns how long a peer counts as alive after its last beat.
    pub fn liveness_timeout(&self) -> Duration {
        self.liveness_timeout
    }

    /// Records a beat from `from`.
    pub(crate) fn receive(&self, from: NodeId, payload: &[u8]) -> Result<(), DispatchError> {
        let beat: Beat = postcard::from_bytes(payload)
            .map_err(|error| DispatchError::Invalid(format!("undecodable beat: {error}")))?;
        if beat.format != BEAT_FORMAT {
            return Err(DispatchError::Invalid(format!(
                "beat format {} (this node reads {BEAT_FORMAT})",
                beat.format
            )));
        }
        self.record(from, beat.leads);
        Ok(())
    }

    /// Records that `from` is alive and leads `leads`, as of now.
    pub fn record(&self, from: NodeId, leads: Vec<Leadership>) {
        let now = Instant::now();
        let mut seen = self.lock();
        let since = seen
            .get(&from)
            .filter(|previous| now.duration_since(previous.at) < self.liveness_timeout)
            .map_or(now, |previous| previous.since);
        seen.insert(
            from,
            Seen {
                at: now,
                since,
                leads,
            },
        );
    }

    /// Returns when `node`'s current run of beats began, if it is alive.
    pub fn alive_since(&self, node: NodeId) -> Option<Instant> {
        self.lock()
            .get(&node)
            .filter(|seen| seen.at.elapsed() < self.liveness_timeout)
            .map(|seen| seen.since)
    }

    /// Returns true when `node` is this node or sent a beat within the
    /// liveness timeout.
    pub fn is_alive(&self, node: NodeId) -> bool {
        if node == self.me {
            return true;
        }
        self.lock()
            .get(&node)
            .is_some_and(|seen| seen.at.elapsed() < self.liveness_timeout)
    }

    /// Returns when each peer's last beat arrived.
    pub fn last_seen(&self) -> BTreeMap<NodeId, Instant> {
        self.lock()
            .iter()
            .map(|(node, seen)| (*node, seen.at))
            .collect()
    }

    /// Returns the claims of live peers, the highest term per group.
    pub fn claims(&self) -> BTreeMap<GroupId, LeaderClaim> {
        let mut claims: BTreeMap<GroupId, LeaderClaim> = BTreeMap::new();
        for (node, seen) in self.lock().iter() {
            if seen.at.elapsed() >= self.liveness_timeout {
                continue;
            }
            for leadership in &seen.leads {
                let better = claims
                    .get(&leadership.group)
                    .is_none_or(|known| known.leadership.term < leadership.term);
                if better {
                    claims.insert(
                        leadership.group,
                        LeaderClaim {
                            node: *node,
                            leadership: leadership.clone(),
                            seen_at: seen.at,
                        },
                    );
                }
            }
        }
        claims
    }

    /// Returns the claim of a live peer to lead `group`, the highest term.
    pub fn claim(&self, group: GroupId) -> Option<LeaderClaim> {
        let mut best: Option<LeaderClaim> = None;
        for (node, seen) in self.lock().iter() {
            if seen.at.elapsed() >= self.liveness_timeout {
                continue;
            }
            for leadership in seen.leads.iter().filter(|lead| lead.group == group) {
                if best
                    .as_ref()
                    .is_none_or(|known| known.leadership.term < leadership.term)
                {
                    best = Some(LeaderClaim {
                        node: *node,
                        leadership: leadership.clone(),
                        seen_at: seen.at,
                    });
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(group: u64, term: u64) -> Leadership {
        Leadership {
            group: GroupId(group),
            replica: ReplicaId(group * 10),
            term,
            parked: false,
            last_log_index: 5,
            committed: 5,
            applied: 5,
            items: 0,
            bytes: 0,
            version: 0,
            matched: Vec::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn claims_last_one_liveness_timeout_and_the_higher_term_wins() {
        let beats = Beats::new(NodeId(1), Duration::from_secs(1));
        assert!(beats.is_alive(NodeId(1)), "a node is alive to itself");
        assert!(!beats.is_alive(NodeId(2)));
        let payload = postcard::to_stdvec(&Beat::new(vec![lead(1, 3), lead(2, 1)])).unwrap();
        beats.receive(NodeId(2), &payload).unwrap();
        beats.record(NodeId(3), vec![lead(1, 4)]);
        assert!(beats.is_alive(NodeId(2)));
        assert_eq!(
            beats.claim(GroupId(1)).unwrap().node,
            NodeId(3),
            "term 4 beats 3"
        );
        assert_eq!(beats.claims()[&GroupId(2)].node, NodeId(2));
        let since = beats.alive_since(NodeId(2)).unwrap();
        tokio::time::advance(Duration::from_millis(500)).await;
        beats.record(NodeId(2), Vec::new());
        assert_eq!(
            beats.alive_since(NodeId(2)),
            Some(since),
            "one run of beats"
        );
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(!beats.is_alive(NodeId(2)));
        assert_eq!(beats.alive_since(NodeId(2)), None);
        beats.record(NodeId(2), Vec::new());
        assert!(
            beats.alive_since(NodeId(2)).unwrap() > since,
            "a new run after a silence"
        );
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(
            beats.claim(GroupId(1)).is_none(),
            "stale claims are not believed"
        );
        assert!(beats.claims().is_empty());
    }

    #[test]
    fn a_beat_of_another_format_or_garbage_is_refused() {
        let beats = Beats::new(NodeId(1), Duration::from_secs(1));
        let mut beat = Beat::new(Vec::new());
        beat.format = 9;
        let payload = postcard::to_stdvec(&beat).unwrap();
        assert!(beats.receive(NodeId(2), &payload).is_err());
        assert!(beats.receive(NodeId(2), &[0xff, 0xff, 0xff]).is_err());
        assert!(!beats.is_alive(NodeId(2)));
    }
}
