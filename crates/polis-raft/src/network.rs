//! Peer transport: Raft messages between nodes over one tonic (gRPC)
//! channel per peer, addressed by group id.
//!
//! The openraft request travels postcard-encoded in the `payload` bytes of
//! a protobuf message, so the protocol file stays tiny while openraft's
//! types evolve.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use openraft::errors::{
    NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, RaftNetworkV2};
use polis_types::limits::PEER_MESSAGE_LEN_MAX;
use polis_types::{GroupId, NodeId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use crate::faults::{FaultInjector, Verdict};
use crate::state_machine::StateMachine;
use crate::types::{PeerNode, Raft, SnapshotMeta, TypeConfig, Vote};

/// Generated protobuf types and tonic stubs.
pub mod proto {
    tonic::include_proto!("polis.peer");
}

use proto::peer_client::PeerClient;
use proto::{RaftReply, RaftRequest};

/// The kind of Raft message in a [`RaftRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum RpcKind {
    Append = 1,
    Vote = 2,
    PreVote = 3,
    Snapshot = 4,
}

impl RpcKind {
    fn from_u32(kind: u32) -> Option<Self> {
        match kind {
            1 => Some(Self::Append),
            2 => Some(Self::Vote),
            3 => Some(Self::PreVote),
            4 => Some(Self::Snapshot),
            _ => None,
        }
    }
}

/// How long to wait for a TCP connection to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The shortest time an RPC may take before it counts as failed.
/// openraft asks for appends to finish within one heartbeat interval; on a
/// busy machine (a debug build, a loaded CI box) that is too tight, and
/// each timeout makes the next append larger, so replication never
/// catches up and followers start elections. A floor keeps a slow peer
/// slow instead of failed.
const RPC_TIMEOUT_MIN: Duration = Duration::from_secs(1);

/// Channels to peers, shared by every group of the node: one connection
/// per peer address.
#[derive(Clone, Default)]
pub struct Channels {
    by_addr: Arc<Mutex<HashMap<String, Channel>>>,
}

