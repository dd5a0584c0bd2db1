//! Messages between nodes, and the two ways they travel: gRPC over TCP
//! (one connection per node pair, every group multiplexed on it) or the
//! simulated network of one process.
//!
//! ```text
//!  group network ─┐                              ┌─> group endpoint (per group, concurrent)
//!  beats ─────────┼─> Transport::call ══════════> Dispatcher ─┼─> beats
//!  application ───┘    (gRPC or simulated)        └─> application handler
//! ```
//!
//! A Raft message names its group and the replica it is for: a node that
//! hosts another replica of that group (after its data was wiped, say)
//! refuses it rather than let a new replica answer for an old one.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use polis_types::{GroupId, NodeId, ReplicaId};

use crate::faults::{FaultInjector, Verdict};
use crate::network::GrpcTransport;
use crate::sim_network::SimTransport;

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageKind {
    Append,
    Vote,
    PreVote,
    Snapshot,
    /// A node's periodic beat: liveness and the groups it leads.
    Beat,
    /// A message of the application (the node runtime above Raft).
    App,
    /// A leader hands its leadership to one of the group's voters.
    TransferLeader,
}

impl MessageKind {
    /// Returns the number that identifies the kind on the wire.
    pub fn code(self) -> u32 {
        match self {
            Self::Append => 1,
            Self::Vote => 2,
            Self::PreVote => 3,
            Self::Snapshot => 4,
            Self::Beat => 5,
            Self::App => 6,
            Self::TransferLeader => 7,
        }
    }

    /// Returns the kind numbered `code`, if any.
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => Self::Append,
            2 => Self::Vote,
            3 => Self::PreVote,
            4 => Self::Snapshot,
            5 => Self::Beat,
            6 => Self::App,
            7 => Self::TransferLeader,
            _ => return None,
        })
    }
}

/// One request from one node to another.
#[derive(Debug, Clone)]
pub struct PeerRequest {
    pub from: NodeId,
    pub kind: MessageKind,
    /// The group of a Raft message (unused otherwise).
    pub group: GroupId,
    /// The replica a Raft message is for (unused otherwise).
    pub replica: ReplicaId,
    /// The encoded message.
    pub payload: Vec<u8>,
    /// The W3C trace context of a traced request this message carries an
    /// entry of (see [`crate::trace_context`]).
    pub traceparent: Option<String>,
}

/// Where a node can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    pub node: NodeId,
    /// Peer RPC address (`host:port`); unused by the simulated network.
    pub addr: String,
}

/// Why a message got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The message was not delivered (dropped, refused, no connection).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// No answer came in time; the message may have been delivered.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The receiver refused or failed the message.
    #[error("refused: {0}")]
    Refused(String),
}

/// How messages travel: one value per node, cheap to clone.
#[derive(Clone)]
pub enum Transport {
    Grpc(GrpcTransport),
    Sim(SimTransport),
}

impl Transport {
    /// Sends `request` to `to` and returns the encoded answer.
    ///
    /// # Errors
    /// [`CallError`] when no answer came.
    pub async fn call(
        &self,
        to: &PeerAddr,
        request: PeerRequest,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        match self {
            Self::Grpc(grpc) => grpc.call(to, request, timeout).await,
            Self::Sim(sim) => sim.call(to, request, timeout).await,
        }
    }

    /// Returns how long a Raft RPC may take, from what openraft allows.
    pub(crate) fn rpc_timeout(&self, option: &openraft::network::RPCOption) -> Duration {
        match self {
            Self::Grpc(_) => GrpcTransport::rpc_timeout(option),
            Self::Sim(_) => option.soft_ttl(),
        }
    }
}

/// Why a delivered message was not handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// Fault injection dropped it on arrival.
    #[error("dropped by fault injection")]
    Dropped,
    /// This node hosts no such replica (not yet, or no longer).
    #[error("no replica: {0}")]
    NoReplica(String),
    /// The message could not be decoded.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The handler failed.
    #[error("{0}")]
    Failed(String),
}

/// One group's receiving end on this node.
pub(crate) trait GroupEndpoint: Send + Sync {
    /// Returns the replica this node hosts.
    fn replica(&self) -> ReplicaId;
    /// Handles one Raft message and returns the encoded answer.
    fn handle(
        &self,
        kind: MessageKind,
        payload: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, DispatchError>>;
}

/// The application's handler of [`MessageKind::App`] messages.
pub trait AppHandler: Send + Sync + 'static {
    /// Handles one message from node `from` and returns the answer.
    fn handle(&self, from: NodeId, payload: Vec<u8>)
        -> BoxFuture<'static, Result<Vec<u8>, String>>;
}

/// The receiving side of a node: routes each message to its group, to the
/// beats, or to the application. Messages are handled concurrently; no
/// group waits for another.
pub struct Dispatcher {
    groups: RwLock<HashMap<GroupId, Arc<dyn GroupEndpoint>>>,
    app: RwLock<Option<Arc<dyn AppHandler>>>,
    beats: Arc<crate::beats::Beats>,
    faults: Option<Arc<FaultInjector>>,
}

impl Dispatcher {
    pub(crate) fn new(beats: Arc<crate::beats::Beats>, faults: Option<Arc<FaultInjector>>) -> Self {
        Self {
            groups: RwLock::new(HashMap::new()),
            app: RwLock::new(None),
            beats,
            faults,
        }
    }

    pub(crate) fn insert(&self, group: GroupId, endpoint: Arc<dyn GroupEndpoint>) {
        self.groups
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(group, endpoint);
    }

    pub(crate) fn remove(&self, group: GroupId) {
        self.groups
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&group);
    }

    pub(crate) fn set_app(&self, handler: Arc<dyn AppHandler>) {
        *self
            .app
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(handler);
    }

    /// Handles one request and returns the encoded answer.
    ///
    /// # Errors
    /// [`DispatchError`] when the request was not handled.
    pub async fn dispatch(&self, request: PeerRequest) -> Result<Vec<u8>, DispatchError> {
        if let Some(faults) = &self.faults {
            if faults.incoming(request.from) == Verdict::Drop {
                return Err(DispatchError::Dropped);
            }
        }
        match request.kind {
            MessageKind::Beat => {
                self.beats.receive(request.from, &request.payload)?;
                Ok(Vec::new())
            }
            MessageKind::App => {
                let handler = self
                    .app
                    .read()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .clone();
                let Some(handler) = handler else {
                    return Err(DispatchError::NoReplica("the node is starting".into()));
                };
                handler
                    .handle(request.from, request.payload)
                    .await
                    .map_err(DispatchError::Failed)
            }
            kind => {
                let endpoint = self
                    .groups
                    .read()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .get(&request.group)
                    .cloned();
                let Some(endpoint) = endpoint else {
                    return Err(DispatchError::NoReplica(format!(
                        "no replica of group {} here",
                        request.group
                    )));
                };
                if endpoint.replica() != request.replica {
                    return Err(DispatchError::NoReplica(format!(
                        "group {} has replica {} here, not {}",
                        request.group,
                        endpoint.replica(),
                        request.replica
                    )));
                }
                endpoint.handle(kind, request.payload).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_codes() {
        for kind in [
            MessageKind::Append,
            MessageKind::Vote,
            MessageKind::PreVote,
            MessageKind::Snapshot,
            MessageKind::Beat,
            MessageKind::App,
            MessageKind::TransferLeader,
        ] {
            assert_eq!(MessageKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(MessageKind::from_code(0), None);
        assert_eq!(MessageKind::from_code(8), None);
    }
}
