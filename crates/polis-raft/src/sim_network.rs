//! An in-process network for simulating whole nodes in one process: a
//! message is handed to the target node's [`Dispatcher`] after a delay (or
//! never) as a [`LinkModel`] decides, and the answer comes back the same
//! way. Messages are encoded exactly as on the real network.
//!
//! With [`MemDisk`](crate::mem_log_store::MemDisk) storage and a
//! single-threaded runtime on paused time, nodes run exactly the same way
//! every time the link model and the disks draw the same numbers. Each
//! node's incarnation is known to the [`SimNet`]: a crashed incarnation can
//! no longer send, and messages to a node that is down fail as a refused
//! connection would.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use polis_types::NodeId;

use crate::transport::{CallError, Dispatcher, MessageKind, PeerAddr, PeerRequest};

/// Decides how long each message takes, or whether it is lost.
pub trait LinkModel: Send + Sync + 'static {
    /// Returns the delay of a request (`reply == false`) or of its reply
    /// from `from` to `to`, or `None` when the message is lost.
    fn transit(&self, from: NodeId, to: NodeId, kind: MessageKind, reply: bool)
        -> Option<Duration>;
}

struct Attached {
    generation: u64,
    dispatcher: Arc<Dispatcher>,
}

/// Tells which node a peer address names.
pub type Resolver = Arc<dyn Fn(&str) -> Option<NodeId> + Send + Sync>;

/// The running incarnations of the nodes, and the links between them.
#[derive(Clone)]
pub struct SimNet {
    nodes: Arc<Mutex<BTreeMap<NodeId, Attached>>>,
    links: Arc<dyn LinkModel>,
    /// Finds the node of a message sent by address alone (a node joining
    /// knows its seeds' addresses, not their ids).
    resolve: Option<Resolver>,
}

impl SimNet {
    /// Returns a network with no node on it, whose messages travel as
    /// `links` decides.
    pub fn new(links: Arc<dyn LinkModel>) -> Self {
        Self {
            nodes: Arc::new(Mutex::new(BTreeMap::new())),
            links,
            resolve: None,
        }
    }

    /// Returns the network with `resolve` telling the node of an address.
    #[must_use]
    pub fn with_resolver(mut self, resolve: Resolver) -> Self {
        self.resolve = Some(resolve);
        self
    }

    fn nodes(&self) -> MutexGuard<'_, BTreeMap<NodeId, Attached>> {
        self.nodes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts incarnation `generation` of `node` on the network; returns its
    /// sending side.
    pub fn attach(
        &self,
        node: NodeId,
        generation: u64,
        dispatcher: Arc<Dispatcher>,
    ) -> SimTransport {
        self.nodes().insert(
            node,
            Attached {
                generation,
                dispatcher,
            },
        );
        SimTransport {
            net: self.clone(),
            from: node,
            generation,
        }
    }

    /// Takes `node` off the network.
    pub fn detach(&self, node: NodeId) {
        self.nodes().remove(&node);
    }

    /// Returns the nodes on the network now.
    pub fn running(&self) -> BTreeSet<NodeId> {
        self.nodes().keys().copied().collect()
    }

    fn is_current(&self, node: NodeId, generation: u64) -> bool {
        self.nodes()
            .get(&node)
            .is_some_and(|attached| attached.generation == generation)
    }

    fn dispatcher(&self, node: NodeId) -> Option<Arc<Dispatcher>> {
        self.nodes()
            .get(&node)
            .map(|attached| attached.dispatcher.clone())
    }
}

/// The sending side of one incarnation of one node.
#[derive(Clone)]
pub struct SimTransport {
    net: SimNet,
    from: NodeId,
    generation: u64,
}

impl SimTransport {
    /// Carries one request and its answer, failing as a timeout when
    /// either is lost or the exchange outlasts `timeout`.
    pub(crate) async fn call(
        &self,
        to: &PeerAddr,
        request: PeerRequest,
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let to = match (&self.net.resolve, to.node) {
            (Some(resolve), NodeId::UNKNOWN) => resolve(&to.addr).unwrap_or(NodeId::UNKNOWN),
            (_, node) => node,
        };
        let from = self.from;
        let kind = request.kind;
        if !self.net.is_current(from, self.generation) {
            return Err(CallError::Unreachable(format!("node {from} is stopped")));
        }
        let net = self.net.clone();
        let exchange = async move {
            let Some(delay) = net.links.transit(from, to, kind, false) else {
                return std::future::pending().await;
            };
            tokio::time::sleep(delay).await;
            let Some(dispatcher) = net.dispatcher(to) else {
                return Err(CallError::Unreachable(format!("node {to} is down")));
            };
            let answer = dispatcher
                .dispatch(request)
                .await
                .map_err(|error| CallError::Refused(error.to_string()))?;
            let Some(delay) = net.links.transit(to, from, kind, true) else {
                return std::future::pending().await;
            };
            tokio::time::sleep(delay).await;
            Ok(answer)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout(format!(
                "{kind:?} from node {from} to node {to} after {timeout:?}"
            ))),
        }
    }
}
