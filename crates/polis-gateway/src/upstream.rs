//! A client's connection to one node. The session writes requests to it
//! in order; a reader task splits the node's replies into frames and
//! hands them to the session, tagged with the connection's number.
//!
//! Connections come from the cluster's pool and go back to it when the
//! client leaves, unless the client changed their state (MULTI, WATCH,
//! a subscription, a name, a blocked command...), or replies are owed.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use polis_resp::{ProtocolVersion, Reply};
use polis_types::limits::GATEWAY_UPSTREAM_FRAMES_MAX;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};

use crate::cluster::Cluster;
use crate::frame::Frame;
use crate::node_stream::NodeStream;
use crate::topology::Addr;

/// Bytes read from a node per read call, at most.
const READ_CHUNK: usize = 16 * 1024;

/// What a reader task hands its session.
pub struct Event {
    pub upstream: usize,
    /// A frame, or why the connection ended.
    pub frame: Result<Frame, String>,
}

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

/// One connection to one node.
pub struct Upstream {
    pub addr: Addr,
    pub protocol: ProtocolVersion,
    writer: WriteHalf<NodeStream>,
    out: BytesMut,
    stop: Option<oneshot::Sender<()>>,
    reader: ReaderTask,
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

impl Upstream {
    /// Opens (or leases) a connection to `addr` in `protocol`; its frames
    /// go to `events` tagged `id`.
    ///
    /// # Errors
    /// The node cannot be reached, or refused the protocol.
    pub async fn open(
        cluster: &Arc<Cluster>,
        addr: Addr,
        protocol: ProtocolVersion,
        id: usize,
        events: mpsc::Sender<Event>,
    ) -> Result<Self, String> {
        let (stream, node_client_id) = match cluster.lease(&addr, protocol) {
            Some(leased) => leased,
            None => connect(&addr, protocol).await?,
        };
        let (reader, writer) = tokio::io::split(stream);
        let (stop, stopped) = oneshot::channel();
        let reader = ReaderTask(Some(tokio::spawn(read_frames(
            reader, protocol, id, events, stopped,
        ))));
        Ok(Self {
            addr,
            protocol,
            writer,
            out: BytesMut::new(),
            stop: Some(stop),
            reader,
            expect: VecDeque::new(),
            dirty: false,
            subscribing: false,
            readonly: false,
            subscriptions: 0,
            node_client_id,
        })
    }

    /// Queues `args` to be written at the next flush.
    pub fn push(&mut self, args: &[Bytes]) {
        let request = Reply::Array(args.iter().cloned().map(Reply::Bulk).collect());
        polis_resp::encode_reply(&request, ProtocolVersion::Resp2, &mut self.out);
    }

    /// Writes what was queued.
    ///
    /// # Errors
    /// The connection broke.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = self.out.split();
        self.writer.write_all(&out).await
    }

    /// Returns true when nothing was queued and not written.
    pub fn flushed(&self) -> bool {
        self.out.is_empty()
    }

    /// Ends the connection: back to the pool when it is as fresh and
    /// idle, closed otherwise.
    pub async fn release(mut self, cluster: &Cluster) {
        let poolable = !self.dirty && self.expect.is_empty() && self.out.is_empty();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(mut reader) = self.reader.0.take() else {
            return;
        };
        if !poolable {
            reader.abort();
            return;
        }
        // A reader stuck handing over an unasked frame is not waited for.
        let stopped =
            tokio::time::timeout(std::time::Duration::from_millis(100), &mut reader).await;
        match stopped {
            Ok(Ok(Some((read, leftover)))) if leftover.is_empty() => {
                if read.is_pair_of(&self.writer) {
                    cluster.give_back(
                        self.addr.clone(),
                        self.protocol,
                        read.unsplit(self.writer),
                        self.node_client_id,
                    );
                }
            }
            _ => reader.abort(),
        }
    }
}

/// The task reading a connection's frames, stopped when dropped.
struct ReaderTask(Option<tokio::task::JoinHandle<Stopped>>);

/// What a stopped reader hands back: the read half, and what it read past
/// the last frame.
type Stopped = Option<(ReadHalf<NodeStream>, BytesMut)>;

impl Drop for ReaderTask {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
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

/// Reads frames until the connection ends or the session stops it;
/// returns the read half and what was read past the last frame when
/// stopped.
async fn read_frames(
    mut reader: ReadHalf<NodeStream>,
    protocol: ProtocolVersion,
    id: usize,
    events: mpsc::Sender<Event>,
    mut stopped: oneshot::Receiver<()>,
) -> Stopped {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let ended = |why: String| Event {
        upstream: id,
        frame: Err(why),
    };
    loop {
        loop {
            match Frame::split(&mut buf, protocol) {
                Ok(Some(frame)) => {
                    if events
                        .send(Event {
                            upstream: id,
                            frame: Ok(frame),
                        })
                        .await
                        .is_err()
                    {
                        return None;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    let _ = events.send(ended(error.to_string())).await;
                    return None;
                }
            }
        }
        buf.reserve(READ_CHUNK);
        tokio::select! {
            _ = &mut stopped => return Some((reader, buf)),
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) => {
                    let _ = events.send(ended("the node closed the connection".to_owned())).await;
                    return None;
                }
                Ok(_) => {}
                Err(error) => {
                    let _ = events.send(ended(error.to_string())).await;
                    return None;
                }
            },
        }
    }
}

/// The capacity of a session's event channel.
pub const EVENTS_MAX: usize = GATEWAY_UPSTREAM_FRAMES_MAX;
