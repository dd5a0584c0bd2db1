//! `polis dev`: a local cluster as separate `polis server` processes on
//! loopback. Node i (1-based id) listens for RESP on `port + i - 1`, admin
//! HTTP on `port + 100 + i - 1`, peers on `port + 200 + i - 1`. Data lives
//! under `--data`, so running it again brings the data (and the cluster
//! map) back. By default 3 nodes and 3 shards of 3 replicas, one shard led
//! from each node, so Redis Cluster tools see three masters.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use polis_client::local::{LocalCluster, LocalClusterConfig, NodeAddrs};

/// Flags of `polis dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// Number of shards (Raft groups) the slots are spread over; 1 gives a
    /// single group that serves every slot.
    #[arg(long, default_value_t = 3)]
    shards: usize,
    /// Replicas per shard (at most the number of nodes).
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// RESP port of the first node; admin ports start at +100, peer ports at +200.
    #[arg(long, default_value_t = 7000)]
    port: u16,
    /// Data directory (one subdirectory per node).
    #[arg(long, default_value = "./polis-data")]
    data: PathBuf,
    /// How long to wait for every shard to have a leader.
    #[arg(long, default_value_t = 60)]
    ready_timeout_secs: u64,
    /// Add one node to the `polis dev` cluster already running with these
    /// `--port` and `--data` (it takes the next free node id and joins
    /// through node 1), then run it until Ctrl-C: shard replicas and
    /// leaders move to it. Run `polis dev --nodes N` later to start every
    /// node together again.
    #[arg(long)]
    add_node: bool,
    /// Port of the gateway started beside the nodes (one endpoint for
    /// clients that know nothing of clusters); default `--port` + 300,
    /// 0 for one the OS picks.
    #[arg(long)]
    gateway_port: Option<u16>,
    /// Start no gateway.
    #[arg(long)]
    no_gateway: bool,
    /// Say ready once every shard has a leader, without waiting for the
    /// leader balancer to lead each shard from its preferred node (clients
    /// of the gateway, or that follow MOVED, need not wait).
    #[arg(long)]
    no_settle: bool,
    /// A secure cluster: a CA and certificates generated under `--data`
    /// (`tls/`, kept across restarts), a TLS port per node at `--port` +
    /// 400 (client certificates checked when given), and a password for
    /// the default user (`--data`/password). Plaintext ports stay open
    /// on loopback.
    #[arg(long)]
    secure: bool,
    /// TLS ports and certificates as `--secure`, without the password
    /// (for clients that cannot authenticate, such as Redis's TCL suite).
    #[arg(long)]
    tls: bool,
    /// Extra flags passed to every `polis server` (after `--`).
    #[arg(last = true)]
    server_args: Vec<String>,
}

const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long `polis dev` waits, once every shard serves, for every shard
/// to be led from its preferred node (the balancer waits ten seconds after
/// start before it moves a leader, then plans every 2 s, at most 30
/// moves a minute by default).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(40);

fn addrs(port: u16, index: u16) -> NodeAddrs {
    NodeAddrs {
        id: u64::from(index) + 1,
        resp: format!("127.0.0.1:{}", port + index),
        admin: format!("127.0.0.1:{}", port + 100 + index),
        peer: format!("127.0.0.1:{}", port + 200 + index),
    }
}

