//! Read guards on a group's state.
//!
//! The state sits behind a writer-fair `RwLock`: a read waits while a
//! write waits. A thread that takes a second read of the same state while
//! it holds one therefore deadlocks as soon as the apply task asks to
//! write between the two: the writer waits for the first read, the second
//! read waits for the writer, and the node's runtime loses both workers.
//! The window is tiny, so such code passes tests for weeks; debug builds
//! make the second read panic at once instead, on every run.
//!
//! A task that finds the state locked (apply writing a large entry, a
//! snapshot step) waits off the runtime: its worker goes on with the node's
//! other tasks meanwhile (heartbeats, other groups' applies). Waiting on
//! the worker instead stalled the whole node once both workers waited, long
//! enough for its groups' followers to hold elections. The lock is
//! parking_lot's, which now and then hands itself to a waiter on release:
//! with std's, the apply loop took it back entry after entry while a
//! snapshot step waited for seconds.

use std::ops::Deref;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::runtime::{Handle, RuntimeFlavor};

/// A read guard on a group's state; see the module's text.
pub struct StateRead<'a, T> {
    guard: RwLockReadGuard<'a, T>,
    #[cfg(debug_assertions)]
    _held: held::Mark,
}

impl<T> Deref for StateRead<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard
    }
}

/// Takes a read guard on `lock`.
///
/// # Panics
/// In debug builds, when this thread already holds a read of `lock`.
pub(crate) fn read<T>(lock: &RwLock<T>) -> StateRead<'_, T> {
    #[cfg(debug_assertions)]
    let held = held::Mark::take(std::ptr::from_ref(lock).cast::<()>() as usize);
    StateRead {
        guard: take(|| lock.try_read(), || lock.read()),
        #[cfg(debug_assertions)]
        _held: held,
    }
}

/// Takes the write guard on `lock`.
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    take(|| lock.try_write(), || lock.write())
}

/// Takes a guard at once when it is free; else waits for it, handing this
/// thread's runtime worker to the other tasks while it waits.
fn take<G>(now: impl FnOnce() -> Option<G>, wait: impl FnOnce() -> G) -> G {
    match now() {
        Some(guard) => guard,
        None => off_runtime(wait),
    }
}

/// Runs `work`, which may take long (waiting for a lock, applying an entry
/// that touches every key of a slot range), on this thread while the
/// runtime's worker goes on with other tasks. On a single-threaded runtime
/// (the simulation) it just runs `work`.
pub fn off_runtime<R>(work: impl FnOnce() -> R) -> R {
    let on_shared_runtime = Handle::try_current()
        .is_ok_and(|runtime| runtime.runtime_flavor() == RuntimeFlavor::MultiThread);
    if on_shared_runtime {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

#[cfg(debug_assertions)]
mod held {
    use std::cell::RefCell;

    thread_local! {
        static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    }

    /// Notes that this thread holds a read of one lock until dropped.
    pub(super) struct Mark(usize);

    impl Mark {
        pub(super) fn take(lock: usize) -> Self {
            HELD.with_borrow_mut(|held| {
                assert!(
                    !held.contains(&lock),
                    "a second read of a group's state on a thread that holds one: \
                     it deadlocks when apply waits to write between the two; \
                     take one guard and read everything through it"
                );
                held.push(lock);
            });
            Self(lock)
        }
    }

    impl Drop for Mark {
        fn drop(&mut self) {
            HELD.with_borrow_mut(|held| {
                if let Some(at) = held.iter().rposition(|lock| *lock == self.0) {
                    held.swap_remove(at);
                }
            });
        }
    }
}

#[cfg(test)]
#[path = "state_read_test.rs"]
mod tests;
