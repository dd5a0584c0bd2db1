//! A client's connection to one node. The session writes requests to it
//! in order and reads its replies itself: no task per connection, so a
//! reply reaches the client without a hop between tasks.
//!
//! A connection is the client's own, or a lane it shares with other
//! clients ([`crate::lane`]) while it has no state of its own on the
//! nodes. Own connections come from the cluster's pool and go back to it
//! when the client leaves, unless the client changed their state (MULTI,
//! WATCH, a subscription, a name, a blocked command...), or replies are
//! owed.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use polis_resp::{ProtocolVersion, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::cluster::Cluster;
use crate::frame::Frame;
use crate::lane::{Batch, Lane};
use crate::node_stream::NodeStream;
use crate::topology::Addr;

/// Bytes read from a node per read call, at most.
const READ_CHUNK: usize = 16 * 1024;

/// What the session waits for from this connection, in order.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The reply's place among those owed to the client.
    pub seq: u64,
    /// The request, to send again after a redirect.
    pub args: Vec<Bytes>,
    /// Where it was routed from: a slot to route again, or a node.
    pub slot: Option<u16>,
    pub attempts: usize,
    /// The reply goes nowhere (MULTI's +OK and the +QUEUED of a
    /// transaction the gateway queued, a READONLY it sent itself).
    pub silent: bool,
    /// The command may be sent again after a redirect (not inside a
    /// transaction).
    pub retry: bool,
    /// Its part in a merge of several replies.
    pub part: Option<usize>,
}

/// How requests reach the node.
enum Link {
    /// A connection of the client's own.
    Own(NodeStream),
    /// A lane shared with other clients; its replies come on `from`.
    Shared {
        lane: Arc<Lane>,
        to: mpsc::UnboundedSender<Received>,
        from: mpsc::UnboundedReceiver<Received>,
        took: VecDeque<Received>,
    },
}

/// One connection to one node.
pub struct Upstream {
    pub addr: Addr,
    pub protocol: ProtocolVersion,
    link: Link,
    /// Requests queued in `out` (each is owed one reply).
    queued: usize,
    /// Read from the node, not yet split into frames.
    input: BytesMut,
    /// Queued for the node, not yet written.
    out: BytesMut,
    /// Why the connection ended, once it did; the frames read before stay
    /// to be taken.
    ended: Option<String>,
    pub expect: VecDeque<Expect>,
    /// Its state differs from a fresh connection's: it is closed, not
    /// pooled, when the client leaves.
    pub dirty: bool,
    /// Subscription commands were sent on it and not all undone: RESP2
    /// frames shaped as pub/sub messages are pushes.
    pub subscribing: bool,
    /// READONLY was sent on it.
    pub readonly: bool,
    /// Channels and patterns subscribed on it, as the last confirmation
    /// counted them.
    pub subscriptions: i64,
    /// The id the node gave this connection (CLIENT ID there).
    pub node_client_id: i64,
}

/// What a connection has for its session.
pub enum Received {
    Frame(Frame),
    /// The connection ended (closed, broken, or unreadable), after every
    /// frame it delivered.
    Ended(String),
}

impl Upstream {
    /// Opens (or leases) a connection to `addr` in `protocol`.
    ///
    /// # Errors
    /// The node cannot be reached, or refused the protocol.
    pub async fn open(
        cluster: &Arc<Cluster>,
        addr: Addr,
        protocol: ProtocolVersion,
    ) -> Result<Self, String> {
        let (stream, node_client_id) = match cluster.lease(&addr, protocol) {
            Some(leased) => leased,
            None => connect(&addr, protocol).await?,
        };
        Ok(Self::over(
            addr,
            protocol,
            Link::Own(stream),
            node_client_id,
        ))
    }

    /// Opens a link to `addr` over one of the cluster's lanes there, the
    /// least busy (a new one while they are all busy and more may open).
    ///
    /// # Errors
    /// The node cannot be reached, or refused the protocol.
    pub async fn share(
        cluster: &Arc<Cluster>,
        addr: Addr,
        protocol: ProtocolVersion,
    ) -> Result<Self, String> {
        let lane = match cluster.lane(&addr, protocol) {
            Some(lane) => lane,
            None => {
                let (stream, _) = connect(&addr, protocol).await?;
                cluster.add_lane(&addr, protocol, Lane::start(stream, protocol))
            }
        };
        let (to, from) = mpsc::unbounded_channel();
        let link = Link::Shared {
            lane,
            to,
            from,
            took: VecDeque::new(),
        };
        Ok(Self::over(addr, protocol, link, 0))
    }

