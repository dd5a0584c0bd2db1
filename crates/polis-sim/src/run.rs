//! One run: a fresh single-threaded runtime on paused time, the cluster,
//! the clients and the nemesis, all from one seed; then the end-of-run
//! checks and a report.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Once};
use std::time::Duration;

use polis_verify::history::{Kind, Op};

use crate::client::Clients;
use crate::cluster::SimCluster;
use crate::config::{stream, stream_seed, SimConfig, SimOptions};
use crate::eventual::{EventualClients, EventualCounts};
use crate::history::Recorder;
use crate::invariants::{linearizable, progress, Violation};
use crate::nemesis::Nemesis;
use crate::network::Links;
use crate::queue::{QueueClients, QueueCounts};
use crate::trace::{digest_extend, Stamped, Trace};

/// How often the nodes' logs are compared while a run goes on.
const LOG_CHECK_EVERY: Duration = Duration::from_millis(500);
/// How often the map each node routes from is noted.
const ROUTING_CHECK_EVERY: Duration = Duration::from_millis(100);
/// Events of the trace a failure report shows.
const TAIL_SHOWN: usize = 40;
/// Clients of the queue workload (blocking pops and transactions), beside
/// the register clients.
const QUEUE_CLIENTS: u64 = 2;
/// Clients of the eventual namespace, beside the others.
const EVENTUAL_CLIENTS: u64 = 2;
/// Queue clients' connection ids start after this, apart from the
/// register clients' ids.
const QUEUE_CLIENT_IDS: u64 = 1_000;
/// Name of the violation a panic on the simulation's thread reports.
pub const NO_PANIC: &str = "no-panic";

/// Operations by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

/// What one run did and found.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub seed: u64,
    pub options: SimOptions,
    pub config: SimConfig,
    /// Digest of the ordered trace and the history: equal for equal seeds.
    pub digest: u64,
    pub trace_events: usize,
    pub counts: BTreeMap<&'static str, u64>,
    pub history_events: usize,
    pub reads: OpCounts,
    pub writes: OpCounts,
    /// What the queue clients did.
    pub queue: QueueCounts,
    /// What the eventual clients did.
    pub eventual: EventualCounts,
    pub violations: Vec<Violation>,
    /// The last events of the trace, for a failure report.
    pub tail: Vec<Stamped>,
    /// Every event's text, when the options asked to keep them.
    pub full_trace: Vec<String>,
    /// The clients' history.
    pub history: Vec<polis_verify::history::Event>,
    pub virtual_time: Duration,
    pub wall_time: Duration,
}

impl RunReport {
    /// Returns true when no invariant was broken.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// Returns the command that replays this run.
    pub fn replay_command(&self) -> String {
        self.options.replay_command(self.seed)
    }

    /// Returns a few lines describing the run.
    pub fn summary(&self) -> String {
        let config = &self.config;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "seed {}: {} nodes, {} clients, {} keys, {:.1} s virtual in {:.3} s, digest {:016x}",
            self.seed,
            config.nodes,
            config.clients,
            config.keys,
            self.virtual_time.as_secs_f64(),
            self.wall_time.as_secs_f64(),
            self.digest
        );
        let _ = writeln!(
            out,
            "  raft: heartbeat {} ms, election {}..{} ms, snapshot every {} entries ({} keys a step); \
             network {}+{} us, loss {}%",
            config.heartbeat_ms,
            config.election_timeout_min_ms,
            config.election_timeout_max_ms,
            config.snapshot_every_entries,
            config.snapshot_step_keys,
            config.latency_min_us,
            config.latency_jitter_us,
            config.loss_percent
        );
        let _ = writeln!(
            out,
            "  writes ok/fail/info {}/{}/{}, reads ok/fail {}/{}; {} history events",
            self.writes.ok,
            self.writes.fail,
            self.writes.info,
            self.reads.ok,
            self.reads.fail,
            self.history_events
        );
        let queue = &self.queue;
        let _ = writeln!(
            out,
            "  queue: pushes ok/unknown {}/{}, pops ok/unknown {}/{}, {} left",
            queue.pushed, queue.maybe_pushed, queue.popped, queue.unknown_pops, queue.left
        );
        let eventual = &self.eventual;
        let _ = writeln!(
            out,
            "  eventual: ok/unknown {}/{}, converged {} ms after the check began",
            eventual.acknowledged, eventual.unknown, eventual.converged_ms
        );
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        let _ = writeln!(
            out,
            "  trace: {} events ({})",
            self.trace_events,
            counts.join(", ")
        );
        for violation in &self.violations {
            let _ = writeln!(
                out,
                "  VIOLATION {} at {:.3} s: {}",
                violation.invariant,
                violation.time_us as f64 / 1e6,
                violation.detail
            );
        }
        if !self.passed() {
            let _ = writeln!(out, "  replay: {}", self.replay_command());
        }
        out
    }
}

