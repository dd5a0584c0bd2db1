#![allow(clippy::unwrap_used)] // Tests fail loudly.

use std::collections::BTreeMap;

use polis_types::NodeId;
use proptest::prelude::*;

use super::*;
use crate::hlc::Timestamp;
use crate::merge::tests::{check_laws, config, deliveries, run, steps};

impl Merge for BTreeMap<u8, KeyState> {
    fn merge(&mut self, other: &Self) {
        for (key, state) in other {
            self.entry(*key).or_default().merge(state);
        }
    }
}

/// Every kind of write on keys of every type: the op picks the command.
fn key_write(state: &mut BTreeMap<u8, KeyState>, node: NodeId, key: u8, op: u8, version: Version) {
    let now = version.time.physical_ms;
    let member = Bytes::from(vec![b'a' + op % 2]);
    let key = state.entry(key).or_default();
    match op % 8 {
        0 => key.clear(version),
        1 => {
            key.prepare(Kind::String, version, now, node, true);
            key.string
                .state
                .set(version, Some(Bytes::from(op.to_string())));
            key.expiry.set(node, None);
        }
        2 => {
            if key.prepare(Kind::String, version, now, node, false) {
                let _ = key.string.state.add(node, 3);
            }
        }
        3 => {
            if key.prepare(Kind::Set, version, now, node, false) {
                key.set.state.add(node, member, ());
            }
        }
        4 => {
            key.set.state.remove(&member);
        }
        5 => {
            if key.prepare(Kind::Hash, version, now, node, false) {
                let value = Register {
                    version,
                    value: Some(Bytes::from(op.to_string())),
                };
                key.hash.state.add(node, member, value);
            }
        }
        6 => key.expiry.set(node, Some(now + u64::from(op))),
        _ => key.expiry.set(node, None),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn key_states_merge_lawfully(steps in steps(), order in deliveries()) {
        check_laws(&run(&steps, key_write), &order);
    }
}

fn at(ms: u64, node: u64) -> Version {
    Version {
        time: Timestamp {
            physical_ms: ms,
            logical: 0,
        },
        node: NodeId(node),
    }
}

fn merged(a: &KeyState, b: &KeyState) -> KeyState {
    let mut out = a.clone();
    out.merge(b);
    out
}

#[test]
fn concurrent_increments_all_count_and_a_later_set_replaces_them() {
    let (one, two) = (NodeId(1), NodeId(2));
    let mut start = KeyState::default();
    start.prepare(Kind::String, at(1, 1), 1, one, true);
    start.string.state.set(at(1, 1), Some(Bytes::from("10")));
    let mut a = start.clone();
    let mut b = start.clone();
    assert_eq!(a.string.state.add(one, 5).unwrap(), 15);
    assert_eq!(b.string.state.add(two, -2).unwrap(), 8);
    let both = merged(&a, &b);
    assert_eq!(both.string.state.value(), Some(Bytes::from("13")));

    let mut set = both.clone();
    set.string.state.set(at(5, 2), Some(Bytes::from("100")));
    let mut incr = both.clone();
    incr.string.state.add(one, 1).unwrap();
    let last = merged(&incr, &set);
    assert_eq!(last.string.state.value(), Some(Bytes::from("100")));
    assert_eq!(merged(&set, &incr), last);
}

#[test]
fn counting_on_a_non_integer_or_past_i64_is_refused_and_counts_nothing() {
    let mut key = KeyState::default();
    key.string.state.set(at(1, 1), Some(Bytes::from("abc")));
    assert_eq!(
        key.string.state.add(NodeId(1), 1),
        Err(CountError::NotAnInteger)
    );
    key.string
        .state
        .set(at(2, 1), Some(Bytes::from(i64::MAX.to_string())));
    assert_eq!(
        key.string.state.add(NodeId(1), 1),
        Err(CountError::Overflow)
    );
    assert_eq!(
        key.string.state.value(),
        Some(Bytes::from(i64::MAX.to_string()))
    );
}

#[test]
fn a_delete_removes_what_it_saw_and_a_concurrent_add_survives() {
    let (one, two) = (NodeId(1), NodeId(2));
    let mut start = KeyState::default();
    start.prepare(Kind::Set, at(1, 1), 1, one, false);
    start.set.state.add(one, Bytes::from("a"), ());
    let mut deleted = start.clone();
    deleted.clear(at(3, 1));
    let mut added = start.clone();
    added.set.state.add(two, Bytes::from("b"), ());
    let both = merged(&deleted, &added);
    assert_eq!(both.kind(), Some(Kind::Set));
    let members: Vec<_> = both.set.state.keys().cloned().collect();
    assert_eq!(members, vec![Bytes::from("b")], "a is gone, b was not seen");
}

#[test]
fn the_type_written_last_is_shown_and_wrongtype_is_reported() {
    let one = NodeId(1);
    let mut key = KeyState::default();
    assert!(key.prepare(Kind::Set, at(1, 1), 1, one, false));
    key.set.state.add(one, Bytes::from("a"), ());
    assert!(
        !key.prepare(Kind::Hash, at(2, 1), 2, one, false),
        "WRONGTYPE"
    );
    assert_eq!(key.kind(), Some(Kind::Set));
    assert!(
        key.prepare(Kind::String, at(3, 1), 3, one, true),
        "SET replaces"
    );
    key.string.state.set(at(3, 1), Some(Bytes::from("x")));
    assert_eq!(key.kind(), Some(Kind::String));
    assert!(key.set.state.is_empty(), "the members it saw are gone");
}

#[test]
fn an_expired_key_is_cleared_before_a_write_and_loses_its_deadline() {
    let one = NodeId(1);
    let mut key = KeyState::default();
    key.prepare(Kind::Set, at(1, 1), 1, one, false);
    key.set.state.add(one, Bytes::from("old"), ());
    key.expiry.set(one, Some(10));
    assert_eq!(key.live_kind(5), Some(Kind::Set));
    assert_eq!(key.live_kind(10), None);
    key.prepare(Kind::Set, at(20, 1), 20, one, false);
    key.set.state.add(one, Bytes::from("new"), ());
    assert_eq!(key.live_kind(20), Some(Kind::Set));
    let members: Vec<_> = key.set.state.keys().cloned().collect();
    assert_eq!(members, vec![Bytes::from("new")]);
}

#[test]
fn the_newest_version_a_state_holds_is_found_in_every_part() {
    let one = NodeId(1);
    let mut key = KeyState::default();
    assert_eq!(key.max_version(), None);
    key.prepare(Kind::Hash, at(3, 1), 3, one, false);
    key.hash.state.add(
        one,
        Bytes::from("f"),
        Register {
            version: at(9, 2),
            value: Some(Bytes::from("v")),
        },
    );
    assert_eq!(key.max_version(), Some(at(9, 2)), "a hash field's version");
    key.string.state.set(at(12, 3), None);
    assert_eq!(key.max_version(), Some(at(12, 3)), "a tombstone's version");
}
