//! One client connection: read requests, execute them in order, write the
//! replies. Pipelined requests are answered in order; the pipeline
//! ([`crate::pipeline`]) proposes consecutive writes as one log entry per
//! shard.
//!
//! Pub/sub messages ([`crate::pubsub::Mailbox`]) are written while the
//! connection waits for the next request, and after a pipeline's replies:
//! between replies, never inside one. MONITOR's lines come the same way.
//!
//! Once a pipeline ran, each of its commands is recorded
//! ([`crate::observe`]): INFO commandstats, the slow log, the latency
//! monitor and the monitors' lines.
//!
//! A protocol error is connection-fatal: the error is sent and the
//! connection closed; nothing a client sends can stop the node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use polis_commands::CommandSpec;
use polis_resp::{encode_reply, ProtocolVersion, Reply, ReplyError, RequestDecoder};
use polis_types::limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::clients::ClientHandle;
use crate::node::Node;
use crate::observe::{self, Observer};
use crate::pipeline;
use crate::pubsub::{Mailbox, Taken};
use crate::stats::Stats;

/// Bytes read from the socket per read call, at most.
const READ_CHUNK: usize = 16 * 1024;
/// Replies buffered before they are flushed mid-pipeline.
const WRITE_FLUSH_BYTES: usize = 64 * 1024;

/// A client's connection: plaintext, or TLS over TCP.
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl ClientStream {
    /// Returns the TCP connection under it.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(stream) => stream,
            Self::Tls(stream) => stream.get_ref().0,
        }
    }

    /// Reads what the client sent into `input`: Some(0) at its end, None
    /// when the socket's readiness was spurious. Marks `busy` before the
    /// bytes leave the socket (plaintext) or as they are decrypted (TLS).
    /// Cancel-safe: a cancelled call read nothing.
    async fn read_input(
        &mut self,
        input: &mut BytesMut,
        busy: &crate::pubsub::input::Input,
    ) -> std::io::Result<Option<usize>> {
        match self {
            Self::Plain(stream) => {
                stream.readable().await?;
                // Busy before the bytes leave the socket: a publisher sees
                // them there or sees the flag (`pubsub/input.rs`).
                busy.begin();
                match stream.try_read_buf(input) {
                    Ok(read) => Ok(Some(read)),
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                        busy.end();
                        Ok(None)
                    }
                    Err(error) => Err(error),
                }
            }
            Self::Tls(stream) => {
                let read = stream.read_buf(input).await?;
                busy.begin();
                Ok(Some(read))
            }
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Plain(stream) => stream.write_all(bytes).await,
            Self::Tls(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
        }
    }
}

/// The per-connection state commands may change.
pub struct Session {
    pub client_id: u64,
    pub protocol: ProtocolVersion,
    /// After READONLY: reads may be served by this replica, possibly stale.
    pub readonly: bool,
    /// Set by QUIT: close after replying.
    pub closing: bool,
    /// Close without replying: a reply could mislead (a blocked pop whose
    /// retry's outcome is unknown).
    pub abort: bool,
    /// The transaction being queued, after MULTI.
    pub multi: Option<crate::transaction::Queued>,
    /// The keys WATCH read, with their versions.
    pub watched: Vec<crate::transaction::Watched>,
    /// Where this client's pub/sub messages wait to be written.
    pub mailbox: Arc<Mailbox>,
    /// Subscribed to at least one channel, pattern or shard channel: a
    /// RESP2 client may then only (un)subscribe, PING, QUIT and RESET.
    pub subscribed: bool,
    /// After CLIENT REPLY OFF: no replies but pushes.
    pub reply_off: bool,
    /// After CLIENT REPLY SKIP: the next command's reply is not sent.
    pub reply_skip_next: bool,
    /// After MONITOR: the client sees every command the node runs, and
    /// may no longer touch the keyspace (until RESET).
    pub monitor: bool,
    /// The ACL user this connection is authenticated as.
    pub identity: crate::acl::Identity,
    /// The client came over TLS: redirects and CLUSTER SLOTS, SHARDS and
    /// NODES name other nodes' TLS addresses.
    pub tls: bool,
    /// Shards whose leadership a ReadIndex round confirmed after the
    /// pipeline being executed arrived: its later reads of them need no
    /// round of their own (see `pipeline::execute`).
    pub confirmed: Vec<polis_types::GroupId>,
    /// The trace context of a gateway's `POLIS.TRACE`, for the next request.
    pub trace_parent: Option<String>,
}

impl Session {
    /// Returns the state of a new connection of client `client_id`.
    pub fn new(client_id: u64) -> Self {
        Self {
            client_id,
            protocol: ProtocolVersion::Resp2,
            readonly: false,
            closing: false,
            abort: false,
            multi: None,
            watched: Vec::new(),
            mailbox: Mailbox::new(client_id),
            subscribed: false,
            reply_off: false,
            reply_skip_next: false,
            monitor: false,
            identity: crate::acl::Identity::default(),
            tls: false,
            confirmed: Vec::new(),
            trace_parent: None,
        }
    }
}

