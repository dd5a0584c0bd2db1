//! Lanes: connections to a node that many clients share, as twemproxy
//! shares its server connections. Sessions hand a lane their requests in
//! batches; the lane writes what every session gave it meanwhile in one
//! write, so the node reads pipelines (one system call, one ReadIndex
//! round per shard, one log entry per shard for the writes) where one
//! connection per client would give it a request at a time.
//!
//! ```text
//!  session ─ batch (bytes, count, its channel) ─> writer ─ one write ─> node
//!  session <─ frames, in order ── reader <─ replies, in order ─────────┘
//! ```
//!
//! The node answers a connection in order, so the reader hands the
//! replies to the sessions in the order the writer wrote their batches.
//! Only requests that leave no state on the node's connection go on a
//! lane (a session with state of its own uses connections of its own),
//! and a session keeps a lane while it waits for replies from it, so its
//! requests to one node are still executed in the order it sent them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use polis_resp::ProtocolVersion;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use crate::frame::Frame;
use crate::node_stream::NodeStream;
use crate::upstream::Received;

/// Bytes read from the node per read call, at most.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes of batches joined into one write, at most (a batch is never cut).
const WRITE_BYTES: usize = 256 * 1024;

/// Requests of one session, encoded, and where their replies go.
pub(crate) struct Batch {
    pub bytes: Bytes,
    pub count: usize,
    pub to: mpsc::UnboundedSender<Received>,
}

/// One shared connection to a node.
pub struct Lane {
    batches: mpsc::UnboundedSender<Batch>,
    state: Arc<State>,
}

/// What the writer and the reader share.
struct State {
    waiting: Mutex<Waiting>,
    /// Requests handed to the lane and not answered yet.
    in_flight: AtomicUsize,
    /// Set once `Waiting::ended` is: read on every pick of a lane,
    /// without its lock.
    ended: AtomicBool,
}

/// The sessions owed replies, in the order their requests were written.
/// Bounded by the sessions (each owes at most `GATEWAY_OWED_MAX`).
#[derive(Default)]
struct Waiting {
    queue: VecDeque<(usize, mpsc::UnboundedSender<Received>)>,
    /// Why the lane ended, once it did.
    ended: Option<String>,
}

impl Lane {
    /// Opens a lane over `stream`, a connection in `protocol` the
    /// gateway authenticated.
    pub(crate) fn start(stream: NodeStream, protocol: ProtocolVersion) -> Arc<Self> {
        let (batches, receiver) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            waiting: Mutex::new(Waiting::default()),
            in_flight: AtomicUsize::new(0),
            ended: AtomicBool::new(false),
        });
        let (reading, writing) = tokio::io::split(stream);
        tokio::spawn(write(state.clone(), writing, receiver));
        tokio::spawn(read(state.clone(), reading, protocol));
        Arc::new(Self { batches, state })
    }

    /// Hands the lane a batch; false when it ended (the batch is then
    /// answered with the end).
    pub(crate) fn send(&self, batch: Batch) -> bool {
        self.state
            .in_flight
            .fetch_add(batch.count, Ordering::Relaxed);
        match self.batches.send(batch) {
            Ok(()) => true,
            Err(mpsc::error::SendError(batch)) => {
                let _ = batch.to.send(Received::Ended(self.why_ended()));
                false
            }
        }
    }

    /// Requests handed to the lane and not answered yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.state.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn ended(&self) -> bool {
        self.state.ended.load(Ordering::Acquire)
    }

    fn why_ended(&self) -> String {
        self.state
            .lock()
            .ended
            .clone()
            .unwrap_or_else(|| "the shared connection closed".to_owned())
    }
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ends the lane: every session still owed a reply is told why.
    fn end(&self, why: String) {
        let mut waiting = self.lock();
        if waiting.ended.is_none() {
            tracing::debug!(%why, "gateway lane to a node ended");
            waiting.ended = Some(why.clone());
            self.ended.store(true, Ordering::Release);
        }
        for (_, to) in waiting.queue.drain(..) {
            let _ = to.send(Received::Ended(why.clone()));
        }
    }
}

/// Writes the batches as they come, each session's owed replies noted
/// before its bytes go out (so the reader always finds whose a reply is).
async fn write(
    state: Arc<State>,
    mut stream: WriteHalf<NodeStream>,
    mut batches: mpsc::UnboundedReceiver<Batch>,
) {
    let mut out = BytesMut::new();
    while let Some(first) = batches.recv().await {
        // The sessions woken with this one add their batches first: one
        // write carries them all.
        tokio::task::yield_now().await;
        {
            let mut waiting = state.lock();
            let mut next = Some(first);
            while let Some(batch) = next.take() {
                match &waiting.ended {
                    Some(why) => {
                        let _ = batch.to.send(Received::Ended(why.clone()));
                    }
                    None if batch.count == 0 => {}
                    None => {
                        waiting.queue.push_back((batch.count, batch.to));
                        out.extend_from_slice(&batch.bytes);
                    }
                }
                if out.len() < WRITE_BYTES {
                    next = batches.try_recv().ok();
                }
            }
        }
        if out.is_empty() {
            continue;
        }
        let written = match stream.write_all(&out).await {
            Ok(()) => stream.flush().await,
            Err(error) => Err(error),
        };
        out.clear();
        if let Err(error) = written {
            state.end(format!("writing to the node: {error}"));
            break;
        }
    }
    // Every session let go of the lane, or it broke: the node sees the
    // end, and the reader then ends too.
    let _ = stream.shutdown().await;
}

