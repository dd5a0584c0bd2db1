//! Opening the log engine: what it verifies, and what it refuses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use bytes::Bytes;
use fjall::PersistMode;
use openraft::testing::{blank_ent, log_id};

use super::record::RecordError;
use super::*;
use crate::types::Proposal;

const GROUP: GroupId = GroupId(1);

fn entry(index: u64, payload_len: usize) -> Entry {
    if payload_len == 0 {
        return blank_ent::<TypeConfig>(1, ReplicaId(1), index);
    }
    let proposal = Proposal {
        time_ms: 1_700_000_000_000 + index,
        payload: Bytes::from(vec![b'p'; payload_len]),
    };
    Entry::new_normal(log_id::<TypeConfig>(1, ReplicaId(1), index), proposal)
}

/// What to store, written straight through fjall as the engine would.
struct Fixture {
    indexes: Vec<u64>,
    payload_len: usize,
    /// Changes the record of this index after it was sealed.
    damage_entry: Option<u64>,
    /// Flushes the log into a table before closing.
    flush: bool,
}

impl Fixture {
    fn entries(indexes: impl IntoIterator<Item = u64>) -> Self {
        Self {
            indexes: indexes.into_iter().collect(),
            payload_len: 0,
            damage_entry: None,
            flush: false,
        }
    }

    fn write(&self, dir: &Path) {
        let db = Database::builder(dir)
            .manual_journal_persist(true)
            .journal_compression(CompressionType::None)
            .open()
            .unwrap();
        let logs = db.keyspace("logs", KeyspaceCreateOptions::default).unwrap();
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default).unwrap();
        for index in &self.indexes {
            let key = log_key(GROUP, *index);
            let mut record =
                encode_record(&Cipher::Plain, &key, &entry(*index, self.payload_len)).unwrap();
            if self.damage_entry == Some(*index) {
                *record.last_mut().unwrap() ^= 0x01;
            }
            logs.insert(key, record).unwrap();
        }
        let committed = Some(log_id::<TypeConfig>(1, ReplicaId(1), 3));
        let key = meta_key(GROUP, META_COMMITTED);
        meta.insert(
            &key,
            encode_record(&Cipher::Plain, &key, &committed).unwrap(),
        )
        .unwrap();
        if self.flush {
            logs.rotate_memtable_and_wait().unwrap();
            assert!(logs.table_count() > 0, "the log is in a table");
        }
        db.persist(PersistMode::SyncAll).unwrap();
    }
}

fn open_corrupt(dir: &Path) -> Corruption {
    match LogEngine::open_verified(dir, Cipher::Plain) {
        Err(OpenError::Corrupt(corruption)) => corruption,
        Err(OpenError::Io(error)) => panic!("expected corruption, got I/O error {error}"),
        Ok(_) => panic!("expected corruption, the engine opened"),
    }
}

#[tokio::test]
async fn appended_entries_read_back_verified() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open_verified(dir.path(), Cipher::Plain).unwrap();
    let mut store = engine.group(GROUP);
    let entries: Vec<Entry> = (1..=20).map(|index| entry(index, 100)).collect();
    store
        .append(entries.clone(), IOFlushed::noop())
        .await
        .unwrap();
    let committed = Some(log_id::<TypeConfig>(1, ReplicaId(1), 20));
    store.save_committed(committed).await.unwrap();

    assert_eq!(store.try_get_log_entries(1..=20).await.unwrap(), entries);
    assert_eq!(store.read_committed().await.unwrap(), committed);
    let state = store.get_log_state().await.unwrap();
    assert_eq!(
        state.last_log_id,
        Some(log_id::<TypeConfig>(1, ReplicaId(1), 20))
    );
}