/// Serves one client of the TLS port: the handshake first (at most
/// [`polis_tls::HANDSHAKE_TIMEOUT`]); a client that fails it is logged,
/// counted and closed.
pub async fn serve_tls(
    node: Arc<Node>,
    stream: TcpStream,
    addr: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
) {
    match polis_tls::handshake(acceptor, stream).await {
        Ok(stream) => serve(node, ClientStream::Tls(Box::new(stream)), addr).await,
        Err(error) => {
            Stats::bump(&node.stats.tls_handshake_failures);
            tracing::info!(%error, %addr, "a TLS client was refused");
        }
    }
}

/// Serves one client until it disconnects, is killed, or errs.
pub async fn serve(node: Arc<Node>, mut stream: ClientStream, addr: SocketAddr) {
    let local_addr = stream.tcp().local_addr().unwrap_or(addr);
    let maxclients = node.settings.integer("maxclients").max(1) as usize;
    let Some(mut handle) = node.clients.register(addr, local_addr, maxclients) else {
        Stats::bump(&node.stats.connections_rejected);
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    };
    let _ = stream.tcp().set_nodelay(true);
    let mut session = Session::new(handle.id);
    session.tls = matches!(stream, ClientStream::Tls(_));
    let mut observer = Observer::new(addr);
    if let Err(error) = run(&node, &mut stream, &mut session, &mut handle, &mut observer).await {
        tracing::debug!(%error, %addr, "connection closed");
    }
    node.pubsub.forget(session.client_id);
    node.monitors.remove(session.client_id);
}