/// Runs `polis dev` until SIGINT or SIGTERM.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    if args.add_node {
        return add_node(args).await;
    }
    if args.nodes == 0 || args.nodes > 99 {
        bail!("--nodes must be between 1 and 99");
    }
    if args.shards == 0 || args.shards > polis_types::limits::SHARDS_MAX {
        bail!(
            "--shards must be between 1 and {}",
            polis_types::limits::SHARDS_MAX
        );
    }
    if args.replicas == 0 {
        bail!("--replicas must be at least 1");
    }
    if u32::from(args.port) + 200 + u32::from(args.nodes) > u32::from(u16::MAX) {
        bail!("--port is too high for {} nodes", args.nodes);
    }
    let mut server_args = vec![
        "--shards".to_owned(),
        args.shards.to_string(),
        "--replicas".to_owned(),
        args.replicas.to_string(),
    ];
    server_args.extend(args.server_args.iter().cloned());
    let secure = if args.secure || args.tls {
        Some(crate::dev_secure::prepare(&args.data, args.secure)?)
    } else {
        None
    };
    let mut node_args = std::collections::BTreeMap::new();
    if let Some(secure) = &secure {
        server_args.extend(secure.server_args());
        for index in 0..args.nodes {
            let tls_port = crate::dev_secure::tls_port(args.port, index)?;
            node_args.insert(
                u64::from(index) + 1,
                vec!["--tls-port".to_owned(), tls_port.to_string()],
            );
        }
    }
    let config = LocalClusterConfig {
        exe: std::env::current_exe().context("locating the polis binary")?,
        data_dir: args.data.clone(),
        nodes: (0..args.nodes)
            .map(|index| addrs(args.port, index))
            .collect(),
        server_args,
        node_args,
        ports: None,
    };
    let mut cluster = LocalCluster::start(config)?;
    for node in cluster.nodes() {
        println!(
            "node {}: resp {}  admin http://{}  peer {}  log {}",
            node.id,
            node.resp,
            node.admin,
            node.peer,
            cluster.log_path(node.id).display()
        );
    }
    let status = match cluster
        .wait_until_ready(Duration::from_secs(args.ready_timeout_secs))
        .await
    {
        Ok(status) => status,
        Err(error) => {
            cluster.stop_all(STOP_GRACE).await;
            return Err(error
                .context("the cluster did not get a leader for every shard; see the node logs"));
        }
    };
    // Clients and tests that look once at who leads what (the Redis test
    // suite, a first CLUSTER NODES) should find the layout the balancer
    // keeps, not a leader it is about to move.
    let status = if args.no_settle {
        status
    } else {
        match cluster.wait_until_settled(SETTLE_TIMEOUT).await {
            Ok(settled) => settled,
            Err(error) => {
                println!(
                    "polis dev: {error}; the leader balancer will move them, serving meanwhile"
                );
                status
            }
        }
    };
    for shard in status["shards"].as_array().into_iter().flatten() {
        let slots: Vec<&str> = shard["slots"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|range| range.as_str())
            .collect();
        println!(
            "shard {}: slots {}  leader: node {} ({})",
            shard["id"],
            slots.join(","),
            shard["leader_node"],
            shard["leader_resp_addr"].as_str().unwrap_or("-"),
        );
    }
    if let Some(secure) = &secure {
        secure.require_password(&cluster.resp_addrs()).await?;
        secure.describe(args.port, args.nodes);
    }
    if !args.no_gateway {
        let port = args.gateway_port.unwrap_or(args.port.saturating_add(300));
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        // Its TLS listener (with --tls or --secure) at the gateway's port
        // + 1, its HTTP API at + 2 and its admin address at + 3, or where
        // the OS puts them when the gateway's port is the OS's pick.
        let beside = |offset: u16| {
            let port = if port == 0 {
                0
            } else {
                port.saturating_add(offset)
            };
            std::net::SocketAddr::from(([127, 0, 0, 1], port))
        };
        let tls = secure.as_ref().map(|secure| (beside(1), secure.files()));
        // With --secure, the gateway reaches the nodes at their TLS ports.
        let upstream = secure
            .as_ref()
            .and_then(crate::dev_secure::Secure::upstream);
        let seeds = match (&upstream, secure.as_ref()) {
            (Some(_), Some(secure)) => secure.tls_addrs(args.port, args.nodes),
            _ => cluster.resp_addrs(),
        };
        let gateway_beside = crate::gateway::Beside {
            tls,
            upstream,
            http: beside(2),
            admin: (beside(3), cluster.admin_addrs().into_values().collect()),
        };
        let started = crate::gateway::start_beside(listen, seeds, gateway_beside).await;
        match started {
            Ok(started) => {
                println!(
                    "gateway: resp {}  (any Redis client: redis-cli -p {})",
                    started.resp,
                    started.resp.port()
                );
                if let Some(tls_addr) = started.tls {
                    println!("gateway: tls {tls_addr}");
                }
                println!(
                    "gateway: http {}  (HTTP/JSON API: curl http://{}/v1/keys/KEY)",
                    started.http, started.http
                );
                println!(
                    "gateway: admin {}  (metrics, and the dashboard: http://{}/dashboard)",
                    started.admin, started.admin
                );
            }
            Err(error) => println!("polis dev: no gateway: {error}"),
        }
    }
    println!("try:    redis-cli -c -p {}", args.port);
    match secure
        .as_ref()
        .and_then(crate::dev_secure::Secure::password_file)
    {
        Some(file) => println!(
            "status: POLIS_PASSWORD=\"$(cat {})\" polis status --node {}",
            file.display(),
            addrs(args.port, 0).admin
        ),
        None => println!("status: polis status --node {}", addrs(args.port, 0).admin),
    }
    println!("dashboard: http://{}/dashboard", addrs(args.port, 0).admin);
    println!("polis dev: ready");
    wait_for_signal_or_exit(&mut cluster).await;
    cluster.stop_all(STOP_GRACE).await;
    println!("polis dev: stopped");
    Ok(())
}

