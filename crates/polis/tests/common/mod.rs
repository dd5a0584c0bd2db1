//! A harness that runs real `polis server` processes on loopback ports
//! picked by the OS, and waits for conditions with deadlines.

#![allow(dead_code)]

pub mod client;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Returns a loopback address with a port the OS just had free.
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").to_string()
}

/// Polls `probe` every 25 ms until it returns `Some`, or panics after
/// `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    match wait_for_opt(timeout, probe).await {
        Some(value) => value,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Polls `probe` every 25 ms until it returns `Some`, or returns `None`
/// after `timeout`.
pub async fn wait_for_opt<T, F, Fut>(timeout: Duration, probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    polis_client::poll::until(timeout, Duration::from_millis(25), probe).await
}

pub struct NodeSpec {
    pub id: u64,
    pub resp: String,
    pub admin: String,
    pub peer: String,
    pub data: PathBuf,
}

/// A cluster of `polis server` processes.
pub struct Cluster {
    pub nodes: Vec<NodeSpec>,
    children: Vec<Option<Child>>,
    extra_args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `count` nodes with `extra_args` passed to each server.
    pub fn start(count: u64, extra_args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let nodes: Vec<NodeSpec> = (1..=count)
            .map(|id| NodeSpec {
                id,
                resp: free_addr(),
                admin: free_addr(),
                peer: free_addr(),
                data: dir.path().join(format!("node-{id}")),
            })
            .collect();
        let mut cluster = Cluster {
            children: nodes.iter().map(|_| None).collect(),
            nodes,
            extra_args: extra_args.iter().map(|arg| (*arg).to_owned()).collect(),
            _dir: dir,
        };
        for id in 1..=count {
            cluster.start_node(id);
        }
        cluster
    }

    fn members(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("{}={}/{}/{}", node.id, node.peer, node.resp, node.admin))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node(&self, id: u64) -> &NodeSpec {
        &self.nodes[(id - 1) as usize]
    }

    /// Starts (or restarts) node `id` on its data directory.
    pub fn start_node(&mut self, id: u64) {
        let members = self.members();
        let node = self.node(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.data.with_extension("log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_polis"))
            .arg("server")
            .args(["--node-id", &id.to_string()])
            .arg("--data-dir")
            .arg(&node.data)
            .args([
                "--resp-addr",
                &node.resp,
                "--admin-addr",
                &node.admin,
                "--peer-addr",
                &node.peer,
            ])
            .args(["--member", &members])
            .args([
                "--heartbeat-ms",
                "100",
                "--election-timeout-min-ms",
                "1000",
                "--election-timeout-max-ms",
                "2000",
            ])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start polis server");
        self.children[(id - 1) as usize] = Some(child);
    }

    /// Sends `signal` to node `id`'s process.
    pub fn signal(&self, id: u64, signal: Signal) {
        if let Some(child) = &self.children[(id - 1) as usize] {
            kill(Pid::from_raw(child.id() as i32), signal).expect("signal node");
        }
    }

    /// Kills node `id` with SIGKILL and reaps it.
    pub fn kill9(&mut self, id: u64) {
        if let Some(mut child) = self.children[(id - 1) as usize].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops node `id` with SIGTERM and waits for it to exit.
    pub async fn stop(&mut self, id: u64) {
        if let Some(mut child) = self.children[(id - 1) as usize].take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let exited = wait_for_opt(Duration::from_secs(10), || {
                let done = matches!(child.try_wait(), Ok(Some(_)));
                async move { done.then_some(()) }
            })
            .await;
            if exited.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Returns node `id`'s exit status once its process has exited.
    pub fn exit_status(&mut self, id: u64) -> Option<std::process::ExitStatus> {
        let child = self.children[(id - 1) as usize].as_mut()?;
        let status = child.try_wait().ok()??;
        self.children[(id - 1) as usize] = None;
        Some(status)
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.children[(id - 1) as usize].is_some()
    }

    /// Returns node `id`'s /status JSON, if it answers.
    pub async fn status(&self, id: u64) -> Option<serde_json::Value> {
        polis_client::admin::status(&self.node(id).admin).await.ok()
    }

    /// Waits until a running node reports a leader that is running, and
    /// returns the leader's id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> u64 {
        wait_for("a leader", timeout, || async {
            for node in &self.nodes {
                if !self.is_running(node.id) {
                    continue;
                }
                let Some(status) = self.status(node.id).await else {
                    continue;
                };
                if status["state"] == "Leader" {
                    return Some(node.id);
                }
            }
            None
        })
        .await
    }

    /// Waits until node `id` has taken a snapshot.
    pub async fn wait_for_snapshot(&self, id: u64) {
        wait_for(
            &format!("node {id} to snapshot"),
            Duration::from_secs(30),
            || async {
                let status = self.status(id).await?;
                (status["snapshot_index"].as_u64()? > 0).then_some(())
            },
        )
        .await;
    }

    /// Returns a multiplexed connection to node `id`.
    pub async fn connect(&self, id: u64) -> redis::aio::MultiplexedConnection {
        let url = format!("redis://{}/", self.node(id).resp);
        let client = redis::Client::open(url).expect("redis url");
        client
            .get_multiplexed_async_connection()
            .await
            .expect("connect")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Show what the nodes said, so a failure in CI can be read.
            for node in &self.nodes {
                let log =
                    std::fs::read_to_string(node.data.with_extension("log")).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                // A panic's message is followed by its backtrace, which
                // can push it out of the tail: quote it first.
                for (at, line) in lines.iter().enumerate() {
                    if line.contains("panicked at") {
                        eprintln!("---- node {} panicked (log line {}) ----", node.id, at + 1);
                        for line in lines.iter().skip(at).take(3) {
                            eprintln!("{line}");
                        }
                    }
                }
                eprintln!("---- node {} log (last 40 lines) ----", node.id);
                for line in &lines[lines.len().saturating_sub(40)..] {
                    eprintln!("{line}");
                }
            }
        }
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
