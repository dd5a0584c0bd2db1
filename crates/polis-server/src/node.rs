//! A running node: its listeners, its replica of the data group, and the
//! state every connection shares.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use polis_raft::{FaultInjector, Group, GroupSpec, Host, PeerNode};
use polis_resp::DecodeLimits;
use polis_types::{limits, GroupId, NodeId, ReplicaId};

/// The group that holds all 16384 slots until sharding arrives.
const DATA_GROUP: GroupId = GroupId(1);
use tokio::net::TcpListener;

use crate::clients::Clients;
use crate::config::ServerConfig;
use crate::machine::DataMachine;
use crate::settings::Settings;
use crate::stats::Stats;
use crate::{admin, connection, expiry};

/// Why a node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot bind {what} address {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("storage: {0}")]
    Storage(std::io::Error),
}

/// What every connection of a node shares.
pub struct Node {
    pub config: ServerConfig,
    pub group: Group<DataMachine>,
    pub clients: Arc<Clients>,
    pub stats: Stats,
    pub settings: Settings,
    pub started_at: Instant,
    /// Random per process, like Redis's run_id.
    pub run_id: String,
    pub resp_port: u16,
    /// Network fault injection (inert unless enabled in the config).
    pub faults: Arc<FaultInjector>,
}

/// Returns the wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// Returns the Redis Cluster-style 40-hex-digit name of node `id`.
pub fn node_name(id: NodeId) -> String {
    format!("{:040x}", id.get())
}

impl Node {
    /// Returns the limits the request decoder enforces now.
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            bulk_len_max: self.settings.integer("proto-max-bulk-len").max(0) as u64,
            multibulk_len_max: limits::MULTIBULK_LEN_MAX,
            inline_len_max: limits::INLINE_LEN_MAX,
            query_buffer_len_max: self.settings.integer("client-query-buffer-limit").max(0) as u64,
        }
    }

    /// Returns the RESP address of the leader, when one is known.
    pub fn leader_resp_addr(&self) -> Option<String> {
        self.group.leader().map(|(_, node)| node.resp_addr)
    }
}

async fn bind(what: &'static str, addr: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            what,
            addr: addr.to_owned(),
            source,
        })
}

/// Runs a node until `shutdown` completes.
///
/// # Errors
/// Returns an error if the configuration is invalid, an address cannot be
/// bound, or storage cannot be opened.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    config.validate().map_err(ServerError::Config)?;
    let peer_listener = bind("peer", &config.peer_addr).await?;
    let resp_listener = bind("RESP", &config.resp_addr).await?;
    let admin_listener = bind("admin", &config.admin_addr).await?;
    let resp_port = resp_listener
        .local_addr()
        .map(|addr| addr.port())
        .unwrap_or(0);

    let fault_seed: u64 = rand::random();
    if config.enable_fault_injection {
        tracing::warn!(fault_seed, "fault injection enabled");
    }
    let faults = Arc::new(FaultInjector::new(
        config.enable_fault_injection,
        fault_seed,
    ));
    let raft = Host::open(
        config.node_id,
        &config.data_dir,
        config.raft.clone(),
        faults.clone(),
    )
    .map_err(ServerError::Storage)?;
    raft.start_background();
    let members: BTreeMap<ReplicaId, PeerNode> = config
        .members
        .iter()
        .map(|member| {
            let node = PeerNode {
                node_id: member.id,
                peer_addr: member.peer_addr.clone(),
                resp_addr: member.resp_addr.clone(),
                admin_addr: member.admin_addr.clone(),
            };
            (ReplicaId(member.id.get()), node)
        })
        .collect();
    let group = raft
        .start_group(
            GroupSpec {
                group: DATA_GROUP,
                replica: ReplicaId(config.node_id.get()),
                bootstrap: Some(members),
            },
            DataMachine::default(),
        )
        .await
        .map_err(ServerError::Storage)?;

    let node = Arc::new(Node {
        settings: Settings::new(
            config.proto_max_bulk_len,
            config.client_query_buffer_limit,
            config.maxclients,
        ),
        config,
        group: group.clone(),
        clients: Arc::new(Clients::default()),
        stats: Stats::default(),
        started_at: Instant::now(),
        run_id: format!("{:040x}", rand::random::<u128>()),
        faults,
        resp_port,
    });
    tracing::info!(
        node_id = %node.config.node_id,
        resp = %node.config.resp_addr,
        admin = %node.config.admin_addr,
        peer = %node.config.peer_addr,
        "node started"
    );

    let serving = raft.clone();
    let peers = tokio::spawn(async move {
        if let Err(error) = serving.serve_peers(peer_listener).await {
            tracing::error!(%error, "peer server stopped");
        }
    });
    let admin = tokio::spawn(admin::serve(node.clone(), admin_listener));
    let expiry = tokio::spawn(expiry::run(node.clone()));
    let accept = tokio::spawn(accept_loop(node.clone(), resp_listener));

    shutdown.await;
    tracing::info!("node stopping");
    accept.abort();
    expiry.abort();
    admin.abort();
    raft.shutdown().await;
    peers.abort();
    Ok(())
}

async fn accept_loop(node: Arc<Node>, listener: TcpListener) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        Stats::bump(&node.stats.connections_received);
        tokio::spawn(connection::serve(node.clone(), stream, addr));
    }
}
