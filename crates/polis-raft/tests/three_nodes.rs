//! Three hosts in one process on loopback ports the OS picks, each with
//! replicas of two groups of different state machines over one peer
//! connection per node pair and one log engine: writes are applied
//! everywhere, survive the loss of a leader's node, and a new leader takes
//! over. Reference: Raft paper, sections 5.2 (election) and 5.3 (log
//! replication).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use polis_raft::{Group, GroupSpec, Host, PeerNode, ProposeError, RaftSettings, StateMachine};
use polis_types::{GroupId, NodeId, ReplicaId};

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
    fn items(&self) -> u64 {
        self.map.len() as u64
    }
}

/// A counter: another state machine type in the same hosts.
#[derive(Default)]
struct Counter(u64);

impl StateMachine for Counter {
    fn apply(&mut self, _index: u64, _time_ms: u64, _payload: &[u8]) -> Bytes {
        self.0 += 1;
        Bytes::from(self.0.to_string())
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        self.0 = u64::from_be_bytes(data.try_into().map_err(|_| "bad snapshot")?);
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

const KV: GroupId = GroupId(1);
const COUNTER: GroupId = GroupId(2);

/// Node n hosts replica 10n of the key-value group and 20n of the counter.
fn replica(group: GroupId, node: u64) -> ReplicaId {
    ReplicaId(group.get() * 10 + node)
}

struct Cluster {
    hosts: HashMap<NodeId, Arc<Host>>,
    kv: HashMap<NodeId, Group<Kv>>,
    counters: HashMap<NodeId, Group<Counter>>,
    servers: HashMap<NodeId, tokio::task::JoinHandle<()>>,
    _dirs: Vec<tempfile::TempDir>,
}

async fn start_cluster(settings: RaftSettings) -> Cluster {
    let mut listeners = Vec::new();
    let mut nodes = BTreeMap::new();
    for node in 1..=3u64 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        nodes.insert(
            node,
            PeerNode {
                node_id: NodeId(node),
                peer_addr: addr.clone(),
                resp_addr: addr.clone(),
                admin_addr: addr,
            },
        );
        listeners.push((node, listener));
    }
    let members = |group: GroupId| -> BTreeMap<ReplicaId, PeerNode> {
        nodes
            .iter()
            .map(|(node, peer)| (replica(group, *node), peer.clone()))
            .collect()
    };
    let mut cluster = Cluster {
        hosts: HashMap::new(),
        kv: HashMap::new(),
        counters: HashMap::new(),
        servers: HashMap::new(),
        _dirs: Vec::new(),
    };
    for (node, listener) in listeners {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::open(
            NodeId(node),
            dir.path(),
            settings.clone(),
            Arc::new(polis_raft::FaultInjector::new(false, 0)),
            None,
            None,
        )
        .unwrap();
        host.start_background();
        let kv = host
            .start_group(
                GroupSpec {
                    group: KV,
                    replica: replica(KV, node),
                    bootstrap: Some(members(KV)),
                },
                Kv::default(),
            )
            .await
            .unwrap();
        let counter = host
            .start_group(
                GroupSpec {
                    group: COUNTER,
                    replica: replica(COUNTER, node),
                    bootstrap: Some(members(COUNTER)),
                },
                Counter::default(),
            )
            .await
            .unwrap();
        let serving = host.clone();
        let server = tokio::spawn(async move {
            let _ = serving.serve_peers(listener, None).await;
        });
        cluster.hosts.insert(NodeId(node), host);
        cluster.kv.insert(NodeId(node), kv);
        cluster.counters.insert(NodeId(node), counter);
        cluster.servers.insert(NodeId(node), server);
        cluster._dirs.push(dir);
    }
    cluster
}

/// Proposes on whichever node leads, following NotLeader answers, until
/// the proposal is acknowledged or 30 s pass.
async fn propose_anywhere<S: StateMachine>(
    groups: &HashMap<NodeId, Group<S>>,
    payload: Bytes,
) -> Bytes {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let target = leader_of(groups);
        if let Some(group) = target.and_then(|id| groups.get(&id)) {
            match group.propose(payload.clone()).await {
                Ok(reply) => return reply,
                Err(ProposeError::NotLeader { .. }) => {}
                Err(error) => panic!("proposal failed: {error}"),
            }
        }
        assert!(Instant::now() < deadline, "no leader accepted the proposal");
        wait_for(Duration::from_secs(10), || leader_of(groups)).await;
    }
}

