//! How a node comes to know the cluster map and its place in it.
//!
//! ```text
//!   identity file?  yes ─> reopen: the cached map, then the meta group's
//!                   no  ─> ask the members for a map
//!                          someone has one ─> it registers my token: take it
//!                                             else register with the meta leader
//!                                             (a node seen before gets new replica ids)
//!                          nobody has one  ─> the creator (--init, or the lowest member id
//!                                             once every member, or a majority for 3 s,
//!                                             answer empty) creates it
//! ```
//!
//! The creator registers itself and every member that answered it empty,
//! each by the token of its data directory: they are the meta group's
//! first voters and all start it with that membership, so the map
//! survives the loss of any one disk from the first second. A member
//! wiped after answering comes back with another token and registers anew.
//!
//! The identity file (cluster id, node id, incarnation) and the cached map
//! are written before any group starts, so a data directory with groups
//! but no identity is from an older polis and is refused. A node never
//! reuses a replica id: a node with empty storage always registers, and
//! registration replaces every replica it had before.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use polis_cluster::{ClusterMap, Layout, NodeAddrs, Registration};
use polis_raft::PeerAddr;
use polis_types::NodeId;
use serde::{Deserialize, Serialize};

use crate::node::{Node, ServerError};
use crate::rpc::{self, NodeAnswer, NodeRequest};

/// The file naming the node's place in its cluster.
pub const IDENTITY_FILE: &str = "node-identity";
/// The file holding the newest cluster map the node adopted.
pub const MAP_FILE: &str = "cluster-map";
/// The token of this data directory's registration, saved before the
/// node first asks to register.
pub const TOKEN_FILE: &str = "registration-token";

/// How long between two rounds of asking the members.
const ASK_EVERY: Duration = Duration::from_millis(200);
/// How long one round waits for a member's answer (one lost message must
/// not hold a round up for long).
const ASK_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a waiting node says what it waits for.
const SAY_EVERY: Duration = Duration::from_secs(5);
/// How long a creator that hears from a majority of the members waits for
/// the rest before it creates the cluster without them.
const CREATE_GRACE: Duration = Duration::from_secs(3);

/// Who this node is in which cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub cluster_id: u64,
    pub node: NodeId,
    /// The incarnation the map gave this data directory.
    pub incarnation: u64,
}

/// Returns the identity and the cached map stored on the node, if any.
fn stored(node: &Node) -> Result<(Option<Identity>, Option<ClusterMap>), ServerError> {
    let storage = node.host.storage();
    let identity = storage
        .read_file(IDENTITY_FILE)
        .map_err(ServerError::Storage)?
        .map(|bytes| postcard::from_bytes::<Identity>(&bytes))
        .transpose()
        .map_err(|error| ServerError::Bootstrap(format!("{IDENTITY_FILE}: {error}")))?;
    let map = storage
        .read_file(MAP_FILE)
        .map_err(ServerError::Storage)?
        .map(|bytes| ClusterMap::decode(&bytes))
        .transpose()
        .map_err(|error| ServerError::Bootstrap(format!("{MAP_FILE}: {error}")))?;
    Ok((identity, map))
}

/// Writes `map` as the node's cached map.
///
/// # Errors
/// Returns an error if the file cannot be written.
pub async fn save_map(node: &Node, map: &ClusterMap) -> std::io::Result<()> {
    let bytes = postcard::to_stdvec(map).map_err(std::io::Error::other)?;
    node.host.storage().write_file(MAP_FILE, &bytes).await
}

async fn save_identity(node: &Node, identity: &Identity) -> Result<(), ServerError> {
    let bytes =
        postcard::to_stdvec(identity).map_err(|error| ServerError::Bootstrap(error.to_string()))?;
    node.host
        .storage()
        .write_file(IDENTITY_FILE, &bytes)
        .await
        .map_err(ServerError::Storage)?;
    node.has_data.store(true, Ordering::Relaxed);
    Ok(())
}

