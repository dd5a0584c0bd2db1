//! The real peer transport: gRPC (tonic) over TCP, one HTTP/2 connection
//! per peer address shared by every group and by the node's own messages;
//! requests on it run concurrently. With `tls-cluster`, each connection is
//! mutual TLS (polis-tls's [`PeerTls`]): the dialled peer's certificate is
//! checked for the cluster's CA and name, and this node presents its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polis_tls::PeerTls;
use polis_types::limits::PEER_MESSAGE_LEN_MAX;
use polis_types::{GroupId, NodeId, ReplicaId};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::faults::{FaultInjector, Verdict};
use crate::transport::{CallError, DispatchError, Dispatcher, MessageKind, PeerAddr, PeerRequest};

/// Generated protobuf types and tonic stubs.
pub mod proto {
    tonic::include_proto!("polis.peer");
}

use proto::peer_client::PeerClient;
use proto::{RaftReply, RaftRequest};

/// How long to wait for a TCP connection to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The shortest time a Raft RPC may take before it counts as failed.
/// openraft asks for appends to finish within one heartbeat interval; on a
/// busy machine (a debug build, a loaded CI box) that is too tight, and
/// each timeout makes the next append larger, so replication never
/// catches up and followers start elections. A floor keeps a slow peer
/// slow instead of failed.
const RPC_TIMEOUT_MIN: Duration = Duration::from_secs(1);

/// Channels to peers: one connection per peer address.
#[derive(Clone, Default)]
struct Channels {
    by_addr: Arc<Mutex<HashMap<String, Channel>>>,
    /// Mutual TLS to every peer, when the cluster runs it.
    tls: Option<Arc<PeerTls>>,
}

impl Channels {
    fn get(&self, addr: &str) -> Result<PeerClient<Channel>, String> {
        let mut by_addr = self
            .by_addr
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let channel = match by_addr.get(addr) {
            Some(channel) => channel.clone(),
            None => {
                let endpoint = Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(|error| format!("bad peer address {addr}: {error}"))?
                    .connect_timeout(CONNECT_TIMEOUT)
                    .tcp_nodelay(true);
                let channel = match &self.tls {
                    // The scheme stays http: the TLS is the connector's.
                    Some(tls) => endpoint.connect_with_connector_lazy(tls_connector(tls.clone())),
                    None => endpoint.connect_lazy(),
                };
                by_addr.insert(addr.to_owned(), channel.clone());
                channel
            }
        };
        Ok(PeerClient::new(channel)
            .max_decoding_message_size(PEER_MESSAGE_LEN_MAX)
            .max_encoding_message_size(PEER_MESSAGE_LEN_MAX))
    }
}

/// Dials a peer and runs the TLS handshake as this node (tonic bounds the
/// whole by the connect timeout).
fn tls_connector(
    tls: Arc<PeerTls>,
) -> impl tower::Service<
    Uri,
    Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    Error = std::io::Error,
    Future = impl Send,
> + Send
       + 'static {
    tower::service_fn(move |uri: Uri| {
        let tls = tls.clone();
        async move {
            let addr = uri
                .authority()
                .map(|authority| authority.as_str().to_owned())
                .ok_or_else(|| std::io::Error::other(format!("no peer address in {uri}")))?;
            let tcp = tokio::net::TcpStream::connect(&addr).await?;
            tcp.set_nodelay(true)?;
            let connector = tokio_rustls::TlsConnector::from(tls.client.clone());
            let stream = connector
                .connect(tls.name.clone(), tcp)
                .await
                .map_err(|error| {
                    tracing::warn!(%error, peer = %addr, "TLS to a peer failed");
                    error
                })?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        }
    })
}

/// The sending side over gRPC, with the node's network fault injection.
#[derive(Clone)]
pub struct GrpcTransport {
    channels: Channels,
    faults: Arc<FaultInjector>,
}

impl GrpcTransport {
    /// Returns a transport whose messages pass through `faults`, over
    /// mutual TLS when `tls` is given.
    pub fn new(faults: Arc<FaultInjector>, tls: Option<Arc<PeerTls>>) -> Self {
        Self {
            channels: Channels {
                by_addr: Arc::default(),
                tls,
            },
            faults,
        }
    }

