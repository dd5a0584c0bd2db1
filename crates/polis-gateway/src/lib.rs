//! The polis gateway: one Redis endpoint for a whole polis cluster, for
//! clients that know nothing of clusters.
//!
//! ```text
//!  clients ──RESP2/3──> gateway ──┬─ by slot (the nodes' classifier) ──> the slot's leader
//!                                 ├─ MGET/DEL/EXISTS/UNLINK/TOUCH ─────> split by slot, merged
//!                                 ├─ DBSIZE/KEYS/SCAN/FLUSHALL ────────> every shard, merged
//!                                 └─ MULTI..EXEC, WATCH ───────────────> pinned to one node
//! ```
//!
//! - [`cluster`]: the topology (`CLUSTER SHARDS`, refreshed, taught by
//!   `MOVED`), node health (PING and failed connections), the pool of
//!   idle connections;
//! - [`route`]: where a request goes;
//! - `session`: one client, its connections to the nodes, replies in
//!   order; `replies`: frames to their requests, redirects followed;
//!   `transaction`: what a session answers itself;
//! - [`upstream`], [`frame`]: a connection to a node and its reply frames;
//! - [`merge`]: replies of several nodes made into one.
//!
//! Must not depend on the node's crates (polis-server, polis-raft): it
//! speaks to the nodes only as a Redis client does.

pub mod auth;
pub mod cluster;
pub mod frame;
mod info;
pub mod merge;
mod replies;
pub mod route;
mod session;
pub mod topology;
mod transaction;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use cluster::Cluster;

/// A gateway bound to its address, not yet serving.
pub struct Gateway {
    listener: TcpListener,
    /// A TLS listener beside the plaintext one, with its certificates.
    tls: Option<(TcpListener, Arc<polis_tls::Reloading>)>,
    cluster: Arc<Cluster>,
}

impl Gateway {
    /// Binds `listen` and reads the cluster's topology from `seeds` (RESP
    /// addresses of nodes).
    ///
    /// # Errors
    /// The address cannot be bound, or no seed described the cluster.
    pub async fn bind(listen: SocketAddr, seeds: Vec<String>) -> Result<Self, String> {
        let cluster = Cluster::connect(seeds).await?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|error| format!("cannot listen on {listen}: {error}"))?;
        Ok(Self {
            listener,
            tls: None,
            cluster,
        })
    }

    /// Adds a TLS listener at `listen` with the certificates of `files`.
    ///
    /// # Errors
    /// The address cannot be bound or the files do not read.
    pub async fn bind_tls(
        &mut self,
        listen: SocketAddr,
        files: polis_tls::TlsFiles,
    ) -> Result<(), String> {
        let reloading = polis_tls::Reloading::new(files)?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|error| format!("cannot listen on {listen} (TLS): {error}"))?;
        self.tls = Some((listener, reloading));
        Ok(())
    }

    /// Returns the address TLS clients connect to, if any.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.tls
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// Returns the address clients connect to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Returns what the gateway knows of the cluster (its health checks
    /// among it).
    pub fn cluster(&self) -> Arc<Cluster> {
        self.cluster.clone()
    }

    /// Serves clients until the task is aborted.
    pub async fn serve(self) {
        let topology = tokio::spawn(self.cluster.clone().keep_topology());
        let health = tokio::spawn(self.cluster.clone().keep_health());
        let tls = self.tls.map(|(listener, reloading)| {
            let cluster = self.cluster.clone();
            [
                tokio::spawn(reloading.clone().keep_reloading()),
                tokio::spawn(serve_tls(cluster, listener, reloading)),
            ]
        });
        let _stop_tls = AbortOnDrop(tls.into_iter().flatten().collect());
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(session::serve(self.cluster.clone(), stream));
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting a client failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
            if topology.is_finished() || health.is_finished() {
                tracing::error!("a gateway task ended");
                return;
            }
        }
    }
}

/// Aborts its tasks when dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Accepts TLS clients: each handshake (10 s at most) in its own task; a
/// client that fails it is logged and closed.
async fn serve_tls(
    cluster: Arc<Cluster>,
    listener: TcpListener,
    reloading: Arc<polis_tls::Reloading>,
) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting a TLS client failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = reloading.acceptor();
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(polis_tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(stream)) => session::serve(cluster, stream).await,
                Ok(Err(error)) => {
                    tracing::info!(%error, %addr, "gateway: TLS handshake refused")
                }
                Err(_) => tracing::info!(%addr, "gateway: TLS handshake not finished in time"),
            }
        });
    }
}