/// Brings the node to a map and an identity: reopened, created or
/// registered (see the module documentation). The map is adopted.
///
/// # Errors
/// Returns an error if the data directory is another node's, of another
/// format, or storage fails.
pub async fn establish(node: &Arc<Node>) -> Result<Identity, ServerError> {
    let (identity, cached) = stored(node)?;
    let stored_groups = node.host.stored_groups().map_err(ServerError::Storage)?;
    match identity {
        Some(identity) => {
            node.has_data.store(true, Ordering::Relaxed);
            if identity.node != node.config.node_id {
                return Err(ServerError::Bootstrap(format!(
                    "the data directory {} belongs to node {}, not node {}",
                    node.config.data_dir.display(),
                    identity.node,
                    node.config.node_id
                )));
            }
            let map = match cached {
                Some(map) => map,
                None => wait_for_map(node).await,
            };
            check_incarnation(&identity, &map)?;
            if let Some(removed) = crate::removal::said(&map, identity.node) {
                return Err(ServerError::Removed(removed));
            }
            node.map.adopt(map);
            Ok(identity)
        }
        None if !stored_groups.is_empty() => Err(ServerError::Bootstrap(format!(
            "the data directory {} holds Raft groups but no {IDENTITY_FILE}: it was written by an \
             older polis; move it away and start with an empty directory",
            node.config.data_dir.display()
        ))),
        None if !node.config.join.is_empty() => join(node).await,
        None => join_or_create(node).await,
    }
}

/// Refuses a data directory the cluster has since replaced: the map gave
/// this node a newer incarnation (it registered again with other storage).
fn check_incarnation(identity: &Identity, map: &ClusterMap) -> Result<(), ServerError> {
    if map.cluster_id != identity.cluster_id {
        return Err(ServerError::Bootstrap(format!(
            "the cached map is of cluster {:x}, the identity of cluster {:x}",
            map.cluster_id, identity.cluster_id
        )));
    }
    match map.node(identity.node) {
        Some(record) if record.incarnation == identity.incarnation => Ok(()),
        Some(record) => Err(ServerError::Bootstrap(format!(
            "node {} is in incarnation {} of the cluster, this data directory was made for \
             incarnation {}: empty it to rejoin",
            identity.node, record.incarnation, identity.incarnation
        ))),
        None => Err(ServerError::Bootstrap(format!(
            "node {} is not in the cached cluster map",
            identity.node
        ))),
    }
}

/// What one member answered.
struct Answer {
    member: NodeId,
    map: Option<ClusterMap>,
    has_data: bool,
    meta_leader: Option<NodeId>,
    token: u64,
    entry_format_max: u32,
}

/// Asks every other member for its map, concurrently.
async fn ask_members(node: &Arc<Node>) -> Vec<Answer> {
    let members = node
        .config
        .members
        .iter()
        .filter(|member| member.id != node.config.node_id)
        .map(|member| PeerAddr {
            node: member.id,
            addr: member.peer_addr.clone(),
        })
        .collect();
    ask(node, members).await
}

/// Asks the `--join` addresses for their maps (their node ids are not
/// known yet: answers name none).
async fn ask_seeds(node: &Arc<Node>) -> Vec<Answer> {
    let seeds = node
        .config
        .join
        .iter()
        .map(|addr| PeerAddr {
            node: NodeId::UNKNOWN,
            addr: addr.clone(),
        })
        .collect();
    ask(node, seeds).await
}

