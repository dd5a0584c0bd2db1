//! One client connection: read requests, execute them in order, write the
//! replies. Pipelined requests are answered in order; consecutive
//! pipelined writes are proposed to Raft as one log entry.
//!
//! A protocol error is connection-fatal: the error is sent and the
//! connection closed; nothing a client sends can stop the node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use polis_resp::{encode_reply, ProtocolVersion, Reply, ReplyError, RequestDecoder};
use polis_types::limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::clients::ClientHandle;
use crate::dispatch::{self, PlainWrite};
use crate::node::Node;
use crate::stats::Stats;

/// Bytes read from the socket per read call, at most.
const READ_CHUNK: usize = 16 * 1024;
/// Replies buffered before they are flushed mid-pipeline.
const WRITE_FLUSH_BYTES: usize = 64 * 1024;

/// The per-connection state commands may change.
pub struct Session {
    pub client_id: u64,
    pub protocol: ProtocolVersion,
    /// After READONLY: reads may be served by this replica, possibly stale.
    pub readonly: bool,
    /// Set by QUIT: close after replying.
    pub closing: bool,
}

/// Serves one client until it disconnects, is killed, or errs.
pub async fn serve(node: Arc<Node>, mut stream: TcpStream, addr: SocketAddr) {
    let local_addr = stream.local_addr().unwrap_or(addr);
    let maxclients = node.settings.integer("maxclients").max(1) as usize;
    let Some(mut handle) = node.clients.register(addr, local_addr, maxclients) else {
        Stats::bump(&node.stats.connections_rejected);
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    };
    let _ = stream.set_nodelay(true);
    let mut session = Session {
        client_id: handle.id,
        protocol: ProtocolVersion::Resp2,
        readonly: false,
        closing: false,
    };
    if let Err(error) = run(&node, &mut stream, &mut session, &mut handle).await {
        tracing::debug!(%error, %addr, "connection closed");
    }
}

async fn run(
    node: &Arc<Node>,
    stream: &mut TcpStream,
    session: &mut Session,
    handle: &mut ClientHandle,
) -> std::io::Result<()> {
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output = BytesMut::with_capacity(READ_CHUNK);
    let mut decoder = RequestDecoder::new(node.decode_limits());
    loop {
        input.reserve(READ_CHUNK);
        let read = tokio::select! {
            read = stream.read_buf(&mut input) => read?,
            _ = handle.killed.changed() => return Ok(()),
        };
        if read == 0 {
            return Ok(());
        }
        // CONFIG SET may have changed a limit since the last read.
        let limits = node.decode_limits();
        if *decoder.limits() != limits {
            decoder = RequestDecoder::new(limits);
        }
        // Consecutive plain writes wait here and go to Raft as one entry;
        // anything else first flushes them, so commands still take effect
        // in the order the client sent them.
        let mut writes = WriteBatch::default();
        loop {
            let request = match decoder.decode(&mut input) {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(error) => {
                    writes.flush(node, session, &mut output).await;
                    Stats::bump(&node.stats.protocol_errors);
                    let reply = Reply::Error(ReplyError::Protocol(error.to_string()));
                    encode_reply(&reply, session.protocol, &mut output);
                    stream.write_all(&output).await?;
                    return Ok(());
                }
            };
            if request.is_empty() {
                continue;
            }
            note_command(node, session, &request.args);
            match dispatch::plain_write(request.args) {
                Ok(write) => {
                    if !writes.fits(&write) {
                        writes.flush(node, session, &mut output).await;
                    }
                    writes.push(write);
                    continue;
                }
                Err(args) => {
                    writes.flush(node, session, &mut output).await;
                    let reply = dispatch::execute(node, session, args).await;
                    finish(node, session, &reply, &mut output);
                }
            }
            if session.closing {
                stream.write_all(&output).await?;
                return Ok(());
            }
            if output.len() >= WRITE_FLUSH_BYTES {
                stream.write_all(&output).await?;
                output.clear();
            }
        }
        writes.flush(node, session, &mut output).await;
        if !output.is_empty() {
            stream.write_all(&output).await?;
            output.clear();
        }
    }
}

/// Plain writes waiting to be proposed together.
#[derive(Default)]
struct WriteBatch {
    writes: Vec<PlainWrite>,
    bytes: usize,
}

impl WriteBatch {
    /// Returns true if `write` may join the batch within its limits.
    fn fits(&self, write: &PlainWrite) -> bool {
        self.writes.len() < limits::WRITE_BATCH_COMMANDS_MAX
            && (self.writes.is_empty()
                || self.bytes + write.len_bytes() <= limits::WRITE_BATCH_BYTES_MAX)
    }

    fn push(&mut self, write: PlainWrite) {
        self.bytes += write.len_bytes();
        self.writes.push(write);
    }

    /// Proposes the waiting writes and encodes their replies.
    async fn flush(&mut self, node: &Arc<Node>, session: &Session, output: &mut BytesMut) {
        if self.writes.is_empty() {
            return;
        }
        self.bytes = 0;
        let writes = std::mem::take(&mut self.writes);
        for reply in dispatch::write_batch(node, writes).await {
            finish(node, session, &reply, output);
        }
    }
}

fn note_command(node: &Node, session: &Session, args: &[Bytes]) {
    Stats::bump(&node.stats.commands_processed);
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    node.clients.update(session.client_id, |info| {
        info.last_command_at = Instant::now();
        info.last_command.clone_from(&name);
    });
}

fn finish(node: &Node, session: &Session, reply: &Reply, output: &mut BytesMut) {
    if let Reply::Error(error) = reply {
        node.stats.record_error(error);
    }
    encode_reply(reply, session.protocol, output);
}
