//! Eviction entries at apply, and what a replica's keyspace reports to
//! its node.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use std::sync::Mutex;

use polis_cluster::version::EntryFormat;
use polis_store::{event_class, KeyEvent, Tracking};

use super::*;

/// Keeps the events a replica emits.
#[derive(Default)]
struct Kept(Mutex<Vec<KeyEvent>>);

impl EventSink for Kept {
    fn emit(&self, _group: GroupId, _term: u64, events: Vec<KeyEvent>) {
        self.0.lock().unwrap().extend(events);
    }
}

fn apply(machine: &mut DataMachine, index: u64, time_ms: u64, op: &Op) -> Applied {
    Applied::decode(&machine.apply(index, time_ms, &op.encode().unwrap()))
}

fn command(line: &str) -> Op {
    let args: Vec<Bytes> = line
        .split_whitespace()
        .map(|word| Bytes::from(word.to_owned()))
        .collect();
    let slot = match polis_commands::classify(&args).unwrap().scope {
        polis_commands::Scope::Slot(slot) => Some(slot),
        _ => None,
    };
    Op::Command(Logged { slot, args })
}

fn owning_everything(machine: &mut DataMachine) {
    let all = SlotSet::from_ranges(&[polis_types::SlotRange::new(
        Slot::new(0).unwrap(),
        Slot::new(16_383).unwrap(),
    )
    .unwrap()]);
    apply(
        machine,
        1,
        1_000,
        &Op::Own {
            version: 1,
            slots: all,
        },
    );
}

fn keys(names: &[&str]) -> Vec<Bytes> {
    names
        .iter()
        .map(|name| Bytes::from(name.to_string()))
        .collect()
}

#[test]
fn an_evict_entry_deletes_whatever_the_deadline_counts_and_notifies() {
    let kept = Arc::new(Kept::default());
    let mut machine = DataMachine::new(GroupId(1)).with_events(kept.clone());
    machine.db.set_events_mask(event_class::EVICTED);
    owning_everything(&mut machine);
    apply(&mut machine, 2, 1_000, &command("SET plain v"));
    apply(
        &mut machine,
        3,
        1_000,
        &command("SET volatile v PX 1000000"),
    );
    // Past its deadline at the evict entry's time, not yet deleted.
    apply(&mut machine, 4, 1_000, &command("SET due v PX 10"));
    let evict = Op::Evict(keys(&["plain", "volatile", "due", "absent"]));
    assert_eq!(evict.format(), EntryFormat::V5);
    assert_eq!(
        apply(&mut machine, 5, 2_000, &evict),
        Applied::Reply(Reply::Integer(3))
    );
    assert_eq!(machine.db.len(), 0);
    assert_eq!(machine.db.stats().evicted_keys, 3);
    assert_eq!(machine.db.stats().expired_keys, 0, "evicted, not expired");
    let events: Vec<(&str, Bytes)> = kept
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|event| (event.event, event.key.clone()))
        .collect();
    assert_eq!(
        events,
        vec![
            ("evicted", Bytes::from("plain")),
            ("evicted", Bytes::from("volatile")),
            ("evicted", Bytes::from("due")),
        ]
    );
    // The same entry applied on another replica evicts the same keys.
    let mut other = DataMachine::new(GroupId(1));
    owning_everything(&mut other);
    for (index, line) in [
        (2, "SET plain v"),
        (3, "SET volatile v PX 1000000"),
        (4, "SET due v PX 10"),
    ] {
        apply(&mut other, index, 1_000, &command(line));
    }
    apply(&mut other, 5, 2_000, &evict);
    assert_eq!(other.db.to_snapshot(), machine.db.to_snapshot());
}