/// Adds a node to a running `polis dev` cluster and runs it.
async fn add_node(args: DevArgs) -> anyhow::Result<()> {
    let first = addrs(args.port, 0);
    let status = polis_client::admin::status(&first.admin)
        .await
        .with_context(|| {
            format!(
                "no polis dev cluster answers at {} (start `polis dev` with the same --port first)",
                first.admin
            )
        })?;
    let known = polis_client::admin::highest_node_id(&status);
    let index = u16::try_from(known).context("too many nodes")?;
    if index >= 99 || u32::from(args.port) + 200 + u32::from(index) > u32::from(u16::MAX) {
        bail!("no room for node {}: at most 99 nodes", known + 1);
    }
    let node = addrs(args.port, index);
    let config = LocalClusterConfig {
        exe: std::env::current_exe().context("locating the polis binary")?,
        data_dir: args.data.clone(),
        nodes: Vec::new(),
        server_args: args.server_args.clone(),
        node_args: Default::default(),
        ports: None,
    };
    let mut cluster = LocalCluster::start(config)?;
    let id = node.id;
    println!(
        "node {id}: resp {}  admin http://{}  peer {}  log {}  (joining through {})",
        node.resp,
        node.admin,
        node.peer,
        cluster.log_path(id).display(),
        first.peer
    );
    let admin = node.admin.clone();
    cluster.add_node(node, &first.peer)?;
    let joined = polis_client::poll::until(
        Duration::from_secs(args.ready_timeout_secs),
        Duration::from_millis(200),
        || {
            let admin = admin.clone();
            async move {
                let status = polis_client::admin::status(&admin).await.ok()?;
                (status["state"] == "ok").then_some(())
            }
        },
    )
    .await;
    if joined.is_none() {
        cluster.stop_all(STOP_GRACE).await;
        bail!(
            "node {id} did not join within {} s; see {}",
            args.ready_timeout_secs,
            cluster.log_path(id).display()
        );
    }
    println!("polis dev: node {id} joined; replicas and leaders move to it once it has run 10 s");
    println!("watch:  polis status --node {}", first.admin);
    wait_for_signal_or_exit(&mut cluster).await;
    cluster.stop_all(STOP_GRACE).await;
    println!("polis dev: node {id} stopped");
    Ok(())
}

async fn wait_for_signal_or_exit(cluster: &mut LocalCluster) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    let mut reported = std::collections::BTreeSet::new();
    loop {
        tokio::select! {
            _ = terminate.recv() => return,
            _ = interrupt.recv() => return,
            _ = ticker.tick() => {
                for (id, status) in cluster.exited() {
                    if reported.insert(id) {
                        eprintln!(
                            "polis dev: node {id} exited ({status}); see {}",
                            cluster.log_path(id).display()
                        );
                    }
                }
                if cluster.pids().is_empty() {
                    eprintln!("polis dev: every node of this process exited");
                    return;
                }
            }
        }
    }
}
