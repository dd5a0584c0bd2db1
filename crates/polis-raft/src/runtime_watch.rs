//! openraft's watch channels: tokio's in production, a deterministic one
//! in simulation.
//!
//! tokio's watch channel spreads its waiters over eight notifiers picked
//! at random (to ease contention on many threads), so which waiting task
//! wakes first differs from run to run, and tokio's seed for that choice
//! cannot be set without `tokio_unstable`. A channel made while a
//! simulation seed is set on the thread is instead a value, a version and
//! one [`Notify`] that wakes waiters in the order they began to wait. The
//! semantics are tokio's: a receiver has seen the value it was made with,
//! `changed` returns once a newer version is sent (or fails once every
//! sender is gone), `send` fails when no receiver is left.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use openraft::async_runtime::watch::{RecvError, SendError};
use openraft::async_runtime::{Watch, WatchReceiver, WatchSender};
use openraft::{OptionalSend, OptionalSync};
use openraft_rt_tokio::{TokioWatch, TokioWatchReceiver, TokioWatchSender};
use tokio::sync::Notify;

/// The channel state shared by a simulated channel's ends.
pub struct Shared<T> {
    value: RwLock<T>,
    version: AtomicU64,
    senders: AtomicUsize,
    receivers: AtomicUsize,
    closed: AtomicBool,
    notify: Notify,
}

impl<T> Shared<T> {
    fn read(&self) -> RwLockReadGuard<'_, T> {
        self.value
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.value
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn publish(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

/// The watch channel family of [`crate::runtime::PolisRuntime`].
pub struct PolisWatch;

/// The sending end.
pub enum PolisWatchSender<T> {
    Tokio(TokioWatchSender<T>),
    Sim(Arc<Shared<T>>),
}

/// The receiving end.
pub enum PolisWatchReceiver<T> {
    Tokio(TokioWatchReceiver<T>),
    Sim { shared: Arc<Shared<T>>, seen: u64 },
}

/// A borrowed value.
pub enum PolisWatchRef<'a, T> {
    Tokio(tokio::sync::watch::Ref<'a, T>),
    Sim(RwLockReadGuard<'a, T>),
}

impl<T> Deref for PolisWatchRef<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        match self {
            Self::Tokio(value) => value,
            Self::Sim(value) => value,
        }
    }
}

impl<T: OptionalSend + OptionalSync> Clone for PolisWatchSender<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Tokio(sender) => Self::Tokio(sender.clone()),
            Self::Sim(shared) => {
                shared.senders.fetch_add(1, Ordering::SeqCst);
                Self::Sim(shared.clone())
            }
        }
    }
}

impl<T> Drop for PolisWatchSender<T> {
    fn drop(&mut self) {
        if let Self::Sim(shared) = self {
            if shared.senders.fetch_sub(1, Ordering::SeqCst) == 1 {
                shared.closed.store(true, Ordering::SeqCst);
                shared.notify.notify_waiters();
            }
        }
    }
}

impl<T: OptionalSend + OptionalSync> Clone for PolisWatchReceiver<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Tokio(receiver) => Self::Tokio(receiver.clone()),
            Self::Sim { shared, seen } => {
                shared.receivers.fetch_add(1, Ordering::SeqCst);
                Self::Sim {
                    shared: shared.clone(),
                    seen: *seen,
                }
            }
        }
    }
}