    pub(crate) fn rpc_timeout(option: &openraft::network::RPCOption) -> Duration {
        option.hard_ttl().max(RPC_TIMEOUT_MIN)
    }

    pub(crate) async fn call(
        &self,
        to: &PeerAddr,
        request: PeerRequest,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let kind = request.kind;
        match self.faults.outgoing(to.node) {
            Verdict::Drop => {
                return Err(CallError::Unreachable(format!(
                    "{kind:?} to node {} dropped by fault injection",
                    to.node
                )))
            }
            Verdict::Deliver(delay) if !delay.is_zero() => tokio::time::sleep(delay).await,
            Verdict::Deliver(_) => {}
        }
        let mut client = self
            .channels
            .get(&to.addr)
            .map_err(CallError::Unreachable)?;
        let message = RaftRequest {
            group_id: request.group.get(),
            kind: kind.code(),
            payload: request.payload,
            from: request.from.get(),
            replica: request.replica.get(),
        };
        let mut message = tonic::Request::new(message);
        if let Some(parent) = request
            .traceparent
            .and_then(|parent| tonic::metadata::MetadataValue::try_from(parent).ok())
        {
            message
                .metadata_mut()
                .insert(polis_trace::TRACEPARENT, parent);
        }
        match tokio::time::timeout(timeout, client.raft(message)).await {
            Err(_) => Err(CallError::Timeout(format!(
                "{kind:?} to node {} after {timeout:?}",
                to.node
            ))),
            Ok(Err(status)) => match status.code() {
                tonic::Code::Unavailable | tonic::Code::Unknown => Err(CallError::Unreachable(
                    format!("{kind:?} to node {}: {}", to.node, status.message()),
                )),
                _ => Err(CallError::Refused(format!(
                    "{kind:?} to node {}: {}",
                    to.node,
                    status.message()
                ))),
            },
            Ok(Ok(reply)) => Ok(reply.into_inner().payload),
        }
    }
}

/// The receiving side over gRPC: hands each request to the node's
/// [`Dispatcher`]. tonic runs every request in a task of its own.
pub struct PeerService {
    dispatcher: Arc<Dispatcher>,
}

impl PeerService {
    /// Returns the tonic server of `dispatcher`, with message limits.
    pub fn server(dispatcher: Arc<Dispatcher>) -> proto::peer_server::PeerServer<Self> {
        proto::peer_server::PeerServer::new(Self { dispatcher })
            .max_decoding_message_size(PEER_MESSAGE_LEN_MAX)
            .max_encoding_message_size(PEER_MESSAGE_LEN_MAX)
    }
}

#[tonic::async_trait]
impl proto::peer_server::Peer for PeerService {
    async fn raft(
        &self,
        request: tonic::Request<RaftRequest>,
    ) -> Result<tonic::Response<RaftReply>, tonic::Status> {
        let traceparent = request
            .metadata()
            .get(polis_trace::TRACEPARENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let request = request.into_inner();
        let kind = MessageKind::from_code(request.kind)
            .ok_or_else(|| tonic::Status::invalid_argument("unknown message kind"))?;
        let request = PeerRequest {
            from: NodeId(request.from),
            kind,
            group: GroupId(request.group_id),
            replica: ReplicaId(request.replica),
            payload: request.payload,
            traceparent,
        };
        let handled = match &request.traceparent {
            // Entries of a traced request: this node's part joins its trace.
            Some(parent) => {
                let span = tracing::trace_span!(
                    target: polis_trace::TARGET,
                    "raft.append",
                    group = %request.group,
                    from = %request.from,
                );
                polis_trace::adopt(&span, parent);
                tracing::Instrument::instrument(self.dispatcher.dispatch(request), span).await
            }
            None => self.dispatcher.dispatch(request).await,
        };
        match handled {
            Ok(payload) => Ok(tonic::Response::new(RaftReply { payload })),
            Err(DispatchError::Dropped) => Err(tonic::Status::unavailable("dropped")),
            Err(error @ DispatchError::NoReplica(_)) => {
                Err(tonic::Status::not_found(error.to_string()))
            }
            Err(error @ DispatchError::Invalid(_)) => {
                Err(tonic::Status::invalid_argument(error.to_string()))
            }
            Err(DispatchError::Failed(message)) => Err(tonic::Status::internal(message)),
        }
    }
}
