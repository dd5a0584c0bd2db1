//! Publish/subscribe on one node: which clients listen to which channels,
//! patterns and shard channels, and one mailbox per client that
//! publishers fill without ever waiting.
//!
//! ```text
//!  PUBLISH here, or a peer's forward ──> PubSub::publish ──> Mailbox of each subscriber
//!                                            (under one lock)     │ bytes counted; past the
//!                                                                 │ output limit: closed, the
//!                                                                 │ client forgotten
//!  connection: select! { request, mailbox.ready(), killed } <─────┘ writes pushes between pipelines
//! ```
//!
//! Nothing here is logged or replicated: a message reaches the clients
//! subscribed at the moment it is published, at most once, as in Redis.
//! A client that does not read its messages is disconnected once its
//! pending pushes pass `client-output-buffer-limit`'s pubsub class (hard
//! limit at once, soft limit after its seconds), as Redis does.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use polis_commands::glob::glob_match;
use polis_resp::Reply;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a subscription listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A channel, by name (SUBSCRIBE).
    Channel,
    /// Every channel matching a glob pattern (PSUBSCRIBE).
    Pattern,
    /// A shard channel, by name (SSUBSCRIBE): its slot decides its shard.
    Shard,
}

impl Kind {
    fn subscribed(self) -> &'static str {
        match self {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
            Kind::Shard => "ssubscribe",
        }
    }

    fn unsubscribed(self) -> &'static str {
        match self {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
            Kind::Shard => "sunsubscribe",
        }
    }
}

/// `client-output-buffer-limit` for the pubsub class: a client whose
/// pending pushes reach `hard_bytes`, or stay at `soft_bytes` or more for
/// longer than `soft_seconds`, is disconnected. Zero disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard_bytes: u64,
    pub soft_bytes: u64,
    pub soft_seconds: u64,
}

impl OutputLimit {
    /// Redis's default for the pubsub class: `pubsub 32mb 8mb 60`.
    pub const REDIS_DEFAULT: OutputLimit = OutputLimit {
        hard_bytes: 32 * 1024 * 1024,
        soft_bytes: 8 * 1024 * 1024,
        soft_seconds: 60,
    };
}

impl Default for OutputLimit {
    fn default() -> Self {
        Self::REDIS_DEFAULT
    }
}

/// Bytes a push is counted as: its encoded size, near enough (each
/// element's payload plus room for its header).
fn push_len(items: &[&[u8]]) -> u64 {
    const HEADER_BYTES: usize = 16;
    let payload: usize = items.iter().map(|item| item.len() + HEADER_BYTES).sum();
    (payload + HEADER_BYTES) as u64
}

#[derive(Default)]
struct Queue {
    /// The pushes waiting, each with the bytes it counts for.
    pushes: VecDeque<(Reply, u64)>,
    /// Bytes of the pushes queued or taken but not yet written.
    bytes: u64,
    /// Since when `bytes` has been at the soft limit or over it.
    soft_since: Option<Instant>,
    /// Over the limit: the client is to be disconnected.
    closed: bool,
}

/// One client's pending pushes. Publishers add to it under the
/// registry's lock and never wait; the client's connection takes them.
pub struct Mailbox {
    client_id: u64,
    queue: Mutex<Queue>,
    ready: Notify,
    /// What the client sent and the connection has not executed yet.
    pub input: input::Input,
}

/// What [`Mailbox::take`] found.
#[derive(Debug, PartialEq)]
pub enum Taken {
    /// The pushes waiting, oldest first, and the bytes they count for
    /// until [`Mailbox::written`] releases them.
    Pushes(Vec<Reply>, u64),
    /// The client passed its output limit: disconnect it.
    Closed,
}

