//! The node's blocked clients: waiters per (shard, key) in arrival order,
//! woken by the node's own committed writes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use polis_types::GroupId;
use tokio::sync::Notify;

/// How long a write's reply waits for the waiters it woke to try.
const SERVED_BEFORE_REPLY_MAX: Duration = Duration::from_secs(1);

/// How CLIENT UNBLOCK ends a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unblock {
    /// As if the timeout passed.
    Timeout,
    /// With `-UNBLOCKED`.
    Error,
}

/// One blocked client.
pub(super) struct Waiter {
    pub(super) client_id: u64,
    pub(super) shard: GroupId,
    pub(super) keys: Vec<Bytes>,
    pub(super) notify: Notify,
    pub(super) unblock: Mutex<Option<Unblock>>,
    /// Tries finished (served or not), and a signal at each.
    pub(super) tries: AtomicU64,
    pub(super) tried: Notify,
    /// A try is in flight (a write it proposes does not wait for it).
    pub(super) trying: std::sync::atomic::AtomicBool,
    /// Its first try found nothing: it counts in `blocked_clients`.
    pub(super) blocked: std::sync::atomic::AtomicBool,
}

/// The waiters a write woke, with how many tries each had finished then:
/// the write's reply waits until each tried again, so that, as in Redis,
/// a client that pushed and then reads sees the waiters served.
#[derive(Default)]
pub struct Woken(Vec<(Arc<Waiter>, u64)>);

