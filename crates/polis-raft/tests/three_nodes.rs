//! Three Raft nodes in one process on loopback ports the OS picks: a
//! write is applied everywhere, survives the leader's shutdown, and a new
//! leader takes over. Reference: Raft paper, sections 5.2 (election) and
//! 5.3 (log replication).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use polis_raft::{Group, PeerNode, ProposeError, RaftNode, RaftSettings, StateMachine};

#[derive(Default)]
struct Kv {
    map: BTreeMap<String, String>,
}

impl StateMachine for Kv {
    fn apply(&mut self, _index: u64, _time_ms: u64, payload: &[u8]) -> Bytes {
        let text = String::from_utf8_lossy(payload).to_string();
        let (key, value) = text.split_once('=').unwrap_or((&text, ""));
        let previous = self.map.insert(key.to_owned(), value.to_owned());
        Bytes::from(previous.unwrap_or_default())
    }
    fn snapshot(&self) -> Vec<u8> {
        postcard::to_stdvec(&self.map).unwrap()
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        self.map = postcard::from_bytes(data).map_err(|e| e.to_string())?;
        Ok(())
    }
}

async fn wait_for<T>(deadline: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    loop {
        poll.tick().await;
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "condition not met within {deadline:?}"
        );
    }
}

struct Cluster {
    groups: HashMap<u64, Group<Kv>>,
    servers: HashMap<u64, tokio::task::JoinHandle<()>>,
    _dirs: Vec<tempfile::TempDir>,
}

async fn start_cluster(settings: RaftSettings) -> Cluster {
    let mut listeners = Vec::new();
    let mut members = BTreeMap::new();
    for node_id in 1..=3u64 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        members.insert(
            node_id,
            PeerNode {
                peer_addr: addr.clone(),
                resp_addr: addr.clone(),
                admin_addr: addr,
            },
        );
        listeners.push((node_id, listener));
    }
    let mut cluster = Cluster {
        groups: HashMap::new(),
        servers: HashMap::new(),
        _dirs: Vec::new(),
    };
    for (node_id, listener) in listeners {
        let dir = tempfile::tempdir().unwrap();
        let node = RaftNode::<Kv>::open(
            node_id,
            dir.path().to_path_buf(),
            settings.clone(),
            std::sync::Arc::new(polis_raft::FaultInjector::new(false, 0)),
        )
        .unwrap();
        let group = node
            .start_group(1, Kv::default(), members.clone())
            .await
            .unwrap();
        let server = tokio::spawn(async move {
            let _ = node.serve_peers(listener).await;
        });
        cluster.groups.insert(node_id, group);
        cluster.servers.insert(node_id, server);
        cluster._dirs.push(dir);
    }
    cluster
}

/// Proposes on whichever node leads, following NotLeader answers, until
/// the proposal is acknowledged or 30 s pass.
async fn propose_anywhere(cluster: &Cluster, payload: Bytes) -> Bytes {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let target = leader_of(cluster);
        if let Some(group) = target.and_then(|id| cluster.groups.get(&id)) {
            match group.propose(payload.clone()).await {
                Ok(reply) => return reply,
                Err(ProposeError::NotLeader { .. }) => {}
                Err(error) => panic!("proposal failed: {error}"),
            }
        }
        assert!(Instant::now() < deadline, "no leader accepted the proposal");
        wait_for(Duration::from_secs(10), || leader_of(cluster)).await;
    }
}

fn leader_of(cluster: &Cluster) -> Option<u64> {
    cluster
        .groups
        .iter()
        .find(|(_, group)| group.is_leader())
        .map(|(id, _)| *id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_replicate_and_survive_leader_loss() {
    let settings = RaftSettings {
        heartbeat_ms: 100,
        election_timeout_min_ms: 500,
        election_timeout_max_ms: 1000,
        ..RaftSettings::default()
    };
    let mut cluster = start_cluster(settings).await;
    let _leader = wait_for(Duration::from_secs(10), || leader_of(&cluster)).await;

    for i in 0..50 {
        propose_anywhere(&cluster, Bytes::from(format!("k{i}=v{i}"))).await;
    }
    // A follower refuses proposals and names the leader (once it heard
    // from one: a loaded machine may re-elect meanwhile).
    let leader = wait_for(Duration::from_secs(10), || leader_of(&cluster)).await;
    let follower = *cluster.groups.keys().find(|id| **id != leader).unwrap();
    wait_for(Duration::from_secs(10), || {
        cluster.groups[&follower].leader().map(|_| ())
    })
    .await;
    let leader = cluster.groups[&follower].leader().unwrap().0;
    match cluster.groups[&follower].propose(Bytes::from("x=y")).await {
        Err(ProposeError::NotLeader {
            leader: Some((id, _)),
        }) => assert_eq!(id, leader),
        other => panic!("expected NotLeader, got {other:?}"),
    }
    // Every replica applies every acknowledged write.
    for group in cluster.groups.values() {
        wait_for(Duration::from_secs(10), || {
            (group.state().read().app.map.len() == 50).then_some(())
        })
        .await;
    }

    // Stop the leader: the other two elect a new one, which has the writes.
    let old = cluster.groups.remove(&leader).unwrap();
    old.shutdown().await;
    cluster.servers.remove(&leader).unwrap().abort();
    let new_leader = wait_for(Duration::from_secs(10), || leader_of(&cluster)).await;
    assert_ne!(new_leader, leader);
    let group = &cluster.groups[&new_leader];
    group.linearizable_read().await.unwrap();
    assert_eq!(
        group.state().read().app.map.get("k49").map(String::as_str),
        Some("v49")
    );
    let previous = propose_anywhere(&cluster, Bytes::from("k0=again")).await;
    assert_eq!(previous, Bytes::from("v0"));
}