fn leader_of<S: StateMachine>(groups: &HashMap<NodeId, Group<S>>) -> Option<NodeId> {
    groups
        .iter()
        .find(|(_, group)| group.is_leader())
        .map(|(id, _)| *id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_replicate_and_survive_the_loss_of_a_leaders_node() {
    let settings = RaftSettings {
        heartbeat_ms: 100,
        election_timeout_min_ms: 500,
        election_timeout_max_ms: 1000,
        ..RaftSettings::default()
    };
    let mut cluster = start_cluster(settings).await;
    wait_for(Duration::from_secs(10), || leader_of(&cluster.kv)).await;

    for i in 0..50 {
        propose_anywhere(&cluster.kv, Bytes::from(format!("k{i}=v{i}"))).await;
        propose_anywhere(&cluster.counters, Bytes::from("+1")).await;
    }
    // A follower refuses proposals and names the leader's replica and node
    // (once it heard from one: a loaded machine may re-elect meanwhile).
    let leader = wait_for(Duration::from_secs(10), || leader_of(&cluster.kv)).await;
    let follower = *cluster.kv.keys().find(|id| **id != leader).unwrap();
    wait_for(Duration::from_secs(10), || {
        cluster.kv[&follower].leader().map(|_| ())
    })
    .await;
    let (leader_replica, leader_node) = cluster.kv[&follower].leader().unwrap();
    assert_eq!(leader_replica, replica(KV, leader_node.node_id.get()));
    match cluster.kv[&follower].propose(Bytes::from("x=y")).await {
        Err(ProposeError::NotLeader {
            leader: Some((id, _)),
        }) => assert_eq!(id, leader_replica),
        other => panic!("expected NotLeader, got {other:?}"),
    }
    // Every replica of both groups applies every acknowledged write.
    for node in cluster.hosts.keys() {
        wait_for(Duration::from_secs(10), || {
            (cluster.kv[node].state().read().app.map.len() == 50).then_some(())
        })
        .await;
        wait_for(Duration::from_secs(10), || {
            (cluster.counters[node].state().read().app.0 == 50).then_some(())
        })
        .await;
    }
    // Beats tell every node who leads each group.
    let leader_node = leader_node.node_id;
    for host in cluster.hosts.values() {
        wait_for(Duration::from_secs(10), || {
            (host.leaders().get(&KV).map(|(node, _)| *node) == Some(leader_node)).then_some(())
        })
        .await;
    }

    // Stop the key-value leader's node: the other two elect a new one,
    // which has the writes; the counter group goes on too.
    cluster.kv.remove(&leader_node).unwrap();
    cluster.counters.remove(&leader_node).unwrap();
    cluster.hosts.remove(&leader_node).unwrap().shutdown().await;
    cluster.servers.remove(&leader_node).unwrap().abort();
    let new_leader = wait_for(Duration::from_secs(10), || leader_of(&cluster.kv)).await;
    assert_ne!(new_leader, leader_node);
    // Each survivor knew the old leader, and counts the change once it
    // knows the new one.
    for group in cluster.kv.values() {
        wait_for(Duration::from_secs(10), || {
            (group.leader_changes() >= 1).then_some(())
        })
        .await;
    }
    // The new leader never reached the stopped node's replica, yet its
    // claim lists it: the group counts it until a membership change drops
    // it (a node deletes a replica the map moved away only once no claim
    // lists it).
    let gone = replica(KV, leader_node.get());
    let claim = wait_for(Duration::from_secs(10), || {
        cluster.hosts[&new_leader]
            .leaders()
            .get(&KV)
            .filter(|(node, _)| *node == new_leader)
            .map(|(_, claim)| claim.clone())
    })
    .await;
    assert!(
        claim.matched.iter().any(|(member, _)| *member == gone),
        "{claim:?}"
    );
    let group = &cluster.kv[&new_leader];
    group.linearizable_read().await.unwrap();
    assert_eq!(
        group.state().read().app.map.get("k49").map(String::as_str),
        Some("v49")
    );
    let previous = propose_anywhere(&cluster.kv, Bytes::from("k0=again")).await;
    assert_eq!(previous, Bytes::from("v0"));
    let count = propose_anywhere(&cluster.counters, Bytes::from("+1")).await;
    assert_eq!(count, Bytes::from("51"));
}

/// A transfer reaches the target at once: it stands for election and
/// the other voter grants the vote although the old leader's lease (6 s
/// here) has not run out. Without the transfer message the old leader
/// would stop taking writes and nobody could take over before the lease
/// expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_transfer_hands_leadership_to_the_named_replica_at_once() {
    let settings = RaftSettings {
        heartbeat_ms: 100,
        election_timeout_min_ms: 5_000,
        election_timeout_max_ms: 6_000,
        ..RaftSettings::default()
    };
    let cluster = start_cluster(settings).await;
    cluster.kv[&NodeId(1)].elect().await.unwrap();
    let leader = wait_for(Duration::from_secs(20), || leader_of(&cluster.kv)).await;
    for i in 0..10 {
        propose_anywhere(&cluster.kv, Bytes::from(format!("k{i}=v{i}"))).await;
    }
    let target = *cluster.kv.keys().find(|id| **id != leader).unwrap();
    // The target holds the whole log before it may be handed leadership.
    wait_for(Duration::from_secs(10), || {
        (cluster.kv[&target].state().read().app.map.len() == 10).then_some(())
    })
    .await;
    cluster.kv[&leader]
        .transfer_leader(replica(KV, target.get()))
        .await
        .unwrap();
    wait_for(Duration::from_secs(3), || {
        cluster.kv[&target].is_leader().then_some(())
    })
    .await;
    let previous = cluster.kv[&target]
        .propose(Bytes::from("k0=moved"))
        .await
        .unwrap();
    assert_eq!(previous, Bytes::from("v0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_refuses_to_start_on_another_replicas_data_until_destroyed() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::open(
        NodeId(1),
        dir.path(),
        RaftSettings::default(),
        Arc::new(polis_raft::FaultInjector::new(false, 0)),
        None,
        None,
    )
    .unwrap();
    let spec = |replica| GroupSpec {
        group: KV,
        replica: ReplicaId(replica),
        bootstrap: None,
    };
    host.start_group(spec(5), Kv::default()).await.unwrap();
    assert!(
        host.start_group(spec(5), Kv::default()).await.is_err(),
        "runs already"
    );
    host.stop_group(KV).await;
    let error = host
        .start_group(spec(6), Kv::default())
        .await
        .err()
        .unwrap();
    assert!(error.to_string().contains("holds replica 5"), "{error}");
    host.destroy_group(KV).await.unwrap();
    assert!(host.stored_groups().unwrap().is_empty());
    host.start_group(spec(6), Kv::default()).await.unwrap();
    assert_eq!(host.stored_groups().unwrap(), vec![(KV, ReplicaId(6))]);
    host.shutdown().await;
}