thread_local! {
    static PANICS: Cell<u64> = const { Cell::new(0) };
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Counts panics per thread, so a run notices a panic in any task of its
/// runtime (tokio catches them), then lets the usual hook report it.
fn count_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|panics| panics.set(panics.get() + 1));
            LAST_PANIC.with(|last| *last.borrow_mut() = info.to_string());
            previous(info);
        }));
    });
}

/// Simulates the cluster drawn from `seed` and checks every invariant.
pub fn run(seed: u64, options: &SimOptions) -> RunReport {
    let wall = std::time::Instant::now();
    let config = SimConfig::from_seed(seed, options);
    count_panics();
    let panics_before = PANICS.with(Cell::get);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build();
    let mut report = match runtime {
        Ok(runtime) => {
            polis_raft::runtime::set_simulation_seed(Some(stream_seed(seed, "openraft")));
            let report = runtime.block_on(simulate(config.clone(), options.clone()));
            // Dropping the runtime drops every task still running.
            drop(runtime);
            polis_raft::runtime::set_simulation_seed(None);
            polis_raft::runtime::set_simulation_origin(None);
            report
        }
        Err(error) => failed_to_start(config, options, error.to_string()),
    };
    let panics = PANICS.with(Cell::get) - panics_before;
    if panics > 0 {
        let last = LAST_PANIC.with(|last| last.borrow().clone());
        report.violations.push(Violation {
            invariant: NO_PANIC,
            time_us: report.virtual_time.as_micros() as u64,
            detail: format!("{panics} panic(s); the last: {last}"),
        });
    }
    report.wall_time = wall.elapsed();
    report
}

fn failed_to_start(config: SimConfig, options: &SimOptions, error: String) -> RunReport {
    RunReport {
        seed: config.seed,
        options: options.clone(),
        config,
        digest: 0,
        trace_events: 0,
        counts: BTreeMap::new(),
        history_events: 0,
        reads: OpCounts::default(),
        writes: OpCounts::default(),
        queue: QueueCounts::default(),
        eventual: EventualCounts::default(),
        violations: vec![Violation {
            invariant: "runtime",
            time_us: 0,
            detail: format!("cannot build the runtime: {error}"),
        }],
        tail: Vec::new(),
        full_trace: Vec::new(),
        history: Vec::new(),
        virtual_time: Duration::ZERO,
        wall_time: Duration::ZERO,
    }
}

