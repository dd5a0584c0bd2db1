#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use openraft::storage::{IOFlushed, RaftLogStorage, RaftStateMachine};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::testing::log_id;
use openraft::type_config::TypeConfigExt;
use openraft::{RaftLogReader, StorageError};

use super::*;

const GROUP: GroupId = GroupId(1);
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

struct Builder;

impl StoreBuilder<TypeConfig, MemLogStore, SmStore<Counter>, MemDisk> for Builder {
    async fn build(
        &self,
    ) -> Result<(MemDisk, MemLogStore, SmStore<Counter>), StorageError<TypeConfig>> {
        let disk = MemDisk::new(NodeId(1), 7, Duration::from_micros(300), None);
        let store = disk.store(GROUP);
        let sm = SmStore::open_in_memory(Counter::default(), store.clone()).unwrap();
        Ok((disk, store, sm))
    }
}

#[tokio::test]
async fn passes_openraft_storage_suite() {
    Suite::test_all(Builder).await.unwrap();
}

/// Records every event, for the tests to look at.
#[derive(Default)]
struct Recorder(Mutex<Vec<DiskEvent>>);

impl DiskObserver for Recorder {
    fn disk_event(&self, _node: NodeId, _group: GroupId, event: DiskEvent) {
        self.0.lock().unwrap().push(event);
    }
}

fn blank(term: u64, index: u64) -> Entry {
    openraft::testing::blank_ent::<TypeConfig>(term, ReplicaId(1), index)
}

async fn append_and_wait(store: &mut MemLogStore, entries: Vec<Entry>) {
    let (sender, receiver) = TypeConfig::oneshot();
    store
        .append(entries, IOFlushed::signal(sender))
        .await
        .unwrap();
    receiver.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_crash_keeps_flushed_entries_and_loses_the_rest() {
    let disk = MemDisk::new(NodeId(1), 3, Duration::from_millis(1), None);
    let mut store = disk.store(GROUP);
    append_and_wait(&mut store, vec![blank(1, 1), blank(1, 2)]).await;
    // Written but not flushed: the flush runs only after a delay.
    store
        .append(vec![blank(1, 3)], IOFlushed::noop())
        .await
        .unwrap();
    assert_eq!(disk.log_summary(GROUP).entries.len(), 3);
    assert_eq!(disk.durable_log_summary(GROUP).entries.len(), 2);

    disk.crash();
    assert_eq!(disk.log_summary(GROUP), disk.durable_log_summary(GROUP));
    let indexes: Vec<u64> = disk
        .log_summary(GROUP)
        .entries
        .iter()
        .map(|entry| entry.index)
        .collect();
    assert_eq!(indexes, vec![1, 2]);

    // The crashed incarnation's handle is fenced off.
    assert!(store.get_log_state().await.is_err());
    assert!(store
        .append(vec![blank(1, 3)], IOFlushed::noop())
        .await
        .is_err());
    let mut restarted = disk.store(GROUP);
    let state = restarted.get_log_state().await.unwrap();
    assert_eq!(
        state.last_log_id,
        Some(log_id::<TypeConfig>(1, ReplicaId(1), 2))
    );
}

#[tokio::test]
async fn a_saved_vote_and_a_snapshot_survive_a_crash() {
    let recorder = Arc::new(Recorder::default());
    let disk = MemDisk::new(
        NodeId(2),
        5,
        Duration::from_millis(1),
        Some(recorder.clone()),
    );
    let mut store = disk.store(GROUP);
    let vote = Vote {
        leader_id: openraft::impls::leader_id_std::LeaderId {
            term: 4,
            voted_for: ReplicaId(2),
        },
        committed: true,
    };
    store.set_replica(ReplicaId(2)).unwrap();
    store.save_vote(&vote).await.unwrap();
    let mut sm = SmStore::open_in_memory(Counter(9), store.clone()).unwrap();
    let built = {
        use openraft::RaftSnapshotBuilder;
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap()
    };
    disk.crash();

    let mut restarted = disk.store(GROUP);
    assert_eq!(restarted.read_vote().await.unwrap(), Some(vote));
    let mut reopened = SmStore::open_in_memory(Counter::default(), restarted.clone()).unwrap();
    assert_eq!(reopened.handle().read().app.0, 9);
    assert_eq!(
        built.snapshot,
        reopened
            .get_current_snapshot()
            .await
            .unwrap()
            .unwrap()
            .snapshot
    );
    assert!(
        sm.get_current_snapshot().await.is_err(),
        "the crashed incarnation's disk is gone"
    );

    let events = recorder.0.lock().unwrap().clone();
    assert!(events.contains(&DiskEvent::LeaderElected {
        term: 4,
        log: LogSummary::default()
    }));
    assert!(events.contains(&DiskEvent::Crashed { lost_writes: 0 }));
    assert!(events
        .iter()
        .any(|event| matches!(event, DiskEvent::SnapshotLoaded { .. })));
}

#[test]
fn fnv1a64_matches_the_reference_vectors() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
}

#[tokio::test]
async fn a_lying_disk_acknowledges_what_a_crash_then_loses() {
    let disk = MemDisk::new(NodeId(1), 3, Duration::from_millis(1), None);
    disk.set_lying(true);
    let mut store = disk.store(GROUP);
    append_and_wait(&mut store, vec![blank(1, 1)]).await;
    assert_eq!(disk.durable_log_summary(GROUP).entries.len(), 0);
    disk.crash();
    assert!(
        disk.log_summary(GROUP).entries.is_empty(),
        "acknowledged, then lost"
    );
}
