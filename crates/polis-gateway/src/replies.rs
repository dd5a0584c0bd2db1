//! Replies from the nodes: each frame goes to the request its connection
//! expects next (or out at once, when it is a push); redirects and
//! refusals that did not apply a request send it again; a connection
//! that ends fails what it owed with an outcome-unknown error.

use std::time::Instant;

use bytes::Bytes;
use polis_resp::{ProtocolVersion, Reply, ReplyError};
use polis_types::limits::GATEWAY_ATTEMPTS_MAX;

use crate::frame::Frame;
use crate::route::{lower, Target};
use crate::session::{OwedState, Session};
use crate::topology::Addr;
use crate::upstream::{Expect, Received, Upstream};

impl Session {
    /// Handles what the connections read: their frames, in order, and
    /// their ends.
    pub(crate) async fn take_received(&mut self) {
        // Handling a frame may open connections: they are read next time.
        for id in 0..self.upstreams.len() {
            while let Some(received) = self.upstream_mut(id).and_then(Upstream::take_received) {
                match received {
                    Received::Frame(frame) => self.on_frame(id, frame).await,
                    Received::Ended(why) => {
                        self.lost(id, &why);
                        break;
                    }
                }
            }
        }
    }

    /// Handles a frame of connection `id`.
    async fn on_frame(&mut self, id: usize, frame: Frame) {
        let Some(upstream) = self.upstream_mut(id) else {
            return;
        };
        let protocol = upstream.protocol;
        let push = match protocol {
            ProtocolVersion::Resp3 => frame.is_push(),
            ProtocolVersion::Resp2 => {
                upstream.expect.is_empty() || (upstream.subscribing && looks_like_push(&frame))
            }
        };
        if push {
            if let Some(count) = confirmation_count(&frame, protocol) {
                upstream.subscriptions = count;
            }
            self.owe(OwedState::Ready(frame.bytes), false);
            return;
        }
        let Some(expect) = upstream.expect.pop_front() else {
            return;
        };
        let addr = upstream.addr.clone();
        self.settle(expect, frame, protocol, addr).await;
    }

    /// Takes a request's reply: redirects and refusals that did not apply
    /// it are retried; anything else goes to its place.
    pub(crate) async fn settle(
        &mut self,
        mut expect: Expect,
        frame: Frame,
        protocol: ProtocolVersion,
        from: Addr,
    ) {
        if let Some(error) = frame
            .error()
            .filter(|_| expect.retry && expect.attempts + 1 < GATEWAY_ATTEMPTS_MAX)
        {
            expect.attempts += 1;
            let mut words = error.split(' ');
            match (words.next(), words.next(), words.next()) {
                (Some("MOVED"), Some(slot), Some(addr)) => {
                    if let Ok(slot) = slot.parse() {
                        self.cluster.moved(slot, addr);
                    }
                    self.send_to(Addr::from(addr), expect, false).await;
                    return;
                }
                (Some("ASK"), Some(_), Some(addr)) => {
                    let addr = Addr::from(addr);
                    let asking = Expect {
                        silent: true,
                        retry: false,
                        args: vec![Bytes::from_static(b"ASKING")],
                        part: None,
                        ..expect.clone()
                    };
                    self.send_to(addr.clone(), asking, false).await;
                    self.send_to(addr, expect, false).await;
                    return;
                }
                (Some("TRYAGAIN" | "CLUSTERDOWN"), _, _) => {
                    let backoff = std::time::Duration::from_millis(20 << expect.attempts.min(5));
                    tracing::debug!(node = &*from, %error, "retrying");
                    self.retries.push((Instant::now() + backoff, expect));
                    return;
                }
                _ => {}
            }
        }
        if expect.silent {
            return;
        }
        self.fill(expect.seq, expect.part, frame, protocol);
    }

