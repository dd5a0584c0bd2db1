use std::sync::RwLock;

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
