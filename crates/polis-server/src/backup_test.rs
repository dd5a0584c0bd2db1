#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_cluster::version::EntryFormat;

use super::*;
use crate::machine::tests::{apply, logged, own};
use crate::machine::Op;
use polis_raft::StateMachine;
use polis_types::GroupId;

fn filled(shard: u64, ranges: &[(u16, u16)], lines: &[&str]) -> DataMachine {
    let mut machine = DataMachine::new(GroupId(shard));
    apply(&mut machine, 1, &own(3, ranges));
    for (index, line) in lines.iter().enumerate() {
        apply(&mut machine, 2 + index as u64, &Op::Command(logged(line)));
    }
    machine
}

#[test]
fn a_backup_reads_back_with_its_head_its_keys_and_its_digests() {
    let machine = filled(
        1,
        &[(0, 16383)],
        &[
            "SET a 1",
            "SET b 2 EX 100",
            "HSET h f v g w",
            "SADD s x y z",
        ],
    );
    let snapshot = machine.snapshot();
    let head = ShardHead::read(&snapshot).unwrap();
    assert_eq!(head.keys, 4);
    assert_eq!(head.owned_version, 3);
    assert_eq!(head.owned.len(), 16384);
    let contents = ShardContents::decode(&snapshot).unwrap();
    assert_eq!(contents.live_keys(1_000).count(), 4);
    // b's deadline is 100 s after the entry's time (1 s): gone by then.
    assert_eq!(contents.live_keys(200_000).count(), 3);
    let digests = contents.digests(1_000);
    assert_eq!(
        digests,
        slot_digests(&machine.db, &machine.ownership.slots, 1_000)
    );
    assert_eq!(digests.values().map(|digest| digest.keys).sum::<u64>(), 4);
    assert!(ShardHead::read(&snapshot[..3]).is_err());
}

#[test]
fn digests_do_not_depend_on_the_order_of_writes_or_on_the_shard() {
    let one = filled(
        1,
        &[(0, 16383)],
        &["SADD s x y z", "SET a 1", "HSET h f v g w"],
    );
    let other = filled(
        2,
        &[(0, 16383)],
        &["HSET h g w f v", "SET a 1", "SADD s z y x"],
    );
    assert_eq!(
        slot_digests(&one.db, &one.ownership.slots, 0),
        slot_digests(&other.db, &other.ownership.slots, 0)
    );
    let changed = filled(
        2,
        &[(0, 16383)],
        &["HSET h g w f V", "SET a 1", "SADD s z y x"],
    );
    assert_ne!(
        slot_digests(&one.db, &one.ownership.slots, 0),
        slot_digests(&changed.db, &changed.ownership.slots, 0),
        "one value differs"
    );
}

#[test]
fn restored_keys_apply_whole_in_owned_slots_and_large_ones_in_parts() {
    let source = filled(1, &[(0, 16383)], &[]);
    let mut source = source;
    for index in 0..40 {
        let line = format!("HSET big field{index} {}", "v".repeat(500));
        apply(&mut source, 10 + index, &Op::Command(logged(&line)));
    }
    apply(&mut source, 60, &Op::Command(logged("SET small 1")));
    let contents = ShardContents::decode(&source.snapshot()).unwrap();
    let keys: Vec<_> = contents.live_keys(1_000).collect();
    let sequences = chunks(keys);
    // The 20 KB hash fits one chunk of 1 MiB: both keys in one request.
    assert_eq!(sequences.len(), 1);

    let big_slot = key_hash_slot(b"big").get();
    let mut target = filled(2, &[(big_slot, big_slot)], &[]);
    let entry = source.db.entry(b"big", 0).cloned().unwrap();
    let parts = entry.value.split(4096).unwrap();
    let first = Op::Restore(vec![(
        Bytes::from("big"),
        Some(Entry::new(parts[0].clone(), None, 0)),
    )]);
    assert_eq!(first.format(), EntryFormat::V10);
    assert_eq!(
        apply(&mut target, 2, &first),
        Applied::Reply(Reply::Integer(1))
    );
    for (index, part) in parts[1..].iter().enumerate() {
        let op = Op::RestoreParts(vec![(Bytes::from("big"), part.clone())]);
        assert_eq!(op.format(), EntryFormat::V10);
        assert_eq!(
            apply(&mut target, 3 + index as u64, &op),
            Applied::Reply(Reply::Integer(1))
        );
    }
    // A part sent twice (a request tried again) changes nothing.
    let again = Op::RestoreParts(vec![(Bytes::from("big"), parts[1].clone())]);
    apply(&mut target, 100, &again);
    assert_eq!(
        slot_digests(&target.db, &target.ownership.slots, 0),
        slot_digests(&source.db, &target.ownership.slots, 0)
    );

    // A key of a slot the shard does not own: nothing of the request
    // applies.
    let mixed = Op::Restore(vec![
        (Bytes::from("big"), Some(entry.clone())),
        (Bytes::from("small"), source.db.entry(b"small", 0).cloned()),
    ]);
    let before = target.db.len();
    assert!(matches!(
        apply(&mut target, 101, &mixed),
        Applied::NotOwned { .. }
    ));
    assert_eq!(target.db.len(), before);
}
