#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_types::{GroupId, Slot, SlotRange};

use super::*;
use crate::change::MapChange;
use crate::test_support::map;

fn range(start: u16, end: u16) -> SlotRange {
    SlotRange::new(Slot::new(start).unwrap(), Slot::new(end).unwrap()).unwrap()
}

fn begin(slots: &[SlotRange], target: u64) -> MapChange {
    MapChange::BeginMigration {
        slots: slots.to_vec(),
        target: GroupId(target),
    }
}

fn owner(map: &ClusterMap, slot: u16) -> GroupId {
    crate::MapView::new(map.clone())
        .owner(Slot::new(slot).unwrap())
        .unwrap()
        .id
}

#[test]
fn slots_change_owner_once_at_the_switch_and_the_migration_then_ends() {
    // Three shards: 0-5460, 5461-10922, 10923-16383.
    let v1 = map(3, 3);
    let v2 = v1
        .apply(v1.version, &[begin(&[range(100, 199)], 2)])
        .unwrap();
    let migration = v2.migrations.values().next().unwrap().clone();
    assert_eq!(
        (migration.source, migration.target, migration.phase),
        (GroupId(1), GroupId(2), MigrationPhase::Copying)
    );
    assert_eq!(
        owner(&v2, 150),
        GroupId(1),
        "the source owns them while copying"
    );
    assert_eq!(
        v2.migration_of(GroupId(2)).map(|m| m.id),
        Some(migration.id)
    );
    let error = v2
        .apply(
            v2.version,
            &[MapChange::EndMigration {
                id: migration.id,
                cancelled: false,
            }],
        )
        .unwrap_err();
    assert!(error.to_string().contains("has not switched"), "{error}");

    let v3 = v2
        .apply(
            v2.version,
            &[MapChange::SwitchMigration {
                id: migration.id,
                attempt: 0,
            }],
        )
        .unwrap();
    assert_eq!(owner(&v3, 150), GroupId(2));
    assert_eq!(owner(&v3, 99), GroupId(1));
    assert_eq!(v3.shards[&GroupId(2)].slots_version, v3.version);
    assert_eq!(v3.shards[&GroupId(1)].slots_version, v3.version);
    let again = v3.apply(
        v3.version,
        &[MapChange::SwitchMigration {
            id: migration.id,
            attempt: 0,
        }],
    );
    assert!(again.is_err(), "one switch");
    let cancel = v3.apply(
        v3.version,
        &[MapChange::EndMigration {
            id: migration.id,
            cancelled: true,
        }],
    );
    assert!(cancel.unwrap_err().to_string().contains("switched already"));

    let v4 = v3
        .apply(
            v3.version,
            &[MapChange::EndMigration {
                id: migration.id,
                cancelled: false,
            }],
        )
        .unwrap();
    assert!(v4.migrations.is_empty());
    assert!(v4.migration_ended(migration.id));
    assert!(!v4.migration_ended(migration.id + 1), "never began");
}

#[test]
fn a_cancel_before_the_switch_leaves_ownership_alone() {
    let v1 = map(3, 3);
    let v2 = v1.apply(v1.version, &[begin(&[range(0, 9)], 3)]).unwrap();
    let id = *v2.migrations.keys().next().unwrap();
    let v3 = v2
        .apply(
            v2.version,
            &[MapChange::EndMigration {
                id,
                cancelled: true,
            }],
        )
        .unwrap();
    assert_eq!(owner(&v3, 5), GroupId(1));
    assert_eq!(
        v3.shards[&GroupId(1)].slots_version,
        v1.shards[&GroupId(1)].slots_version
    );
    let switch = v3.apply(v3.version, &[MapChange::SwitchMigration { id, attempt: 0 }]);
    assert!(switch.unwrap_err().to_string().contains("no migration"));
}

#[test]
fn ranges_over_two_owners_make_two_migrations_and_bad_requests_are_refused() {
    let v1 = map(3, 3);
    // 5400-5500 spans shards 1 and 2; shard 3 takes both parts.
    let v2 = v1
        .apply(v1.version, &[begin(&[range(5400, 5500)], 3)])
        .unwrap();
    let sources: Vec<GroupId> = v2.migrations.values().map(|m| m.source).collect();
    assert_eq!(sources, [GroupId(1), GroupId(2)]);
    assert_eq!(v2.next_migration_id, 3);

    let refused = |changes: &[MapChange], expected: &str| {
        let error = v1.apply(v1.version, changes).unwrap_err().to_string();
        assert!(error.contains(expected), "{error} lacks {expected}");
    };
    refused(&[begin(&[range(0, 10)], 1)], "owns slots 0-10 already");
    refused(&[begin(&[range(0, 10)], 9)], "no shard 9");
    refused(&[begin(&[range(0, 10), range(5, 20)], 2)], "overlap");
    refused(&[begin(&[], 2)], "no slot");
    // One migration per shard at a time: shard 2 is busy in v2.
    let error = v2
        .apply(v2.version, &[begin(&[range(6000, 6001)], 1)])
        .unwrap_err()
        .to_string();
    assert!(error.contains("one at a time per shard"), "{error}");
}

#[test]
fn a_retry_makes_the_switch_of_the_earlier_attempt_impossible() {
    let v1 = map(3, 3);
    let v2 = v1.apply(v1.version, &[begin(&[range(0, 9)], 2)]).unwrap();
    let id = *v2.migrations.keys().next().unwrap();
    let v3 = v2
        .apply(v2.version, &[MapChange::RetryMigration { id, attempt: 0 }])
        .unwrap();
    let stale = v3.apply(v3.version, &[MapChange::SwitchMigration { id, attempt: 0 }]);
    assert!(stale.unwrap_err().to_string().contains("attempt 1, not 0"));
    let v4 = v3
        .apply(v3.version, &[MapChange::SwitchMigration { id, attempt: 1 }])
        .unwrap();
    assert_eq!(owner(&v4, 5), GroupId(2));
    let late = v4.apply(v4.version, &[MapChange::RetryMigration { id, attempt: 1 }]);
    assert!(
        late.unwrap_err().to_string().contains("switched already"),
        "no thaw after the switch"
    );
}

#[test]
fn slot_ranges_are_read_and_bad_ones_refused_with_the_reason() {
    assert_eq!(
        parse_ranges("0-99,200").unwrap(),
        [range(0, 99), range(200, 200)]
    );
    assert!(parse_ranges("5-2")
        .unwrap_err()
        .contains("starts at or below"));
    assert!(parse_ranges("0-16384").unwrap_err().contains("not a slot"));
    assert!(parse_ranges("x").unwrap_err().contains("not a slot"));
    assert!(parse_ranges("").unwrap_err().contains("no slot named"));
}
