#![allow(clippy::unwrap_used)] // Tests fail loudly.

use std::collections::BTreeMap;

use polis_types::NodeId;
use proptest::prelude::*;

use super::*;
use crate::hlc::Version;
use crate::merge::tests::{check_laws, config, deliveries, run, steps};

impl Merge for BTreeMap<u8, Expiry> {
    fn merge(&mut self, other: &Self) {
        for (key, expiry) in other {
            self.entry(*key).or_default().merge(expiry);
        }
    }
}

/// op 0 is PERSIST, others EXPIRE at a deadline of op seconds.
fn expiry_write(state: &mut BTreeMap<u8, Expiry>, node: NodeId, key: u8, op: u8, _: Version) {
    let deadline = (op != 0).then(|| u64::from(op) * 1_000);
    state.entry(key).or_default().set(node, deadline);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn expiries_merge_lawfully(steps in steps(), order in deliveries()) {
        check_laws(&run(&steps, expiry_write), &order);
    }
}

#[test]
fn of_concurrent_expires_the_longest_wins_and_persist_beats_them() {
    let (one, two, three) = (NodeId(1), NodeId(2), NodeId(3));
    let mut a = Expiry::default();
    let mut b = Expiry::default();
    a.set(one, Some(10_000));
    b.set(two, Some(20_000));
    let mut both = a.clone();
    both.merge(&b);
    assert_eq!(both.deadline(), Some(20_000), "the longest TTL");
    let mut c = Expiry::default();
    c.set(three, None);
    both.merge(&c);
    assert_eq!(both.deadline(), None, "PERSIST wins");
}

#[test]
fn an_expire_that_saw_the_earlier_one_replaces_it_even_when_shorter() {
    let (one, two) = (NodeId(1), NodeId(2));
    let mut a = Expiry::default();
    a.set(one, Some(20_000));
    let mut b = a.clone();
    b.set(two, Some(5_000));
    a.merge(&b);
    assert_eq!(a.deadline(), Some(5_000));
    assert_eq!(Expiry::default().deadline(), None, "never set: no deadline");
}
