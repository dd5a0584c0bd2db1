//! An in-process transport for simulating a whole group in one process:
//! a message is delivered by calling the target Raft's handler directly,
//! after a delay (or never) as a [`LinkModel`] decides.
//!
//! With [`MemDisk`] storage and a single-threaded runtime on paused time,
//! a group runs exactly the same way every time the link model and the
//! disks draw the same numbers. Each node's incarnation is known to the
//! [`SimRouter`]: a crashed incarnation can no longer send, and messages to
//! a node that is down fail as a refused connection would.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use openraft::errors::{
    NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, RaftNetworkV2};
use polis_types::{GroupId, NodeId};

use crate::group::Group;
use crate::mem_log_store::MemDisk;
use crate::node::{group_config, RaftSettings};
use crate::state_machine::{SmStore, StateMachine};
use crate::types::{PeerNode, Raft, TypeConfig, Vote};

/// The kind of a Raft message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MessageKind {
    Append,
    Vote,
    PreVote,
    Snapshot,
}

/// Decides how long each message takes, or whether it is lost.
pub trait LinkModel: Send + Sync + 'static {
    /// Returns the delay of a request (`reply == false`) or of its reply
    /// from `from` to `to`, or `None` when the message is lost.
    fn transit(&self, from: NodeId, to: NodeId, kind: MessageKind, reply: bool)
        -> Option<Duration>;
}

struct Member<S: StateMachine> {
    generation: u64,
    raft: Raft<S>,
}

/// The running incarnations of a group's nodes, and the links between them.
pub struct SimRouter<S: StateMachine> {
    members: Arc<Mutex<BTreeMap<NodeId, Member<S>>>>,
    links: Arc<dyn LinkModel>,
}

impl<S: StateMachine> Clone for SimRouter<S> {
    fn clone(&self) -> Self {
        Self {
            members: self.members.clone(),
            links: self.links.clone(),
        }
    }
}

type Rpc<E = openraft::errors::Infallible> = RPCError<TypeConfig, E>;

fn unreachable(message: String) -> Rpc {
    RPCError::Unreachable(Unreachable::from_string(message))
}

impl<S: StateMachine> SimRouter<S> {
    /// Returns a router with no running node, whose messages travel as
    /// `links` decides.
    pub fn new(links: Arc<dyn LinkModel>) -> Self {
        Self {
            members: Arc::new(Mutex::new(BTreeMap::new())),
            links,
        }
    }

    fn members(&self) -> MutexGuard<'_, BTreeMap<NodeId, Member<S>>> {
        self.members
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_current(&self, node: NodeId, generation: u64) -> bool {
        self.members()
            .get(&node)
            .is_some_and(|member| member.generation == generation)
    }

    fn raft(&self, node: NodeId) -> Option<Raft<S>> {
        self.members().get(&node).map(|member| member.raft.clone())
    }

    /// Returns the nodes running now.
    pub fn running(&self) -> BTreeSet<NodeId> {
        self.members().keys().copied().collect()
    }

    /// Takes `node` off the network and stops its Raft tasks. Its disk is
    /// the caller's to crash.
    pub fn stop(&self, node: NodeId) {
        let Some(member) = self.members().remove(&node) else {
            return;
        };
        tokio::spawn(async move {
            if let Err(error) = member.raft.shutdown().await {
                tracing::debug!(%error, node, "simulated raft shutdown");
            }
        });
    }

    /// Starts (or restarts) `node`'s replica of `group` from what `disk`
    /// holds, with state machine `app`, and puts it on the network. On
    /// first start `members` becomes the initial membership.
    ///
    /// # Errors
    /// Returns an error if the disk cannot be read or Raft fails to start.
    pub async fn start_group(
        &self,
        node: NodeId,
        group: GroupId,
        settings: &RaftSettings,
        app: S,
        members: BTreeMap<NodeId, PeerNode>,
        disk: &MemDisk,
    ) -> io::Result<Group<S>> {
        let config = group_config(group, settings)?;
        let store = disk.store();
        let generation = store.generation();
        let state_machine = SmStore::open_in_memory(app, store.clone())?;
        let state = state_machine.handle();
        let network = SimNetwork {
            router: self.clone(),
            from: node,
            generation,
        };
        let raft = Raft::new(node, config, network, store, state_machine)
            .await
            .map_err(io::Error::other)?;
        self.members().insert(
            node,
            Member {
                generation,
                raft: raft.clone(),
            },
        );
        if !raft.is_initialized().await.map_err(io::Error::other)? {
            if let Err(error) = raft.initialize(members).await {
                tracing::debug!(%error, node, "initialize skipped");
            }
        }
        let timeout = Duration::from_millis(settings.request_timeout_ms);
        Ok(Group::new(group, raft, state, timeout))
    }
}

