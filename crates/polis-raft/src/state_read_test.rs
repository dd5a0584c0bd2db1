use parking_lot::RwLock;

use super::read;

#[test]
fn reads_of_different_locks_nest() {
    let (first, second) = (RwLock::new(1), RwLock::new(2));
    let a = read(&first);
    let b = read(&second);
    assert_eq!(*a + *b, 3);
}

#[test]
fn a_read_taken_again_after_the_first_dropped_is_allowed() {
    let lock = RwLock::new(7);
    let before = *read(&lock);
    let after = *read(&lock);
    assert_eq!((before, after), (7, 7));
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "a second read of a group's state")]
fn a_second_read_of_the_same_lock_on_one_thread_panics_in_debug_builds() {
    let lock = RwLock::new(0);
    let _first = read(&lock);
    let _second = read(&lock);
}

/// A task waiting for a locked state hands its runtime worker on: with one
/// worker, another task still runs while the first waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_task_waiting_for_the_lock_leaves_the_worker_to_other_tasks() {
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    let lock = Arc::new(RwLock::new(0));
    let (held_tx, held_rx) = mpsc::channel();
    let (ran_tx, ran_rx) = mpsc::channel::<()>();
    let writer = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            let mut guard = lock.write();
            held_tx.send(()).unwrap();
            // Released as soon as the other task ran, or after the
            // deadline, so a failing build ends instead of hanging.
            let ran = ran_rx.recv_timeout(Duration::from_secs(20)).is_ok();
            *guard = 5;
            ran
        })
    };
    held_rx.recv().unwrap();
    let waiter = {
        let lock = lock.clone();
        tokio::spawn(async move { *read(&lock) })
    };
    // Let the waiter reach the lock first, then ask the worker for more.
    tokio::task::yield_now().await;
    let other = tokio::spawn(async move { ran_tx.send(()).is_ok() });
    assert!(other.await.unwrap());
    assert_eq!(waiter.await.unwrap(), 5);
    assert!(
        writer.join().unwrap(),
        "the other task ran only once the lock was released"
    );
}