async fn simulate(config: SimConfig, options: SimOptions) -> RunReport {
    let start = tokio::time::Instant::now();
    polis_raft::runtime::set_simulation_origin(Some(start));
    let trace = if options.keep_trace {
        Trace::keeping_everything()
    } else {
        Trace::new()
    };
    let links = Arc::new(Links::new(&config));
    let cluster = SimCluster::new(&config, &trace, links.clone());
    for node in config.node_ids() {
        if let Err(error) = cluster.start(node).await {
            trace.violation("node-starts", format!("node {node}: {error}"));
        }
    }
    let recorder = Recorder::new(config.clients as u64 + 1);
    let nemesis = tokio::spawn(
        Nemesis {
            cluster: cluster.clone(),
            links,
            trace: trace.clone(),
            recorder: recorder.clone(),
            rng: stream(config.seed, "nemesis"),
            config: config.clone(),
        }
        .run(),
    );
    let clients = Clients {
        cluster: cluster.clone(),
        recorder: recorder.clone(),
        trace: trace.clone(),
        keys: config.keys,
        next_value: Arc::new(AtomicU64::new(1)),
        end: start + Duration::from_millis(config.duration_ms),
    };
    let mut handles = Vec::new();
    for id in 1..=config.clients as u64 {
        let rng = stream(config.seed, &format!("client-{id}"));
        handles.push(tokio::spawn(clients.clone().run(id, rng)));
    }
    let queue = QueueClients {
        cluster: cluster.clone(),
        trace: trace.clone(),
        next_value: Arc::new(AtomicU64::new(1)),
        book: Arc::default(),
        end: start + Duration::from_millis(config.duration_ms),
    };
    for id in 1..=QUEUE_CLIENTS {
        let rng = stream(config.seed, &format!("queue-client-{id}"));
        handles.push(tokio::spawn(queue.clone().run(QUEUE_CLIENT_IDS + id, rng)));
    }
    let eventual = EventualClients {
        cluster: cluster.clone(),
        trace: trace.clone(),
        next_value: Arc::new(AtomicU64::new(1)),
        book: Arc::default(),
        end: start + Duration::from_millis(config.duration_ms),
    };
    {
        let eventual = eventual.clone();
        let seed = config.seed;
        handles.push(tokio::spawn(async move {
            if !eventual
                .configure(&mut stream(seed, "eventual-setup"))
                .await
            {
                return;
            }
            let clients: Vec<_> = (1..=EVENTUAL_CLIENTS)
                .map(|id| {
                    let rng = stream(seed, &format!("eventual-client-{id}"));
                    tokio::spawn(eventual.clone().run(crate::eventual::CLIENT_IDS + id, rng))
                })
                .collect();
            for client in clients {
                let _ = client.await;
            }
        }));
    }
    let checker = tokio::spawn(check_logs_periodically(cluster.clone(), trace.clone()));
    for handle in handles {
        if let Err(error) = handle.await {
            trace.violation(NO_PANIC, format!("a client task failed: {error}"));
        }
    }
    if let Err(error) = nemesis.await {
        trace.violation(NO_PANIC, format!("the nemesis failed: {error}"));
    }
    checker.abort();
    check_logs(&cluster, &trace);
    let queue = queue.check(&mut stream(config.seed, "queue-check")).await;
    let eventual = eventual
        .check(&mut stream(config.seed, "eventual-check"))
        .await;
    // Every migration ends: done or cancelled, within a bounded time of
    // the heal (one that began just before it still has its copy to do).
    let mut waited = Duration::ZERO;
    while waited < MIGRATIONS_END_WAIT
        && cluster
            .history()
            .latest()
            .is_some_and(|map| !map.migrations.is_empty())
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
        waited += Duration::from_millis(250);
    }
    if let Some(map) = cluster.history().latest() {
        if let Some(migration) = map.migrations.values().next() {
            trace.violation(
                MIGRATIONS_END,
                format!(
                    "migration {} of slots {} (shard {} to {}) is still {} {} s after the \
                     clients stopped (map version {})",
                    migration.id,
                    polis_cluster::migration::render(&migration.slots),
                    migration.source,
                    migration.target,
                    migration.phase.name(),
                    waited.as_secs(),
                    map.version
                ),
            );
        }
    }
    // Every node asked to leave is drained and removed, and stops.
    check_removals_end(&cluster, &trace).await;
    check_replica_states(&cluster, &trace);
    let history = recorder.events();
    if let Err(detail) = linearizable::check(&history) {
        trace.violation(linearizable::NAME, detail);
    }
    let healed_ns = config.faults_until_ms * 1_000_000;
    if let Err(detail) = progress::check(&history, healed_ns) {
        trace.violation(progress::NAME, detail);
    }
    let (reads, writes) = count_ops(&history);
    RunReport {
        seed: config.seed,
        options,
        digest: digest_extend(trace.digest(), &recorder.digest().to_le_bytes()),
        trace_events: trace.len(),
        counts: trace.counts(),
        history_events: history.len(),
        reads,
        writes,
        queue,
        eventual,
        violations: trace.violations(),
        tail: trace.tail(TAIL_SHOWN),
        full_trace: trace.everything(),
        history,
        virtual_time: start.elapsed(),
        wall_time: Duration::ZERO,
        config,
    }
}

/// Name of the violation of two replicas of a shard that applied the same
/// log prefix yet hold different states.
pub const REPLICA_STATES_AGREE: &str = "replica-states-agree";

/// Compares a digest of every running replica's state (its snapshot's
/// bytes: keys, values, versions, expiry, ownership, migrations) with the
/// other replicas of its shard that applied up to the same index: apply
/// is deterministic, so they must be equal.
fn check_replica_states(cluster: &SimCluster, trace: &Trace) {
    let mut states = Vec::new();
    for node_id in cluster.nodes(true) {
        let Some((node, _)) = cluster.node(node_id) else {
            continue;
        };
        for (shard, group) in node.shards() {
            let state = group.state().read();
            let Some(applied) = state.last_applied else {
                continue;
            };
            let bytes = polis_raft::StateMachine::snapshot(&state.app);
            states.push(ReplicaState {
                shard,
                node: node_id,
                index: applied.index,
                digest: digest_extend(0, &bytes),
            });
        }
    }
    for detail in replica_disagreements(&states) {
        trace.violation(REPLICA_STATES_AGREE, detail);
    }
}