#[test]
fn the_evicted_counter_and_the_node_configuration_survive_a_restore() {
    let mut machine = DataMachine::new(GroupId(1));
    owning_everything(&mut machine);
    apply(&mut machine, 2, 1_000, &command("SET a 1"));
    apply(&mut machine, 3, 1_000, &command("SET b 2"));
    apply(&mut machine, 4, 1_000, &Op::Evict(keys(&["a"])));
    let snapshot = machine.snapshot();

    let lfu = Tracking::Lfu {
        log_factor: 10,
        decay_minutes: 1,
    };
    let mut replica = DataMachine::new(GroupId(1));
    replica.db.set_tracking(lfu);
    replica.set_notify_mask(event_class::EVICTED);
    replica.restore(&snapshot).unwrap();
    assert_eq!(replica.db.stats().evicted_keys, 1);
    assert_eq!(replica.db.tracking(), lfu, "CONFIG stays across a restore");
    assert_eq!(replica.db.events_mask(), event_class::EVICTED);
    // Keys read from a snapshot count as used at the restore.
    let now = crate::node::now_ms();
    let entry = replica.db.peek(b"b", now).unwrap();
    assert!(entry.access().frequency(now, 1) >= polis_store::access::LFU_INIT_VAL - 1);
}

#[test]
fn replicas_report_their_keyspace_to_the_node_footprint() {
    let footprint = Arc::new(Footprint::default());
    let mut first = DataMachine::new(GroupId(1)).with_footprint(footprint.clone());
    let mut second = DataMachine::new(GroupId(2)).with_footprint(footprint.clone());
    owning_everything(&mut first);
    owning_everything(&mut second);
    apply(&mut first, 2, 1_000, &command("SET a 1"));
    apply(&mut second, 2, 1_000, &command("SET b 2"));
    apply(&mut second, 3, 1_000, &command("SET c 3"));
    let both = first.db.used_memory() + second.db.used_memory();
    assert!(both > 0);
    assert_eq!(footprint.bytes(), both as u64);
    apply(&mut second, 4, 1_000, &Op::Evict(keys(&["b", "c"])));
    assert_eq!(footprint.bytes(), first.db.used_memory() as u64);
    let snapshot = first.snapshot();
    first.restore(&snapshot).unwrap();
    assert_eq!(footprint.bytes(), first.db.used_memory() as u64);
    drop(first);
    assert_eq!(footprint.bytes(), 0, "a replica that goes takes its bytes");
}

#[test]
fn replicas_report_their_cache_namespaces_to_the_node_footprint() {
    let table = Arc::new(polis_store::NamespaceTable::new([
        (Bytes::from_static(b"c:"), true),
        (Bytes::from_static(b"s:"), false),
    ]));
    let footprint = Arc::new(Footprint::default());
    let mut first = DataMachine::new(GroupId(1)).with_footprint(footprint.clone());
    let mut second = DataMachine::new(GroupId(2)).with_footprint(footprint.clone());
    owning_everything(&mut first);
    owning_everything(&mut second);
    apply(&mut first, 2, 1_000, &command("SET c:1 before"));
    // Keys present when the table comes are counted, by the next report.
    first.db.set_namespaces(Some(table.clone()));
    second.db.set_namespaces(Some(table));
    apply(&mut first, 3, 1_000, &command("SET s:1 strong"));
    apply(&mut second, 2, 1_000, &command("SET c:2 cached"));
    apply(&mut second, 3, 1_000, &command("SET c:3 cached"));
    let cached = |machine: &DataMachine| machine.db.namespace_bytes(b"c:") as u64;
    assert!(cached(&first) > 0 && cached(&second) > cached(&first));
    assert_eq!(
        footprint.namespace_bytes(b"c:"),
        cached(&first) + cached(&second)
    );
    assert_eq!(
        footprint.namespace_bytes(b"s:"),
        0,
        "no limits: not counted"
    );
    apply(&mut second, 4, 1_000, &Op::Evict(keys(&["c:2"])));
    assert_eq!(
        footprint.namespace_bytes(b"c:"),
        cached(&first) + cached(&second)
    );
    let snapshot = first.snapshot();
    first.restore(&snapshot).unwrap();
    assert_eq!(
        cached(&first),
        footprint.namespace_bytes(b"c:") - cached(&second)
    );
    drop(second);
    assert_eq!(footprint.namespace_bytes(b"c:"), cached(&first));
    first.db.set_namespaces(None);
    first.report_footprint();
    assert_eq!(
        footprint.namespace_bytes(b"c:"),
        0,
        "a table that goes takes its bytes"
    );
    assert_eq!(footprint.bytes(), first.db.used_memory() as u64);
}
