//! The simulated cluster: one Raft group replicated on every node, each
//! node a real polis-raft [`Host`] (openraft, polis's state-machine
//! adapter over the real [`DataMachine`](polis_server::machine::DataMachine),
//! node beats and hibernation) on its own simulated disk, and the
//! simulated network between them.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use polis_raft::group::Clock;
use polis_raft::mem_log_store::{DiskObserver, LogSummary, MemDisk};
use polis_raft::sim_network::SimNet;
use polis_raft::{Group, GroupSpec, Host, PeerNode, RaftSettings};
use polis_types::{GroupId, NodeId, ReplicaId};

use crate::config::{stream_seed, SimConfig};
use crate::machine::Observed;
use crate::network::Links;
use crate::trace::{Trace, TraceEvent};

/// The group every node replicates.
pub const GROUP: GroupId = GroupId(1);

/// The wall-clock time the virtual clock starts at (2024-01-01), so
/// proposals carry realistic timestamps.
const EPOCH_MS: u64 = 1_704_067_200_000;

struct Running {
    host: Arc<Host>,
    group: Group<Observed>,
    alive: Arc<AtomicBool>,
}

struct NodeSlot {
    disk: MemDisk,
    /// Which run of the node is current (or next, while it is down).
    incarnation: u64,
    running: Option<Running>,
}

/// The cluster. Cloning shares it.
#[derive(Clone)]
pub struct SimCluster {
    nodes: Arc<Mutex<BTreeMap<NodeId, NodeSlot>>>,
    net: SimNet,
    trace: Trace,
    settings: RaftSettings,
    members: BTreeMap<ReplicaId, PeerNode>,
    clock: Clock,
}

impl SimCluster {
    /// Returns a cluster of `config.nodes` stopped nodes with empty disks.
    pub fn new(config: &SimConfig, trace: &Trace, links: Arc<Links>) -> Self {
        let observer: Arc<dyn DiskObserver> = Arc::new(trace.clone());
        let flush_delay_max = Duration::from_micros(config.flush_delay_max_us);
        let mut nodes = BTreeMap::new();
        let mut members = BTreeMap::new();
        for node in config.node_ids() {
            let seed = stream_seed(config.seed, &format!("disk-{node}"));
            let disk = MemDisk::new(node, seed, flush_delay_max, Some(observer.clone()));
            disk.set_lying(config.lying_disks);
            nodes.insert(
                node,
                NodeSlot {
                    disk,
                    incarnation: 0,
                    running: None,
                },
            );
            let address = format!("sim-node-{node}:0");
            members.insert(
                ReplicaId(node.get()),
                PeerNode {
                    node_id: node,
                    peer_addr: address.clone(),
                    resp_addr: address.clone(),
                    admin_addr: address,
                },
            );
        }
        let origin = tokio::time::Instant::now();
        let clock: Clock = Arc::new(move || EPOCH_MS + origin.elapsed().as_millis() as u64);
        Self {
            nodes: Arc::new(Mutex::new(nodes)),
            net: SimNet::new(links),
            trace: trace.clone(),
            settings: RaftSettings {
                heartbeat_ms: config.heartbeat_ms,
                election_timeout_min_ms: config.election_timeout_min_ms,
                election_timeout_max_ms: config.election_timeout_max_ms,
                snapshot_every_entries: config.snapshot_every_entries,
                // Unused: the simulation paces snapshots by entries only.
                snapshot_log_bytes_min: u64::MAX,
                entries_kept_after_snapshot: config.entries_kept_after_snapshot,
                request_timeout_ms: config.request_timeout_ms,
                hibernate: config.hibernate,
                idle_before_park_ms: config.idle_before_park_ms,
            },
            members,
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<NodeId, NodeSlot>> {
        self.nodes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts `node` from what its disk holds, unless it runs already.
    ///
    /// # Errors
    /// Returns an error if the node cannot start from its disk: a
    /// node-fatal condition the run reports.
    pub async fn start(&self, node: NodeId) -> io::Result<()> {
        let (disk, incarnation) = {
            let nodes = self.lock();
            let Some(slot) = nodes.get(&node) else {
                return Err(io::Error::other(format!("no node {node}")));
            };
            if slot.running.is_some() {
                return Ok(());
            }
            (slot.disk.clone(), slot.incarnation)
        };
        if incarnation > 0 {
            self.trace.record(TraceEvent::Restart { node, incarnation });
        }
        let alive = Arc::new(AtomicBool::new(true));
        let app = Observed::new(node, GROUP, incarnation, alive.clone(), self.trace.clone());
        let host = Host::simulated(
            node,
            disk,
            self.settings.clone(),
            &self.net,
            incarnation,
            self.clock.clone(),
        );
        host.start_background();
        let spec = GroupSpec {
            group: GROUP,
            replica: ReplicaId(node.get()),
            bootstrap: Some(self.members.clone()),
        };
        let group = host.start_group(spec, app).await?;
        if let Some(slot) = self.lock().get_mut(&node) {
            slot.running = Some(Running { host, group, alive });
        }
        Ok(())
    }

    /// Stops `node` abruptly: what its disk had not flushed is lost, and
    /// nothing its stopped tasks still do reaches anyone.
    pub fn crash(&self, node: NodeId) {
        let mut nodes = self.lock();
        let Some(slot) = nodes.get_mut(&node) else {
            return;
        };
        let Some(running) = slot.running.take() else {
            return;
        };
        self.trace.record(TraceEvent::Crash { node });
        running.alive.store(false, Ordering::Relaxed);
        self.net.detach(node);
        let host = running.host;
        tokio::spawn(async move { host.shutdown().await });
        slot.disk.crash();
        slot.incarnation += 1;
    }

    /// Returns `node`'s group handle and which run of the node it
    /// belongs to, if the node runs.
    pub fn group(&self, node: NodeId) -> Option<(Group<Observed>, u64)> {
        let nodes = self.lock();
        let slot = nodes.get(&node)?;
        let running = slot.running.as_ref()?;
        Some((running.group.clone(), slot.incarnation))
    }

    /// Returns true while run `incarnation` of `node` is the one running.
    pub fn is_running(&self, node: NodeId, incarnation: u64) -> bool {
        self.lock()
            .get(&node)
            .is_some_and(|slot| slot.running.is_some() && slot.incarnation == incarnation)
    }

    /// Returns the nodes running now, or down now.
    pub fn nodes(&self, running: bool) -> Vec<NodeId> {
        self.lock()
            .iter()
            .filter(|(_, slot)| slot.running.is_some() == running)
            .map(|(node, _)| *node)
            .collect()
    }

    /// Returns a running node that believes it leads, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.lock().iter().find_map(|(node, slot)| {
            slot.running
                .as_ref()
                .filter(|running| running.group.is_leader())
                .map(|_| *node)
        })
    }

    /// Returns every node's log as the node sees it, or as it would
    /// survive a crash (`durable`).
    pub fn logs(&self, durable: bool) -> Vec<(NodeId, LogSummary)> {
        self.lock()
            .iter()
            .map(|(node, slot)| {
                let log = if durable {
                    slot.disk.durable_log_summary(GROUP)
                } else {
                    slot.disk.log_summary(GROUP)
                };
                (*node, log)
            })
            .collect()
    }

    /// Returns every running node's applied index.
    pub fn applied(&self) -> BTreeMap<NodeId, Option<u64>> {
        self.lock()
            .iter()
            .filter_map(|(node, slot)| {
                let running = slot.running.as_ref()?;
                Some((*node, running.group.status().applied))
            })
            .collect()
    }
}