async fn run(
    node: &Arc<Node>,
    stream: &mut ClientStream,
    session: &mut Session,
    handle: &mut ClientHandle,
    observer: &mut Observer,
) -> std::io::Result<()> {
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut output = Output::default();
    let mut decoder = RequestDecoder::new(node.decode_limits());
    loop {
        input.reserve(READ_CHUNK);
        let read = tokio::select! {
            read = stream.read_input(&mut input, &session.mailbox.input) => match read? {
                Some(read) => read,
                None => continue,
            },
            // Pub/sub messages while the client is idle.
            () = session.mailbox.ready() => {
                take_pushes(session, &mut output)?;
                flush(stream, &mut output, session, handle).await?;
                continue;
            }
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
        // Every request read so far, executed as one pipeline, at most
        // PIPELINE_DEPTH_MAX at a time.
        loop {
            let mut requests = Vec::new();
            let mut protocol_error = None;
            // A traced request runs alone, in its span (see `trace_mark`).
            let mut traced = None;
            while requests.len() < limits::PIPELINE_DEPTH_MAX && traced.is_none() {
                match decoder.decode(&mut input) {
                    Ok(Some(request)) if request.is_empty() => {}
                    Ok(Some(request)) => match trace_mark(&request.args) {
                        Some(parent) if requests.is_empty() => session.trace_parent = Some(parent),
                        Some(parent) => {
                            session.trace_parent = Some(parent);
                            break;
                        }
                        None if session.trace_parent.is_some() => {
                            traced = session.trace_parent.take();
                            requests.push(request.args);
                        }
                        None => requests.push(request.args),
                    },
                    Ok(None) => break,
                    Err(error) => {
                        protocol_error = Some(error);
                        break;
                    }
                }
            }
            let full = requests.len() == limits::PIPELINE_DEPTH_MAX;
            // A blocked request waits until its client goes away at most
            // (a client that only half-closes after its requests still
            // gets the replies of requests that do not block).
            let may_block = requests.iter().any(|args| crate::blocking::may_block(args));
            let specs: Vec<Option<&'static CommandSpec>> =
                requests.iter().map(|args| command_spec(args)).collect();
            // The arguments, only when the slow log or a monitor may
            // need them once the requests ran (they move into the
            // pipeline).
            let kept = observe::keep(node, &requests);
            let started = Instant::now();
            let span = request_span(node, traced.as_deref(), &specs);
            let replies = tokio::select! {
                replies = pipeline::execute(node, session, requests).instrument(span) => replies,
                () = gone(stream.tcp()), if may_block => return Ok(()),
                _ = handle.killed.changed() => return Ok(()),
            };
            if session.abort {
                // Nothing more is answered: see `Session::abort`.
                return Ok(());
            }
            // Time is shared out over the pipeline; a blocked request's
            // wait is not the command's time, so none is counted then.
            let usec = if may_block || specs.is_empty() {
                0
            } else {
                started.elapsed().as_micros() as u64 / specs.len() as u64
            };
            observer.record(node, session.client_id, &specs, kept, &replies, usec);
            for reply in replies {
                finish(node, session, &reply, &mut output.bytes);
                if output.bytes.len() >= WRITE_FLUSH_BYTES {
                    flush(stream, &mut output, session, handle).await?;
                }
            }
            // Messages published while the pipeline ran follow all of its
            // replies, never one of them: a SUBSCRIBE's confirmation (a
            // reply) is then always written before the channel's first
            // message. PIPELINE_DEPTH_MAX bounds how long they wait.
            take_pushes(session, &mut output)?;
            if let Some(error) = protocol_error {
                Stats::bump(&node.stats.protocol_errors);
                let reply = Reply::Error(ReplyError::Protocol(error.to_string()));
                encode_reply(&reply, session.protocol, &mut output.bytes);
                flush(stream, &mut output, session, handle).await?;
                return Ok(());
            }
            if session.closing {
                flush(stream, &mut output, session, handle).await?;
                return Ok(());
            }
            if !full {
                break;
            }
        }
        if session.subscribed {
            session.mailbox.input.watch(stream.tcp());
        }
        session.mailbox.input.end();
        flush(stream, &mut output, session, handle).await?;
    }
}

/// Replies and pushes encoded but not yet written.
#[derive(Default)]
struct Output {
    bytes: BytesMut,
    /// What the pushes among `bytes` count for in the client's mailbox.
    push_bytes: u64,
}

/// Encodes the pushes waiting in the client's mailbox after what `output`
/// holds.
///
/// # Errors
/// When the client passed its pub/sub output limit: the connection closes.
fn take_pushes(session: &Session, output: &mut Output) -> std::io::Result<()> {
    match session.mailbox.take() {
        Taken::Closed => Err(output_limit_passed(session)),
        Taken::Pushes(pushes, bytes) => {
            for push in &pushes {
                encode_reply(push, session.protocol, &mut output.bytes);
            }
            output.push_bytes += bytes;
            Ok(())
        }
    }
}

fn output_limit_passed(session: &Session) -> std::io::Error {
    tracing::info!(
        client = session.client_id,
        "client closed for overcoming its pub/sub output buffer limit"
    );
    std::io::Error::other("pub/sub output buffer limit passed")
}

/// Writes what `output` holds. A client that does not read is still
/// disconnected meanwhile when it passes its pub/sub output limit or is
/// killed.
async fn flush(
    stream: &mut ClientStream,
    output: &mut Output,
    session: &Session,
    handle: &mut ClientHandle,
) -> std::io::Result<()> {
    if output.bytes.is_empty() {
        return Ok(());
    }
    tokio::select! {
        written = stream.write_all(&output.bytes) => written?,
        () = session.mailbox.closed() => return Err(output_limit_passed(session)),
        _ = handle.killed.changed() => return Err(std::io::Error::other("client killed")),
    }
    output.bytes.clear();
    if output.push_bytes > 0 {
        session.mailbox.written(output.push_bytes);
        output.push_bytes = 0;
    }
    Ok(())
}

/// Completes when the client closed its side of the connection; pends for
/// ever once it sent more (pipelined) bytes, which wait their turn.
async fn gone(stream: &TcpStream) {
    let mut probe = [0u8; 1];
    match stream.peek(&mut probe).await {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// Returns the `traceparent` of a gateway's `POLIS.TRACE` (which precedes
/// the traced request it names, and is answered with nothing).
fn trace_mark(args: &[Bytes]) -> Option<String> {
    match args {
        [name, parent] if name.eq_ignore_ascii_case(polis_trace::TRACE_COMMAND.as_bytes()) => {
            Some(String::from_utf8_lossy(parent).into_owned())
        }
        _ => None,
    }
}

/// The span of a pipeline, when spans are exported: within the trace of
/// `traced` (a request a gateway traced), or one this node may begin.
fn request_span(
    node: &Node,
    traced: Option<&str>,
    specs: &[Option<&'static CommandSpec>],
) -> tracing::Span {
    if !polis_trace::enabled() {
        return tracing::Span::none();
    }
    let command = specs
        .first()
        .copied()
        .flatten()
        .map_or("", |spec| spec.name);
    let span = tracing::trace_span!(
        target: polis_trace::TARGET,
        "node.request",
        node = %node.config.node_id,
        command,
        commands = specs.len(),
    );
    if let Some(parent) = traced {
        polis_trace::adopt(&span, parent);
    }
    span
}

/// Returns the command table's spec of a request (`xgroup|create`'s for
/// a subcommand); None for an unknown command.
fn command_spec(args: &[Bytes]) -> Option<&'static CommandSpec> {
    let spec = polis_commands::lookup(args.first()?)?;
    Some(polis_commands::resolve(spec, args))
}

fn finish(node: &Node, session: &Session, reply: &Reply, output: &mut BytesMut) {
    if let Reply::Error(error) = reply {
        node.stats.record_error(error);
    }
    match reply {
        Reply::Error(ReplyError::Moved { slot, addr } | ReplyError::Ask { slot, addr })
            if session.tls =>
        {
            // A TLS client is sent to the target's TLS port (Redis does
            // so under tls-cluster), when the target published one.
            let Some(tls_addr) = node
                .view()
                .and_then(|view| view.map().tls_addr_of_resp(addr).map(str::to_owned))
            else {
                return encode_reply(reply, session.protocol, output);
            };
            let (slot, addr) = (*slot, tls_addr);
            let redirect = match reply {
                Reply::Error(ReplyError::Ask { .. }) => ReplyError::Ask { slot, addr },
                _ => ReplyError::Moved { slot, addr },
            };
            encode_reply(&Reply::Error(redirect), session.protocol, output);
        }
        _ => encode_reply(reply, session.protocol, output),
    }
}
