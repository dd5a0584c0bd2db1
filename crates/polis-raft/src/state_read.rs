//! Read guards on a group's state.
//!
//! The state sits behind std's `RwLock`, which prefers writers: a read
//! waits while a write waits. A thread that takes a second read of the same
//! state while it holds one therefore deadlocks as soon as the apply task
//! asks to write between the two: the writer waits for the first read, the
//! second read waits for the writer, and the node's runtime loses both
//! workers. The window is tiny, so such code passes tests for weeks; debug
//! builds make the second read panic at once instead, on every run.

use std::ops::Deref;
use std::sync::{RwLock, RwLockReadGuard};

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

/// Takes a read guard on `lock`, recovering it from a poisoned state.
///
/// # Panics
/// In debug builds, when this thread already holds a read of `lock`.
pub(crate) fn read<T>(lock: &RwLock<T>) -> StateRead<'_, T> {
    #[cfg(debug_assertions)]
    let held = held::Mark::take(std::ptr::from_ref(lock).cast::<()>() as usize);
    StateRead {
        guard: lock.read().unwrap_or_else(|poisoned| poisoned.into_inner()),
        #[cfg(debug_assertions)]
        _held: held,
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