/// The network of one incarnation of one node.
pub struct SimNetwork<S: StateMachine> {
    router: SimRouter<S>,
    from: NodeId,
    generation: u64,
}

impl<S: StateMachine> RaftNetworkFactory<TypeConfig> for SimNetwork<S> {
    type Network = SimConnection<S>;

    async fn new_client(&mut self, target: NodeId, _node: &PeerNode) -> Self::Network {
        SimConnection {
            router: self.router.clone(),
            from: self.from,
            generation: self.generation,
            target,
        }
    }
}

/// One node's connection to one peer.
pub struct SimConnection<S: StateMachine> {
    router: SimRouter<S>,
    from: NodeId,
    generation: u64,
    target: NodeId,
}

impl<S: StateMachine> SimConnection<S> {
    /// Carries one request and its reply, failing as a timeout when
    /// either is lost or the exchange outlasts `ttl`.
    async fn exchange<Resp, Fut>(
        &self,
        kind: MessageKind,
        ttl: Duration,
        deliver: impl FnOnce(Raft<S>) -> Fut,
    ) -> Result<Resp, Rpc>
    where
        Fut: Future<Output = Result<Resp, String>>,
    {
        let (from, to) = (self.from, self.target);
        if !self.router.is_current(from, self.generation) {
            return Err(unreachable(format!("node {from} is stopped")));
        }
        let links = self.router.links.clone();
        let router = self.router.clone();
        let exchange = async move {
            let Some(delay) = links.transit(from, to, kind, false) else {
                return std::future::pending().await;
            };
            tokio::time::sleep(delay).await;
            let Some(raft) = router.raft(to) else {
                return Err(unreachable(format!("node {to} is down")));
            };
            let response = deliver(raft).await.map_err(unreachable)?;
            let Some(delay) = links.transit(to, from, kind, true) else {
                return std::future::pending().await;
            };
            tokio::time::sleep(delay).await;
            Ok(response)
        };
        match tokio::time::timeout(ttl, exchange).await {
            Ok(result) => result,
            Err(_) => Err(RPCError::Network(NetworkError::from_string(format!(
                "{kind:?} from node {from} to node {to} timed out after {ttl:?}"
            )))),
        }
    }
}

fn to_message(error: RaftError<TypeConfig>) -> String {
    error.to_string()
}

impl<S: StateMachine> RaftNetworkV2<TypeConfig> for SimConnection<S> {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, Rpc> {
        self.exchange(MessageKind::Append, option.soft_ttl(), |raft| async move {
            raft.append_entries(request).await.map_err(to_message)
        })
        .await
    }

    async fn vote(
        &mut self,
        request: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, Rpc> {
        self.exchange(MessageKind::Vote, option.soft_ttl(), |raft| async move {
            raft.vote(request).await.map_err(to_message)
        })
        .await
    }

    async fn pre_vote(
        &mut self,
        request: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, Rpc> {
        self.exchange(MessageKind::PreVote, option.soft_ttl(), |raft| async move {
            raft.pre_vote(request).await.map_err(to_message)
        })
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: openraft::alias::SnapshotOf<TypeConfig, Vec<u8>>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let send = self.exchange(
            MessageKind::Snapshot,
            option.soft_ttl(),
            |raft| async move {
                raft.install_full_snapshot(vote, snapshot)
                    .await
                    .map_err(|error| error.to_string())
            },
        );
        // Biased: the branch order must not depend on tokio's random pick.
        tokio::select! {
            biased;
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = send => Ok(result?),
        }
    }
}
