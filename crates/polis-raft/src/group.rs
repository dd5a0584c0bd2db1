//! A handle on one Raft group of this node: propose, read linearizably,
//! change membership, move leadership, inspect.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, ForwardReason, LinearizableReadError, RaftError};
use openraft::raft::ReadPolicy;
use openraft::{ChangeMembers, ServerState};
use polis_types::limits::{PROPOSALS_IN_FLIGHT_MAX, PROPOSAL_BYTES_IN_FLIGHT_MAX};
use polis_types::{GroupId, NodeId, ReplicaId};
use serde::Serialize;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::hibernate::Hibernation;
use crate::read_rounds::ReadRounds;
use crate::state_machine::{StateHandle, StateMachine};
use crate::types::{PeerNode, Proposal, Raft, TypeConfig};

/// Why a proposal, a read or a membership change did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProposeError {
    /// This replica is not the leader; `leader` is the one it knows of.
    #[error("not the leader")]
    NotLeader {
        leader: Option<(ReplicaId, PeerNode)>,
    },
    /// The group cannot serve now (no quorum, shutting down, ...). The
    /// outcome of a write that failed this way is unknown.
    #[error("group unavailable: {0}")]
    Unavailable(String),
}

/// One member as this replica sees it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    pub replica_id: ReplicaId,
    pub node_id: NodeId,
    pub peer_addr: String,
    pub resp_addr: String,
    pub admin_addr: String,
    /// Highest log index known replicated on the member (leader only).
    pub matched: Option<u64>,
    pub voter: bool,
}

/// The group as this replica sees it.
#[derive(Debug, Clone, Serialize)]
pub struct GroupStatus {
    pub group_id: GroupId,
    pub replica_id: ReplicaId,
    pub node_id: NodeId,
    pub state: String,
    pub term: u64,
    pub leader_id: Option<ReplicaId>,
    /// The node of the leader, when known.
    pub leader_node: Option<NodeId>,
    pub last_log_index: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// The group is parked (see [`crate::hibernate`]).
    pub parked: bool,
    /// A membership change is under way (joint consensus).
    pub joint: bool,
    /// Items in this replica's state machine (keys, for a shard).
    pub items: u64,
    pub members: Vec<MemberStatus>,
}

/// The members of a group, as its membership log says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Members {
    pub voters: BTreeSet<ReplicaId>,
    pub learners: BTreeSet<ReplicaId>,
    pub nodes: BTreeMap<ReplicaId, PeerNode>,
    /// A change is under way: voters are the union of two configurations.
    pub joint: bool,
}

/// Returns the wall-clock time in milliseconds since the Unix epoch that
/// a leader stamps on its proposals. A simulation replaces it with its
/// virtual clock.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Returns the system clock as a [`Clock`].
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as u64)
            .unwrap_or(0)
    })
}

/// The node-wide budget of proposals in flight: a count and bytes, shared
/// by every group, so one busy group cannot take the node's memory and a
/// flood of writes waits instead of queueing without bound.
pub struct Budget {
    proposals: Semaphore,
    bytes: Semaphore,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            proposals: Semaphore::new(PROPOSALS_IN_FLIGHT_MAX),
            bytes: Semaphore::new(PROPOSAL_BYTES_IN_FLIGHT_MAX),
        }
    }
}

impl Budget {
    /// Waits for room for one proposal of `len` bytes. A proposal larger
    /// than the whole byte budget takes all of it.
    async fn acquire(&self, len: usize) -> Option<(SemaphorePermit<'_>, SemaphorePermit<'_>)> {
        let proposal = self.proposals.acquire().await.ok()?;
        let bytes = len.clamp(1, PROPOSAL_BYTES_IN_FLIGHT_MAX) as u32;
        let bytes = self.bytes.acquire_many(bytes).await.ok()?;
        Some((proposal, bytes))
    }
}

/// A handle on one Raft group. Cheap to clone.
pub struct Group<S: StateMachine> {
    pub(crate) id: GroupId,
    pub(crate) replica: ReplicaId,
    pub(crate) raft: Raft<S>,
    pub(crate) state: StateHandle<S>,
    pub(crate) budget: Arc<Budget>,
    pub(crate) hibernation: Arc<Hibernation>,
    pub(crate) request_timeout: Duration,
    pub(crate) clock: Clock,
    pub(crate) read_rounds: Arc<ReadRounds>,
    /// Leader changes this replica has seen since it started.
    pub(crate) leader_changes: Arc<std::sync::atomic::AtomicU64>,
}

