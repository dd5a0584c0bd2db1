use bytes::Bytes;
use serde::Serialize;

use super::*;

fn key(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn string(text: &str) -> Value {
    Value::String(key(text))
}

/// The counters as format 2 wrote them.
#[derive(Serialize)]
struct StatsV2 {
    expired_keys: u64,
}

/// An entry as format 2 wrote it: value, deadline, version.
type EntryV2<'a> = (&'a Value, Option<u64>, u64);

/// A keyspace as format 2 wrote it: entries with versions, counters
/// without evictions.
#[derive(Serialize)]
struct SnapshotV2<'a> {
    keys: Vec<(&'a Bytes, EntryV2<'a>)>,
    stats: StatsV2,
}

/// The keys of [`a_keyspace`] in hash order, as a snapshot lists them.
fn a_keyspace() -> Db {
    let mut db = Db::new();
    db.begin_write(7, 0);
    db.insert(key("forever"), string("v1"), None, 0);
    db.insert(key("until"), string("v2"), Some(9_000_000_000_000), 0);
    db.insert(key("gone"), string("v3"), Some(5), 0);
    // One lazy expiry and two evictions, so both counters are set.
    assert!(db.remove(b"gone", 10).is_none());
    db.insert(key("a"), string("x"), None, 0);
    db.insert(key("b"), string("y"), None, 0);
    assert_eq!(db.evict(&[key("a"), key("b")]), 2);
    db
}

#[test]
fn evicted_keys_round_trip_in_the_current_format() {
    let db = a_keyspace();
    let bytes = db.to_snapshot();
    assert_eq!(bytes[0], SNAPSHOT_FORMAT_VERSION);
    let restored = Db::from_snapshot(&bytes).expect("decodes");
    assert_eq!(
        restored.stats(),
        DbStats {
            expired_keys: 1,
            evicted_keys: 2
        }
    );
    assert_eq!(restored.len(), 2);
    assert_eq!(restored.to_snapshot(), bytes);
    // A snapshot encoded in steps gives the same bytes.
    let mut pinned = db.clone();
    let mut stepped = pinned.pin();
    while pinned.pinned_step(&mut stepped, 1) == Some(false) {}
    assert_eq!(stepped, bytes);
}

#[test]
fn format_2_snapshots_still_read_with_no_evictions() {
    let db = a_keyspace();
    let entries: Vec<(&Bytes, &Entry)> = db.keys.iter().collect();
    let old = SnapshotV2 {
        keys: entries
            .iter()
            .map(|(key, entry)| (*key, (&entry.value, entry.expire_at_ms(), entry.version)))
            .collect(),
        stats: StatsV2 { expired_keys: 1 },
    };
    let mut bytes = vec![2u8];
    bytes.extend(postcard::to_stdvec(&old).expect("encodes"));
    let restored = Db::from_snapshot(&bytes).expect("a format 2 snapshot decodes");
    assert_eq!(
        restored.stats(),
        DbStats {
            expired_keys: 1,
            evicted_keys: 0
        }
    );
    assert_eq!(restored.len(), 2);
    assert_eq!(
        restored.peek(b"until", 0).and_then(Entry::expire_at_ms),
        Some(9_000_000_000_000)
    );
    assert_eq!(restored.version_of(b"forever", 0), Some(7));
    assert_eq!(restored.expires_len(), 1);
    // Written again, it is a current snapshot of the same keys.
    let rewritten = restored.to_snapshot();
    assert_eq!(rewritten[0], SNAPSHOT_FORMAT_VERSION);
    assert_eq!(
        Db::from_snapshot(&rewritten).expect("decodes").stats(),
        restored.stats()
    );
}

#[test]
fn a_format_2_snapshot_reads_byte_for_byte() {
    // Pinned bytes of a format 2 snapshot (one key "k" = "v", no deadline,
    // version 3; 4 expired keys), as the previous build wrote them.
    let bytes = [2, 1, 1, b'k', 0, 1, b'v', 0, 3, 4];
    let db = Db::from_snapshot(&bytes).expect("decodes");
    assert_eq!(db.get(b"k", 0), Some(&string("v")));
    assert_eq!(db.version_of(b"k", 0), Some(3));
    assert_eq!(db.stats().expired_keys, 4);
    assert_eq!(db.stats().evicted_keys, 0);
}

#[test]
fn a_deadline_of_zero_reads_as_long_past() {
    // Format 1 stored entries as (value, deadline); a deadline of 0 ms is
    // kept as 1 ms: both are past for any clock.
    let bytes = [1, 1, 1, b'k', 0, 1, b'v', 1, 0, 0];
    let db = Db::from_snapshot(&bytes).expect("decodes");
    assert_eq!(db.peek(b"k", 0).and_then(Entry::expire_at_ms), Some(1));
    assert_eq!(db.get(b"k", 1), None);
}
