//! The gateway's connections to the nodes: plain TCP, or TLS with its
//! client certificate once [`set_upstream_tls`] was called
//! (`polis gateway --tls-upstream`). Every connection to a node, pooled,
//! dedicated or asking (topology, users, health), is dialed here.

use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How long dialing a node (connection and TLS handshake) may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

static UPSTREAM_TLS: OnceLock<polis_tls::ClientTls> = OnceLock::new();

/// Makes every later connection to a node TLS, with `tls`; nodes are then
/// reached at the `tls-port` CLUSTER SHARDS shows. Once per process.
pub fn set_upstream_tls(tls: polis_tls::ClientTls) {
    let _ = UPSTREAM_TLS.set(tls);
}

/// Whether connections to the nodes are TLS.
pub fn upstream_tls() -> bool {
    UPSTREAM_TLS.get().is_some()
}

/// One connection to a node.
pub enum NodeStream {
    Plain(TcpStream),
    Tls(Box<polis_tls::ClientTlsStream<TcpStream>>),
}

impl NodeStream {
    /// Dials `addr`, over TLS when the gateway was told to.
    ///
    /// # Errors
    /// The node cannot be reached in time, or the handshake failed.
    pub async fn dial(addr: &str) -> Result<Self, String> {
        let work = async {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|error| format!("connecting to {addr}: {error}"))?;
            let _ = stream.set_nodelay(true);
            match UPSTREAM_TLS.get() {
                None => Ok(Self::Plain(stream)),
                Some(tls) => Ok(Self::Tls(Box::new(tls.handshake(stream, addr).await?))),
            }
        };
        tokio::time::timeout(DIAL_TIMEOUT, work)
            .await
            .map_err(|_| format!("connecting to {addr} timed out"))?
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(stream) => stream,
            Self::Tls(stream) => stream.get_ref().0,
        }
    }

    /// Returns false if the node closed the idle connection (end of file
    /// or an error waits to be read). Unread bytes of an idle plaintext
    /// connection also make it unusable; a TLS one may hold records of the
    /// session (tickets), which its next read takes.
    pub fn idle_and_open(&self) -> bool {
        let mut probe = [0u8; 1];
        let mut buf = ReadBuf::new(&mut probe);
        let waker = futures::task::noop_waker();
        let mut context = Context::from_waker(&waker);
        match self.tcp().poll_peek(&mut context, &mut buf) {
            Poll::Pending => true,
            Poll::Ready(Ok(0) | Err(_)) => false,
            Poll::Ready(Ok(_)) => matches!(self, Self::Tls(_)),
        }
    }
}

impl AsyncRead for NodeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NodeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write(cx, data),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}
