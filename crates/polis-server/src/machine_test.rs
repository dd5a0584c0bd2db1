#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_cluster::version::EntryFormat;
use polis_store::Value;
use polis_types::{key_hash_slot, SlotRange};

use super::*;

pub(crate) fn args(line: &str) -> Vec<Bytes> {
    line.split_whitespace()
        .map(|word| Bytes::from(word.to_owned()))
        .collect()
}

pub(crate) fn logged(line: &str) -> Logged {
    let args = args(line);
    let slot = match polis_commands::classify(&args).unwrap().scope {
        polis_commands::Scope::Slot(slot) => Some(slot),
        _ => None,
    };
    Logged { slot, args }
}

pub(crate) fn apply(machine: &mut DataMachine, index: u64, op: &Op) -> Applied {
    Applied::decode(&machine.apply(index, 1_000, &op.encode().unwrap()))
}

pub(crate) fn own(version: u64, ranges: &[(u16, u16)]) -> Op {
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
    assert_eq!(
        machine.db.len(),
        0,
        "the keys of a slot given away leave with it, and the late write made none"
    );
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
fn a_snapshot_in_steps_is_the_state_at_its_beginning_whatever_is_applied_between() {
    let mut machine = DataMachine::new(GroupId(3));
    apply(&mut machine, 1, &own(7, &[(0, 16383)]));
    for index in 0..5_000u64 {
        let set = format!("SET key:{index} value:{index}");
        apply(&mut machine, 2 + index, &Op::Command(logged(&set)));
    }
    let expected = machine.snapshot();
    let mut bytes = machine.snapshot_begin();
    let mut index = 10_000;
    let mut steps = 0;
    loop {
        // Overwrite, delete and add keys between the steps.
        for line in [
            format!("SET key:{} changed", steps * 97 % 5_000),
            format!("DEL key:{}", steps * 31 % 5_000),
            format!("SET new:{steps} x"),
        ] {
            index += 1;
            apply(&mut machine, index, &Op::Command(logged(&line)));
        }
        steps += 1;
        match machine.snapshot_step(&mut bytes, 100) {
            SnapshotStep::More => {}
            SnapshotStep::Done => break,
            SnapshotStep::Lost => panic!("nothing replaced the state"),
        }
    }
    assert!(steps > 1, "{steps} steps");
    assert_eq!(bytes, expected);
    // A snapshot installed meanwhile loses the one being built.
    let mut bytes = machine.snapshot_begin();
    machine.restore(&expected).unwrap();
    assert_eq!(machine.snapshot_step(&mut bytes, 100), SnapshotStep::Lost);
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

fn get(machine: &DataMachine, key: &str) -> Option<Bytes> {
    match machine.db.get(key.as_bytes(), 1_000) {
        Some(polis_store::Value::String(value)) => Some(value.clone()),
        _ => None,
    }
}

#[test]
fn a_migration_copies_changes_freezes_and_hands_the_keys_over_at_the_switch() {
    // foo is in slot 12182; source owns everything, target nothing.
    let foo = key_hash_slot(b"foo");
    let moving = SlotSet::from_ranges(&[SlotRange::new(foo, foo).unwrap()]);
    let mut source = DataMachine::new(GroupId(1));
    let mut target = DataMachine::new(GroupId(2));
    apply(&mut source, 1, &own(1, &[(0, 16383)]));
    apply(&mut source, 2, &Op::Command(logged("SET foo before")));
    apply(&mut source, 3, &Op::Command(logged("SET bar other")));
    let track = Op::Track {
        migration: 7,
        slots: moving.clone(),
    };
    apply(&mut source, 4, &track);

    // The copy: every key of the slot, then what changed after index 5.
    let (page, next) = source.migrations.copy_page(&source.db, 0, 100);
    assert_eq!(next, 0);
    assert_eq!(page.len(), 1, "bar is not in the moving slot");
    apply(&mut source, 5, &Op::Command(logged("SET foo during")));
    apply(&mut source, 6, &Op::Command(logged("SET bar other2")));
    let changed = source.migrations.changed_after(&source.db, 4);
    assert_eq!(changed.len(), 1);
    assert!(source.migrations.changed_after(&source.db, 5).is_empty());
    let stage = |reset, read_at, keys| Op::Stage {
        migration: 7,
        slots: moving.clone(),
        reset,
        read_at,
        keys,
    };
    apply(&mut target, 1, &stage(true, 3, page));
    apply(&mut target, 2, &stage(false, 6, changed));
    assert_eq!(target.db.len(), 0, "staged keys are out of sight");
    assert_eq!(
        apply(&mut target, 3, &Op::Command(logged("GET foo"))),
        Applied::NotOwned {
            slot: foo,
            version: 0
        }
    );

    // Frozen: commands on the slot are refused at apply, others apply.
    apply(&mut source, 7, &Op::Freeze { migration: 7 });
    assert_eq!(
        apply(&mut source, 8, &Op::Command(logged("SET foo late"))),
        Applied::Frozen { slot: Some(foo) }
    );
    assert_eq!(
        apply(&mut source, 9, &Op::Command(logged("FLUSHALL"))),
        Applied::Frozen { slot: None }
    );
    assert_eq!(
        apply(&mut source, 10, &Op::Command(logged("SET bar other3"))),
        Applied::Reply(Reply::ok())
    );
    assert!(source.migrations.changed_after(&source.db, 6).is_empty());

    // The switch: the target owns the slot and its staged key becomes
    // live; the source drops its copy and stops tracking.
    let mut all_but_foo: Vec<(u16, u16)> = vec![(0, foo.get() - 1)];
    all_but_foo.push((foo.get() + 1, 16383));
    apply(&mut source, 11, &own(2, &all_but_foo));
    apply(&mut target, 4, &own(2, &[(foo.get(), foo.get())]));
    assert_eq!(get(&target, "foo"), Some(Bytes::from("during")));
    assert!(target.migrations.incoming.is_empty());
    assert_eq!(get(&source, "foo"), None);
    assert_eq!(get(&source, "bar"), Some(Bytes::from("other3")));
    assert!(source.migrations.outgoing.is_none());

    // The state survives a snapshot, staging and tracking included.
    let mut tracking = DataMachine::new(GroupId(1));
    apply(&mut tracking, 1, &own(1, &[(0, 16383)]));
    apply(&mut tracking, 2, &track);
    apply(&mut tracking, 3, &Op::Command(logged("SET foo x")));
    apply(&mut tracking, 4, &Op::Freeze { migration: 7 });
    let mut restored = DataMachine::new(GroupId(1));
    restored.restore(&tracking.snapshot()).unwrap();
    assert_eq!(restored.migrations, tracking.migrations);
    assert!(restored.migrations.frozen(Some(foo)));
}

#[test]
fn a_cancelled_migration_thaws_the_source_and_drops_the_staging() {
    let foo = key_hash_slot(b"foo");
    let moving = SlotSet::from_ranges(&[SlotRange::new(foo, foo).unwrap()]);
    let mut source = DataMachine::new(GroupId(1));
    apply(&mut source, 1, &own(1, &[(0, 16383)]));
    apply(
        &mut source,
        2,
        &Op::Track {
            migration: 3,
            slots: moving.clone(),
        },
    );
    apply(&mut source, 3, &Op::Freeze { migration: 3 });
    apply(&mut source, 4, &Op::Thaw { migration: 3 });
    assert_eq!(
        apply(&mut source, 5, &Op::Command(logged("SET foo 1"))),
        Applied::Reply(Reply::ok())
    );
    apply(&mut source, 6, &Op::Untrack { migration: 3 });
    assert!(source.migrations.outgoing.is_none());
    assert_eq!(get(&source, "foo"), Some(Bytes::from("1")));

    let mut target = DataMachine::new(GroupId(2));
    let staged = vec![(Bytes::from("foo"), source.db.entry(b"foo", 0).cloned())];
    apply(
        &mut target,
        1,
        &Op::Stage {
            migration: 3,
            slots: moving,
            reset: true,
            read_at: 1,
            keys: staged,
        },
    );
    apply(&mut target, 2, &Op::Unstage { migration: 3 });
    apply(&mut target, 3, &own(2, &[(foo.get(), foo.get())]));
    assert_eq!(
        get(&target, "foo"),
        None,
        "nothing staged survives a cancel"
    );
}

#[test]
fn a_late_entry_of_an_ended_migration_never_touches_a_newer_one() {
    let foo = key_hash_slot(b"foo");
    let moving = SlotSet::from_ranges(&[SlotRange::new(foo, foo).unwrap()]);
    let mut source = DataMachine::new(GroupId(1));
    apply(&mut source, 1, &own(1, &[(0, 16383)]));
    apply(
        &mut source,
        2,
        &Op::Track {
            migration: 5,
            slots: moving.clone(),
        },
    );
    apply(&mut source, 3, &Op::Command(logged("SET foo 1")));
    // Migration 4 ended; its driver's late Track must not reset 5's.
    apply(
        &mut source,
        4,
        &Op::Track {
            migration: 4,
            slots: moving.clone(),
        },
    );
    assert_eq!(
        source.migrations.outgoing.as_ref().map(|o| o.migration),
        Some(5)
    );
    assert_eq!(source.migrations.changed_after(&source.db, 0).len(), 1);

    let mut target = DataMachine::new(GroupId(2));
    let entry = |value: &str| {
        Some(polis_store::Entry::new(
            polis_store::Value::String(Bytes::from(value.to_owned())),
            None,
            0,
        ))
    };
    let staged = |migration, value: &str| Op::Stage {
        migration,
        slots: moving.clone(),
        reset: true,
        read_at: 1,
        keys: vec![(Bytes::from("old"), entry(value))],
    };
    // A cancelled migration 4 left a staged key; migration 5 begins.
    apply(&mut target, 1, &staged(4, "stale"));
    apply(
        &mut target,
        2,
        &Op::Stage {
            migration: 5,
            slots: moving.clone(),
            reset: true,
            read_at: 1,
            keys: vec![(Bytes::from("foo"), entry("1"))],
        },
    );
    // A late chunk of 4 arrives after 5's.
    apply(&mut target, 3, &staged(4, "stale"));
    apply(&mut target, 4, &own(2, &[(foo.get(), foo.get())]));
    assert_eq!(get(&target, "foo"), Some(Bytes::from("1")));
    assert_eq!(
        get(&target, "old"),
        None,
        "nothing of the ended migration went live"
    );
}

#[test]
fn migrations_of_different_slots_into_one_shard_stage_side_by_side() {
    // One range owned by two shards makes two migrations into shard 3.
    let foo = key_hash_slot(b"foo");
    let bar = key_hash_slot(b"bar");
    let set = |slot: Slot| SlotSet::from_ranges(&[SlotRange::new(slot, slot).unwrap()]);
    let entry = Some(polis_store::Entry::new(
        polis_store::Value::String(Bytes::from("v")),
        None,
        0,
    ));
    let mut target = DataMachine::new(GroupId(3));
    let stage = |migration, slots: SlotSet, key: &str| Op::Stage {
        migration,
        slots,
        reset: true,
        read_at: 1,
        keys: vec![(Bytes::from(key.to_owned()), entry.clone())],
    };
    apply(&mut target, 1, &stage(7, set(foo), "foo"));
    apply(&mut target, 2, &stage(8, set(bar), "bar"));
    apply(&mut target, 3, &stage(7, set(foo), "foo"));
    let (low, high) = (foo.min(bar).get(), foo.max(bar).get());
    apply(&mut target, 4, &own(2, &[(low, low), (high, high)]));
    assert_eq!(get(&target, "foo"), Some(Bytes::from("v")));
    assert_eq!(get(&target, "bar"), Some(Bytes::from("v")));
}

#[test]
fn a_chunk_read_earlier_never_overwrites_a_later_one_whatever_the_order() {
    let foo = key_hash_slot(b"foo");
    let moving = SlotSet::from_ranges(&[SlotRange::new(foo, foo).unwrap()]);
    let value = |text: &str| {
        Some(polis_store::Entry::new(
            polis_store::Value::String(Bytes::from(text.to_owned())),
            None,
            0,
        ))
    };
    let stage = |reset, read_at, entry| Op::Stage {
        migration: 9,
        slots: moving.clone(),
        reset,
        read_at,
        keys: vec![(Bytes::from("foo"), entry)],
    };
    let mut target = DataMachine::new(GroupId(2));
    // A driver copies foo (read at 10), then ships its change (read at
    // 20); a copy of the first chunk whose answer was lost applies last.
    apply(&mut target, 1, &stage(true, 10, value("copied")));
    apply(&mut target, 2, &stage(false, 20, value("changed")));
    apply(&mut target, 3, &stage(false, 10, value("copied")));
    // A deletion read at 30, then the late copy again.
    apply(&mut target, 4, &stage(false, 30, None));
    apply(&mut target, 5, &stage(false, 20, value("changed")));
    // A copy through a snapshot, which carries the read indexes.
    let mut deleted = DataMachine::new(GroupId(2));
    deleted.restore(&target.snapshot()).unwrap();
    assert_eq!(deleted.migrations, target.migrations);
    apply(&mut deleted, 6, &own(2, &[(foo.get(), foo.get())]));
    assert_eq!(get(&deleted, "foo"), None, "the later deletion stands");

    // A new driver copies from scratch at 40 (foo written again); a late
    // chunk of the earlier driver (read at 30) is dropped whole.
    apply(&mut target, 6, &stage(true, 40, value("again")));
    apply(&mut target, 7, &stage(false, 35, value("stale")));
    apply(&mut target, 8, &own(2, &[(foo.get(), foo.get())]));
    assert_eq!(get(&target, "foo"), Some(Bytes::from("again")));
}

#[test]
fn a_large_hash_staged_in_parts_goes_live_whole_and_a_newer_read_drops_late_parts() {
    let foo = key_hash_slot(b"foo");
    let moving = SlotSet::from_ranges(&[SlotRange::new(foo, foo).unwrap()]);
    let mut source = DataMachine::new(GroupId(1));
    apply(&mut source, 1, &own(1, &[(0, 16383)]));
    for index in 0..40 {
        let line = format!("HSET foo field{index} {}", "v".repeat(500));
        apply(&mut source, 2 + index, &Op::Command(logged(&line)));
    }
    let whole = source.db.entry(b"foo", 0).cloned().unwrap();
    let parts = whole.value.split(4096).expect("20 KB splits at 4 KB");
    assert!(parts.len() >= 4, "{} parts", parts.len());
    let first = polis_store::Entry::new(parts[0].clone(), None, 0);
    let stage = |read_at, entry| Op::Stage {
        migration: 5,
        slots: moving.clone(),
        reset: read_at == 50,
        read_at,
        keys: vec![(Bytes::from("foo"), entry)],
    };
    let more = |read_at, part: &polis_store::Value| Op::StageParts {
        migration: 5,
        slots: moving.clone(),
        read_at,
        parts: vec![(Bytes::from("foo"), part.clone())],
    };
    assert_eq!(more(50, &parts[1]).format(), EntryFormat::V3);

    let mut target = DataMachine::new(GroupId(2));
    apply(&mut target, 1, &stage(50, Some(first.clone())));
    let mut index = 2;
    for part in &parts[1..] {
        apply(&mut target, index, &more(50, part));
        index += 1;
    }
    // A retried part changes nothing; a part of another read is dropped.
    apply(&mut target, index, &more(50, &parts[1]));
    apply(&mut target, index + 1, &more(49, &parts[2]));
    // Staged in parts survives a snapshot like any staging.
    let mut restored = DataMachine::new(GroupId(2));
    restored.restore(&target.snapshot()).unwrap();
    assert_eq!(restored.migrations, target.migrations);
    apply(&mut restored, index + 2, &own(2, &[(foo.get(), foo.get())]));
    // The key is the source's, with the version of the entry that made
    // it live here (versions are not shipped).
    let live = restored.db.entry(b"foo", 0).unwrap();
    assert_eq!(
        (&live.value, live.expire_at_ms()),
        (&whole.value, whole.expire_at_ms())
    );
    assert_eq!(live.version, index + 2);

    // The key changed (read again at 60, one part only so far): the rest
    // of the parts of the read at 50, arriving late, are dropped.
    let changed = polis_store::Entry::new(parts[0].clone(), Some(9_000_000), 0);
    apply(&mut target, index + 2, &stage(60, Some(changed.clone())));
    apply(&mut target, index + 3, &more(50, &parts[2]));
    apply(&mut target, index + 4, &own(2, &[(foo.get(), foo.get())]));
    let live = target.db.entry(b"foo", 0).unwrap();
    assert_eq!(
        (&live.value, live.expire_at_ms()),
        (&changed.value, changed.expire_at_ms())
    );
}

fn transaction(watched: &[(&str, Option<u64>)], lines: &[&str]) -> Op {
    Op::Exec(Transaction {
        slot: Some(key_hash_slot(b"foo")),
        watched: watched
            .iter()
            .map(|(key, version)| (Bytes::from(key.to_string()), *version))
            .collect(),
        commands: lines.iter().map(|line| args(line)).collect(),
    })
}

#[test]
fn a_transaction_applies_whole_or_not_at_all_by_the_versions_it_watched() {
    let mut machine = DataMachine::new(GroupId(1));
    apply(&mut machine, 1, &own(1, &[(0, 16383)]));
    apply(&mut machine, 2, &Op::Command(logged("SET foo 1")));
    assert_eq!(machine.db.version_of(b"foo", 1_000), Some(2));
    assert_eq!(transaction(&[], &["INCR foo"]).format(), EntryFormat::V4);

    // Versions as WATCH read them: every command applies, in order; a
    // failing one answers its error in its place.
    let answer = apply(
        &mut machine,
        3,
        &transaction(
            &[("foo", Some(2))],
            &["INCR foo", "HSET foo f v", "GET foo"],
        ),
    );
    let Applied::Reply(Reply::Array(replies)) = answer else {
        panic!("{answer:?}");
    };
    assert_eq!(replies[0], Reply::Integer(2));
    assert!(replies[1].is_error(), "{:?}", replies[1]);
    assert_eq!(replies[2], Reply::bulk("2"));
    assert_eq!(machine.db.version_of(b"foo", 1_000), Some(3));

    // foo changed since (version 3): nothing applies.
    assert_eq!(
        apply(
            &mut machine,
            4,
            &transaction(&[("foo", Some(2))], &["SET foo 9"])
        ),
        Applied::Reply(Reply::NullArray)
    );
    assert_eq!(
        machine.db.get(b"foo", 1_000),
        Some(&Value::String(Bytes::from("2")))
    );
    // Watched absent and still absent: applies; watched absent but
    // created since: nothing applies.
    assert_eq!(
        apply(
            &mut machine,
            5,
            &transaction(&[("{foo}x", None)], &["SET foo 7"])
        ),
        Applied::Reply(Reply::Array(vec![Reply::ok()]))
    );
    assert_eq!(
        apply(
            &mut machine,
            6,
            &transaction(&[("foo", None)], &["SET foo 8"])
        ),
        Applied::Reply(Reply::NullArray)
    );

    // Versions survive a snapshot, so a restored replica decides alike.
    let mut restored = DataMachine::new(GroupId(1));
    restored.restore(&machine.snapshot()).unwrap();
    for replica in [&mut machine, &mut restored] {
        assert_eq!(
            apply(
                replica,
                7,
                &transaction(&[("foo", Some(5))], &["SET foo 10"])
            ),
            Applied::Reply(Reply::Array(vec![Reply::ok()]))
        );
    }
    assert_eq!(restored.snapshot(), machine.snapshot());
}
