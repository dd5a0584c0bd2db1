//! `polis dev`: a local cluster as separate `polis server` processes on
//! loopback. Node i (1-based id) listens for RESP on `port + i - 1`, admin
//! HTTP on `port + 100 + i - 1`, peers on `port + 200 + i - 1`. Data lives
//! under `--data`, so running it again brings the data back.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use polis::admin_client;

/// Flags of `polis dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// RESP port of the first node; admin ports start at +100, peer ports at +200.
    #[arg(long, default_value_t = 7000)]
    port: u16,
    /// Data directory (one subdirectory per node).
    #[arg(long, default_value = "./polis-data")]
    data: PathBuf,
    /// How long to wait for a leader.
    #[arg(long, default_value_t = 30)]
    ready_timeout_secs: u64,
    /// Extra flags passed to every `polis server` (after `--`).
    #[arg(last = true)]
    server_args: Vec<String>,
}

struct NodeProcess {
    id: u64,
    child: Child,
}

fn addrs(port: u16, index: u16) -> (String, String, String) {
    (
        format!("127.0.0.1:{}", port + index),
        format!("127.0.0.1:{}", port + 100 + index),
        format!("127.0.0.1:{}", port + 200 + index),
    )
}

/// Runs `polis dev` until SIGINT or SIGTERM.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    if args.nodes == 0 || args.nodes > 99 {
        bail!("--nodes must be between 1 and 99");
    }
    if u32::from(args.port) + 200 + u32::from(args.nodes) > u32::from(u16::MAX) {
        bail!("--port is too high for {} nodes", args.nodes);
    }
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let exe = std::env::current_exe().context("locating the polis binary")?;
    let members: Vec<String> = (0..args.nodes)
        .map(|index| {
            let (resp, admin, peer) = addrs(args.port, index);
            format!("{}={peer}/{resp}/{admin}", index + 1)
        })
        .collect();
    let mut processes = Vec::new();
    for index in 0..args.nodes {
        let id = u64::from(index) + 1;
        let (resp, admin, peer) = addrs(args.port, index);
        let log_path = args.data.join(format!("node-{id}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let child = Command::new(&exe)
            .arg("server")
            .args(["--node-id", &id.to_string()])
            .arg("--data-dir")
            .arg(args.data.join(format!("node-{id}")))
            .args([
                "--resp-addr",
                &resp,
                "--admin-addr",
                &admin,
                "--peer-addr",
                &peer,
            ])
            .args(["--member", &members.join(",")])
            .args(&args.server_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting node {id}"))?;
        println!(
            "node {id}: resp {resp}  admin http://{admin}  peer {peer}  log {}",
            log_path.display()
        );
        processes.push(NodeProcess { id, child });
    }

    let admin_addrs: Vec<String> = (0..args.nodes)
        .map(|index| addrs(args.port, index).1)
        .collect();
    let leader = wait_for_leader(&admin_addrs, Duration::from_secs(args.ready_timeout_secs)).await;
    match leader {
        Ok((leader_id, leader_resp)) => {
            println!("leader: node {leader_id} ({leader_resp})");
            println!("try:    redis-cli -c -p {}", args.port);
            println!("status: polis status --node {}", admin_addrs[0]);
            println!("polis dev: ready");
        }
        Err(error) => {
            stop_all(&mut processes).await;
            return Err(error.context("the cluster did not elect a leader; see the node logs"));
        }
    }

    wait_for_signal_or_exit(&mut processes).await;
    stop_all(&mut processes).await;
    println!("polis dev: stopped");
    Ok(())
}

async fn wait_for_leader(
    admin_addrs: &[String],
    timeout: Duration,
) -> anyhow::Result<(u64, String)> {
    let deadline = Instant::now() + timeout;
    loop {
        for addr in admin_addrs {
            if let Ok(status) = admin_client::status(addr).await {
                if let (Some(id), Some(resp)) = (
                    status["leader_id"].as_u64(),
                    status["leader_resp_addr"].as_str(),
                ) {
                    return Ok((id, resp.to_owned()));
                }
            }
        }
        if Instant::now() >= deadline {
            bail!("no leader after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_signal_or_exit(processes: &mut [NodeProcess]) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = terminate.recv() => return,
            _ = interrupt.recv() => return,
            _ = ticker.tick() => {
                for process in processes.iter_mut() {
                    if let Ok(Some(status)) = process.child.try_wait() {
                        eprintln!("polis dev: node {} exited ({status}); the others keep running", process.id);
                    }
                }
            }
        }
    }
}

async fn stop_all(processes: &mut [NodeProcess]) {
    for process in processes.iter() {
        if let Some(pid) = process.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
    for process in processes.iter_mut() {
        match tokio::time::timeout(Duration::from_secs(10), process.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!(
                    "polis dev: node {} did not stop in 10 s; killing it",
                    process.id
                );
                let _ = process.child.kill().await;
            }
        }
    }
}
