//! A PUBLISH after its receivers' earlier requests.
//!
//! A single-threaded Redis executes requests in the order they reach it,
//! whatever the connection: a client that sends UNSUBSCRIBE on one
//! connection and, without waiting for the answer, PUBLISH on another, is
//! no longer counted (Redis's own test suite does this). polis serves each
//! connection on its own task, so the PUBLISH could run first. Before it
//! counts, a PUBLISH waits, briefly and boundedly, until none of the
//! channel's local subscribers has a request read but not yet executed, or
//! bytes waiting on its socket.

use std::net::TcpStream as PeekStream;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use polis_commands::glob::glob_match;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Mailbox, PubSub};

/// How long a PUBLISH waits at most for its receivers' earlier requests:
/// a subscriber that keeps sending cannot hold publishers up.
const EARLIER_REQUESTS_WAIT: Duration = Duration::from_millis(10);

/// What a subscriber's connection has not executed yet.
#[derive(Default)]
pub struct Input {
    /// A duplicate of the connection's socket, to look at what waits
    /// there without reading it; set once the client subscribes.
    socket: OnceLock<PeekStream>,
    /// Requests read and not yet executed.
    busy: AtomicBool,
}

impl Input {
    /// Watches `stream` from now on (once; later calls do nothing). Where
    /// the socket cannot be duplicated, only requests already read count.
    pub fn watch(&self, stream: &TcpStream) {
        if self.socket.get().is_some() {
            return;
        }
        if let Ok(fd) = stream.as_fd().try_clone_to_owned() {
            // The duplicate shares the original's non-blocking mode.
            let _ = self.socket.set(PeekStream::from(fd));
        }
    }

    /// The connection is about to read requests and execute them (set
    /// before the read: the bytes are on the socket or this is set).
    pub fn begin(&self) {
        self.busy.store(true, Ordering::SeqCst);
    }

    /// The connection executed every request it read.
    pub fn end(&self) {
        self.busy.store(false, Ordering::SeqCst);
    }

    /// Returns true while requests are read and not yet executed, or
    /// bytes wait on the socket.
    fn pending(&self) -> bool {
        if self.busy.load(Ordering::SeqCst) {
            return true;
        }
        let mut byte = [0u8; 1];
        self.socket
            .get()
            .is_some_and(|socket| matches!(socket.peek(&mut byte), Ok(read) if read > 0))
    }
}

impl PubSub {
    /// Returns the local receivers of `channel` (a shard channel when
    /// `sharded`) but `publisher`.
    fn receivers(&self, channel: &Bytes, sharded: bool, publisher: u64) -> Vec<Arc<Mailbox>> {
        let state = self.lock();
        let mut found: Vec<Arc<Mailbox>> = Vec::new();
        let mut add = |subscribers: &super::Subscribers| {
            found.extend(
                subscribers
                    .iter()
                    .filter(|(id, _)| **id != publisher)
                    .map(|(_, mailbox)| mailbox.clone()),
            );
        };
        if sharded {
            state
                .shard_channels
                .get(channel)
                .into_iter()
                .for_each(&mut add);
        } else {
            state.channels.get(channel).into_iter().for_each(&mut add);
            state
                .patterns
                .iter()
                .filter(|(pattern, _)| glob_match(pattern, channel))
                .for_each(|(_, subscribers)| add(subscribers));
        }
        found
    }

    /// Waits, at most [`EARLIER_REQUESTS_WAIT`], until no local receiver
    /// of `channel` but `publisher` has requests it has not executed.
    pub async fn after_receivers_requests(&self, channel: &Bytes, sharded: bool, publisher: u64) {
        let deadline = Instant::now() + EARLIER_REQUESTS_WAIT;
        let mut receivers = self.receivers(channel, sharded, publisher);
        loop {
            receivers.retain(|mailbox| mailbox.input.pending());
            if receivers.is_empty() || Instant::now() >= deadline {
                return;
            }
            tokio::task::yield_now().await;
        }
    }
}