    fn over(addr: Addr, protocol: ProtocolVersion, link: Link, node_client_id: i64) -> Self {
        Self {
            addr,
            protocol,
            link,
            queued: 0,
            input: BytesMut::new(),
            out: BytesMut::new(),
            ended: None,
            expect: VecDeque::new(),
            dirty: false,
            subscribing: false,
            readonly: false,
            subscriptions: 0,
            node_client_id,
        }
    }

    /// Whether this is a lane shared with other clients.
    pub fn shared(&self) -> bool {
        matches!(self.link, Link::Shared { .. })
    }

    /// Queues a client's request (see [`Upstream::push`]), preceded, when
    /// it belongs to a sampled trace, by `POLIS.TRACE` with its context:
    /// the node answers that with nothing and traces the request within.
    pub fn push_request(&mut self, args: &[Bytes]) {
        if polis_trace::enabled() {
            if let Some(parent) = polis_trace::traceparent(&tracing::Span::current()) {
                self.push(&[
                    Bytes::from_static(polis_trace::TRACE_COMMAND.as_bytes()),
                    Bytes::from(parent),
                ]);
                // No reply comes for it.
                self.queued -= 1;
            }
        }
        self.push(args);
    }

    /// Queues `args` to be written at the next flush, as a RESP array of
    /// bulk strings.
    pub fn push(&mut self, args: &[Bytes]) {
        self.queued += 1;
        let mut digits = itoa::Buffer::new();
        let size: usize = args.iter().map(|arg| arg.len() + 16).sum();
        self.out.reserve(size + 16);
        self.out.put_u8(b'*');
        self.out.put_slice(digits.format(args.len()).as_bytes());
        self.out.put_slice(b"\r\n");
        for arg in args {
            self.out.put_u8(b'$');
            self.out.put_slice(digits.format(arg.len()).as_bytes());
            self.out.put_slice(b"\r\n");
            self.out.put_slice(arg);
            self.out.put_slice(b"\r\n");
        }
    }

    /// Writes what was queued.
    ///
    /// # Errors
    /// The connection broke.
    pub async fn flush(&mut self, cluster: &Cluster) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let count = std::mem::take(&mut self.queued);
        // Nothing sent before waits for a reply: a less busy lane may
        // take these without changing their order.
        let idle = self.expect.len() <= count;
        match &mut self.link {
            Link::Own(stream) => {
                let result = stream.write_all(&self.out).await;
                self.out.clear();
                result?;
                // TLS holds records until flushed; for TCP this is free.
                stream.flush().await
            }
            Link::Shared { lane, to, .. } => {
                if idle && lane.in_flight() > 0 {
                    if let Some(other) = cluster.lane(&self.addr, self.protocol) {
                        if other.in_flight() < lane.in_flight() {
                            *lane = other;
                        }
                    }
                }
                lane.send(Batch {
                    bytes: self.out.split().freeze(),
                    count,
                    to: to.clone(),
                });
                Ok(())
            }
        }
    }

    /// Returns true when nothing was queued and not written.
    pub fn flushed(&self) -> bool {
        self.out.is_empty()
    }

    /// Takes the next thing the connection has: a whole frame, or its end
    /// once every frame before it was taken (a reply growing past
    /// `GATEWAY_REPLY_BYTES_MAX` ends it: [`Frame::split`]).
    pub fn take_received(&mut self) -> Option<Received> {
        if let Link::Shared { took, .. } = &mut self.link {
            return took
                .pop_front()
                .or_else(|| self.ended.take().map(Received::Ended));
        }
        match Frame::split(&mut self.input, self.protocol) {
            Ok(Some(frame)) => Some(Received::Frame(frame)),
            Ok(None) => self.ended.take().map(Received::Ended),
            Err(error) => Some(Received::Ended(error.to_string())),
        }
    }

    /// Reads what the node sent, without waiting: ready when something
    /// was read or the connection ended.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.ended.is_some() {
            return Poll::Ready(());
        }
        let stream = match &mut self.link {
            Link::Own(stream) => stream,
            Link::Shared { from, took, .. } => {
                while let Poll::Ready(received) = from.poll_recv(cx) {
                    match received {
                        Some(received) => took.push_back(received),
                        // Never: the link holds a sender.
                        None => {
                            self.ended = Some("the shared connection closed".to_owned());
                            break;
                        }
                    }
                }
                return if took.is_empty() && self.ended.is_none() {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                };
            }
        };
        self.input.reserve(READ_CHUNK);
        let read = pin!(stream.read_buf(&mut self.input)).poll(cx);
        match read {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(0)) => {
                self.ended = Some("the node closed the connection".to_owned());
                Poll::Ready(())
            }
            Poll::Ready(Ok(_)) => Poll::Ready(()),
            Poll::Ready(Err(error)) => {
                self.ended = Some(error.to_string());
                Poll::Ready(())
            }
        }
    }

    /// Ends the connection: back to the pool when it is as fresh and
    /// idle, closed otherwise.
    pub fn release(self, cluster: &Cluster) {
        let Link::Own(stream) = self.link else {
            return;
        };
        let poolable = !self.dirty
            && self.expect.is_empty()
            && self.out.is_empty()
            && self.input.is_empty()
            && self.ended.is_none();
        if poolable {
            cluster.give_back(self.addr, self.protocol, stream, self.node_client_id);
        }
    }
}

