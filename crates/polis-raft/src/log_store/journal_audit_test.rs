#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use std::path::{Path, PathBuf};

use fjall::{CompressionType, Database, KeyspaceCreateOptions, PersistMode};

use super::*;

fn key(index: u64) -> Vec<u8> {
    let mut key = 1u64.to_be_bytes().to_vec();
    key.extend_from_slice(&index.to_be_bytes());
    key
}

fn value(index: u64, len: usize) -> Vec<u8> {
    let mut value = format!("value-{index:05}-").into_bytes();
    value.resize(len, b'x');
    value
}

fn open(dir: &Path) -> (Database, fjall::Keyspace) {
    let db = Database::builder(dir)
        .manual_journal_persist(true)
        .journal_compression(CompressionType::None)
        .open()
        .unwrap();
    let logs = db.keyspace("logs", KeyspaceCreateOptions::default).unwrap();
    (db, logs)
}

/// Writes entries `from..=to` as one batch each, fsyncs and closes.
fn write(dir: &Path, from: u64, to: u64, value_len: usize) {
    let (db, logs) = open(dir);
    for index in from..=to {
        let mut batch = db.batch();
        batch.insert(&logs, key(index), value(index, value_len));
        batch.commit().unwrap();
    }
    db.persist(PersistMode::SyncAll).unwrap();
}

/// Returns the indexes fjall holds.
fn stored_indexes(dir: &Path) -> Vec<u64> {
    let (_db, logs) = open(dir);
    logs.iter()
        .map(|guard| {
            let key = guard.key().unwrap();
            u64::from_be_bytes(key[8..16].try_into().unwrap())
        })
        .collect()
}

fn newest_journal(dir: &Path) -> PathBuf {
    let mut journals: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|dirent| dirent.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jnl"))
        .map(|path| {
            (
                path.file_stem().unwrap().to_str().unwrap().parse().unwrap(),
                path,
            )
        })
        .collect();
    journals.sort();
    journals.pop().unwrap().1
}

/// Returns where each batch of the journal starts, and where the last ends.
fn batch_bounds(bytes: &[u8]) -> (Vec<usize>, usize) {
    let mut starts = Vec::new();
    let mut pos = 0;
    while let Ok(batch) = parse_batch(bytes, pos, &mut None) {
        starts.push(pos);
        pos = batch.end;
    }
    (starts, pos)
}

fn find(bytes: &[u8], needle: &[u8]) -> usize {
    bytes
        .windows(needle.len())
        .position(|window| window == needle)
        .unwrap()
}

fn corruption(result: Result<Audit, AuditError>) -> (u64, String, String) {
    match result {
        Err(AuditError::Corrupt(Corruption::Journal {
            offset,
            damage,
            holding,
            ..
        })) => (offset, damage, holding),
        other => panic!("expected journal corruption, got {other:?}"),
    }
}

#[test]
fn an_intact_journal_passes_and_fjall_keeps_every_batch() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1, 50, 40);
    let audit = audit(dir.path()).unwrap();
    assert_eq!(audit.files.len(), 1);
    assert_eq!(audit.files[0].batches, 50);
    assert_eq!(audit.torn(), None);
    assert_eq!(stored_indexes(dir.path()), (1..=50).collect::<Vec<_>>());
    audit.check_kept().unwrap();
}

#[test]
fn restarts_append_batches_with_increasing_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..4 {
        write(dir.path(), round * 10 + 1, round * 10 + 10, 40);
        let audit = audit(dir.path()).unwrap();
        let batches: u64 = audit.files.iter().map(|file| file.batches).sum();
        assert_eq!(batches, round * 10 + 10, "round {round}");
    }
    assert_eq!(stored_indexes(dir.path()), (1..=40).collect::<Vec<_>>());
}

#[test]
fn an_end_cut_inside_the_last_batch_is_a_torn_tail_and_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1, 50, 40);
    let journal = newest_journal(dir.path());
    let bytes = std::fs::read(&journal).unwrap();
    let (starts, end) = batch_bounds(&bytes);
    // A crash in the middle of writing the last batch: its end never came.
    std::fs::File::options()
        .write(true)
        .open(&journal)
        .unwrap()
        .set_len((end - 20) as u64)
        .unwrap();

    let audit = audit(dir.path()).unwrap();
    let torn = audit.torn().unwrap();
    assert_eq!(torn.intact_len, starts[49] as u64);
    assert_eq!(torn.torn_bytes, (end - 20 - starts[49]) as u64);
    assert_eq!(
        std::fs::metadata(&journal).unwrap().len(),
        starts[49] as u64
    );
    assert_eq!(stored_indexes(dir.path()), (1..=49).collect::<Vec<_>>());
    audit.check_kept().unwrap();
}

#[test]
fn a_last_batch_never_written_past_some_point_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1, 50, 40);
    let journal = newest_journal(dir.path());
    let mut bytes = std::fs::read(&journal).unwrap();
    let (starts, end) = batch_bounds(&bytes);
    // The preallocated file keeps its length: unwritten bytes read as zero.
    bytes[starts[49] + 30..end].fill(0);
    std::fs::write(&journal, &bytes).unwrap();

    let audit = audit(dir.path()).unwrap();
    assert_eq!(audit.torn().unwrap().intact_len, starts[49] as u64);
    assert_eq!(stored_indexes(dir.path()), (1..=49).collect::<Vec<_>>());
}