impl<S: StateMachine> Clone for Group<S> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            replica: self.replica,
            raft: self.raft.clone(),
            state: self.state.clone(),
            budget: self.budget.clone(),
            hibernation: self.hibernation.clone(),
            request_timeout: self.request_timeout,
            clock: self.clock.clone(),
            read_rounds: self.read_rounds.clone(),
            leader_changes: self.leader_changes.clone(),
        }
    }
}

/// Returns the leader of the current term, if any. openraft makes the
/// initializing node leader of term 0 for an instant, to append the first
/// membership entry; that leader serves nothing, so it does not count.
fn established_leader(metrics: &openraft::RaftMetrics<TypeConfig>) -> Option<ReplicaId> {
    if metrics.current_term == 0 {
        return None;
    }
    metrics.current_leader
}

/// How often a proposal refused for an expired leader lease is tried
/// again (after asking for a heartbeat round).
const LEASE_RETRY_EVERY: Duration = Duration::from_millis(5);

fn unavailable(error: impl std::fmt::Display) -> ProposeError {
    ProposeError::Unavailable(error.to_string())
}

impl<S: StateMachine> Group<S> {
    fn timed_out(&self) -> ProposeError {
        ProposeError::Unavailable(format!(
            "no quorum within {:?}; outcome unknown",
            self.request_timeout
        ))
    }

