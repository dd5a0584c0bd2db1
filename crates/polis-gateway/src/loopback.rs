//! A Redis client inside the gateway: a session of its own, reached over
//! an in-memory pipe instead of TCP. The HTTP API speaks through it, so an
//! HTTP request is routed, authenticated, rate-limited and logged exactly
//! as the same command sent over RESP would be.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use polis_resp::{ProtocolVersion, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::cluster::Cluster;
use crate::frame::Frame;
use crate::policy::Policy;

/// Bytes the pipe buffers each way before a writer waits.
const PIPE_BYTES: usize = 64 * 1024;

/// One session, spoken to as a client would.
pub(crate) struct Loopback {
    stream: DuplexStream,
    input: BytesMut,
}

/// The session ended or sent something unreadable.
#[derive(Debug, thiserror::Error)]
#[error("the gateway's session ended: {0}")]
pub(crate) struct Closed(String);

impl Loopback {
    /// Starts a session for a client at `peer`; it ends when this is
    /// dropped (the pipe closes, and the session releases its upstream
    /// connections to the pool).
    pub fn open(cluster: Arc<Cluster>, policy: Arc<Policy>, peer: SocketAddr) -> Self {
        let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
        tokio::spawn(crate::session::serve(cluster, policy, theirs, peer));
        Self {
            stream: ours,
            input: BytesMut::new(),
        }
    }

    /// Sends one command and returns its reply (RESP2).
    ///
    /// # Errors
    /// The session ended first.
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, Closed> {
        self.stream
            .write_all(&crate::topology::encode_command(args))
            .await
            .map_err(|error| Closed(error.to_string()))?;
        loop {
            let frame = Frame::split(&mut self.input, ProtocolVersion::Resp2)
                .map_err(|error| Closed(error.to_string()))?;
            if let Some(frame) = frame {
                return frame
                    .value(ProtocolVersion::Resp2)
                    .ok_or_else(|| Closed("an unreadable reply".into()));
            }
            let read = self
                .stream
                .read_buf(&mut self.input)
                .await
                .map_err(|error| Closed(error.to_string()))?;
            if read == 0 {
                return Err(Closed("the pipe closed".into()));
            }
        }
    }
}
