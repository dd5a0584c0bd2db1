//! One client of the gateway: its requests are routed as they come, to
//! connections of its own to the nodes (pooled), written in pipelines;
//! the replies go back in the order the requests came, whichever node
//! answers first.
//!
//! ```text
//!  client ─ requests ─> plan ─┬─ answer here (PING, MULTI queueing, errors)
//!                             ├─ one node ──────────> upstream ─┐
//!                             └─ split / fan out ──> upstreams ─┤  frames
//!  client <─ replies in request order <─ owed <─ merge/redirect ─┘
//! ```
//!
//! A reply owed to the client has a sequence number; each upstream
//! connection expects its replies in the order it was sent requests, so
//! a frame finds its place even when a redirect sent a request again
//! elsewhere. Pushes (pub/sub) go out between replies, as they come.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use polis_resp::{DecodeLimits, ProtocolVersion, Reply, ReplyError, RequestDecoder};
use polis_types::limits::GATEWAY_OWED_MAX;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::cluster::Cluster;
use crate::frame::Frame;
use crate::merge::Merging;
use crate::policy::Policy;
use crate::requests::Sampled;
use crate::route::{
    allowed_subscribed, is_barrier, is_stateful, lower, plan, Plan, SessionCommand, Target,
};
use crate::topology::Addr;
use crate::upstream::{poll_read_any, Expect, Upstream};

/// Bytes read from the client per read call, at most.
const READ_CHUNK: usize = 16 * 1024;

/// A reply owed to the client.
pub(crate) struct Owed {
    pub state: OwedState,
    /// Not sent (CLIENT REPLY OFF or SKIP).
    pub silent: bool,
    /// Picked for the request log.
    pub sampled: Option<Box<Sampled>>,
}

pub(crate) enum OwedState {
    Waiting,
    Ready(Bytes),
    Merging(Merging),
}

/// After CLIENT REPLY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyMode {
    On,
    Off,
    SkipNext,
}

/// One client's state.
pub struct Session {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) policy: Arc<Policy>,
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// The request being handled, when it was picked for the log: the
    /// reply it is owed takes it.
    pub(crate) sampling: Option<Box<Sampled>>,
    /// The client's id at the gateway (CLIENT ID).
    pub(crate) id: u64,
    pub(crate) protocol: ProtocolVersion,
    pub(crate) upstreams: Vec<Option<Upstream>>,
    pub(crate) by_addr: HashMap<Addr, usize>,
    pub(crate) owed: VecDeque<Owed>,
    /// The sequence number of `owed[0]`.
    pub(crate) first_seq: u64,
    pub(crate) multi: Option<crate::transaction::Multi>,
    pub(crate) watch: Option<crate::transaction::Watch>,
    pub(crate) reply_mode: ReplyMode,
    pub(crate) readonly: bool,
    pub(crate) closing: bool,
    pub(crate) home: Option<Addr>,
    /// Requests to send again after TRYAGAIN or CLUSTERDOWN, and when.
    pub(crate) retries: Vec<(Instant, Expect)>,
    /// Spreads READONLY reads over replicas.
    pub(crate) pick: usize,
    /// The ACL user the client authenticated as.
    pub(crate) identity: crate::auth::Identity,
    /// The client has state of its own on the nodes (a transaction, a
    /// subscription, READONLY, a name, a blocked command...): its
    /// requests go on connections of its own, not on shared lanes.
    pub(crate) exclusive: bool,
}

/// Serves one client until it leaves: plaintext or TLS (the handshake
/// done).
pub async fn serve<S>(cluster: Arc<Cluster>, policy: Arc<Policy>, stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let id = cluster.new_client();
    cluster.metrics.connections.inc();
    cluster.metrics.clients.inc();
    let mut session = Session {
        id,
        cluster,
        policy,
        peer,
        sampling: None,
        protocol: ProtocolVersion::Resp2,
        upstreams: Vec::new(),
        by_addr: HashMap::new(),
        owed: VecDeque::new(),
        first_seq: 0,
        multi: None,
        watch: None,
        reply_mode: ReplyMode::On,
        readonly: false,
        closing: false,
        home: None,
        retries: Vec::new(),
        pick: 0,
        identity: crate::auth::Identity::default(),
        exclusive: false,
    };
    if let Err(error) = session.run(stream).await {
        tracing::debug!(%error, "gateway client left");
    }
    session.release_all();
    session.cluster.metrics.clients.dec();
    session.cluster.note_connections(session.id, Vec::new());
}

