//! openraft's network for one group, over the node's [`Transport`]; and
//! the group's receiving end, which decodes each message for openraft.
//!
//! An openraft request travels postcard-encoded; the answer is the
//! postcard-encoded `Result` of the openraft call.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use openraft::errors::{
    NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, RaftNetworkV2};
use polis_types::{GroupId, NodeId, ReplicaId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;

use crate::hibernate::Hibernation;
use crate::snapshot_pace::SnapshotPace;
use crate::state_machine::StateMachine;
use crate::transport::{
    CallError, DispatchError, GroupEndpoint, MessageKind, PeerAddr, PeerRequest, Transport,
};
use crate::types::{PeerNode, Raft, SnapshotMeta, TypeConfig, Vote};

/// Creates the connections one group uses to reach its peers.
#[derive(Clone)]
pub(crate) struct GroupNetwork {
    group: GroupId,
    from: NodeId,
    transport: Transport,
    pace: Arc<SnapshotPace>,
}

impl GroupNetwork {
    pub(crate) fn new(
        group: GroupId,
        from: NodeId,
        transport: Transport,
        pace: Arc<SnapshotPace>,
    ) -> Self {
        Self {
            group,
            from,
            transport,
            pace,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for GroupNetwork {
    type Network = ReplicaConnection;

    async fn new_client(&mut self, target: ReplicaId, node: &PeerNode) -> Self::Network {
        ReplicaConnection {
            group: self.group,
            from: self.from,
            target,
            to: PeerAddr {
                node: node.node_id,
                addr: node.peer_addr.clone(),
            },
            transport: self.transport.clone(),
            pace: self.pace.clone(),
        }
    }
}

/// One group's connection to one replica of it.
pub(crate) struct ReplicaConnection {
    group: GroupId,
    from: NodeId,
    target: ReplicaId,
    to: PeerAddr,
    transport: Transport,
    pace: Arc<SnapshotPace>,
}

type Rpc<E = openraft::errors::Infallible> = RPCError<TypeConfig, E>;

impl ReplicaConnection {
    async fn call<Req, Resp>(
        &mut self,
        kind: MessageKind,
        request: &Req,
        option: &RPCOption,
        traceparent: Option<String>,
    ) -> Result<Resp, Rpc>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let payload = postcard::to_stdvec(request)
            .map_err(|error| RPCError::Network(NetworkError::new(&error)))?;
        let request = PeerRequest {
            from: self.from,
            kind,
            group: self.group,
            replica: self.target,
            payload,
            traceparent,
        };
        let timeout = self.transport.rpc_timeout(option);
        let reply = match self.transport.call(&self.to, request, timeout).await {
            Ok(reply) => reply,
            Err(CallError::Timeout(message)) => {
                return Err(RPCError::Network(NetworkError::from_string(message)))
            }
            Err(CallError::Unreachable(message) | CallError::Refused(message)) => {
                return Err(RPCError::Unreachable(Unreachable::from_string(message)))
            }
        };
        let result: Result<Resp, RaftError<TypeConfig>> = postcard::from_bytes(&reply)
            .map_err(|error| RPCError::Network(NetworkError::new(&error)))?;
        result.map_err(|error| RPCError::Unreachable(Unreachable::new(&error)))
    }
}

impl RaftNetworkV2<TypeConfig> for ReplicaConnection {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, Rpc> {
        let payloads = request
            .entries
            .iter()
            .filter_map(|entry| match &entry.payload {
                openraft::EntryPayload::Normal(proposal) => Some(&proposal.payload),
                _ => None,
            });
        let Some(parent) = crate::trace_context::traceparent_of(payloads) else {
            return self
                .call(MessageKind::Append, &request, &option, None)
                .await;
        };
        // Entries of a traced request: the follower's span joins its trace.
        let span = tracing::trace_span!(
            target: polis_trace::TARGET,
            "raft.replicate",
            group = %self.group,
            to = %self.to.node,
            entries = request.entries.len(),
        );
        polis_trace::adopt(&span, &parent);
        let traceparent = polis_trace::traceparent(&span);
        self.call(MessageKind::Append, &request, &option, traceparent)
            .instrument(span)
            .await
    }

    async fn vote(
        &mut self,
        request: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, Rpc> {
        self.call(MessageKind::Vote, &request, &option, None).await
    }

    async fn pre_vote(
        &mut self,
        request: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, Rpc> {
        self.call(MessageKind::PreVote, &request, &option, None)
            .await
    }

    /// Without it, openraft's default answers "unreachable": the target
    /// never hears of the transfer, the old leader stops taking writes
    /// until its lease runs out, and any voter may win the election after.
    async fn transfer_leader(
        &mut self,
        request: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, Rpc> {
        self.call(MessageKind::TransferLeader, &request, &option, None)
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: openraft::alias::SnapshotOf<TypeConfig, Vec<u8>>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let request = (vote, snapshot.meta, snapshot.snapshot);
        let pace = self.pace.clone();
        let send = async {
            pace.wait(request.2.len()).await;
            self.call(MessageKind::Snapshot, &request, &option, None)
                .await
        };
        // Biased: a simulation's run must not depend on tokio's random pick.
        tokio::select! {
            biased;
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = send => Ok(result?),
        }
    }
}

/// The receiving end of one replica: decodes messages for its Raft, and
/// lets hibernation answer (pre-)votes for a parked group.
pub(crate) struct RaftEndpoint<S: StateMachine> {
    pub(crate) group: GroupId,
    pub(crate) replica: ReplicaId,
    pub(crate) raft: Raft<S>,
    pub(crate) hibernation: Arc<Hibernation>,
}

fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DispatchError> {
    postcard::from_bytes(payload)
        .map_err(|error| DispatchError::Invalid(format!("undecodable payload: {error}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, DispatchError> {
    postcard::to_stdvec(value)
        .map_err(|error| DispatchError::Failed(format!("unencodable reply: {error}")))
}

impl<S: StateMachine> GroupEndpoint for RaftEndpoint<S> {
    fn replica(&self) -> ReplicaId {
        self.replica
    }

    fn handle(
        &self,
        kind: MessageKind,
        payload: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, DispatchError>> {
        let raft = self.raft.clone();
        let group = self.group;
        let hibernation = self.hibernation.clone();
        Box::pin(async move {
            match kind {
                MessageKind::Append => {
                    let request: AppendEntriesRequest<TypeConfig> = decode(&payload)?;
                    let answer = raft.append_entries(request).await;
                    // Woken after the append renewed the leader lease, so
                    // the first tick does not find it expired.
                    hibernation.after_append(group, &raft);
                    encode(&answer)
                }
                MessageKind::Vote | MessageKind::PreVote => {
                    let request: VoteRequest<TypeConfig> = decode(&payload)?;
                    if let Some(denial) = hibernation.deny_vote(group, &raft, &request).await {
                        let answer: Result<VoteResponse<TypeConfig>, RaftError<TypeConfig>> =
                            Ok(denial);
                        return encode(&answer);
                    }
                    if kind == MessageKind::Vote {
                        encode(&raft.vote(request).await)
                    } else {
                        encode(&raft.pre_vote(request).await)
                    }
                }
                MessageKind::Snapshot => {
                    let (vote, meta, data): (Vote, SnapshotMeta, Vec<u8>) = decode(&payload)?;
                    let snapshot = openraft::alias::SnapshotOf::<TypeConfig, Vec<u8>> {
                        meta,
                        snapshot: data,
                    };
                    let result: Result<SnapshotResponse<TypeConfig>, RaftError<TypeConfig>> = raft
                        .install_full_snapshot(vote, snapshot)
                        .await
                        .map_err(RaftError::Fatal);
                    hibernation.after_append(group, &raft);
                    encode(&result)
                }
                MessageKind::TransferLeader => {
                    let request: TransferLeaderRequest<TypeConfig> = decode(&payload)?;
                    // The target must be awake to stand for election.
                    hibernation.wake(group, &raft);
                    let result: Result<TransferLeaderResponse<TypeConfig>, RaftError<TypeConfig>> =
                        raft.handle_transfer_leader(request)
                            .await
                            .map_err(RaftError::Fatal);
                    encode(&result)
                }
                MessageKind::Beat | MessageKind::App => Err(DispatchError::Invalid(format!(
                    "{kind:?} is not a Raft message"
                ))),
            }
        })
    }
}