impl Mailbox {
    /// Returns an empty mailbox for client `client_id`.
    pub fn new(client_id: u64) -> Arc<Self> {
        Arc::new(Self {
            client_id,
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
            input: input::Input::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds `push`, counted as `bytes`; returns false when the mailbox is
    /// (now) closed because the client passed `limit`. MONITOR's lines
    /// come this way too ([`crate::monitor`]).
    pub(crate) fn deliver(
        &self,
        push: Reply,
        bytes: u64,
        limit: &OutputLimit,
        now: Instant,
    ) -> bool {
        let mut queue = self.lock();
        if queue.closed {
            return false;
        }
        let pending = queue.bytes.saturating_add(bytes);
        let hard = limit.hard_bytes > 0 && pending >= limit.hard_bytes;
        let soft = limit.soft_bytes > 0 && pending >= limit.soft_bytes;
        let soft_expired = match (soft, queue.soft_since) {
            (false, _) => {
                queue.soft_since = None;
                false
            }
            (true, None) => {
                queue.soft_since = Some(now);
                limit.soft_seconds == 0
            }
            (true, Some(since)) => {
                now.saturating_duration_since(since) > Duration::from_secs(limit.soft_seconds)
            }
        };
        if hard || soft_expired {
            queue.closed = true;
            queue.pushes = VecDeque::new();
            queue.bytes = 0;
        } else {
            queue.pushes.push_back((push, bytes));
            queue.bytes = pending;
        }
        let open = !queue.closed;
        drop(queue);
        self.ready.notify_one();
        open
    }

    /// Waits until pushes are waiting or the mailbox closed. Only the
    /// client's connection waits on it.
    pub async fn ready(&self) {
        loop {
            {
                let queue = self.lock();
                if queue.closed || !queue.pushes.is_empty() {
                    return;
                }
            }
            // A notification sent since the check above is kept as a
            // permit: nothing is missed.
            self.ready.notified().await;
        }
    }

    /// Waits until the mailbox closes.
    pub async fn closed(&self) {
        loop {
            if self.lock().closed {
                return;
            }
            self.ready.notified().await;
        }
    }

    /// Takes every waiting push; their bytes still count against the
    /// limit until [`Mailbox::written`].
    pub fn take(&self) -> Taken {
        let mut queue = self.lock();
        if queue.closed {
            return Taken::Closed;
        }
        let mut bytes = 0;
        let pushes = queue
            .pushes
            .drain(..)
            .map(|(push, len)| {
                bytes += len;
                push
            })
            .collect();
        Taken::Pushes(pushes, bytes)
    }

    /// Releases `bytes` taken with [`Mailbox::take`], once written to the
    /// client's socket.
    pub fn written(&self, bytes: u64) {
        let mut queue = self.lock();
        queue.bytes = queue.bytes.saturating_sub(bytes);
        if queue.bytes == 0 {
            queue.soft_since = None;
        }
    }

    /// Returns true once the client passed its output limit.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// One client's subscriptions.
#[derive(Default)]
struct Subscriptions {
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    shard_channels: BTreeSet<Bytes>,
}

impl Subscriptions {
    fn of(&mut self, kind: Kind) -> &mut BTreeSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// The count a (un)subscribe push reports, as Redis counts it: plain
    /// channels and patterns together, shard channels apart.
    fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Channel | Kind::Pattern => self.channels.len() + self.patterns.len(),
            Kind::Shard => self.shard_channels.len(),
        }
    }

    fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }
}

/// Subscribers of one name, by client id.
type Subscribers = BTreeMap<u64, Arc<Mailbox>>;

/// Gives each of `subscribers` the push made of `fields`; returns how
/// many got it, and adds those it put past their limit to `overflowed`.
fn deliver_all(
    subscribers: &Subscribers,
    fields: &[&Bytes],
    limit: &OutputLimit,
    now: Instant,
    overflowed: &mut Vec<u64>,
) -> usize {
    let slices: Vec<&[u8]> = fields.iter().map(|field| field.as_ref()).collect();
    let bytes = push_len(&slices);
    for (id, mailbox) in subscribers {
        let push = Reply::Push(
            fields
                .iter()
                .map(|&field| Reply::Bulk(field.clone()))
                .collect(),
        );
        if !mailbox.deliver(push, bytes, limit, now) {
            overflowed.push(*id);
        }
    }
    subscribers.len()
}

#[derive(Default)]
struct State {
    limit: OutputLimit,
    channels: HashMap<Bytes, Subscribers>,
    patterns: HashMap<Bytes, Subscribers>,
    shard_channels: HashMap<Bytes, Subscribers>,
    clients: HashMap<u64, Subscriptions>,
}

impl State {
    fn index(&mut self, kind: Kind) -> &mut HashMap<Bytes, Subscribers> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// Removes client `id`'s subscription to `name`; returns true if it
    /// had one.
    fn remove(&mut self, id: u64, kind: Kind, name: &Bytes) -> bool {
        let removed = self
            .clients
            .get_mut(&id)
            .is_some_and(|subscriptions| subscriptions.of(kind).remove(name));
        if removed {
            let index = self.index(kind);
            if let Some(subscribers) = index.get_mut(name) {
                subscribers.remove(&id);
                if subscribers.is_empty() {
                    index.remove(name);
                }
            }
        }
        removed
    }