impl Session {
    async fn run<S>(&mut self, mut stream: S) -> std::io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut input = BytesMut::with_capacity(READ_CHUNK);
        let mut output = BytesMut::new();
        let mut decoder = RequestDecoder::new(DecodeLimits::default());
        let mut requests: VecDeque<Vec<Bytes>> = VecDeque::new();
        let mut health = self.cluster.health_changes();
        loop {
            while let Some(args) = requests.front() {
                if self.owed.len() >= GATEWAY_OWED_MAX || self.closing {
                    break;
                }
                // Leaving the lanes waits for what was sent on them, so
                // the node still sees the requests in order.
                let leaves_lanes = !self.exclusive && needs_own(args);
                if (is_barrier(args) || leaves_lanes) && !self.owed.is_empty() {
                    break;
                }
                let Some(args) = requests.pop_front() else {
                    break;
                };
                if leaves_lanes {
                    self.leave_lanes();
                }
                self.handle(args).await;
            }
            self.flush_upstreams().await;
            self.write_ready(&mut output);
            if !output.is_empty() {
                stream.write_all(&output).await?;
                // TLS holds records until flushed; for TCP this is free.
                stream.flush().await?;
                output.clear();
            }
            if self.closing && self.owed.is_empty() {
                return Ok(());
            }
            let reading = requests.is_empty() && !self.closing;
            let next_retry = self.retries.iter().map(|(at, _)| *at).min();
            tokio::select! {
                read = stream.read_buf(&mut input), if reading => {
                    if read? == 0 {
                        return Ok(());
                    }
                    loop {
                        match decoder.decode(&mut input) {
                            Ok(Some(request)) => requests.push_back(request.args),
                            Ok(None) => break,
                            Err(error) => {
                                let reply = Reply::Error(ReplyError::Protocol(error.to_string()));
                                stream.write_all(&Frame::of(&reply, self.protocol).bytes).await?;
                                stream.flush().await?;
                                return Ok(());
                            }
                        }
                    }
                    input.reserve(READ_CHUNK);
                }
                // Every connection that has replies is read in one go, so
                // they go out to the client together.
                () = std::future::poll_fn(|cx| poll_read_any(&mut self.upstreams, cx)) => {
                    self.take_received().await;
                }
                () = sleep_until(next_retry), if next_retry.is_some() => self.retry_due().await,
                changed = health.changed() => {
                    if changed.is_ok() {
                        self.leave_unhealthy();
                    }
                }
            }
        }
    }

    /// Handles one request.
    async fn handle(&mut self, args: Vec<Bytes>) {
        let silent = match self.reply_mode {
            ReplyMode::On => false,
            ReplyMode::Off => true,
            ReplyMode::SkipNext => {
                self.reply_mode = ReplyMode::On;
                true
            }
        };
        self.cluster.metrics.requests.inc();
        self.sampling = self.policy.sample(&args, self.identity.name());
        match self
            .policy
            .admit(&args, self.identity.name(), self.peer.ip())
        {
            Ok(()) => {
                let span = crate::upstream::request_span(&args);
                tracing::Instrument::instrument(self.dispatch(args, silent), span).await;
            }
            Err(refusal) => {
                self.cluster.metrics.rate_limited.inc();
                self.refuse(Reply::Error(refusal), silent);
            }
        }
        if let Some(sampled) = self.sampling.take() {
            // Nothing was owed (a subscription's replies are pushes).
            sampled.log(self.id, self.peer, b"+\r\n");
        }
    }

    /// Handles one request the gateway's policy admitted.
    async fn dispatch(&mut self, mut args: Vec<Bytes>, silent: bool) {
        let users = self.cluster.users();
        if let Some(reply) = crate::auth::check(&users, &mut self.identity, &mut args) {
            self.refuse(reply, silent);
            return;
        }
        let name = args.first().map(|name| lower(name)).unwrap_or_default();
        if self.protocol == ProtocolVersion::Resp2
            && self.subscribed_any()
            && !allowed_subscribed(&name)
        {
            let error = format!(
                "Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            );
            self.answer(Reply::Error(ReplyError::err(error)), silent);
            return;
        }
        let plan = plan(&args);
        let transactional = matches!(
            plan,
            Plan::Session(
                SessionCommand::Multi
                    | SessionCommand::Exec
                    | SessionCommand::Discard
                    | SessionCommand::Watch
                    | SessionCommand::Quit
                    | SessionCommand::Reset
            )
        );
        if self.multi.is_some() && !transactional {
            self.queue(args, &plan, silent).await;
            return;
        }
        match plan {
            Plan::Answer(reply) => self.answer(reply, silent),
            Plan::Session(command) => self.session_command(command, args, silent).await,
            Plan::Send { target, write } => {
                let seq = self.owe(OwedState::Waiting, silent);
                let slot = match target {
                    Target::Slot(slot) => Some(slot),
                    _ => None,
                };
                let expect = Expect {
                    seq,
                    args,
                    slot,
                    attempts: 0,
                    silent: false,
                    retry: slot.is_some(),
                    part: None,
                };
                self.send(&target, expect, !write).await;
            }
            Plan::Fanout { target, merge } => self.fan_out(target, merge, args, silent).await,
            Plan::Split { merge, parts } => self.split(merge, parts, args, silent).await,
            Plan::Scan => self.scan(args, silent).await,
            Plan::Subscription { target } => self.subscription(&target, &name, args).await,
        }
    }

    /// Sends a (P|S)(UN)SUBSCRIBE: its confirmations are pushes, owed to
    /// no request.
    async fn subscription(&mut self, target: &Target, name: &str, args: Vec<Bytes>) {
        let Some(addr) = self.resolve(target, false) else {
            self.answer(
                Reply::Error(ReplyError::ClusterDown("no node reachable".to_owned())),
                false,
            );
            return;
        };
        let Some(id) = self.upstream(&addr).await else {
            self.answer(Reply::Error(unreachable(&addr)), false);
            return;
        };
        if let Some(upstream) = self.upstream_mut(id) {
            upstream.dirty = true;
            upstream.subscribing = true;
            if name.ends_with("subscribe") && !name.contains("un") {
                let count = &mut upstream.subscriptions;
                *count = (*count).max(1);
            }
            upstream.push(&args);
        }
    }

    /// Owes the client `reply`, the gateway's own answer to a request it
    /// did not route (a refusal, AUTH, ACL WHOAMI). An error inside MULTI
    /// makes EXEC abort, as Redis.
    fn refuse(&mut self, reply: Reply, silent: bool) {
        if let (Some(multi), Reply::Error(_)) = (self.multi.as_mut(), &reply) {
            multi.failed = true;
        }
        self.answer(reply, silent);
    }

    /// Owes the client `reply` now.
    pub(crate) fn answer(&mut self, reply: Reply, silent: bool) {
        let frame = Frame::of(&reply, self.protocol);
        self.owe(OwedState::Ready(frame.bytes), silent);
    }

    /// Owes the client a reply; returns its sequence number.
    pub(crate) fn owe(&mut self, state: OwedState, silent: bool) -> u64 {
        let sampled = self.sampling.take();
        self.owed.push_back(Owed {
            state,
            silent,
            sampled,
        });
        self.first_seq + self.owed.len() as u64 - 1
    }

    /// Returns the node a target names now.
    pub(crate) fn resolve(&mut self, target: &Target, read: bool) -> Option<Addr> {
        match target {
            Target::Slot(slot) if read && self.readonly => {
                self.pick = self.pick.wrapping_add(1);
                self.cluster.route_replica(*slot, self.pick)
            }
            Target::Slot(slot) => self.cluster.route(*slot),
            _ => {
                if self
                    .home
                    .as_ref()
                    .is_none_or(|home| !self.cluster.is_healthy(home))
                {
                    self.home = self.cluster.any_node();
                }
                self.home.clone()
            }
        }
    }

    /// Sends `expect`'s request to where `target` routes.
    pub(crate) async fn send(&mut self, target: &Target, expect: Expect, read: bool) {
        // A node that cannot be reached is marked unhealthy, and the next
        // try goes elsewhere.
        for _ in 0..2 {
            let Some(addr) = self.resolve(target, read) else {
                break;
            };
            if self.upstream(&addr).await.is_some() {
                self.send_to(addr, expect, read).await;
                return;
            }
        }
        let reply = Reply::Error(ReplyError::ClusterDown(
            "no node serving this slot is reachable".to_owned(),
        ));
        self.fill(
            expect.seq,
            expect.part,
            Frame::of(&reply, self.protocol),
            self.protocol,
        );
    }

    /// Sends `expect`'s request to `addr`.
    pub(crate) async fn send_to(&mut self, addr: Addr, expect: Expect, read: bool) {
        let Some(id) = self.upstream(&addr).await else {
            let reply = Reply::Error(unreachable(&addr));
            self.fill(
                expect.seq,
                expect.part,
                Frame::of(&reply, self.protocol),
                self.protocol,
            );
            return;
        };
        let readonly = read && self.readonly;
        let Some(upstream) = self.upstream_mut(id) else {
            return;
        };
        if readonly && !upstream.readonly {
            upstream.readonly = true;
            upstream.dirty = true;
            upstream.push(&[Bytes::from_static(b"READONLY")]);
            upstream.expect.push_back(Expect {
                silent: true,
                retry: false,
                args: Vec::new(),
                part: None,
                ..expect.clone()
            });
        }
        if is_stateful(&expect.args) {
            upstream.dirty = true;
        }
        upstream.push_request(&expect.args);
        upstream.expect.push_back(expect);
    }

    /// Returns the number of this client's connection to `addr`, opening
    /// one if needed.
    pub(crate) async fn upstream(&mut self, addr: &Addr) -> Option<usize> {
        if let Some(id) = self.by_addr.get(addr) {
            return Some(*id);
        }
        let id = self.upstreams.len();
        let opened = if self.exclusive {
            Upstream::open(&self.cluster, addr.clone(), self.protocol).await
        } else {
            Upstream::share(&self.cluster, addr.clone(), self.protocol).await
        };
        match opened {
            Ok(upstream) => {
                self.upstreams.push(Some(upstream));
                self.by_addr.insert(addr.clone(), id);
                self.note_connections();
                Some(id)
            }
            Err(error) => {
                tracing::debug!(%error, "gateway cannot reach a node");
                self.cluster.failed(addr);
                None
            }
        }
    }

    pub(crate) fn upstream_mut(&mut self, id: usize) -> Option<&mut Upstream> {
        self.upstreams.get_mut(id).and_then(Option::as_mut)
    }

    /// Tells the cluster this client's connections (for CLIENT UNBLOCK).
    pub(crate) fn note_connections(&self) {
        let connections = self
            .upstreams
            .iter()
            .flatten()
            .filter(|upstream| !upstream.shared())
            .map(|upstream| (upstream.addr.clone(), upstream.node_client_id))
            .collect();
        self.cluster.note_connections(self.id, connections);
    }

    /// Writes what each connection has queued.
    async fn flush_upstreams(&mut self) {
        let mut broken = Vec::new();
        for (id, upstream) in self.upstreams.iter_mut().enumerate() {
            let Some(upstream) = upstream else { continue };
            if let Err(error) = upstream.flush(&self.cluster).await {
                broken.push((id, error.to_string()));
            }
        }
        for (id, why) in broken {
            self.lost(id, &why);
        }
    }

    /// Lets go of the shared lanes (nothing is owed on them): from now on
    /// the client's requests go on connections of its own.
    fn leave_lanes(&mut self) {
        self.exclusive = true;
        for slot in &mut self.upstreams {
            if slot.as_ref().is_some_and(Upstream::shared) {
                if let Some(upstream) = slot.take() {
                    self.by_addr.remove(&upstream.addr);
                    upstream.release(&self.cluster);
                }
            }
        }
        self.home = None;
    }

    /// Ends every connection: the clean ones go back to the pool.
    pub(crate) fn release_all(&mut self) {
        self.by_addr.clear();
        self.home = None;
        for upstream in std::mem::take(&mut self.upstreams).into_iter().flatten() {
            upstream.release(&self.cluster);
        }
        self.note_connections();
    }

    /// Moves the replies ready at the front to `output`.
    fn write_ready(&mut self, output: &mut BytesMut) {
        while let Some(owed) = self.owed.front() {
            let OwedState::Ready(bytes) = &owed.state else {
                break;
            };
            if !owed.silent {
                output.extend_from_slice(bytes);
            }
            if let Some(sampled) = &owed.sampled {
                sampled.log(self.id, self.peer, bytes);
            }
            self.owed.pop_front();
            self.first_seq += 1;
        }
    }

    /// Returns true while a RESP2 client is subscribed somewhere.
    pub(crate) fn subscribed_any(&self) -> bool {
        self.upstreams
            .iter()
            .flatten()
            .any(|upstream| upstream.subscriptions > 0)
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Returns true for requests that need a connection of the client's own
/// to the node: those that leave state on it, those after which the
/// gateway sends some ([`is_stateful`], READONLY), those whose
/// replies are not one frame each (subscriptions: a lane hands out one
/// reply per request), and DEBUG (SLEEP would stall everyone's lane).
fn needs_own(args: &[Bytes]) -> bool {
    let Some(name) = args.first() else {
        return false;
    };
    let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
    if is("auth") {
        // The gateway answers AUTH itself.
        return false;
    }
    if is("client") {
        // Only these leave state on the node's connection; clients send
        // CLIENT SETINFO as they connect, and the nodes take it as is.
        return args.get(1).is_some_and(|sub| {
            ["setname", "tracking", "caching"]
                .iter()
                .any(|word| sub.eq_ignore_ascii_case(word.as_bytes()))
        });
    }
    if is("hello") {
        // Clients send HELLO as they connect. It goes to a lane of the
        // protocol it asks for (HELLO changes no lane's protocol then),
        // unless it names the connection.
        return args.iter().any(|arg| arg.eq_ignore_ascii_case(b"setname"));
    }
    OWN_CONNECTION.iter().any(|word| is(word)) || is_stateful(args)
}

/// Commands beside [`is_stateful`]'s that take a client off the lanes.
const OWN_CONNECTION: &[&str] = &[
    "readonly",
    "debug",
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
];

fn unreachable(addr: &str) -> ReplyError {
    ReplyError::ClusterDown(format!("node {addr} is unreachable"))
}
