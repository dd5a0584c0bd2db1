//! Locks in the state machine: their entries' format, and fencing tokens
//! from the log index and the ownership version.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_cluster::version::EntryFormat;
use polis_store::Value;
use polis_types::{key_hash_slot, SlotRange};

use super::tests::{args, logged};
use super::*;

fn command(line: &str) -> Op {
    Op::Command(logged(line))
}

fn own_everything(version: u64) -> Op {
    let all = SlotRange::new(Slot::new(0).unwrap(), Slot::new(16383).unwrap()).unwrap();
    Op::Own {
        version,
        slots: SlotSet::from_ranges(&[all]),
    }
}

fn reply(machine: &mut DataMachine, index: u64, time_ms: u64, op: &Op) -> Reply {
    match Applied::decode(&machine.apply(index, time_ms, &op.encode().unwrap())) {
        Applied::Reply(reply) => reply,
        other => panic!("{other:?}"),
    }
}

fn token(reply: Reply) -> u64 {
    match reply {
        Reply::Integer(token) => token as u64,
        other => panic!("expected a token, got {other:?}"),
    }
}

#[test]
fn lock_commands_are_proposed_only_once_every_node_reads_format_5() {
    let table: &[(&str, EntryFormat)] = &[
        ("LOCK ACQUIRE l o 100", EntryFormat::V5),
        ("LOCK REFRESH l 1 100", EntryFormat::V5),
        ("LOCK RELEASE l 1", EntryFormat::V5),
        ("FENCED {l}x 1 SET {l}k v", EntryFormat::V5),
        ("SET k v", EntryFormat::V1),
        ("RPUSH k v", EntryFormat::V4),
    ];
    for (line, format) in table {
        assert_eq!(command(line).format(), *format, "{line}");
    }
    let batch = |lines: &[&str]| {
        Op::Batch(
            lines
                .iter()
                .map(|line| match command(line) {
                    Op::Command(logged) => logged,
                    _ => unreachable!(),
                })
                .collect(),
        )
    };
    assert_eq!(
        batch(&["SET {l}k v", "FENCED {l}x 1 SET {l}k v"]).format(),
        EntryFormat::V5
    );
    let transaction = |lines: &[&str]| {
        Op::Exec(Transaction {
            slot: Some(key_hash_slot(b"l")),
            watched: Vec::new(),
            commands: lines.iter().map(|line| args(line)).collect(),
        })
    };
    assert_eq!(transaction(&["INCR {l}k"]).format(), EntryFormat::V4);
    assert_eq!(
        transaction(&["INCR {l}k", "LOCK INFO {l}x"]).format(),
        EntryFormat::V5
    );
    // A cluster some of whose nodes read only format 4 refuses them.
    assert!(version::check_enabled(EntryFormat::V5, 4).is_err());
    assert!(version::check_enabled(EntryFormat::V5, 5).is_ok());
}

#[test]
fn tokens_grow_with_the_log_and_with_the_ownership_version() {
    let mut source = DataMachine::new(GroupId(1));
    reply(&mut source, 1, 1_000, &own_everything(3));
    let first = token(reply(
        &mut source,
        2,
        1_000,
        &command("LOCK ACQUIRE l a 100"),
    ));
    assert_eq!(first, (3 << 40) + 2);
    // A replica restored from a snapshot grants the very same tokens.
    let mut restored = DataMachine::new(GroupId(1));
    restored.restore(&source.snapshot()).unwrap();
    reply(&mut source, 3, 1_000, &command("DEL l"));
    reply(&mut restored, 3, 1_000, &command("DEL l"));
    let again = command("LOCK ACQUIRE l b 100");
    let second = token(reply(&mut source, 4, 1_000, &again));
    assert_eq!(token(reply(&mut restored, 4, 1_000, &again)), second);
    assert!(second > first, "after DEL: {second} > {first}");

    // Slots that move arrive at a shard with a higher ownership version:
    // its tokens are higher though its log is shorter.
    let mut target = DataMachine::new(GroupId(2));
    reply(&mut target, 1, 1_000, &own_everything(4));
    let moved = token(reply(
        &mut target,
        2,
        1_000,
        &command("LOCK ACQUIRE l c 100"),
    ));
    assert!(moved > second, "{moved} > {second}");
}

#[test]
fn a_fence_is_checked_in_log_order_with_the_grants() {
    let mut machine = DataMachine::new(GroupId(1));
    reply(&mut machine, 1, 1_000, &own_everything(1));
    let a = token(reply(
        &mut machine,
        2,
        1_000,
        &command("LOCK ACQUIRE {o}l a 100"),
    ));
    let write =
        |token: u64, value: &str| command(&format!("FENCED {{o}}l {token} SET {{o}}k {value}"));
    assert_eq!(reply(&mut machine, 3, 1_050, &write(a, "a")), Reply::ok());
    // a's lease ends at 1100 by the entries' time; b acquires.
    let b = token(reply(
        &mut machine,
        4,
        1_100,
        &command("LOCK ACQUIRE {o}l b 100"),
    ));
    // a's write, proposed before b's grant but applied after it, is refused.
    let refused = reply(&mut machine, 5, 1_100, &write(a, "stale"));
    assert_eq!(
        refused,
        Reply::Error(ReplyError::Fenced(format!(
            "token {a} is not the current token of lock '{{o}}l' (held by 'b' with token {b})"
        )))
    );
    assert_eq!(
        machine.db.get(b"{o}k", 1_100),
        Some(&Value::String(Bytes::from("a")))
    );
    assert_eq!(reply(&mut machine, 6, 1_150, &write(b, "b")), Reply::ok());
}