    fn forget(&mut self, id: u64) {
        let Some(mut subscriptions) = self.clients.remove(&id) else {
            return;
        };
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            let index = self.index(kind);
            for name in std::mem::take(subscriptions.of(kind)) {
                if let Some(subscribers) = index.get_mut(&name) {
                    subscribers.remove(&id);
                    if subscribers.is_empty() {
                        index.remove(&name);
                    }
                }
            }
        }
    }
}

/// The answer to a (un)subscribe: one push per name, and the client's
/// subscriptions of every kind afterwards.
#[derive(Debug, PartialEq)]
pub struct Changed {
    pub pushes: Vec<Reply>,
    pub total: usize,
}

impl Changed {
    /// Returns the pushes as one reply.
    pub fn reply(self) -> Reply {
        Reply::Frames(self.pushes)
    }
}

/// The node's subscriptions.
#[derive(Default)]
pub struct PubSub {
    state: Mutex<State>,
}

impl PubSub {
    /// Returns an empty registry that disconnects subscribers past `limit`.
    pub fn new(limit: OutputLimit) -> Self {
        let pubsub = Self::default();
        pubsub.set_output_limit(limit);
        pubsub
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets the output limit that pushes from now on are checked against.
    pub fn set_output_limit(&self, limit: OutputLimit) {
        self.lock().limit = limit;
    }

    /// Subscribes the owner of `mailbox` to `names` of `kind`: one push
    /// per name, as Redis answers (a name subscribed twice counts once).
    pub fn subscribe(&self, mailbox: &Arc<Mailbox>, kind: Kind, names: &[Bytes]) -> Changed {
        let id = mailbox.client_id;
        let mut state = self.lock();
        let mut pushes = Vec::with_capacity(names.len());
        for name in names {
            let added = state
                .clients
                .entry(id)
                .or_default()
                .of(kind)
                .insert(name.clone());
            if added {
                state
                    .index(kind)
                    .entry(name.clone())
                    .or_default()
                    .insert(id, mailbox.clone());
            }
            let count = state.clients.get(&id).map_or(0, |subs| subs.count(kind));
            pushes.push(Reply::Push(vec![
                Reply::bulk(kind.subscribed()),
                Reply::Bulk(name.clone()),
                Reply::Integer(count as i64),
            ]));
        }
        let total = state.clients.get(&id).map_or(0, Subscriptions::total);
        Changed { pushes, total }
    }

    /// Unsubscribes client `id` from `names` of `kind`, or from every
    /// one of that kind when `names` is empty. One push per name; with
    /// nothing to unsubscribe from, one push with a null name (Redis's
    /// answer).
    pub fn unsubscribe(&self, id: u64, kind: Kind, names: &[Bytes]) -> Changed {
        let mut state = self.lock();
        let names: Vec<Bytes> = if names.is_empty() {
            state
                .clients
                .get_mut(&id)
                .map(|subs| subs.of(kind).iter().cloned().collect())
                .unwrap_or_default()
        } else {
            names.to_vec()
        };
        let count = |state: &State| state.clients.get(&id).map_or(0, |subs| subs.count(kind));
        let mut pushes = Vec::with_capacity(names.len().max(1));
        for name in names {
            state.remove(id, kind, &name);
            pushes.push(Reply::Push(vec![
                Reply::bulk(kind.unsubscribed()),
                Reply::Bulk(name),
                Reply::Integer(count(&state) as i64),
            ]));
        }
        if pushes.is_empty() {
            pushes.push(Reply::Push(vec![
                Reply::bulk(kind.unsubscribed()),
                Reply::Null,
                Reply::Integer(count(&state) as i64),
            ]));
        }
        let total = state.clients.get(&id).map_or(0, Subscriptions::total);
        if total == 0 {
            state.clients.remove(&id);
        }
        Changed { pushes, total }
    }

    /// Drops every subscription of client `id` (it disconnected, or sent
    /// RESET).
    pub fn forget(&self, id: u64) {
        self.lock().forget(id);
    }

    /// Returns client `id`'s subscriptions of every kind.
    pub fn total(&self, id: u64) -> usize {
        self.lock().clients.get(&id).map_or(0, Subscriptions::total)
    }

    /// Returns client `id`'s channels, patterns and shard channels
    /// counts, as CLIENT LIST shows them.
    pub fn counts(&self, id: u64) -> (usize, usize, usize) {
        self.lock().clients.get(&id).map_or((0, 0, 0), |subs| {
            (
                subs.channels.len(),
                subs.patterns.len(),
                subs.shard_channels.len(),
            )
        })
    }

    /// Delivers `message` on `channel` to the channel's subscribers and
    /// to those of every matching pattern; returns how many received it
    /// (a client subscribed to the channel and to two matching patterns
    /// counts three times, as in Redis).
    pub fn publish(&self, channel: &Bytes, message: &Bytes) -> usize {
        let mut state = self.lock();
        let limit = state.limit;
        let now = Instant::now();
        let mut receivers = 0;
        let mut overflowed = Vec::new();
        if let Some(subscribers) = state.channels.get(channel) {
            receivers += deliver_all(
                subscribers,
                &[&Bytes::from_static(b"message"), channel, message],
                &limit,
                now,
                &mut overflowed,
            );
        }
        for (pattern, subscribers) in &state.patterns {
            if glob_match(pattern, channel) {
                receivers += deliver_all(
                    subscribers,
                    &[&Bytes::from_static(b"pmessage"), pattern, channel, message],
                    &limit,
                    now,
                    &mut overflowed,
                );
            }
        }
        for id in overflowed {
            state.forget(id);
        }
        receivers
    }

    /// Delivers `message` on shard channel `channel` to its subscribers;
    /// returns how many received it.
    pub fn spublish(&self, channel: &Bytes, message: &Bytes) -> usize {
        let mut state = self.lock();
        let limit = state.limit;
        let now = Instant::now();
        let mut receivers = 0;
        let mut overflowed = Vec::new();
        if let Some(subscribers) = state.shard_channels.get(channel) {
            receivers += deliver_all(
                subscribers,
                &[&Bytes::from_static(b"smessage"), channel, message],
                &limit,
                now,
                &mut overflowed,
            );
        }
        for id in overflowed {
            state.forget(id);
        }
        receivers
    }

    /// Returns the channels (or shard channels) with at least one
    /// subscriber, those matching `pattern` if given, sorted.
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let mut state = self.lock();
        let mut names: Vec<Bytes> = state
            .index(kind)
            .keys()
            .filter(|name| pattern.is_none_or(|pattern| glob_match(pattern, name)))
            .cloned()
            .collect();
        names.sort_unstable();
        names
    }

    /// Returns the number of subscribers of each of `names` (channels or
    /// shard channels), in order.
    pub fn numsub(&self, kind: Kind, names: &[Bytes]) -> Vec<(Bytes, usize)> {
        let mut state = self.lock();
        let index = state.index(kind);
        names
            .iter()
            .map(|name| (name.clone(), index.get(name).map_or(0, BTreeMap::len)))
            .collect()
    }

    /// Returns the number of distinct patterns subscribed to.
    pub fn numpat(&self) -> usize {
        self.lock().patterns.len()
    }
}

pub(crate) mod input;
mod lost;

#[cfg(test)]
#[path = "pubsub_test.rs"]
mod tests;