/// Reads from every connection that has something, without waiting:
/// ready when at least one read something or ended (their frames are
/// then taken with [`Upstream::take_received`]); otherwise each is woken for.
/// The span of a client's request through the gateway (routing it and
/// sending it on), when spans are exported: the nodes' spans of the
/// request are its children.
pub fn request_span(args: &[Bytes]) -> tracing::Span {
    if !polis_trace::enabled() {
        return tracing::Span::none();
    }
    let command = args
        .first()
        .map(|name| String::from_utf8_lossy(name).to_lowercase());
    tracing::trace_span!(
        target: polis_trace::TARGET,
        "gateway.request",
        command = command.as_deref().unwrap_or(""),
    )
}

pub fn poll_read_any(upstreams: &mut [Option<Upstream>], cx: &mut Context<'_>) -> Poll<()> {
    let mut ready = false;
    for upstream in upstreams.iter_mut().flatten() {
        if upstream.poll_read(cx).is_ready() {
            ready = true;
        }
    }
    if ready {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}

/// Connects to `addr`, switches the connection to RESP3 with HELLO when
/// asked, and returns it with the id the node gave it.
async fn connect(addr: &str, protocol: ProtocolVersion) -> Result<(NodeStream, i64), String> {
    let mut stream = NodeStream::dial(addr).await?;
    let mut handshake = crate::auth::handshake()
        .map(|auth| auth.to_vec())
        .unwrap_or_default();
    let authenticating = !handshake.is_empty();
    if protocol == ProtocolVersion::Resp3 {
        handshake.extend_from_slice(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n");
    }
    handshake.extend_from_slice(b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n");
    stream
        .write_all(&handshake)
        .await
        .map_err(|error| error.to_string())?;
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let wanted = usize::from(authenticating)
        + if protocol == ProtocolVersion::Resp3 {
            2
        } else {
            1
        };
    while frames.len() < wanted {
        if let Some(frame) = Frame::split(&mut buf, protocol).map_err(|error| error.to_string())? {
            frames.push(frame);
            continue;
        }
        if stream
            .read_buf(&mut buf)
            .await
            .map_err(|error| error.to_string())?
            == 0
        {
            return Err(format!("{addr} closed the connection"));
        }
    }
    if let Some(error) = frames.iter().find_map(Frame::error) {
        return Err(format!("{addr} refused the connection: {error}"));
    }
    let id = match frames.last().and_then(|frame| frame.value(protocol)) {
        Some(Reply::Integer(id)) => id,
        _ => 0,
    };
    Ok((stream, id))
}