/// Asks each of `peers` for its map, concurrently.
async fn ask(node: &Arc<Node>, peers: Vec<PeerAddr>) -> Vec<Answer> {
    let asks = peers.into_iter().map(|to| {
        let node = node.clone();
        async move {
            match rpc::call_within(&node, &to, &NodeRequest::GetMap, ASK_TIMEOUT).await {
                Ok(NodeAnswer::Map {
                    map,
                    has_data,
                    meta_leader,
                    token,
                    entry_format_max,
                }) => Some(Answer {
                    member: to.node,
                    map,
                    has_data,
                    meta_leader,
                    token,
                    entry_format_max,
                }),
                _ => None,
            }
        }
    });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Returns the newest map the other nodes of this node's map hold.
pub(crate) async fn newest_peer_map(node: &Arc<Node>) -> Option<ClusterMap> {
    let view = node.view()?;
    let me = node.config.node_id;
    let peers = view
        .map()
        .nodes
        .values()
        .filter(|record| record.id != me && !record.removed())
        .map(|record| PeerAddr {
            node: record.id,
            addr: record.addrs.peer.clone(),
        })
        .collect();
    let answers = ask(node, peers).await;
    newest_map(&answers).cloned()
}

/// Returns the newest map among `answers`.
fn newest_map(answers: &[Answer]) -> Option<&ClusterMap> {
    answers
        .iter()
        .filter_map(|answer| answer.map.as_ref())
        .max_by_key(|map| map.version)
}

/// Returns true when `map` registers this node by its data directory's
/// token (at the cluster's creation, or a registration whose answer was
/// lost).
fn registers_me(node: &Node, map: &ClusterMap) -> bool {
    map.node(node.config.node_id)
        .is_some_and(|record| record.registration == node.token())
}

/// Returns the meta leader some answer names, other than this node.
fn meta_leader_hint(node: &Node, answers: &[Answer]) -> Option<NodeId> {
    answers
        .iter()
        .filter_map(|answer| answer.meta_leader)
        .find(|leader| *leader != node.config.node_id)
}

/// Waits until some member has a map; returns the newest seen.
async fn wait_for_map(node: &Arc<Node>) -> ClusterMap {
    let mut said = tokio::time::Instant::now();
    loop {
        let answers = ask_members(node).await;
        if let Some(map) = newest_map(&answers) {
            return map.clone();
        }
        if said.elapsed() >= SAY_EVERY {
            tracing::warn!("no cached cluster map and no member answers with one; waiting");
            said = tokio::time::Instant::now();
        }
        tokio::time::sleep(ASK_EVERY).await;
    }
}

/// Returns the member that creates the map when no node says `--init`.
fn default_creator(node: &Node) -> Option<NodeId> {
    node.config.members.iter().map(|member| member.id).min()
}

async fn join_or_create(node: &Arc<Node>) -> Result<Identity, ServerError> {
    let me = node.config.node_id;
    let creator = node.config.init || default_creator(node) == Some(me);
    let members = node.config.members.len();
    let mut said = tokio::time::Instant::now();
    let mut majority_since = None;
    // The members that answered with empty storage, in any round since
    // (a member that later answers with data is dropped).
    let mut empty: BTreeMap<NodeId, Registration> = BTreeMap::new();
    loop {
        let answers = ask_members(node).await;
        for answer in &answers {
            if answer.has_data || answer.token == 0 {
                empty.remove(&answer.member);
            } else {
                let first = Registration {
                    token: answer.token,
                    entry_format_max: answer.entry_format_max,
                };
                empty.insert(answer.member, first);
            }
        }
        if let Some(map) = newest_map(&answers) {
            // Registered at creation (the creator heard this directory's
            // token): the map is this node's already.
            if registers_me(node, map) {
                return take_registration(node, map.clone()).await;
            }
            let leader = meta_leader_hint(node, &answers);
            let hint = leader.or_else(|| {
                answers
                    .iter()
                    .find(|answer| answer.map.is_some())
                    .map(|answer| answer.member)
            });
            if let Some(identity) = register(node, hint, Some(map), None).await? {
                return Ok(identity);
            }
        } else if creator {
            // A majority that answers with no data means no cluster exists
            // among these members: a wiped node alone cannot tell, so it
            // waits for the others rather than start a second cluster. It
            // waits a little for every member, so the meta group starts
            // on as many disks as it can.
            let counted = empty.len() + 1;
            if counted * 2 > members {
                majority_since.get_or_insert_with(tokio::time::Instant::now);
            } else {
                majority_since = None;
            }
            let waited = majority_since.is_some_and(|since| since.elapsed() >= CREATE_GRACE);
            if node.config.init || counted == members || waited {
                return create(node, empty).await;
            }
        }
        if said.elapsed() >= SAY_EVERY {
            let reachable: Vec<String> = answers.iter().map(|a| a.member.to_string()).collect();
            tracing::warn!(
                creator,
                reachable = %reachable.join(","),
                members,
                "waiting for the cluster map (the creator needs a majority of the members up)"
            );
            said = tokio::time::Instant::now();
        }
        tokio::time::sleep(ASK_EVERY).await;
    }
}

/// Joins a running cluster through the `--join` addresses: asks them for
/// the map and registers with the meta leader, as a new node (or, when
/// the map has this node id already, as the node's next incarnation).
async fn join(node: &Arc<Node>) -> Result<Identity, ServerError> {
    let me = node.config.node_id;
    let mine = NodeAddrs {
        peer: node.config.peer_addr.clone(),
        resp: node.config.resp_addr.clone(),
        admin: node.config.admin_addr.clone(),
    };
    let mut said = tokio::time::Instant::now();
    loop {
        let answers = ask_seeds(node).await;
        if let Some(map) = newest_map(&answers) {
            if registers_me(node, map) {
                return take_registration(node, map.clone()).await;
            }
            match map.node(me) {
                Some(record) if record.addrs != mine => {
                    return Err(ServerError::Bootstrap(format!(
                        "node id {me} is in the cluster already, at {} (peer), {} (RESP), {} \
                         (admin): give this node another --node-id, or the addresses it had",
                        record.addrs.peer, record.addrs.resp, record.addrs.admin
                    )));
                }
                _ => {}
            }
            let hint = meta_leader_hint(node, &answers);
            if let Some(identity) = register(node, hint, Some(map), Some(mine.clone())).await? {
                return Ok(identity);
            }
        }
        if said.elapsed() >= SAY_EVERY {
            tracing::warn!(
                join = %node.config.join.join(","),
                answered = answers.len(),
                "waiting to join: no member answered with a map and its meta leader yet \
                 (--join takes the peer address of a running member)"
            );
            said = tokio::time::Instant::now();
        }
        tokio::time::sleep(ASK_EVERY).await;
    }
}

/// Creates the cluster: the first map, written with the identity before
/// the meta group starts on this node and the members that answered with
/// empty storage (registered from the start, by their tokens).
async fn create(
    node: &Arc<Node>,
    mut registered: BTreeMap<NodeId, Registration>,
) -> Result<Identity, ServerError> {
    let nodes: BTreeMap<NodeId, NodeAddrs> = node
        .config
        .members
        .iter()
        .map(|member| {
            let addrs = NodeAddrs {
                peer: member.peer_addr.clone(),
                resp: member.resp_addr.clone(),
                admin: member.admin_addr.clone(),
            };
            (member.id, addrs)
        })
        .collect();
    registered.insert(
        node.config.node_id,
        Registration {
            token: node.token(),
            entry_format_max: node.config.entry_format_max,
        },
    );
    let layout = Layout {
        cluster_id: polis_raft::runtime::random_u64(),
        nodes,
        shards: node.config.shape.shards,
        replication: node.config.shape.replicas,
        creator: node.config.node_id,
        registered,
    };
    let map = layout
        .map()
        .map_err(|error| ServerError::Bootstrap(format!("cannot lay out the cluster: {error}")))?;
    let identity = Identity {
        cluster_id: map.cluster_id,
        node: node.config.node_id,
        incarnation: 1,
    };
    save_map(node, &map).await.map_err(ServerError::Storage)?;
    save_identity(node, &identity).await?;
    tracing::info!(
        cluster_id = format!("{:x}", map.cluster_id),
        nodes = map.nodes.len(),
        registered = map.nodes.values().filter(|record| record.started()).count(),
        shards = map.shards.len(),
        "created the cluster map"
    );
    node.map.adopt(map);
    Ok(identity)
}

/// Takes `map`, which registers this node (with its token), as the node's:
/// the identity and the map are saved before any group starts.
async fn take_registration(node: &Arc<Node>, map: ClusterMap) -> Result<Identity, ServerError> {
    let me = node.config.node_id;
    let incarnation = map.node(me).map_or(0, |record| record.incarnation);
    let identity = Identity {
        cluster_id: map.cluster_id,
        node: me,
        incarnation,
    };
    save_map(node, &map).await.map_err(ServerError::Storage)?;
    save_identity(node, &identity).await?;
    tracing::info!(
        incarnation,
        map_version = map.version,
        "registered with the cluster"
    );
    node.map.adopt(map);
    Ok(identity)
}

/// Returns this data directory's registration token, making and saving
/// one the first time.
///
/// # Errors
/// Returns an error if storage fails.
pub async fn registration_token(node: &Node) -> Result<u64, ServerError> {
    let storage = node.host.storage();
    if let Some(bytes) = storage
        .read_file(TOKEN_FILE)
        .map_err(ServerError::Storage)?
    {
        if let Ok(bytes) = <[u8; 8]>::try_from(bytes.as_slice()) {
            return Ok(u64::from_le_bytes(bytes));
        }
    }
    let token = polis_raft::runtime::random_u64().max(1);
    storage
        .write_file(TOKEN_FILE, &token.to_le_bytes())
        .await
        .map_err(ServerError::Storage)?;
    Ok(token)
}

/// Registers with the meta leader (trying `hint` first, then following
/// its redirects, whose addresses `map` gives when the node has none
/// yet); as a new node when `addrs` is given. Returns `None` when no meta
/// leader answered yet.
async fn register(
    node: &Arc<Node>,
    hint: Option<NodeId>,
    map: Option<&ClusterMap>,
    addrs: Option<NodeAddrs>,
) -> Result<Option<Identity>, ServerError> {
    let me = node.config.node_id;
    let request = match addrs {
        Some(addrs) => NodeRequest::Join {
            node: me,
            addrs,
            entry_format_max: node.config.entry_format_max,
            token: node.token(),
        },
        None => NodeRequest::Register {
            node: me,
            entry_format_max: node.config.entry_format_max,
            token: node.token(),
        },
    };
    let peer_addr = |id: NodeId| {
        map.and_then(|map| map.node(id))
            .map(|record| PeerAddr {
                node: id,
                addr: record.addrs.peer.clone(),
            })
            .or_else(|| node.peer_addr(id))
    };
    let mut target = hint;
    // Bounded: a redirect chain longer than the node list is stale.
    let nodes = map.map_or(0, |map| map.nodes.len());
    for _ in 0..=node.config.members.len().max(nodes) {
        let Some(to) = target.filter(|id| *id != me).and_then(peer_addr) else {
            return Ok(None);
        };
        match rpc::call(node, &to, &request).await {
            Ok(NodeAnswer::Registered(map)) => {
                return take_registration(node, map).await.map(Some);
            }
            Ok(NodeAnswer::NotMetaLeader { leader }) if leader != target => target = leader,
            Ok(NodeAnswer::Retry(reason)) => {
                tracing::debug!(%reason, "registration not taken yet");
                return Ok(None);
            }
            Ok(NodeAnswer::Refused(reason)) => {
                return Err(ServerError::Bootstrap(format!(
                    "the cluster refused to register node {me}: {reason}"
                )))
            }
            Ok(other) => {
                tracing::debug!(?other, "registration not taken yet");
                return Ok(None);
            }
            Err(error) => {
                tracing::debug!(%error, "registration not delivered");
                return Ok(None);
            }
        }
    }
    Ok(None)
}