/// One replica's state: the digest of its snapshot at its applied index.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaState {
    pub shard: polis_types::GroupId,
    pub node: polis_types::NodeId,
    pub index: u64,
    pub digest: u64,
}

/// Returns a description of each replica whose state differs from that
/// of the first replica of its shard at the same applied index.
pub fn replica_disagreements(states: &[ReplicaState]) -> Vec<String> {
    let mut first: BTreeMap<(polis_types::GroupId, u64), &ReplicaState> = BTreeMap::new();
    let mut found = Vec::new();
    for state in states {
        let seen = *first.entry((state.shard, state.index)).or_insert(state);
        if seen.digest != state.digest {
            found.push(format!(
                "shard {} at index {}: node {} holds state digest {:016x}, node {} {:016x}",
                state.shard, state.index, seen.node, seen.digest, state.node, state.digest
            ));
        }
    }
    found
}

/// Name of the violation of a node removal that never ended.
pub const REMOVALS_END: &str = "removals-end";
/// How long after the migrations end a removal may take to end.
const REMOVALS_END_WAIT: Duration = Duration::from_secs(60);

/// Waits, for a bounded time, until no node of the map is leaving and
/// every removed node has stopped; reports a violation otherwise.
async fn check_removals_end(cluster: &SimCluster, trace: &Trace) {
    let leaving = || {
        cluster.history().latest().and_then(|map| {
            map.nodes
                .values()
                .find(|record| record.state == polis_cluster::NodeState::Leaving)
                .map(|record| (record.id, map.version))
        })
    };
    let mut waited = Duration::ZERO;
    while waited < REMOVALS_END_WAIT && leaving().is_some() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        waited += Duration::from_millis(250);
    }
    if let Some((node, version)) = leaving() {
        trace.violation(
            REMOVALS_END,
            format!(
                "node {node} is still leaving {} s after the migrations ended (map version \
                 {version})",
                waited.as_secs()
            ),
        );
    }
}

/// Name of the violation of a migration that never ended.
pub const MIGRATIONS_END: &str = "migrations-end";
/// How long after the clients stop a migration may take to end.
const MIGRATIONS_END_WAIT: Duration = Duration::from_secs(30);

/// Compares the nodes' logs of every group, as they are and as they would
/// survive a crash.
fn check_logs(cluster: &SimCluster, trace: &Trace) {
    for group in cluster.groups() {
        trace.check_logs(group, &cluster.logs(group, false));
        trace.check_logs(group, &cluster.logs(group, true));
    }
}

/// Compares the logs every [`LOG_CHECK_EVERY`], and notes the map each
/// node routes from every [`ROUTING_CHECK_EVERY`], until aborted.
async fn check_logs_periodically(cluster: SimCluster, trace: Trace) {
    let mut logs = tokio::time::interval(LOG_CHECK_EVERY);
    let mut routing = tokio::time::interval(ROUTING_CHECK_EVERY);
    loop {
        tokio::select! {
            biased;
            _ = logs.tick() => check_logs(&cluster, &trace),
            _ = routing.tick() => cluster.note_routing(),
        }
    }
}

fn count_ops(history: &[polis_verify::history::Event]) -> (OpCounts, OpCounts) {
    let mut reads = OpCounts::default();
    let mut writes = OpCounts::default();
    for event in history {
        let counts = match event.op {
            Op::Read { .. } => &mut reads,
            Op::Write { .. } => &mut writes,
            _ => continue,
        };
        match event.kind {
            Kind::Ok => counts.ok += 1,
            Kind::Fail => counts.fail += 1,
            Kind::Info => counts.info += 1,
            Kind::Invoke => {}
        }
    }
    (reads, writes)
}

#[cfg(test)]
mod tests {
    use polis_types::{GroupId, NodeId};

    use super::*;

    fn state(shard: u64, node: u64, index: u64, digest: u64) -> ReplicaState {
        ReplicaState {
            shard: GroupId(shard),
            node: NodeId(node),
            index,
            digest,
        }
    }

    #[test]
    fn replicas_that_applied_the_same_prefix_must_hold_the_same_state() {
        // Equal states at equal indexes, and any states at other indexes
        // or of other shards: nothing to say.
        let agreeing = [
            state(1, 1, 10, 0xaa),
            state(1, 2, 10, 0xaa),
            state(1, 3, 9, 0xbb),
            state(2, 1, 10, 0xcc),
        ];
        assert_eq!(replica_disagreements(&agreeing), Vec::<String>::new());
        let diverged = [state(1, 1, 10, 0xaa), state(1, 2, 10, 0xab)];
        let found = replica_disagreements(&diverged);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("at index 10"), "{found:?}");
    }
}
