//! One run of `polis verify`: start (or reach) the target, run the
//! clients and the nemesis for the run's duration, heal, read
//! everything back, check the history and write the results.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use polis_client::faults::Faults;
use polis_client::local::{free_addrs, LocalCluster, LocalClusterConfig};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::time::Instant;

use crate::final_read;
use crate::history::{Kind, Op, Phase, NEMESIS_PROCESS};
use crate::nemesis::{self, FaultKind};
use crate::recorder::Recorder;
use crate::redis_control::RedisGroup;
use crate::results::{self, Results};
use crate::target::{PolisTarget, Target};
use crate::workload::{self, ClientPlan, Workload};

/// What to test.
#[derive(Debug, Clone)]
pub enum TargetConfig {
    /// A polis cluster of `nodes` processes started by this run.
    PolisLocal {
        exe: PathBuf,
        nodes: u64,
        server_args: Vec<String>,
    },
    /// A running polis cluster: RESP addresses and one admin address.
    PolisRemote { resp: Vec<String>, admin: String },
    /// Redis: a primary and two asynchronous replicas started by this run.
    Redis { exe: PathBuf },
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub target: TargetConfig,
    pub workload: Workload,
    pub clients: u64,
    /// Operations per second, all clients together.
    pub rate: u64,
    pub duration: Duration,
    pub faults: Vec<FaultKind>,
    /// Calm between two faults.
    pub quiet: Duration,
    /// How long each fault lasts.
    pub fault_for: Duration,
    pub seed: u64,
    pub out_dir: PathBuf,
    /// How long a client waits for a reply before the outcome is unknown.
    pub timeout: Duration,
    /// How long the target may take to serve again after healing.
    pub recovery_timeout: Duration,
}

async fn start_target(config: &RunConfig) -> anyhow::Result<Target> {
    match &config.target {
        TargetConfig::PolisLocal {
            exe,
            nodes,
            server_args,
        } => {
            let mut args = vec!["--enable-fault-injection".to_owned()];
            args.extend(server_args.iter().cloned());
            let (addrs, ports) = free_addrs(*nodes)?;
            let cluster = LocalCluster::start(LocalClusterConfig {
                exe: exe.clone(),
                data_dir: config.out_dir.join("data"),
                nodes: addrs,
                server_args: args,
                node_args: Default::default(),
                ports: Some(ports),
            })?;
            let faults = Faults::new(cluster.admin_addrs());
            let resp = cluster.resp_addrs();
            Ok(Target::Polis(PolisTarget {
                cluster: Some(cluster),
                faults,
                resp,
                added: None,
                leases: Vec::new(),
            }))
        }
        TargetConfig::PolisRemote { resp, admin } => Ok(Target::Polis(PolisTarget {
            cluster: None,
            faults: Faults::discover(admin).await?,
            resp: resp.clone(),
            added: None,
            leases: Vec::new(),
        })),
        TargetConfig::Redis { exe } => {
            let group = RedisGroup::start(exe.clone(), config.out_dir.join("data"), 2).await?;
            Ok(Target::Redis(group))
        }
    }
}

/// Runs one verification and writes its results under `config.out_dir`.
///
/// # Errors
/// Returns an error if the target cannot be started or does not recover;
/// anomalies are not errors, they are in the results.
pub async fn run(config: &RunConfig) -> anyhow::Result<Results> {
    if let (TargetConfig::Redis { .. }, Workload::Lock) = (&config.target, config.workload) {
        anyhow::bail!("the lock workload runs LOCK and FENCED, which only polis has");
    }
    if let Workload::Eventual { .. } = config.workload {
        check_eventual(config)?;
    }
    std::fs::create_dir_all(&config.out_dir)
        .with_context(|| format!("creating {}", config.out_dir.display()))?;
    for kind in &config.faults {
        if let TargetConfig::PolisRemote { .. } = config.target {
            anyhow::ensure!(
                kind.is_network() || *kind == FaultKind::ClockSkew,
                "{kind} needs the processes: let polis verify start the cluster"
            );
        }
    }
    let mut target = start_target(config).await?;
    let outcome = run_on(config, &mut target).await;
    target.shutdown().await;
    outcome
}

/// Refuses what the eventual workload cannot run with: it compares every
/// node's whole eventual keyspace, so every node must hold a replica of
/// every slot (3 nodes, N=3), and a hint-window fault must outlast the
/// window.
fn check_eventual(config: &RunConfig) -> anyhow::Result<()> {
    let Workload::Eventual {
        write_quorum,
        read_quorum,
        ..
    } = config.workload
    else {
        return Ok(());
    };
    let replicas = workload::eventual::REPLICAS;
    for (name, quorum) in [("write", write_quorum), ("read", read_quorum)] {
        anyhow::ensure!(
            (1..=replicas).contains(&quorum),
            "the {name} quorum must be between 1 and N={replicas}, not {quorum}"
        );
    }
    match &config.target {
        TargetConfig::Redis { .. } => {
            anyhow::bail!("the eventual workload needs polis's eventual namespaces")
        }
        TargetConfig::PolisLocal { nodes, .. } => anyhow::ensure!(
            *nodes == u64::from(replicas),
            "the eventual workload compares every node's eventual keys, so every node must hold \
             every slot: run it on {replicas} nodes (N={replicas}), not {nodes}"
        ),
        TargetConfig::PolisRemote { .. } => {}
    }
    anyhow::ensure!(
        !config.faults.contains(&FaultKind::AddRemoveNode),
        "add-remove-node moves replicas between nodes, and the eventual workload compares \
         every node's eventual keys: leave it out (`all` includes it; name the faults, e.g. \
         --faults partition,kill,clock-skew,hint-window)"
    );
    let window = Duration::from_millis(workload::eventual::HINT_WINDOW_MS);
    anyhow::ensure!(
        !config.faults.contains(&FaultKind::HintWindow) || config.fault_for > window,
        "a hint-window fault must last longer than the {window:?} hint window"
    );
    Ok(())
}