impl Woken {
    /// Waits (at most [`SERVED_BEFORE_REPLY_MAX`]) until every woken
    /// waiter finished its next try or left.
    pub async fn served(self) {
        let deadline = tokio::time::Instant::now() + SERVED_BEFORE_REPLY_MAX;
        for (waiter, seen) in self.0 {
            loop {
                let tried = waiter.tried.notified();
                if waiter.tries.load(Ordering::Acquire) > seen {
                    break;
                }
                if tokio::time::timeout_at(deadline, tried).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// What a committed write may have changed.
pub enum Touched {
    /// These keys.
    Keys(Vec<Bytes>),
    /// Any key of the shard (FLUSHALL, FLUSHDB).
    All,
}

#[derive(Default)]
struct Registry {
    /// Waiters per key, in arrival order.
    queues: BTreeMap<(GroupId, Bytes), VecDeque<u64>>,
    waiters: BTreeMap<u64, Arc<Waiter>>,
}

/// The node's blocked clients.
#[derive(Default)]
pub struct Blocking {
    registry: Mutex<Registry>,
    /// Blocked clients (INFO `blocked_clients`).
    count: AtomicUsize,
    /// Registered waiters, blocked or about to be: a write checks it
    /// without taking the lock.
    registered: AtomicUsize,
    next_id: AtomicU64,
}

/// A registered waiter; dropping it (reply sent, connection gone)
/// removes it and wakes whoever is next on its keys.
pub(super) struct Registration<'a> {
    blocking: &'a Blocking,
    pub(super) id: u64,
    pub(super) waiter: Arc<Waiter>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.blocking.remove(self.id);
    }
}

impl Blocking {
    /// Returns the number of blocked clients (INFO `blocked_clients`):
    /// those whose first try found nothing.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Returns true when no client waits, nor is about to.
    pub fn is_empty(&self) -> bool {
        self.registered.load(Ordering::Acquire) == 0
    }

    /// Counts `waiter` as blocked: its first try found nothing.
    pub(super) fn blocked(&self, waiter: &Waiter) {
        if !waiter.blocked.swap(true, Ordering::AcqRel) {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn register(
        &self,
        client_id: u64,
        shard: GroupId,
        keys: Vec<Bytes>,
    ) -> Registration<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let waiter = Arc::new(Waiter {
            client_id,
            shard,
            keys,
            notify: Notify::new(),
            unblock: Mutex::new(None),
            tries: AtomicU64::new(0),
            tried: Notify::new(),
            trying: std::sync::atomic::AtomicBool::new(false),
            blocked: std::sync::atomic::AtomicBool::new(false),
        });
        let mut registry = self.lock();
        for key in &waiter.keys {
            registry
                .queues
                .entry((shard, key.clone()))
                .or_default()
                .push_back(id);
        }
        registry.waiters.insert(id, waiter.clone());
        self.registered
            .store(registry.waiters.len(), Ordering::Release);
        Registration {
            blocking: self,
            id,
            waiter,
        }
    }

    /// Returns true when no waiter arrived before `registration` on any of
    /// its keys: it may try at once; otherwise it waits its turn.
    pub(super) fn is_first(&self, registration: &Registration<'_>) -> bool {
        let registry = self.lock();
        registration.waiter.keys.iter().all(|key| {
            registry
                .queues
                .get(&(registration.waiter.shard, key.clone()))
                .and_then(|queue| queue.front())
                .is_none_or(|head| *head == registration.id)
        })
    }

    /// Removes waiter `id` and wakes the waiters now heading its keys
    /// (what it did not take may serve them).
    fn remove(&self, id: u64) {
        let mut registry = self.lock();
        let Some(waiter) = registry.waiters.remove(&id) else {
            return;
        };
        // Gone counts as tried: a write waiting on it goes on.
        waiter.tries.store(u64::MAX, Ordering::Release);
        waiter.tried.notify_waiters();
        if waiter.blocked.swap(false, Ordering::AcqRel) {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        self.registered
            .store(registry.waiters.len(), Ordering::Release);
        for key in &waiter.keys {
            let slot = (waiter.shard, key.clone());
            let Some(queue) = registry.queues.get_mut(&slot) else {
                continue;
            };
            queue.retain(|queued| *queued != id);
            if queue.is_empty() {
                registry.queues.remove(&slot);
            }
        }
        for key in &waiter.keys {
            wake_head(&registry, waiter.shard, key);
        }
    }

    /// Wakes the first waiter of each of `keys` of `shard`: a write to
    /// them committed. Returns the waiters woken, for the write's reply to
    /// wait on. Waiter `except` (whose own retry the write is) is not
    /// woken: an empty retry changed nothing, and woken by it a waiter
    /// would retry for ever.
    pub fn readied(&self, shard: GroupId, touched: &Touched, except: Option<u64>) -> Woken {
        let mut woken = Woken::default();
        if self.is_empty() {
            return woken;
        }
        let registry = self.lock();
        let every;
        let keys = match touched {
            Touched::Keys(keys) => keys,
            Touched::All => {
                every = registry
                    .queues
                    .keys()
                    .filter(|(of, _)| *of == shard)
                    .map(|(_, key)| key.clone())
                    .collect::<Vec<_>>();
                &every
            }
        };
        for key in keys {
            let head = registry
                .queues
                .get(&(shard, key.clone()))
                .and_then(|queue| queue.front());
            if head.is_some() && head == except.as_ref() {
                continue;
            }
            if let Some(waiter) = wake_head(&registry, shard, key) {
                let idle = !waiter.trying.load(Ordering::Acquire);
                let new = !woken.0.iter().any(|(seen, _)| Arc::ptr_eq(seen, &waiter));
                if idle && new {
                    let tries = waiter.tries.load(Ordering::Acquire);
                    woken.0.push((waiter, tries));
                }
            }
        }
        woken
    }

    /// Ends the wait of client `client_id` (CLIENT UNBLOCK); returns false
    /// when it is not blocked.
    pub fn unblock(&self, client_id: u64, how: Unblock) -> bool {
        let registry = self.lock();
        let Some(waiter) = registry
            .waiters
            .values()
            .find(|waiter| waiter.client_id == client_id)
        else {
            return false;
        };
        if let Ok(mut unblock) = waiter.unblock.lock() {
            *unblock = Some(how);
        }
        waiter.notify.notify_one();
        true
    }
}

fn wake_head(registry: &Registry, shard: GroupId, key: &Bytes) -> Option<Arc<Waiter>> {
    let waiter = registry
        .queues
        .get(&(shard, key.clone()))
        .and_then(|queue| queue.front())
        .and_then(|id| registry.waiters.get(id))?;
    waiter.notify.notify_one();
    Some(waiter.clone())
}
