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
//! - [`merge`]: replies of several nodes made into one;
//! - [`http`]: the HTTP/JSON API, through `loopback` sessions;
//! - [`rate`]: rate limits per user and per client address;
//!   [`requests`]: the sampled request log.
//!
//! Must not depend on the node's crates (polis-server, polis-raft): it
//! speaks to the nodes only as a Redis client does.

mod admin;
pub mod auth;
pub mod cluster;
mod fanout;
pub mod frame;
pub mod http;
mod info;
mod lane;
mod loopback;
pub mod merge;
pub mod metrics;
pub mod node_stream;
mod policy;
pub mod rate;
mod replies;
pub mod requests;
pub mod route;
mod session;
pub mod topology;
mod transaction;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use cluster::Cluster;
pub use policy::Options;
use policy::Policy;

/// A gateway bound to its address, not yet serving.
pub struct Gateway {
    listener: TcpListener,
    options: Options,
    /// The HTTP/JSON API's listener, if it serves one.
    http: Option<TcpListener>,
    /// The admin address's listener (`/metrics`, the dashboard), if it
    /// serves one, and the nodes' admin addresses the dashboard reads.
    admin: Option<(TcpListener, Vec<String>)>,
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
            options: Options::default(),
            http: None,
            admin: None,
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

    /// Sets the rate limits and the request log's sampling.
    pub fn set_options(&mut self, options: Options) {
        self.options = options;
    }

    /// Adds the HTTP/JSON API at `listen`.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn bind_http(&mut self, listen: SocketAddr) -> Result<(), String> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|error| format!("cannot listen on {listen} (HTTP): {error}"))?;
        self.http = Some(listener);
        Ok(())
    }

    /// Adds the admin address (`/metrics`, the probes, the dashboard) at
    /// `listen`; the dashboard's requests go to the first of
    /// `admin_nodes` (nodes' admin addresses) that answers.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn bind_admin(
        &mut self,
        listen: SocketAddr,
        admin_nodes: Vec<String>,
    ) -> Result<(), String> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|error| format!("cannot listen on {listen} (admin): {error}"))?;
        self.admin = Some((listener, admin_nodes));
        Ok(())
    }

    /// Returns the admin address, if any.
    pub fn admin_local_addr(&self) -> Option<SocketAddr> {
        self.admin
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// Returns the address of the HTTP/JSON API, if any.
    pub fn http_local_addr(&self) -> Option<SocketAddr> {
        self.http
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
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
        let policy = Arc::new(Policy::new(self.options));
        let tls = self.tls.map(|(listener, reloading)| {
            let cluster = self.cluster.clone();
            [
                tokio::spawn(reloading.clone().keep_reloading()),
                tokio::spawn(serve_tls(cluster, policy.clone(), listener, reloading)),
            ]
        });
        let http = self.http.map(|listener| {
            tokio::spawn(http::serve(self.cluster.clone(), policy.clone(), listener))
        });
        let admin = self.admin.map(|(listener, nodes)| {
            tokio::spawn(admin::serve(self.cluster.clone(), listener, nodes))
        });
        let _stop_others =
            AbortOnDrop(tls.into_iter().flatten().chain(http).chain(admin).collect());
        loop {
            let (stream, peer) = polis_tls::accept(&self.listener, "a client").await;
            let cluster = self.cluster.clone();
            tokio::spawn(session::serve(cluster, policy.clone(), stream, peer));
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
    policy: Arc<Policy>,
    listener: TcpListener,
    reloading: Arc<polis_tls::Reloading>,
) {
    loop {
        let (stream, addr) = polis_tls::accept(&listener, "a TLS client").await;
        let acceptor = reloading.acceptor();
        let cluster = cluster.clone();
        let policy = policy.clone();
        tokio::spawn(async move {
            match polis_tls::handshake(acceptor, stream).await {
                Ok(stream) => session::serve(cluster, policy, stream, addr).await,
                Err(error) => tracing::info!(%error, %addr, "gateway: a TLS client was refused"),
            }
        });
    }
}