async fn run_on(config: &RunConfig, target: &mut Target) -> anyhow::Result<Results> {
    for kind in &config.faults {
        if let Some(reason) = target.unsupported(*kind) {
            anyhow::bail!(reason);
        }
    }
    target
        .recover(config.recovery_timeout)
        .await
        .context("the target did not become ready")?;
    if let Workload::Changefeed { .. } = config.workload {
        let admins = target
            .admin_addrs()
            .context("the changefeed workload needs a polis target")?;
        workload::changefeed::configure(
            &target.client_addrs(),
            &admins,
            workload::changefeed::FEED_PREFIX,
            workload::changefeed::FEED_STREAM,
            config.recovery_timeout,
        )
        .await
        .context("setting the change feed")?;
    }
    if let Workload::Eventual {
        write_quorum,
        read_quorum,
        ..
    } = config.workload
    {
        let admins = target
            .admin_addrs()
            .context("the eventual workload needs a polis target")?;
        workload::eventual::configure(
            &target.client_addrs(),
            &admins,
            (write_quorum, read_quorum),
            config.faults.contains(&FaultKind::HintWindow),
            config.recovery_timeout,
        )
        .await
        .context("setting the eventual namespace")?;
    }
    println!("polis verify: target ready; seed {}", config.seed);
    let recorder = Recorder::new();
    let values = Arc::new(AtomicU64::new(1));
    let deadline = Instant::now() + config.duration;
    let clients = config.clients.max(1);
    let interval = Duration::from_secs_f64(clients as f64 / config.rate.max(1) as f64);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let plan = ClientPlan {
            client,
            clients,
            addrs: target.client_addrs(),
            timeout: config.timeout,
            interval,
            deadline,
            seed: config.seed,
        };
        tasks.push(tokio::spawn(workload::run_client(
            plan,
            config.workload,
            recorder.clone(),
            values.clone(),
        )));
    }
    run_nemesis(config, target, &recorder, deadline).await;
    for task in tasks {
        task.await.context("a client task failed")?;
    }

    recorder.record(
        NEMESIS_PROCESS,
        Kind::Info,
        nemesis_op("recover", Phase::Start),
        None,
    );
    let leader = target
        .recover(config.recovery_timeout)
        .await
        .context("the target did not recover after healing")?;
    recorder.record(
        NEMESIS_PROCESS,
        Kind::Info,
        nemesis_op("recover", Phase::Stop),
        None,
    );
    final_read::run(config, target, &leader, &recorder).await?;
    results::write(config, &recorder.events())
}

fn nemesis_op(fault: &str, phase: Phase) -> Op {
    Op::Nemesis {
        fault: fault.to_owned(),
        phase,
    }
}

async fn run_nemesis(
    config: &RunConfig,
    target: &mut Target,
    recorder: &Recorder,
    deadline: Instant,
) {
    let mut rng = StdRng::seed_from_u64(config.seed.wrapping_add(1));
    let nodes = target.nodes();
    loop {
        if Instant::now() + config.quiet + config.fault_for > deadline {
            break;
        }
        tokio::time::sleep(config.quiet).await;
        let Some(fault) = nemesis::plan(&config.faults, &nodes, &mut rng) else {
            continue;
        };
        match target.start_fault(&fault).await {
            Ok((description, undo)) => {
                println!("nemesis: {description}");
                recorder.record(
                    NEMESIS_PROCESS,
                    Kind::Info,
                    nemesis_op(&description, Phase::Start),
                    None,
                );
                tokio::time::sleep(config.fault_for).await;
                let error = target
                    .stop_fault(undo)
                    .await
                    .err()
                    .map(|e| format!("{e:#}"));
                if let Some(error) = &error {
                    println!("nemesis: undoing {description} failed: {error}");
                }
                recorder.record(
                    NEMESIS_PROCESS,
                    Kind::Info,
                    nemesis_op(&description, Phase::Stop),
                    error,
                );
            }
            Err(error) => {
                println!("nemesis: {} could not start: {error:#}", fault.kind);
                let description = fault.kind.to_string();
                let error = Some(format!("{error:#}"));
                recorder.record(
                    NEMESIS_PROCESS,
                    Kind::Info,
                    nemesis_op(&description, Phase::Start),
                    error.clone(),
                );
                recorder.record(
                    NEMESIS_PROCESS,
                    Kind::Info,
                    nemesis_op(&description, Phase::Stop),
                    error,
                );
            }
        }
    }
}
