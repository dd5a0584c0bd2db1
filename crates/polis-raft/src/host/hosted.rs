//! What the host needs of a group, whatever its state machine: a view for
//! hibernation, its leadership for beats, its peers, and a way to stop.

use futures::future::BoxFuture;
use openraft::async_runtime::WatchReceiver;
use openraft::ServerState;
use polis_types::ReplicaId;

use crate::beats::Leadership;
use crate::group::Group;
use crate::hibernate::{GroupView, Hibernation};
use crate::state_machine::StateMachine;
use crate::transport::PeerAddr;

/// What the host needs of a group, whatever its state machine.
pub(super) trait Hosted: Send + Sync {
    fn replica(&self) -> ReplicaId;
    fn view(&self) -> GroupView;
    fn leadership(&self, parked: bool) -> Option<Leadership>;
    fn supervise(&self, hibernation: &Hibernation);
    fn peers(&self) -> Vec<PeerAddr>;
    fn shutdown(&self) -> BoxFuture<'static, ()>;
}

pub(super) struct HostedGroup<S: StateMachine> {
    pub(super) group: Group<S>,
    /// The task asking for snapshots as the log grows.
    pub(super) pacing: Option<tokio::task::JoinHandle<()>>,
    /// The task counting the leader changes this replica sees.
    pub(super) leaders_watch: tokio::task::JoinHandle<()>,
}

impl<S: StateMachine> Hosted for HostedGroup<S> {
    fn replica(&self) -> ReplicaId {
        self.group.replica
    }

    fn view(&self) -> GroupView {
        let metrics = self.group.raft.metrics().borrow_watched().clone();
        let members = self.group.members();
        let matched = metrics
            .replication
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(replica, log_id)| Some((replica, log_id?.index)))
            .collect();
        GroupView {
            group: self.group.id,
            replica: self.group.replica,
            state: metrics.state,
            term: metrics.current_term,
            leader: metrics.current_leader,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            committed: metrics.local_committed.map_or(0, |log_id| log_id.index),
            applied: metrics.last_applied.map_or(0, |log_id| log_id.index),
            members: members
                .nodes
                .iter()
                .map(|(replica, node)| (*replica, node.node_id, members.voters.contains(replica)))
                .collect(),
            matched,
            joint: members.joint,
        }
    }

    fn leadership(&self, parked: bool) -> Option<Leadership> {
        let view = self.view();
        if view.state != ServerState::Leader || view.term == 0 {
            return None;
        }
        // One guard for all three: a second read taken while the first is
        // held waits behind a writer that waits for the first (std's
        // RwLock prefers writers), which stopped both of a node's runtime
        // workers, the beat task's and the apply task's.
        let (items, bytes, version) = {
            let state = self.group.state.read();
            (state.app.items(), state.app.bytes(), state.app.version())
        };
        Some(Leadership {
            group: view.group,
            replica: view.replica,
            term: view.term,
            parked,
            last_log_index: view.last_log_index,
            committed: view.committed,
            applied: view.applied,
            items,
            bytes,
            version,
            matched: view
                .members
                .iter()
                .filter(|(replica, _, _)| *replica != view.replica)
                .map(|(replica, _, _)| (*replica, view.matched.get(replica).copied().unwrap_or(0)))
                .collect(),
        })
    }

    fn supervise(&self, hibernation: &Hibernation) {
        let decision = hibernation.decide(&self.view());
        hibernation.apply(self.group.id, &self.group.raft, decision);
    }

    fn peers(&self) -> Vec<PeerAddr> {
        self.group
            .members()
            .nodes
            .values()
            .map(|node| PeerAddr {
                node: node.node_id,
                addr: node.peer_addr.clone(),
            })
            .collect()
    }

    fn shutdown(&self) -> BoxFuture<'static, ()> {
        if let Some(pacing) = &self.pacing {
            pacing.abort();
        }
        self.leaders_watch.abort();
        let group = self.group.clone();
        Box::pin(async move { group.shutdown().await })
    }
}

/// Counts in `changes` each time `raft`'s replica learns of a leader other
/// than the last it knew, until the group shuts down. Its server metrics
/// change only with votes, states, leaders and memberships: a few wake-ups
/// per election, none per write.
pub(super) async fn count_leader_changes<S: StateMachine>(
    raft: crate::types::Raft<S>,
    changes: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let mut server = raft.server_metrics();
    drop(raft);
    let mut known = None;
    loop {
        let leader = server.borrow_watched().current_leader;
        if leader.is_some() && leader != known {
            if known.is_some() {
                changes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            known = leader;
        }
        if server.changed().await.is_err() {
            return;
        }
    }
}