    /// Puts a reply (or a part of one) in its place.
    pub(crate) fn fill(
        &mut self,
        seq: u64,
        part: Option<usize>,
        frame: Frame,
        protocol: ProtocolVersion,
    ) {
        let Some(index) = seq.checked_sub(self.first_seq) else {
            return;
        };
        let client_protocol = self.protocol;
        let Some(owed) = self.owed.get_mut(index as usize) else {
            return;
        };
        match (&mut owed.state, part) {
            (OwedState::Merging(merging), Some(part)) => {
                let value = frame.value(protocol).unwrap_or_else(|| {
                    Reply::Error(ReplyError::err("unreadable reply from a node"))
                });
                if let Some(reply) = merging.take(part, value) {
                    owed.state = OwedState::Ready(Frame::of(&reply, client_protocol).bytes);
                }
            }
            (OwedState::Waiting, _) => owed.state = OwedState::Ready(frame.bytes),
            _ => {}
        }
    }

    /// Sends again the requests whose backoff has passed.
    pub(crate) async fn retry_due(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retries)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.retries = later;
        for (_, expect) in due {
            match expect.slot {
                Some(slot) => self.send(&Target::Slot(slot), expect, false).await,
                None => {
                    let reply = Reply::Error(ReplyError::TryAgain("try again later".to_owned()));
                    self.fill(
                        expect.seq,
                        expect.part,
                        Frame::of(&reply, self.protocol),
                        self.protocol,
                    );
                }
            }
        }
    }

    /// A connection ended: the replies it owed are lost, and whether the
    /// requests were applied is unknown.
    pub(crate) fn lost(&mut self, id: usize, why: &str) {
        let Some(upstream) = self.upstreams.get_mut(id).and_then(Option::take) else {
            return;
        };
        self.by_addr.remove(&upstream.addr);
        self.note_connections();
        if self.home.as_ref() == Some(&upstream.addr) {
            self.home = None;
        }
        if !upstream.expect.is_empty() {
            self.cluster.failed(&upstream.addr);
        }
        let reply = Reply::Error(ReplyError::err(format!(
            "connection to node {} lost ({why}): the command may or may not have been applied",
            upstream.addr
        )));
        let frame = Frame::of(&reply, self.protocol);
        for expect in &upstream.expect {
            if !expect.silent {
                self.fill(expect.seq, expect.part, frame.clone(), self.protocol);
            }
        }
    }

    /// Drops the connections to nodes that turned unhealthy.
    pub(crate) fn leave_unhealthy(&mut self) {
        let gone: Vec<usize> = self
            .upstreams
            .iter()
            .enumerate()
            .filter_map(|(id, upstream)| {
                upstream
                    .as_ref()
                    .filter(|upstream| !self.cluster.is_healthy(&upstream.addr))
                    .map(|_| id)
            })
            .collect();
        for id in gone {
            self.lost(id, "the node is unhealthy");
        }
    }
}

const PUSH_KINDS: &[&str] = &[
    "message",
    "pmessage",
    "smessage",
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "pong",
];

/// Returns true for a RESP2 frame shaped as a pub/sub message.
fn looks_like_push(frame: &Frame) -> bool {
    if frame.bytes.first() != Some(&b'*') {
        return false;
    }
    match frame.value(ProtocolVersion::Resp2) {
        Some(Reply::Array(items)) => match items.first() {
            Some(Reply::Bulk(kind)) => PUSH_KINDS.contains(&lower(kind).as_str()),
            _ => false,
        },
        _ => false,
    }
}

/// Returns the subscription count a (un)subscribe confirmation carries.
fn confirmation_count(frame: &Frame, protocol: ProtocolVersion) -> Option<i64> {
    let (Some(Reply::Array(items)) | Some(Reply::Push(items))) = frame.value(protocol) else {
        return None;
    };
    let Some(Reply::Bulk(kind)) = items.first() else {
        return None;
    };
    if !lower(kind).ends_with("subscribe") {
        return None;
    }
    match items.last() {
        Some(Reply::Integer(count)) => Some(*count),
        _ => None,
    }
}