impl Channels {
    fn get(&self, addr: &str) -> Result<Channel, String> {
        let mut by_addr = self
            .by_addr
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(channel) = by_addr.get(addr) {
            return Ok(channel.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|error| format!("bad peer address {addr}: {error}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        let channel = endpoint.connect_lazy();
        by_addr.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }
}

/// Creates the clients one group uses to reach its peers.
#[derive(Clone)]
pub struct NetworkFactory {
    group: GroupId,
    node_id: NodeId,
    channels: Channels,
    faults: Arc<FaultInjector>,
}

impl NetworkFactory {
    /// Returns the network of `group` on node `node_id`, sharing `channels`
    /// and the node's fault injector.
    pub fn new(
        group: GroupId,
        node_id: NodeId,
        channels: Channels,
        faults: Arc<FaultInjector>,
    ) -> Self {
        Self {
            group,
            node_id,
            channels,
            faults,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &PeerNode) -> Self::Network {
        PeerConnection {
            group: self.group,
            from: self.node_id,
            faults: self.faults.clone(),
            target,
            client: self.channels.get(&node.peer_addr).map(|channel| {
                PeerClient::new(channel)
                    .max_decoding_message_size(PEER_MESSAGE_LEN_MAX)
                    .max_encoding_message_size(PEER_MESSAGE_LEN_MAX)
            }),
        }
    }
}

/// One group's connection to one peer.
pub struct PeerConnection {
    group: GroupId,
    from: NodeId,
    faults: Arc<FaultInjector>,
    target: NodeId,
    client: Result<PeerClient<Channel>, String>,
}

type Rpc<E = openraft::errors::Infallible> = RPCError<TypeConfig, E>;

impl PeerConnection {
    async fn call<Req, Resp>(
        &mut self,
        kind: RpcKind,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, Rpc>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let timeout = timeout.max(RPC_TIMEOUT_MIN);
        match self.faults.outgoing(self.target) {
            Verdict::Drop => {
                return Err(RPCError::Unreachable(Unreachable::from_string(format!(
                    "{kind:?} to node {} dropped by fault injection",
                    self.target
                ))))
            }
            Verdict::Deliver(delay) if !delay.is_zero() => tokio::time::sleep(delay).await,
            Verdict::Deliver(_) => {}
        }
        let client = match &mut self.client {
            Ok(client) => client,
            Err(message) => return Err(RPCError::Unreachable(Unreachable::from_string(message))),
        };
        let payload = postcard::to_stdvec(request)
            .map_err(|error| RPCError::Network(NetworkError::new(&error)))?;
        let message = RaftRequest {
            group_id: self.group,
            kind: kind as u32,
            payload,
            from: self.from,
        };
        let reply = match tokio::time::timeout(timeout, client.raft(message)).await {
            Err(_) => {
                return Err(RPCError::Network(NetworkError::from_string(format!(
                    "{kind:?} to node {} timed out after {timeout:?}",
                    self.target
                ))))
            }
            Ok(Err(status)) => return Err(RPCError::Unreachable(Unreachable::new(&status))),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        let result: Result<Resp, RaftError<TypeConfig>> = postcard::from_bytes(&reply.payload)
            .map_err(|error| RPCError::Network(NetworkError::new(&error)))?;
        result.map_err(|error| RPCError::Unreachable(Unreachable::new(&error)))
    }
}

impl RaftNetworkV2<TypeConfig> for PeerConnection {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, Rpc> {
        self.call(RpcKind::Append, &request, option.hard_ttl())
            .await
    }

    async fn vote(
        &mut self,
        request: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, Rpc> {
        self.call(RpcKind::Vote, &request, option.hard_ttl()).await
    }

    async fn pre_vote(
        &mut self,
        request: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, Rpc> {
        self.call(RpcKind::PreVote, &request, option.hard_ttl())
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
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = self.call(RpcKind::Snapshot, &request, option.hard_ttl()) => Ok(result?),
        }
    }
}

/// The receiving side: routes each peer message to its group's Raft.
pub struct PeerService<S: StateMachine> {
    groups: Arc<RwLock<HashMap<GroupId, Raft<S>>>>,
    faults: Arc<FaultInjector>,
}

impl<S: StateMachine> PeerService<S> {
    /// Returns a service routing to `groups`, filtered by `faults`.
    pub fn new(groups: Arc<RwLock<HashMap<GroupId, Raft<S>>>>, faults: Arc<FaultInjector>) -> Self {
        Self { groups, faults }
    }

    /// Returns the tonic server for this service, with message limits.
    pub fn into_server(self) -> proto::peer_server::PeerServer<Self> {
        proto::peer_server::PeerServer::new(self)
            .max_decoding_message_size(PEER_MESSAGE_LEN_MAX)
            .max_encoding_message_size(PEER_MESSAGE_LEN_MAX)
    }
}

fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, tonic::Status> {
    postcard::from_bytes(payload)
        .map_err(|error| tonic::Status::invalid_argument(format!("undecodable payload: {error}")))
}

fn encode<T: Serialize>(value: &T) -> Result<tonic::Response<RaftReply>, tonic::Status> {
    let payload = postcard::to_stdvec(value)
        .map_err(|error| tonic::Status::internal(format!("unencodable reply: {error}")))?;
    Ok(tonic::Response::new(RaftReply { payload }))
}

#[tonic::async_trait]
impl<S: StateMachine> proto::peer_server::Peer for PeerService<S> {
    async fn raft(
        &self,
        request: tonic::Request<RaftRequest>,
    ) -> Result<tonic::Response<RaftReply>, tonic::Status> {
        let request = request.into_inner();
        if self.faults.incoming(request.from) == Verdict::Drop {
            return Err(tonic::Status::unavailable("dropped by fault injection"));
        }
        let raft = {
            let groups = self
                .groups
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            groups.get(&request.group_id).cloned()
        };
        let Some(raft) = raft else {
            return Err(tonic::Status::not_found(format!(
                "no group {}",
                request.group_id
            )));
        };
        let kind = RpcKind::from_u32(request.kind)
            .ok_or_else(|| tonic::Status::invalid_argument("unknown message kind"))?;
        match kind {
            RpcKind::Append => encode(&raft.append_entries(decode(&request.payload)?).await),
            RpcKind::Vote => encode(&raft.vote(decode(&request.payload)?).await),
            RpcKind::PreVote => encode(&raft.pre_vote(decode(&request.payload)?).await),
            RpcKind::Snapshot => {
                let (vote, meta, data): (Vote, SnapshotMeta, Vec<u8>) = decode(&request.payload)?;
                let snapshot = openraft::alias::SnapshotOf::<TypeConfig, Vec<u8>> {
                    meta,
                    snapshot: data,
                };
                let result: Result<SnapshotResponse<TypeConfig>, RaftError<TypeConfig>> = raft
                    .install_full_snapshot(vote, snapshot)
                    .await
                    .map_err(RaftError::Fatal);
                encode(&result)
            }
        }
    }
}
