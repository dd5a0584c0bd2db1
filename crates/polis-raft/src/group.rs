//! A handle on one Raft group of this node: propose, read linearizably,
//! inspect.

use std::sync::Arc;
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, LinearizableReadError, RaftError};
use openraft::raft::ReadPolicy;
use openraft::ServerState;
use polis_types::limits::PROPOSALS_IN_FLIGHT_MAX;
use polis_types::{GroupId, NodeId};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::read_rounds::ReadRounds;
use crate::state_machine::{StateHandle, StateMachine};
use crate::types::{PeerNode, Proposal, Raft};

/// Why a proposal or a linearizable read did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProposeError {
    /// This node is not the leader; `leader` is the one it knows of.
    #[error("not the leader")]
    NotLeader { leader: Option<(NodeId, PeerNode)> },
    /// The group cannot serve now (no quorum, shutting down, ...). The
    /// outcome of a write that failed this way is unknown.
    #[error("group unavailable: {0}")]
    Unavailable(String),
}

/// One member as this node sees it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    pub node_id: NodeId,
    pub peer_addr: String,
    pub resp_addr: String,
    pub admin_addr: String,
    /// Highest log index known replicated on the member (leader only).
    pub matched: Option<u64>,
    pub voter: bool,
}

/// The group as this node sees it.
#[derive(Debug, Clone, Serialize)]
pub struct GroupStatus {
    pub group_id: GroupId,
    pub node_id: NodeId,
    pub state: String,
    pub term: u64,
    pub leader_id: Option<NodeId>,
    pub last_log_index: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub members: Vec<MemberStatus>,
}

/// Returns the wall-clock time in milliseconds since the Unix epoch that
/// a leader stamps on its proposals. A simulation replaces it with its
/// virtual clock.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// A handle on one Raft group. Cheap to clone.
pub struct Group<S: StateMachine> {
    pub(crate) id: GroupId,
    pub(crate) raft: Raft<S>,
    pub(crate) state: StateHandle<S>,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) request_timeout: Duration,
    pub(crate) clock: Clock,
    pub(crate) read_rounds: Arc<ReadRounds>,
}

impl<S: StateMachine> Clone for Group<S> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            raft: self.raft.clone(),
            state: self.state.clone(),
            in_flight: self.in_flight.clone(),
            request_timeout: self.request_timeout,
            clock: self.clock.clone(),
            read_rounds: self.read_rounds.clone(),
        }
    }
}

/// Returns the leader of the current term, if any. openraft makes the
/// initializing node leader of term 0 for an instant, to append the first
/// membership entry; that leader serves nothing, so it does not count.
fn established_leader(metrics: &openraft::RaftMetrics<crate::types::TypeConfig>) -> Option<NodeId> {
    if metrics.current_term == 0 {
        return None;
    }
    metrics.current_leader
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

impl<S: StateMachine> Group<S> {
    pub(crate) fn new(
        id: GroupId,
        raft: Raft<S>,
        state: StateHandle<S>,
        request_timeout: Duration,
    ) -> Self {
        Self {
            id,
            raft,
            state,
            in_flight: Arc::new(Semaphore::new(PROPOSALS_IN_FLIGHT_MAX)),
            request_timeout,
            clock: Arc::new(now_ms),
            read_rounds: Arc::default(),
        }
    }

    /// Returns this handle with proposals stamped by `clock` instead of
    /// the system clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn timed_out(&self) -> ProposeError {
        ProposeError::Unavailable(format!(
            "no quorum within {:?}; outcome unknown",
            self.request_timeout
        ))
    }

    /// Returns the group id.
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// Returns the state machine, for reads.
    pub fn state(&self) -> &StateHandle<S> {
        &self.state
    }

    /// Proposes `payload` and returns what applying it replied, once a
    /// majority has the entry on disk and this node applied it.
    ///
    /// # Errors
    /// [`ProposeError::NotLeader`] when this node is not the leader (the
    /// entry was not appended); [`ProposeError::Unavailable`] when the
    /// outcome is unknown.
    pub async fn propose(&self, payload: Bytes) -> Result<Bytes, ProposeError> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| ProposeError::Unavailable("shutting down".into()))?;
        let proposal = Proposal {
            time_ms: (self.clock)(),
            payload,
        };
        let write = tokio::time::timeout(self.request_timeout, self.raft.client_write(proposal));
        let Ok(result) = write.await else {
            return Err(self.timed_out());
        };
        match result {
            Ok(response) => Ok(response.data.0),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                Err(ProposeError::NotLeader {
                    leader: forward.leader_id.zip(forward.leader_node),
                })
            }
            Err(error) => Err(ProposeError::Unavailable(error.to_string())),
        }
    }

    /// Waits until a read of the local state machine is linearizable: this
    /// node confirmed with a quorum that it still leads (ReadIndex), and
    /// applied everything committed before the read began.
    ///
    /// # Errors
    /// As for [`Group::propose`].
    pub async fn linearizable_read(&self) -> Result<(), ProposeError> {
        let shared = self.read_rounds.read(|| self.read_index_round());
        match tokio::time::timeout(self.request_timeout, shared).await {
            Ok(outcome) => outcome,
            Err(_) => Err(self.timed_out()),
        }
    }

    /// One ReadIndex round: confirms leadership with a quorum and waits
    /// until this node applied everything committed when it began.
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
            Err(error) => Err(ProposeError::Unavailable(error.to_string())),
        }
    }

    /// Returns true when this node believes it leads the group.
    pub fn is_leader(&self) -> bool {
        let metrics = self.raft.metrics().borrow_watched().clone();
        metrics.state == ServerState::Leader && metrics.current_term > 0
    }

    /// Returns the leader this node knows of, with its addresses.
    pub fn leader(&self) -> Option<(NodeId, PeerNode)> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let leader = established_leader(&metrics)?;
        let node = metrics
            .membership_config
            .membership()
            .get_node(&leader)
            .cloned()?;
        Some((leader, node))
    }

    /// Returns the group as this node sees it.
    pub fn status(&self) -> GroupStatus {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let matched = metrics.replication.clone().unwrap_or_default();
        let members = membership
            .nodes()
            .map(|(node_id, node)| MemberStatus {
                node_id: *node_id,
                peer_addr: node.peer_addr.clone(),
                resp_addr: node.resp_addr.clone(),
                admin_addr: node.admin_addr.clone(),
                matched: matched
                    .get(node_id)
                    .cloned()
                    .flatten()
                    .map(|log_id| log_id.index),
                voter: voters.contains(node_id),
            })
            .collect();
        GroupStatus {
            group_id: self.id,
            node_id: metrics.id,
            state: if metrics.current_term == 0 {
                "Initializing".to_owned()
            } else {
                format!("{:?}", metrics.state)
            },
            term: metrics.current_term,
            leader_id: established_leader(&metrics),
            last_log_index: metrics.last_log_index,
            committed: metrics.local_committed.map(|log_id| log_id.index),
            applied: metrics.last_applied.map(|log_id| log_id.index),
            snapshot_index: metrics.snapshot.map(|log_id| log_id.index),
            purged_index: metrics.purged.map(|log_id| log_id.index),
            members,
        }
    }

    /// Asks the group to build a snapshot now (and compact its log).
    pub async fn trigger_snapshot(&self) -> Result<(), ProposeError> {
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|error| ProposeError::Unavailable(error.to_string()))
    }

    /// Stops the group's Raft tasks.
    pub async fn shutdown(&self) {
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, group = self.id, "raft shutdown failed");
        }
    }
}
