//! Hibernation: an idle group parks, and a parked group costs nothing.
//!
//! openraft wakes every group about five times per heartbeat interval and
//! sends a heartbeat to every follower each interval; a node hosting a
//! hundred idle shards would spend a core on that. A leader whose group
//! has been idle for a while, with every member holding its whole log,
//! stops its ticker (no heartbeats, no wake-ups); its followers stop
//! theirs once the leader's node beat says the group is parked.
//!
//! What replaces the heartbeat is the leader node's beat
//! ([`crate::beats`]), one per node pair for all groups. The rules:
//!
//! - **Wake on use.** A proposal or a read on the leader wakes the group
//!   first ([`Hibernation::touch`]); an append reaching a parked follower
//!   wakes it after the append renewed its leader lease, so it never
//!   wakes into an expired lease and a needless election.
//! - **Wake on silence.** A parked follower whose leader's node stopped
//!   beating for a liveness timeout wakes one successor at once (picked by
//!   group id among the live voters, so failovers spread over the nodes)
//!   and the others one election timeout later, unless a new leader woke
//!   them first. Pre-vote then elects the successor.
//! - **Parked groups keep their leader.** A parked replica refuses a
//!   (pre-)vote while its leader's node beats (or while it is the leader,
//!   or woke from parking less than a liveness timeout ago and has not
//!   re-established its quorum lease): its own lease has long expired, so
//!   openraft would grant it and depose a live leader. A parked leader
//!   asked to vote wakes, and its heartbeats then tell the candidate who
//!   leads. Leadership transfers are never refused.
//!
//! The trade-off, measured and written up in docs/sharding.md: an idle
//! group fails over after the liveness timeout plus one pre-vote round
//! instead of after an election timeout; a parked group's first request
//! waits up to one tick for the leader's heartbeat round.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::raft::{VoteRequest, VoteResponse};
use openraft::ServerState;
use polis_types::{GroupId, ReplicaId};
use tokio::time::Instant;

use crate::beats::{Beats, LeaderClaim};
use crate::state_machine::StateMachine;
use crate::types::{Raft, TypeConfig};

/// How one group of this node stands.
#[derive(Debug, Clone, Copy)]
struct Parking {
    parked: bool,
    /// The last client request on this node.
    active_at: Instant,
    /// When the group last woke from parking.
    woken_at: Option<Instant>,
    /// A wake-up planned after the leader's node fell silent.
    wake_at: Option<Instant>,
}

/// When groups park and wake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HibernationSettings {
    pub enabled: bool,
    /// A leader parks after this long without a request.
    pub idle_before_park: Duration,
    /// The longest election timeout, the delay of a non-successor's wake-up.
    pub election_timeout_max: Duration,
}

/// What the supervisor decided for one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Park,
    Wake,
    Keep,
}

/// What the supervisor knows of one hosted group.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub group: GroupId,
    pub replica: ReplicaId,
    pub state: ServerState,
    pub term: u64,
    pub leader: Option<ReplicaId>,
    pub last_log_index: u64,
    pub committed: u64,
    pub applied: u64,
    /// Replica id and node of every voter and learner.
    pub members: Vec<(ReplicaId, polis_types::NodeId, bool)>,
    /// Matched log index per member (leader only).
    pub matched: HashMap<ReplicaId, u64>,
    /// The membership is joint (a change is under way).
    pub joint: bool,
}

/// The hibernation of every group of one node.
pub struct Hibernation {
    settings: HibernationSettings,
    beats: std::sync::Arc<Beats>,
    groups: Mutex<BTreeMap<GroupId, Parking>>,
}

