//! A TCP link that can be cut: a proxy on loopback in front of one
//! process, for traffic the nemesis must be able to partition (Redis
//! replication has no fault injection of its own). Cutting it closes
//! every connection through it at once, losing whatever was in flight,
//! and refuses new ones until it is healed, as a network partition would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Connections open through one link at most.
const CONNECTIONS_MAX: usize = 64;

/// A proxy from a local port to `target`.
pub struct Link {
    addr: String,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: JoinHandle<()>,
}

impl Link {
    /// Starts a link to `target` on a port the OS picks.
    ///
    /// # Errors
    /// Returns an error if no port can be bound.
    pub async fn start(target: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let acceptor = tokio::spawn(accept(listener, target, cut.clone(), connections.clone()));
        Ok(Self {
            addr,
            cut,
            connections,
            acceptor,
        })
    }

    /// Returns the address to connect to instead of the target's.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Cuts the link: open connections close, new ones are refused.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for connection in connections.drain(..) {
            connection.abort();
        }
    }

    /// Heals the link.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.cut();
        self.acceptor.abort();
    }
}

async fn accept(
    listener: TcpListener,
    target: String,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        if cut.load(Ordering::SeqCst) {
            continue; // Dropped: the peer sees the connection close.
        }
        let mut connections = connections.lock().unwrap_or_else(PoisonError::into_inner);
        connections.retain(|connection| !connection.is_finished());
        if connections.len() >= CONNECTIONS_MAX {
            continue;
        }
        let target = target.clone();
        connections.push(tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        }));
    }
}