#[test]
fn a_flipped_byte_in_a_durable_batch_is_corruption_and_nothing_is_cut() {
    for index in [25, 50] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 1, 50, 40);
        let journal = newest_journal(dir.path());
        let mut bytes = std::fs::read(&journal).unwrap();
        let at = find(&bytes, &value(index, 12)) + 8;
        bytes[at] ^= 0x20;
        std::fs::write(&journal, &bytes).unwrap();

        let (_, damage, holding) = corruption(audit(dir.path()));
        assert!(damage.contains("checksum mismatch"), "{damage}");
        assert!(
            holding.contains(&format!("log entry at index {index} of group 1")),
            "{holding}"
        );
        assert_eq!(
            std::fs::read(&journal).unwrap(),
            bytes,
            "the journal is kept"
        );
    }
}

#[test]
fn a_flipped_tag_that_fjall_alone_would_cut_at_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1, 50, 40);
    let journal = newest_journal(dir.path());
    let mut bytes = std::fs::read(&journal).unwrap();
    let (starts, _) = batch_bounds(&bytes);
    bytes[starts[24]] = 0x07;
    std::fs::write(&journal, &bytes).unwrap();

    // fjall on its own reads the bad tag as the end of the journal and
    // silently drops entries 25 to 50.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    assert_eq!(stored_indexes(copy.path()), (1..=24).collect::<Vec<_>>());

    let (offset, damage, _) = corruption(audit(dir.path()));
    assert_eq!(offset, starts[24] as u64);
    assert!(damage.contains("tag 7"), "{damage}");
}

#[test]
fn a_sequence_number_that_does_not_increase_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1, 50, 40);
    let journal = newest_journal(dir.path());
    let mut bytes = std::fs::read(&journal).unwrap();
    let (starts, _) = batch_bounds(&bytes);
    // fjall's batch checksum does not cover the header's sequence number.
    bytes[starts[24] + 5..starts[24] + 13].copy_from_slice(&1u64.to_le_bytes());
    std::fs::write(&journal, &bytes).unwrap();

    let (offset, damage, _) = corruption(audit(dir.path()));
    assert_eq!(offset, starts[24] as u64);
    assert!(
        damage.contains("sequence number 1 does not follow"),
        "{damage}"
    );
}

#[test]
fn a_cut_end_of_a_sealed_journal_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1, 50, 40);
    let journal = newest_journal(dir.path());
    let id: u64 = journal
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // A newer journal exists, so this one was fsynced when sealed.
    std::fs::write(dir.path().join(format!("{}.jnl", id + 1)), [0u8; 4096]).unwrap();
    let len = std::fs::metadata(&journal).unwrap().len();
    let bytes = std::fs::read(&journal).unwrap();
    let (_, end) = batch_bounds(&bytes);
    std::fs::File::options()
        .write(true)
        .open(&journal)
        .unwrap()
        .set_len((end - 20) as u64)
        .unwrap();
    assert!(len > (end - 20) as u64);

    match audit(dir.path()) {
        Err(AuditError::Corrupt(corruption)) => {
            assert!(
                corruption.to_string().contains("sealed journal"),
                "{corruption}"
            );
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn a_zeroed_sector_is_torn_in_the_last_batch_and_corruption_before_intact_ones() {
    for (index, torn) in [(10, true), (5, false)] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 1, 10, 3000);
        let journal = newest_journal(dir.path());
        let mut bytes = std::fs::read(&journal).unwrap();
        let (starts, _) = batch_bounds(&bytes);
        // A sector of this batch's value that never reached the disk.
        let sector = (starts[index as usize - 1] + 100).div_ceil(512) * 512;
        bytes[sector..sector + 512].fill(0);
        std::fs::write(&journal, &bytes).unwrap();

        let result = audit(dir.path());
        if torn {
            let audit = result.unwrap();
            let torn = audit.torn().unwrap();
            assert_eq!(torn.intact_len, starts[9] as u64);
            assert_eq!(stored_indexes(dir.path()), (1..=9).collect::<Vec<_>>());
        } else {
            let (_, damage, _) = corruption(result);
            assert!(damage.contains("checksum mismatch"), "{damage}");
        }
    }
}

#[test]
fn a_journal_in_use_is_not_audited() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1, 5, 40);
    let (_db, _logs) = open(dir.path());
    match audit(dir.path()) {
        Err(AuditError::Io(error)) => assert_eq!(error.kind(), io::ErrorKind::WouldBlock),
        other => panic!("expected the lock to be held, got {other:?}"),
    }
}

#[test]
fn a_missing_directory_has_nothing_to_audit() {
    let dir = tempfile::tempdir().unwrap();
    let audit = audit(&dir.path().join("log")).unwrap();
    assert!(audit.files.is_empty());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for dirent in std::fs::read_dir(from).unwrap() {
        let path = dirent.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}
