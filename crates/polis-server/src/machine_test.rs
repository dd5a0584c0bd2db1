#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_types::{key_hash_slot, SlotRange};

use super::*;

fn args(line: &str) -> Vec<Bytes> {
    line.split_whitespace()
        .map(|word| Bytes::from(word.to_owned()))
        .collect()
}

fn logged(line: &str) -> Logged {
    let args = args(line);
    let slot = match polis_commands::classify(&args).unwrap().scope {
        polis_commands::Scope::Slot(slot) => Some(slot),
        _ => None,
    };
    Logged { slot, args }
}

fn apply(machine: &mut DataMachine, index: u64, op: &Op) -> Applied {
    Applied::decode(&machine.apply(index, 1_000, &op.encode().unwrap()))
}

fn own(version: u64, ranges: &[(u16, u16)]) -> Op {
    let ranges: Vec<SlotRange> = ranges
        .iter()
        .map(|(start, end)| {
            SlotRange::new(Slot::new(*start).unwrap(), Slot::new(*end).unwrap()).unwrap()
        })
        .collect();
    Op::Own {
        version,
        slots: SlotSet::from_ranges(&ranges),
    }
}

#[test]
fn a_shard_applies_only_commands_for_slots_it_owns_at_apply_time() {
    let mut machine = DataMachine::new(GroupId(1));
    let foo = key_hash_slot(b"foo"); // 12182
                                     // Before any ownership entry the shard owns nothing.
    assert_eq!(
        apply(&mut machine, 1, &Op::Command(logged("SET foo 1"))),
        Applied::NotOwned {
            slot: foo,
            version: 0
        }
    );
    apply(&mut machine, 2, &own(3, &[(0, 16383)]));
    assert_eq!(
        apply(&mut machine, 3, &Op::Command(logged("SET foo 1"))),
        Applied::Reply(Reply::ok())
    );
    // A write proposed while the shard owned foo's slot, applied after an
    // ownership change took it away, does nothing.
    let proposed_earlier = Op::Command(logged("SET foo 2"));
    apply(&mut machine, 4, &own(4, &[(0, 12000)]));
    assert_eq!(
        apply(&mut machine, 5, &proposed_earlier),
        Applied::NotOwned {
            slot: foo,
            version: 4
        }
    );
    assert_eq!(machine.db.len(), 1, "the key stays as it was");
    // An older ownership entry (a delayed proposal) never goes back.
    apply(&mut machine, 6, &own(3, &[(0, 16383)]));
    assert_eq!(machine.ownership.version, 4);
    // Keyless commands need no slot.
    assert_eq!(
        apply(&mut machine, 7, &Op::Command(logged("FLUSHALL"))),
        Applied::Reply(Reply::ok())
    );
    assert_eq!(machine.db.len(), 0);
}

#[test]
fn a_batch_answers_each_command_by_its_own_slot() {
    let mut machine = DataMachine::new(GroupId(2));
    apply(&mut machine, 1, &own(1, &[(0, 8191)]));
    let a = logged("SET a 1"); // slot 15495: not owned
    let b = logged("SET b 1"); // slot 3300: owned
    let answers = apply(&mut machine, 2, &Op::Batch(vec![a.clone(), b])).into_batch(2);
    assert_eq!(
        answers[0],
        Applied::NotOwned {
            slot: a.slot.unwrap(),
            version: 1
        }
    );
    assert_eq!(answers[1], Applied::Reply(Reply::ok()));
}

#[test]
fn a_snapshot_carries_the_keyspace_and_the_ownership() {
    let mut machine = DataMachine::new(GroupId(3));
    // "{a}x" hashes to slot 15495.
    apply(&mut machine, 1, &own(7, &[(100, 200), (15000, 16383)]));
    apply(&mut machine, 2, &Op::Command(logged("SET {a}x 1")));
    let snapshot = machine.snapshot();
    let mut restored = DataMachine::new(GroupId(3));
    restored.restore(&snapshot).unwrap();
    assert_eq!(restored.ownership, machine.ownership);
    assert_eq!(restored.db.len(), 1);
    assert!(restored.restore(&snapshot[..3]).is_err());
    let mut other_format = snapshot.clone();
    other_format[0] = 9;
    assert!(restored.restore(&other_format).is_err());
}

#[test]
fn expired_keys_are_deleted_by_their_entry() {
    let mut machine = DataMachine::new(GroupId(1));
    apply(&mut machine, 1, &own(1, &[(0, 16383)]));
    apply(&mut machine, 2, &Op::Command(logged("SET k v PX 1")));
    let keys = machine.db.expired_keys(5_000, 10);
    assert_eq!(keys.len(), 1);
    let answer = Applied::decode(&machine.apply(3, 5_000, &Op::Expire(keys).encode().unwrap()));
    assert_eq!(answer, Applied::Reply(Reply::Integer(1)));
}