#[tokio::test]
async fn one_append_entries_carries_at_most_its_bytes_and_at_least_one_entry() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LogEngine::open_verified(dir.path(), Cipher::Plain).unwrap();
    let mut store = engine.group(GROUP);
    // Ten entries of 1 MiB: four fill a request.
    let big: Vec<Entry> = (1..=10).map(|index| entry(index, 1 << 20)).collect();
    store.append(big.clone(), IOFlushed::noop()).await.unwrap();
    assert_eq!(
        store.limited_get_log_entries(1, 11).await.unwrap(),
        big[..4]
    );
    assert_eq!(
        store.limited_get_log_entries(9, 11).await.unwrap(),
        big[8..]
    );
    // One entry larger than the limit still goes, alone.
    let huge = entry(11, APPEND_ENTRIES_BYTES_MAX + 1);
    store
        .append(vec![huge.clone()], IOFlushed::noop())
        .await
        .unwrap();
    assert_eq!(
        store.limited_get_log_entries(11, 12).await.unwrap(),
        vec![huge]
    );
    assert_eq!(
        store.limited_get_log_entries(12, 12).await.unwrap(),
        Vec::<Entry>::new()
    );
    // Small entries: the whole range.
    let small: Vec<Entry> = (12..=40).map(|index| entry(index, 100)).collect();
    store
        .append(small.clone(), IOFlushed::noop())
        .await
        .unwrap();
    assert_eq!(store.limited_get_log_entries(12, 41).await.unwrap(), small);
    // The apply path still reads every entry asked for.
    assert_eq!(store.try_get_log_entries(1..=10).await.unwrap(), big);
}

#[test]
fn an_intact_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    Fixture::entries(1..=30).write(dir.path());
    LogEngine::open_verified(dir.path(), Cipher::Plain).unwrap();
}

#[test]
fn a_record_changed_before_fjall_checksummed_it_is_caught_by_its_own_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Fixture {
        damage_entry: Some(7),
        ..Fixture::entries(1..=30)
    };
    fixture.write(dir.path());
    match open_corrupt(dir.path()) {
        Corruption::Record {
            group,
            stored,
            problem: RecordProblem::Checksum(RecordError::ChecksumMismatch { .. }),
            ..
        } => {
            assert_eq!(group, GROUP);
            assert_eq!(stored, Stored::Entry(7));
        }
        other => panic!("expected a checksum mismatch, got {other}"),
    }
}

#[test]
fn an_entry_stored_under_another_index_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    Fixture::entries(1..=10).write(dir.path());
    {
        let db = Database::builder(dir.path()).open().unwrap();
        let logs = db.keyspace("logs", KeyspaceCreateOptions::default).unwrap();
        let key = log_key(GROUP, 11);
        logs.insert(
            key,
            encode_record(&Cipher::Plain, &key, &entry(12, 0)).unwrap(),
        )
        .unwrap();
        db.persist(PersistMode::SyncAll).unwrap();
    }
    let corruption = open_corrupt(dir.path());
    assert!(
        matches!(
            corruption,
            Corruption::Record {
                problem: RecordProblem::MisplacedEntry {
                    key_index: 11,
                    entry_index: 12
                },
                ..
            }
        ),
        "{corruption}"
    );
}

#[test]
fn a_hole_in_the_log_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    Fixture::entries((1..=10).chain(12..=20)).write(dir.path());
    let corruption = open_corrupt(dir.path());
    assert!(
        matches!(
            corruption,
            Corruption::Gap {
                group: GROUP,
                previous: 10,
                next: 12,
                ..
            }
        ),
        "{corruption}"
    );
    assert!(corruption.to_string().contains("group 1"), "{corruption}");
}

#[test]
fn a_damaged_table_block_is_caught_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Fixture {
        payload_len: 1000,
        flush: true,
        ..Fixture::entries(1..=60)
    };
    fixture.write(dir.path());
    let mut tables = Vec::new();
    find_files(dir.path(), "tables", &mut tables);
    let table = tables
        .into_iter()
        .max_by_key(|path| std::fs::metadata(path).unwrap().len())
        .expect("a table file");
    let mut bytes = std::fs::read(&table).unwrap();
    assert!(bytes.len() > 40_000, "table of {} bytes", bytes.len());
    // Inside the data blocks, which come first.
    let at = bytes.len() / 4;
    bytes[at] ^= 0x01;
    std::fs::write(&table, &bytes).unwrap();

    let corruption = open_corrupt(dir.path());
    assert!(
        matches!(corruption, Corruption::Engine { .. }),
        "{corruption}"
    );
    assert!(corruption.to_string().contains("Checksum"), "{corruption}");
}

/// Collects the files under directories named `under` below `dir`.
fn find_files(dir: &Path, under: &str, found: &mut Vec<std::path::PathBuf>) {
    for dirent in std::fs::read_dir(dir).unwrap() {
        let path = dirent.unwrap().path();
        if path.is_dir() {
            find_files(&path, under, found);
        } else if path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|name| name == under)
        {
            found.push(path);
        }
    }
}
