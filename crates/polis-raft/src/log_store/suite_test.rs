//! The fjall log store passes openraft's storage suite, the same suite the
//! in-memory store passes (`mem_log_store_test.rs`), while other groups
//! live in the same engine: each case runs on group 2 of an engine where
//! groups 1 and 3 hold entries, a vote and a purge point, and checks at the
//! end that those were left alone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use std::sync::Arc;

use bytes::Bytes;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::testing::{blank_ent, log_id};
use openraft::type_config::TypeConfigExt;
use openraft::StorageError;

use super::*;
use crate::at_rest::Cipher;
use crate::state_machine::{SmStore, StateMachine};

#[derive(Default)]
struct Counter(u64);

impl StateMachine for Counter {
    fn apply(&mut self, _index: u64, _time_ms: u64, _payload: &[u8]) -> Bytes {
        self.0 += 1;
        Bytes::from(self.0.to_be_bytes().to_vec())
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        self.0 = u64::from_be_bytes(data.try_into().map_err(|_| "bad snapshot")?);
        Ok(())
    }
}

const UNDER_TEST: GroupId = GroupId(2);
const NEIGHBOURS: [GroupId; 2] = [GroupId(1), GroupId(3)];

/// What each neighbour holds before the suite's case runs.
async fn fill_neighbour(engine: &LogEngine, group: GroupId) {
    let mut store = engine.group(group);
    let entries: Vec<Entry> = (1..=10)
        .map(|index| blank_ent::<TypeConfig>(2, ReplicaId(7), index))
        .collect();
    let (sender, receiver) = TypeConfig::oneshot();
    store
        .append(entries, IOFlushed::signal(sender))
        .await
        .unwrap();
    receiver.await.unwrap().unwrap();
    store
        .save_vote(&Vote::new_committed(2, ReplicaId(7)))
        .await
        .unwrap();
    store
        .purge(log_id::<TypeConfig>(2, ReplicaId(7), 3))
        .await
        .unwrap();
}

async fn assert_neighbour_untouched(engine: &LogEngine, group: GroupId) {
    let mut store = engine.group(group);
    let state = store.get_log_state().await.unwrap();
    assert_eq!(
        state.last_purged_log_id,
        Some(log_id::<TypeConfig>(2, ReplicaId(7), 3)),
        "group {group}"
    );
    assert_eq!(
        state.last_log_id,
        Some(log_id::<TypeConfig>(2, ReplicaId(7), 10)),
        "group {group}"
    );
    assert_eq!(store.try_get_log_entries(4..=10).await.unwrap().len(), 7);
    assert_eq!(
        store.read_vote().await.unwrap(),
        Some(Vote::new_committed(2, ReplicaId(7)))
    );
}

/// Holds the engine's directory, and checks the neighbours when a case
/// ends.
struct Guard {
    engine: LogEngine,
    _dir: tempfile::TempDir,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let engine = self.engine.clone();
        // The suite drops the guard inside its runtime; check on a runtime
        // of our own on another thread.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                for group in NEIGHBOURS {
                    assert_neighbour_untouched(&engine, group).await;
                }
            });
        })
        .join()
        .expect("the neighbouring groups were left alone");
    }
}

struct Builder {
    cases: Arc<std::sync::atomic::AtomicU64>,
}

impl StoreBuilder<TypeConfig, LogStore, SmStore<Counter>, Guard> for Builder {
    async fn build(&self) -> Result<(Guard, LogStore, SmStore<Counter>), StorageError<TypeConfig>> {
        self.cases
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = tempfile::tempdir().unwrap();
        let engine = LogEngine::open_verified(&dir.path().join("log"), Cipher::Plain).unwrap();
        for group in NEIGHBOURS {
            fill_neighbour(&engine, group).await;
        }
        let store = engine.group(UNDER_TEST);
        let sm = SmStore::open(
            Counter::default(),
            dir.path().join("group-2.snapshot"),
            Cipher::Plain,
        )
        .unwrap();
        Ok((Guard { engine, _dir: dir }, store, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_openraft_storage_suite_beside_other_groups() {
    let cases = Arc::new(std::sync::atomic::AtomicU64::new(0));
    Suite::test_all(Builder {
        cases: cases.clone(),
    })
    .await
    .unwrap();
    assert!(
        cases.load(std::sync::atomic::Ordering::Relaxed) > 10,
        "the suite ran its cases"
    );
}