impl Hibernation {
    /// Returns the hibernation of a node whose peers' liveness `beats` tells.
    pub fn new(settings: HibernationSettings, beats: std::sync::Arc<Beats>) -> Self {
        Self {
            settings,
            beats,
            groups: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<GroupId, Parking>> {
        self.groups
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts tracking `group`, awake.
    pub(crate) fn add(&self, group: GroupId) {
        self.lock().insert(
            group,
            Parking {
                parked: false,
                active_at: Instant::now(),
                woken_at: None,
                wake_at: None,
            },
        );
    }

    /// Stops tracking `group`.
    pub(crate) fn remove(&self, group: GroupId) {
        self.lock().remove(&group);
    }

    /// Returns true when `group` is parked on this node.
    pub fn is_parked(&self, group: GroupId) -> bool {
        self.lock()
            .get(&group)
            .is_some_and(|parking| parking.parked)
    }

    /// Returns the groups parked on this node.
    pub fn parked(&self) -> Vec<GroupId> {
        self.lock()
            .iter()
            .filter(|(_, parking)| parking.parked)
            .map(|(group, _)| *group)
            .collect()
    }

    /// Marks `group` unparked; returns true if it was parked.
    fn mark_awake(&self, group: GroupId) -> bool {
        let mut groups = self.lock();
        let Some(parking) = groups.get_mut(&group) else {
            return false;
        };
        let was_parked = parking.parked;
        if was_parked {
            parking.parked = false;
            parking.woken_at = Some(Instant::now());
        }
        parking.wake_at = None;
        was_parked
    }

    /// Notes a client request on this node and wakes `group` if parked.
    pub fn touch<S: StateMachine>(&self, group: GroupId, raft: &Raft<S>) {
        {
            let mut groups = self.lock();
            if let Some(parking) = groups.get_mut(&group) {
                parking.active_at = Instant::now();
            }
        }
        if self.mark_awake(group) {
            tracing::debug!(%group, "group woken by a request");
            raft.runtime_config().tick(true);
        }
    }

    /// Wakes `group` (a request from its follower that saw a vote, or a
    /// leader transfer).
    pub fn wake<S: StateMachine>(&self, group: GroupId, raft: &Raft<S>) {
        if self.mark_awake(group) {
            tracing::debug!(%group, "group woken");
            raft.runtime_config().tick(true);
        }
    }

    /// Called after an append or a snapshot from the leader was handled
    /// (its lease renewed): a parked follower wakes.
    pub(crate) fn after_append<S: StateMachine>(&self, group: GroupId, raft: &Raft<S>) {
        if self.mark_awake(group) {
            raft.runtime_config().tick(true);
        }
    }

    /// Returns a refusal of `request` when this replica must not vote on
    /// it (see the module documentation), else `None` (openraft decides).
    pub(crate) async fn deny_vote<S: StateMachine>(
        &self,
        group: GroupId,
        raft: &Raft<S>,
        request: &VoteRequest<TypeConfig>,
    ) -> Option<VoteResponse<TypeConfig>> {
        if !self.settings.enabled || request.leadership_transfer {
            return None;
        }
        let parking = *self.lock().get(&group)?;
        let metrics = raft.metrics().borrow_watched().clone();
        let leading = metrics.state == ServerState::Leader;
        let recently_woken = parking
            .woken_at
            .is_some_and(|at| at.elapsed() < self.beats.liveness_timeout());
        let deny = if leading {
            parking.parked || recently_woken
        } else if parking.parked {
            self.beats
                .claim(group)
                .is_some_and(|claim| claim.leadership.term >= metrics.current_term)
        } else {
            false
        };
        if !deny {
            return None;
        }
        tracing::debug!(%group, candidate = %request.vote, "vote refused: the group's leader lives");
        if leading {
            self.wake(group, raft);
        }
        Some(VoteResponse::new(metrics.vote, None, false))
    }

    /// Decides whether `view`'s group parks or wakes now.
    pub fn decide(&self, view: &GroupView) -> Decision {
        if !self.settings.enabled {
            return Decision::Keep;
        }
        let Some(parking) = self.lock().get(&view.group).copied() else {
            return Decision::Keep;
        };
        let claim = self.beats.claim(view.group);
        match view.state {
            ServerState::Leader => {
                if !parking.parked
                    && parking.active_at.elapsed() >= self.settings.idle_before_park
                    && self.quiescent(view)
                {
                    Decision::Park
                } else {
                    Decision::Keep
                }
            }
            ServerState::Follower => {
                if parking.parked {
                    self.parked_follower(view, &parking, claim.as_ref())
                } else if claim.is_some_and(|claim| {
                    claim.leadership.parked
                        && claim.leadership.term == view.term
                        && Some(claim.leadership.replica) == view.leader
                        && claim.leadership.last_log_index == view.last_log_index
                        && view.committed == view.last_log_index
                }) {
                    Decision::Park
                } else {
                    Decision::Keep
                }
            }
            _ if parking.parked => Decision::Wake,
            _ => Decision::Keep,
        }
    }

    /// A leader may park when every member holds its whole log, all of it
    /// committed and applied, and no membership change is under way.
    fn quiescent(&self, view: &GroupView) -> bool {
        view.leader == Some(view.replica)
            && !view.joint
            && view.committed == view.last_log_index
            && view.applied == view.last_log_index
            && view.members.iter().all(|(replica, node, _)| {
                *replica == view.replica
                    || (view.matched.get(replica) == Some(&view.last_log_index)
                        && self.beats.is_alive(*node))
            })
    }

    fn parked_follower(
        &self,
        view: &GroupView,
        parking: &Parking,
        claim: Option<&LeaderClaim>,
    ) -> Decision {
        if claim.is_some_and(|claim| claim.leadership.term >= view.term) {
            return Decision::Keep;
        }
        // The leader's node is silent: wake a successor now, the others
        // later if no new leader has woken them by then.
        if let Some(at) = parking.wake_at {
            return if Instant::now() >= at {
                Decision::Wake
            } else {
                Decision::Keep
            };
        }
        if self.is_successor(view) {
            return Decision::Wake;
        }
        let at = Instant::now() + self.settings.election_timeout_max;
        if let Some(parking) = self.lock().get_mut(&view.group) {
            parking.wake_at = Some(at);
        }
        Decision::Keep
    }

    /// Returns true when this replica is the one to stand for election:
    /// the group id picks among the voters whose nodes beat.
    fn is_successor(&self, view: &GroupView) -> bool {
        let mut candidates: Vec<ReplicaId> = view
            .members
            .iter()
            .filter(|(replica, node, voter)| {
                *voter && Some(*replica) != view.leader && self.beats.is_alive(*node)
            })
            .map(|(replica, _, _)| *replica)
            .collect();
        candidates.sort_unstable();
        if candidates.is_empty() {
            return false;
        }
        let pick = (view.group.get() % candidates.len() as u64) as usize;
        candidates[pick] == view.replica
    }

    /// Carries out `decision` for `group`.
    pub(crate) fn apply<S: StateMachine>(
        &self,
        group: GroupId,
        raft: &Raft<S>,
        decision: Decision,
    ) {
        match decision {
            Decision::Park => {
                if let Some(parking) = self.lock().get_mut(&group) {
                    parking.parked = true;
                    parking.wake_at = None;
                }
                tracing::debug!(%group, "group parked");
                raft.runtime_config().tick(false);
            }
            Decision::Wake => self.wake(group, raft),
            Decision::Keep => {}
        }
    }

    /// Returns how long a beat's silence means a node is gone.
    pub fn liveness_timeout(&self) -> Duration {
        self.beats.liveness_timeout()
    }
}

#[cfg(test)]
#[path = "hibernate_test.rs"]
mod tests;