impl<T> Drop for PolisWatchReceiver<T> {
    fn drop(&mut self) {
        if let Self::Sim { shared, .. } = self {
            shared.receivers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Watch for PolisWatch {
    type Sender<T: OptionalSend + OptionalSync> = PolisWatchSender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = PolisWatchReceiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = PolisWatchRef<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (Self::Sender<T>, Self::Receiver<T>) {
        if !crate::runtime::is_simulated() {
            let (sender, receiver) = TokioWatch::channel(init);
            return (
                PolisWatchSender::Tokio(sender),
                PolisWatchReceiver::Tokio(receiver),
            );
        }
        let shared = Arc::new(Shared {
            value: RwLock::new(init),
            version: AtomicU64::new(0),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            closed: AtomicBool::new(false),
            notify: Notify::new(),
        });
        (
            PolisWatchSender::Sim(shared.clone()),
            PolisWatchReceiver::Sim { shared, seen: 0 },
        )
    }
}

impl<T: OptionalSend + OptionalSync> WatchSender<PolisWatch, T> for PolisWatchSender<T> {
    fn send(&self, value: T) -> Result<(), SendError<T>> {
        match self {
            Self::Tokio(sender) => sender.send(value),
            Self::Sim(shared) => {
                if shared.receivers.load(Ordering::SeqCst) == 0 {
                    return Err(SendError(value));
                }
                *shared.write() = value;
                shared.publish();
                Ok(())
            }
        }
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        match self {
            Self::Tokio(sender) => sender.send_if_modified(modify),
            Self::Sim(shared) => {
                let modified = modify(&mut shared.write());
                if modified {
                    shared.publish();
                }
                modified
            }
        }
    }

    fn borrow_watched(&self) -> PolisWatchRef<'_, T> {
        match self {
            Self::Tokio(sender) => PolisWatchRef::Tokio(sender.borrow_watched()),
            Self::Sim(shared) => PolisWatchRef::Sim(shared.read()),
        }
    }

    fn subscribe(&self) -> PolisWatchReceiver<T> {
        match self {
            Self::Tokio(sender) => PolisWatchReceiver::Tokio(sender.subscribe()),
            Self::Sim(shared) => {
                shared.receivers.fetch_add(1, Ordering::SeqCst);
                PolisWatchReceiver::Sim {
                    shared: shared.clone(),
                    seen: shared.version.load(Ordering::SeqCst),
                }
            }
        }
    }
}

impl<T: OptionalSend + OptionalSync> WatchReceiver<PolisWatch, T> for PolisWatchReceiver<T> {
    async fn changed(&mut self) -> Result<(), RecvError> {
        match self {
            Self::Tokio(receiver) => receiver.changed().await,
            Self::Sim { shared, seen } => loop {
                // Made before the checks: a send after them still wakes it.
                let notified = shared.notify.notified();
                let version = shared.version.load(Ordering::SeqCst);
                if version != *seen {
                    *seen = version;
                    return Ok(());
                }
                if shared.closed.load(Ordering::SeqCst) {
                    return Err(RecvError(()));
                }
                notified.await;
            },
        }
    }

    fn borrow_watched(&self) -> PolisWatchRef<'_, T> {
        match self {
            Self::Tokio(receiver) => PolisWatchRef::Tokio(receiver.borrow_watched()),
            Self::Sim { shared, .. } => PolisWatchRef::Sim(shared.read()),
        }
    }

    fn borrow_and_update(&mut self) -> PolisWatchRef<'_, T> {
        match self {
            Self::Tokio(receiver) => PolisWatchRef::Tokio(receiver.borrow_and_update()),
            Self::Sim { shared, seen } => {
                let value = shared.read();
                *seen = shared.version.load(Ordering::SeqCst);
                PolisWatchRef::Sim(value)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.
mod tests {
    use super::*;
    use crate::runtime::set_simulation_seed;

    #[test]
    fn a_simulated_channel_behaves_as_tokio_s() {
        set_simulation_seed(Some(1));
        let (sender, mut receiver) = PolisWatch::channel(0u64);
        set_simulation_seed(None);
        assert!(matches!(sender, PolisWatchSender::Sim(_)));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut late = sender.subscribe();
            let waiter = tokio::spawn(async move {
                receiver.changed().await.unwrap();
                let seen = *receiver.borrow_and_update();
                (seen, receiver)
            });
            tokio::task::yield_now().await;
            sender.send(5).unwrap();
            let (seen, mut receiver) = waiter.await.unwrap();
            assert_eq!(seen, 5);
            late.changed().await.unwrap();
            assert!(!sender.send_if_modified(|_| false));
            assert!(sender.send_if_modified(|value| {
                *value = 6;
                true
            }));
            assert_eq!(*receiver.borrow_watched(), 6);
            drop(sender);
            receiver.changed().await.unwrap();
            assert!(
                receiver.changed().await.is_err(),
                "closed once senders are gone"
            );
        });
    }
}
