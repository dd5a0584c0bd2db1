//! The queue options of consumer groups in the state machine: the entry
//! format they need, the dead-letter stream a migration must ship, and
//! their state across snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_cluster::version::EntryFormat;
use polis_store::Value;
use polis_types::key_hash_slot;

use super::tests::args;
use super::*;

fn logged(line: &str) -> Logged {
    Logged {
        slot: Some(key_hash_slot(b"{s}")),
        args: args(line),
    }
}

fn command(line: &str) -> Op {
    Op::Command(logged(line))
}

fn apply_at(machine: &mut DataMachine, index: u64, time_ms: u64, op: &Op) -> Applied {
    Applied::decode(&machine.apply(index, time_ms, &op.encode().unwrap()))
}

fn owning_everything() -> DataMachine {
    let mut machine = DataMachine::new(GroupId(1));
    let all = SlotSet::from_ranges(&[polis_types::SlotRange::new(
        Slot::new(0).unwrap(),
        Slot::new(16383).unwrap(),
    )
    .unwrap()]);
    apply_at(
        &mut machine,
        1,
        0,
        &Op::Own {
            version: 1,
            slots: all,
        },
    );
    machine
}

#[test]
fn queue_extensions_need_format_5_and_redis_forms_stay_at_4() {
    let table: &[(&str, EntryFormat)] = &[
        ("XNACK {s} g 1-1", EntryFormat::V5),
        ("XNACK {s} g DELAY 10 1-1", EntryFormat::V5),
        ("XGROUP SETOPTIONS {s} g ACKWAIT 10", EntryFormat::V5),
        ("XGROUP CREATE {s} g $ MKSTREAM ACKWAIT 10", EntryFormat::V5),
        ("XGROUP CREATE {s} g $ MAXDELIVERIES 3", EntryFormat::V5),
        ("XGROUP CREATE {s} g $ DEADLETTER {s}:dead", EntryFormat::V5),
        ("XGROUP CREATE {s} g $ MKSTREAM", EntryFormat::V4),
        ("XGROUP CREATE {s} g $ ENTRIESREAD 2", EntryFormat::V4),
        ("XGROUP SETID {s} g 0", EntryFormat::V4),
        ("XREADGROUP GROUP g c STREAMS {s} >", EntryFormat::V4),
        ("XACK {s} g 1-1", EntryFormat::V4),
        ("XADD {s} * f v", EntryFormat::V4),
        ("SET foo bar", EntryFormat::V1),
    ];
    for (line, format) in table {
        assert_eq!(command(line).format(), *format, "{line}");
    }
    let batch = Op::Batch(vec![logged("XADD {s} * f v"), logged("XNACK {s} g 1-1")]);
    assert_eq!(batch.format(), EntryFormat::V5);
    let transaction = |lines: &[&str]| {
        Op::Exec(Transaction {
            slot: Some(key_hash_slot(b"{s}")),
            watched: Vec::new(),
            commands: lines.iter().map(|line| args(line)).collect(),
        })
    };
    assert_eq!(transaction(&["INCR {s}x"]).format(), EntryFormat::V4);
    assert_eq!(
        transaction(&["INCR {s}x", "XNACK {s} g 1-1"]).format(),
        EntryFormat::V5
    );
}

#[test]
fn a_dead_letter_move_is_a_change_the_migration_ships() {
    let mut machine = owning_everything();
    let commands = [
        "XGROUP CREATE {s} g $ MKSTREAM MAXDELIVERIES 1 DEADLETTER {s}:dead",
        "XADD {s} 1-1 f v",
        "XREADGROUP GROUP g c STREAMS {s} >",
        "XNACK {s} g 1-1",
    ];
    for (offset, line) in commands.iter().enumerate() {
        apply_at(&mut machine, 2 + offset as u64, 1_000, &command(line));
    }
    let slot = key_hash_slot(b"{s}");
    let slots = SlotSet::from_ranges(&[polis_types::SlotRange::new(slot, slot).unwrap()]);
    apply_at(
        &mut machine,
        10,
        1_000,
        &Op::Track {
            migration: 7,
            slots,
        },
    );
    let read = command("XREADGROUP GROUP g c STREAMS {s} >");
    assert_eq!(
        apply_at(&mut machine, 11, 1_000, &read),
        Applied::Reply(Reply::NullArray)
    );
    assert!(machine.db.get(b"{s}:dead", 1_000).is_some());
    let changed = &machine.migrations.outgoing.as_ref().unwrap().changed;
    assert_eq!(changed.get(b"{s}:dead".as_slice()), Some(&11));
    assert_eq!(changed.get(b"{s}".as_slice()), Some(&11));
}

#[test]
fn queue_state_survives_a_snapshot_and_replicas_redeliver_alike() {
    let mut machine = owning_everything();
    let commands = [
        "XGROUP CREATE {s} g $ MKSTREAM ACKWAIT 100 MAXDELIVERIES 2 DEADLETTER {s}:dead",
        "XADD {s} 1-1 f a",
        "XADD {s} 2-1 f b",
        "XREADGROUP GROUP g c1 STREAMS {s} >",
        "XNACK {s} g DELAY 500 2-1",
    ];
    for (offset, line) in commands.iter().enumerate() {
        apply_at(&mut machine, 2 + offset as u64, 1_000, &command(line));
    }
    let mut restored = DataMachine::new(GroupId(1));
    restored.restore(&machine.snapshot()).unwrap();
    assert_eq!(restored.snapshot(), machine.snapshot());
    let read = |consumer: &str| command(&format!("XREADGROUP GROUP g {consumer} STREAMS {{s}} >"));
    for replica in [&mut machine, &mut restored] {
        // 1-1's ack-wait passed, 2-1's nack delay did not.
        let answer = apply_at(replica, 10, 1_100, &read("c2"));
        let Applied::Reply(Reply::Array(streams)) = answer else {
            panic!("{answer:?}");
        };
        assert_eq!(format!("{streams:?}").matches("1-1").count(), 1);
        assert!(!format!("{streams:?}").contains("2-1"));
        // 1-1 delivered twice: at its next due time, it moves.
        apply_at(replica, 11, 1_500, &read("c3"));
        apply_at(replica, 12, 1_600, &read("c3"));
    }
    assert_eq!(restored.snapshot(), machine.snapshot());
    let dead = machine
        .db
        .get(b"{s}:dead", 1_600)
        .and_then(Value::as_stream);
    // 1-1 moved at 1 500 (due at 1 200), 2-1 at 1 600 (redelivered at 1 500).
    assert_eq!(dead.map(|stream| stream.len()), Some(2));
}
