#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use bytes::Bytes;
use openraft::RaftSnapshotBuilder;

use super::*;
use crate::at_rest::Cipher;
use crate::log_store::record::{self, RecordError};

/// A state machine whose whole state is a string.
#[derive(Default)]
struct Text(String);

impl StateMachine for Text {
    fn apply(&mut self, _index: u64, _time_ms: u64, payload: &[u8]) -> Bytes {
        self.0.push_str(&String::from_utf8_lossy(payload));
        Bytes::new()
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.as_bytes().to_vec()
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        self.0 = String::from_utf8(data.to_vec()).map_err(|error| error.to_string())?;
        Ok(())
    }
}

/// Writes a snapshot of a state holding `text` to `path`; returns the
/// snapshot's data.
async fn snapshot_of(text: &str, path: &Path) -> Vec<u8> {
    let mut store =
        SmStore::open_verified(Text(text.into()), path.to_path_buf(), Cipher::Plain).unwrap();
    let built = store
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    built.snapshot
}

#[tokio::test]
async fn a_snapshot_file_restores_the_state_it_was_built_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("group-1.snapshot");
    let built = snapshot_of("the whole keyspace", &path).await;

    let mut reopened = SmStore::open_verified(Text::default(), path, Cipher::Plain).unwrap();
    assert_eq!(reopened.handle().read().app.0, "the whole keyspace");
    let current = reopened.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.snapshot, built);
}

#[tokio::test]
async fn a_damaged_snapshot_file_is_refused_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("group-1.snapshot");
    snapshot_of("every key and value", &path).await;
    let stored = std::fs::read(&path).unwrap();

    // A flipped bit anywhere after the version byte, in the checksum or
    // in the snapshot, fails the checksum.
    for at in [1, record::HEADER_LEN, stored.len() / 2, stored.len() - 1] {
        let mut damaged = stored.clone();
        damaged[at] ^= 0x04;
        std::fs::write(&path, &damaged).unwrap();
        let Err(OpenError::Corrupt(corruption)) =
            SmStore::open_verified(Text::default(), path.clone(), Cipher::Plain)
        else {
            panic!("byte {at}: a damaged snapshot file must be refused");
        };
        assert!(
            matches!(
                &corruption,
                Corruption::Snapshot {
                    file,
                    problem: RecordProblem::Checksum(RecordError::ChecksumMismatch { .. }),
                } if *file == path
            ),
            "byte {at}: {corruption}"
        );
        let message = corruption.to_string();
        assert!(message.contains("group-1.snapshot"), "{message}");
    }

    // A file cut short, and one in the format before checksums (bare
    // postcard, whose first byte is not the format version).
    std::fs::write(&path, &stored[..5]).unwrap();
    assert!(matches!(
        SmStore::open_verified(Text::default(), path.clone(), Cipher::Plain),
        Err(OpenError::Corrupt(Corruption::Snapshot {
            problem: RecordProblem::Checksum(RecordError::TooShort { len: 5 }),
            ..
        }))
    ));
    std::fs::write(&path, &stored[record::HEADER_LEN..]).unwrap();
    assert!(matches!(
        SmStore::open_verified(Text::default(), path.clone(), Cipher::Plain),
        Err(OpenError::Corrupt(Corruption::Snapshot { .. }))
    ));

    // Undamaged again, it opens.
    std::fs::write(&path, &stored).unwrap();
    let reopened = SmStore::open_verified(Text::default(), path, Cipher::Plain).unwrap();
    assert_eq!(reopened.handle().read().app.0, "every key and value");
}