/// Reads the node's replies and hands each to the session owed it.
async fn read(state: Arc<State>, mut stream: ReadHalf<NodeStream>, protocol: ProtocolVersion) {
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut frames = Vec::new();
    let why = loop {
        input.reserve(READ_CHUNK);
        match stream.read_buf(&mut input).await {
            Ok(0) => break "the node closed the connection".to_owned(),
            Ok(_) => {}
            Err(error) => break error.to_string(),
        }
        let split = loop {
            match Frame::split(&mut input, protocol) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break None,
                Err(error) => break Some(error.to_string()),
            }
        };
        if let Err(why) = deliver(&state, &mut frames, protocol) {
            break why;
        }
        if let Some(why) = split {
            break why;
        }
    };
    state.end(why);
}

/// Hands `frames` to the sessions owed them, in order.
fn deliver(
    state: &State,
    frames: &mut Vec<Frame>,
    protocol: ProtocolVersion,
) -> Result<(), String> {
    if frames.is_empty() {
        return Ok(());
    }
    let mut waiting = state.lock();
    for frame in frames.drain(..) {
        // Nothing sent on a lane subscribes or tracks: a push is not a
        // reply to anyone.
        if protocol == ProtocolVersion::Resp3 && frame.is_push() {
            continue;
        }
        let Some((count, to)) = waiting.queue.front_mut() else {
            return Err("the node sent a reply nobody asked for".to_owned());
        };
        let _ = to.send(Received::Frame(frame));
        *count -= 1;
        if *count == 0 {
            waiting.queue.pop_front();
        }
        state.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use polis_resp::{DecodeLimits, RequestDecoder};
    use tokio::net::TcpListener;

    use super::*;

    /// A node that answers each request with its first argument, and
    /// closes the connection at `QUIT`.
    async fn echo_node() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut decoder = RequestDecoder::new(DecodeLimits::default());
            let mut input = BytesMut::new();
            loop {
                if stream.read_buf(&mut input).await.unwrap_or(0) == 0 {
                    return;
                }
                let mut out = Vec::new();
                while let Ok(Some(request)) = decoder.decode(&mut input) {
                    let first = request.args.first().cloned().unwrap_or_default();
                    if &first[..] == b"QUIT" {
                        let _ = stream.write_all(&out).await;
                        return;
                    }
                    out.extend_from_slice(b"+");
                    out.extend_from_slice(&first);
                    out.extend_from_slice(b"\r\n");
                }
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
        addr
    }

    fn batch(words: &[&str], to: &mpsc::UnboundedSender<Received>) -> Batch {
        let mut bytes = BytesMut::new();
        for word in words {
            bytes.extend_from_slice(format!("*1\r\n${}\r\n{word}\r\n", word.len()).as_bytes());
        }
        Batch {
            bytes: bytes.freeze(),
            count: words.len(),
            to: to.clone(),
        }
    }

    async fn next(from: &mut mpsc::UnboundedReceiver<Received>) -> String {
        match from.recv().await {
            Some(Received::Frame(frame)) => String::from_utf8_lossy(&frame.bytes).into_owned(),
            Some(Received::Ended(why)) => format!("ended: {why}"),
            None => "closed".to_owned(),
        }
    }

    #[tokio::test]
    async fn each_session_gets_its_own_replies_in_order_and_the_end() {
        let addr = echo_node().await;
        let stream = NodeStream::dial(&addr).await.expect("dial");
        let lane = Lane::start(stream, ProtocolVersion::Resp2);
        let (to_a, mut from_a) = mpsc::unbounded_channel();
        let (to_b, mut from_b) = mpsc::unbounded_channel();
        // Interleaved batches of two sessions, given before any reply.
        assert!(lane.send(batch(&["a1", "a2"], &to_a)));
        assert!(lane.send(batch(&["b1"], &to_b)));
        assert!(lane.send(batch(&[], &to_b)));
        assert!(lane.send(batch(&["a3"], &to_a)));
        assert!(lane.send(batch(&["b2", "b3"], &to_b)));
        for expected in ["+a1\r\n", "+a2\r\n", "+a3\r\n"] {
            assert_eq!(next(&mut from_a).await, expected);
        }
        for expected in ["+b1\r\n", "+b2\r\n", "+b3\r\n"] {
            assert_eq!(next(&mut from_b).await, expected);
        }
        assert_eq!(lane.in_flight(), 0);

        // The node closes with a request unanswered: its session is told,
        // and so is a batch given after the end.
        assert!(lane.send(batch(&["a4", "QUIT"], &to_a)));
        assert_eq!(next(&mut from_a).await, "+a4\r\n");
        assert!(next(&mut from_a).await.starts_with("ended: "));
        assert!(lane.ended());
        lane.send(batch(&["b4"], &to_b));
        assert!(next(&mut from_b).await.starts_with("ended: "));
    }
}