    /// Refuses a membership change unless this replica leads and votes:
    /// a leader that voted itself out steps down once that commits, and
    /// openraft must not be asked for a change meanwhile (its own
    /// assertion stops the group); the next leader takes the next step.
    fn ensure_voting_leader(&self) -> Result<(), ProposeError> {
        let metrics = self.metrics();
        let voting = metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|voter| voter == self.replica);
        if metrics.state == ServerState::Leader && voting {
            return Ok(());
        }
        Err(ProposeError::NotLeader {
            leader: self.leader().filter(|(leader, _)| *leader != self.replica),
        })
    }

    fn metrics(&self) -> openraft::RaftMetrics<TypeConfig> {
        self.raft.metrics().borrow_watched().clone()
    }

    /// Returns the group id.
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// Returns the replica this node hosts.
    pub fn replica(&self) -> ReplicaId {
        self.replica
    }

    /// Returns the leader changes this replica has seen since it started
    /// (a new leader known, or none any more).
    pub fn leader_changes(&self) -> u64 {
        self.leader_changes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Returns the state machine, for reads.
    pub fn state(&self) -> &StateHandle<S> {
        &self.state
    }

    /// Returns the time a proposal made now would carry.
    pub fn now_ms(&self) -> u64 {
        (self.clock)()
    }

    /// Proposes `payload` and returns what applying it replied, once a
    /// majority has the entry on disk and this node applied it.
    ///
    /// # Errors
    /// [`ProposeError::NotLeader`] when this replica is not the leader (the
    /// entry was not appended); [`ProposeError::Unavailable`] when the
    /// outcome is unknown.
    pub async fn propose(&self, payload: Bytes) -> Result<Bytes, ProposeError> {
        let span = tracing::trace_span!(
            target: polis_trace::TARGET,
            "raft.propose",
            group = %self.id,
            bytes = payload.len(),
        );
        tracing::Instrument::instrument(self.propose_in_span(payload), span).await
    }

    async fn propose_in_span(&self, payload: Bytes) -> Result<Bytes, ProposeError> {
        let Some(_permits) = self.budget.acquire(payload.len()).await else {
            return Err(ProposeError::Unavailable("shutting down".into()));
        };
        self.hibernation.touch(self.id, &self.raft);
        let started = std::time::Instant::now();
        let _traced = crate::trace_context::TracedProposal::note(&payload);
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        loop {
            let proposal = Proposal {
                time_ms: (self.clock)(),
                payload: payload.clone(),
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let write = tokio::time::timeout(left, self.raft.client_write(proposal));
            let Ok(result) = write.await else {
                return Err(self.timed_out());
            };
            match result {
                Ok(response) => {
                    crate::latency::PROPOSALS.record(started.elapsed());
                    return Ok(response.data.0);
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))
                    if matches!(forward.reason, ForwardReason::LeaseExpired) =>
                {
                    // Nothing was appended: this leader has not heard from a
                    // quorum within its lease (its group was parked, or its
                    // followers are cut off). Ask for a heartbeat round and
                    // try again until the request's deadline; telling the
                    // client to go elsewhere would send it back here.
                    if tokio::time::Instant::now() + LEASE_RETRY_EVERY >= deadline {
                        return Err(ProposeError::Unavailable(format!(
                            "the leader did not hear from a quorum of its group within {:?}; nothing was written",
                            self.request_timeout
                        )));
                    }
                    if let Err(error) = self.raft.trigger().heartbeat().await {
                        return Err(unavailable(error));
                    }
                    tokio::time::sleep(LEASE_RETRY_EVERY).await;
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                    return Err(ProposeError::NotLeader {
                        leader: forward.leader_id.zip(forward.leader_node),
                    })
                }
                Err(error) => return Err(unavailable(error)),
            }
        }
    }

    /// Waits until a read of the local state machine is linearizable: this
    /// replica confirmed with a quorum that it still leads (ReadIndex), and
    /// applied everything committed before the read began.
    ///
    /// # Errors
    /// As for [`Group::propose`].
    pub async fn linearizable_read(&self) -> Result<(), ProposeError> {
        self.hibernation.touch(self.id, &self.raft);
        let shared = self.read_rounds.read(|| self.read_index_round());
        match tokio::time::timeout(self.request_timeout, shared).await {
            Ok(outcome) => outcome,
            Err(_) => Err(self.timed_out()),
        }
    }

    /// One ReadIndex round: confirms leadership with a quorum and waits
    /// until this replica applied everything committed when it began.
    async fn read_index_round(&self) -> Result<(), ProposeError> {
        let read = tokio::time::timeout(
            self.request_timeout,
            self.raft.ensure_linearizable(ReadPolicy::ReadIndex),
        );
        let Ok(result) = read.await else {
            return Err(self.timed_out());
        };
        match result {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(forward))) => {
                Err(ProposeError::NotLeader {
                    leader: forward.leader_id.zip(forward.leader_node),
                })
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Returns true when this replica believes it leads the group.
    pub fn is_leader(&self) -> bool {
        let metrics = self.metrics();
        metrics.state == ServerState::Leader && metrics.current_term > 0
    }

    /// Returns the leader this replica knows of, with its node.
    pub fn leader(&self) -> Option<(ReplicaId, PeerNode)> {
        let metrics = self.metrics();
        let leader = established_leader(&metrics)?;
        let node = metrics
            .membership_config
            .membership()
            .get_node(&leader)
            .cloned()?;
        Some((leader, node))
    }

    /// Returns the current term.
    pub fn term(&self) -> u64 {
        self.metrics().current_term
    }

    /// Returns the members as the latest membership entry says.
    pub fn members(&self) -> Members {
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<ReplicaId> = membership.voter_ids().collect();
        let nodes: BTreeMap<ReplicaId, PeerNode> = membership
            .nodes()
            .map(|(replica, node)| (*replica, node.clone()))
            .collect();
        let learners = nodes
            .keys()
            .filter(|replica| !voters.contains(replica))
            .copied()
            .collect();
        Members {
            voters,
            learners,
            nodes,
            joint: membership.get_joint_config().len() > 1,
        }
    }

    /// Returns the group as this replica sees it.
    pub fn status(&self) -> GroupStatus {
        let metrics = self.metrics();
        let members = self.members();
        let matched = metrics.replication.clone().unwrap_or_default();
        let leader_id = established_leader(&metrics);
        let member_statuses = members
            .nodes
            .iter()
            .map(|(replica, node)| MemberStatus {
                replica_id: *replica,
                node_id: node.node_id,
                peer_addr: node.peer_addr.clone(),
                resp_addr: node.resp_addr.clone(),
                admin_addr: node.admin_addr.clone(),
                matched: matched
                    .get(replica)
                    .cloned()
                    .flatten()
                    .map(|log_id| log_id.index),
                voter: members.voters.contains(replica),
            })
            .collect();
        GroupStatus {
            group_id: self.id,
            replica_id: self.replica,
            node_id: members
                .nodes
                .get(&self.replica)
                .map(|node| node.node_id)
                .unwrap_or_default(),
            state: if metrics.current_term == 0 {
                "Initializing".to_owned()
            } else {
                format!("{:?}", metrics.state)
            },
            term: metrics.current_term,
            leader_id,
            leader_node: leader_id
                .and_then(|leader| members.nodes.get(&leader))
                .map(|node| node.node_id),
            last_log_index: metrics.last_log_index,
            committed: metrics.local_committed.map(|log_id| log_id.index),
            applied: metrics.last_applied.map(|log_id| log_id.index),
            snapshot_index: metrics.snapshot.map(|log_id| log_id.index),
            purged_index: metrics.purged.map(|log_id| log_id.index),
            parked: self.hibernation.is_parked(self.id),
            joint: members.joint,
            items: self.state.read().app.items(),
            members: member_statuses,
        }
    }

    /// Asks the group to build a snapshot now (and compact its log).
    ///
    /// # Errors
    /// [`ProposeError::Unavailable`] when the group stopped.
    pub async fn trigger_snapshot(&self) -> Result<(), ProposeError> {
        self.raft.trigger().snapshot().await.map_err(unavailable)
    }

    /// Stands for election now, without waiting for an election timeout,
    /// after a pre-vote round: a quorum that hears from a live leader
    /// refuses, so this never deposes one (used by the replica meant to
    /// lead a group when the group starts).
    ///
    /// # Errors
    /// [`ProposeError::Unavailable`] when the group stopped.
    pub async fn elect(&self) -> Result<(), ProposeError> {
        self.raft.trigger().elect(true).await.map_err(unavailable)
    }

    /// Lets this replica stand for election when its leader goes silent
    /// (`true`, the default), or not: a group's first replicas other than
    /// the one meant to lead hold back for a while, so the leaders of new
    /// shards start where the map places them.
    pub fn set_electable(&self, electable: bool) {
        self.raft.runtime_config().elect(electable);
    }

    /// Hands leadership to `to`, which must be an up-to-date voter. Returns
    /// once the request is sent; the new leader takes over shortly after.
    ///
    /// # Errors
    /// [`ProposeError::Unavailable`] when the group stopped.
    pub async fn transfer_leader(&self, to: ReplicaId) -> Result<(), ProposeError> {
        self.hibernation.wake(self.id, &self.raft);
        self.raft
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(unavailable)
    }

    /// Adds `replica` (on `node`) as a learner; returns once the change is
    /// committed (the learner then catches up by itself: see
    /// [`MemberStatus::matched`]).
    ///
    /// # Errors
    /// [`ProposeError`] as for [`Group::propose`].
    pub async fn add_learner(
        &self,
        replica: ReplicaId,
        node: PeerNode,
    ) -> Result<(), ProposeError> {
        self.ensure_voting_leader()?;
        self.hibernation.touch(self.id, &self.raft);
        let add = self.raft.add_learner(replica, node, false);
        match tokio::time::timeout(self.request_timeout, add).await {
            Err(_) => Err(self.timed_out()),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                Err(ProposeError::NotLeader {
                    leader: forward.leader_id.zip(forward.leader_node),
                })
            }
            Ok(Err(error)) => Err(unavailable(error)),
        }
    }

    /// Makes `voters` the voting members (joint consensus), every one of
    /// which must be a member already. Members that are no longer voters
    /// stay as learners when `retain`, else leave the group.
    ///
    /// # Errors
    /// [`ProposeError`] as for [`Group::propose`].
    pub async fn change_voters(
        &self,
        voters: BTreeSet<ReplicaId>,
        retain: bool,
    ) -> Result<(), ProposeError> {
        self.change(ChangeMembers::ReplaceAllVoters(voters), retain)
            .await
    }

    /// Removes `replicas` (which must not be voters) from the group.
    ///
    /// # Errors
    /// [`ProposeError`] as for [`Group::propose`].
    pub async fn remove_learners(&self, replicas: BTreeSet<ReplicaId>) -> Result<(), ProposeError> {
        self.change(ChangeMembers::RemoveNodes(replicas), false)
            .await
    }

    async fn change(
        &self,
        change: ChangeMembers<ReplicaId, PeerNode>,
        retain: bool,
    ) -> Result<(), ProposeError> {
        self.ensure_voting_leader()?;
        self.hibernation.touch(self.id, &self.raft);
        let change = self.raft.change_membership(change, retain);
        match tokio::time::timeout(self.request_timeout, change).await {
            Err(_) => Err(self.timed_out()),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                Err(ProposeError::NotLeader {
                    leader: forward.leader_id.zip(forward.leader_node),
                })
            }
            Ok(Err(error)) => Err(unavailable(error)),
        }
    }

    /// Stops the group's Raft tasks.
    pub async fn shutdown(&self) {
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, group = %self.id, "raft shutdown failed");
        }
    }
}

#[path = "group_backup.rs"]
mod backup;
pub use backup::GroupBackup;
