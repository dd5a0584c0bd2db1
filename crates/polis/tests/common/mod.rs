//! A harness that runs real `polis server` processes on leased loopback
//! ports (`polis_client::ports`), and waits for conditions with deadlines.
//!
//! A cluster has one shard unless the test asks for more (`--shards N`
//! among its arguments): most tests are about one Raft group, its leader
//! and its followers, and read the status of that shard's replicas.

#![allow(dead_code)]

pub mod client;
pub mod eventual;
pub mod probe;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Tests of one binary that time failovers or gaps in service take turns:
/// several clusters at once on two cores would measure the machine rather
/// than polis. Hold the guard for the whole test.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
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
    /// The peer address a node added to the running cluster joins through
    /// (`--join`); `None` for the first members.
    pub join: Option<String>,
}

impl NodeSpec {
    /// Returns the node as `--member` gives it.
    fn member(&self) -> String {
        format!("{}={}/{}/{}", self.id, self.peer, self.resp, self.admin)
    }
}

/// A cluster of `polis server` processes.
pub struct Cluster {
    pub nodes: Vec<NodeSpec>,
    children: Vec<Option<Child>>,
    extra_args: Vec<String>,
    _ports: Vec<std::sync::Arc<polis_client::ports::PortLease>>,
    _dir: tempfile::TempDir,
}

/// The shard the single-shard tests look at.
pub const SHARD: u64 = 1;

impl Cluster {
    /// Starts `count` nodes with `extra_args` passed to each server (one
    /// shard unless they say `--shards`).
    pub fn start(count: u64, extra_args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let (addrs, ports) = polis_client::local::free_addrs(count).expect("free ports");
        let nodes: Vec<NodeSpec> = addrs
            .into_iter()
            .map(|node| NodeSpec {
                data: dir.path().join(format!("node-{}", node.id)),
                id: node.id,
                resp: node.resp,
                admin: node.admin,
                peer: node.peer,
                join: None,
            })
            .collect();
        let mut cluster = Cluster {
            children: nodes.iter().map(|_| None).collect(),
            nodes,
            extra_args: Vec::new(),
            _ports: vec![ports],
            _dir: dir,
        };
        cluster.set_extra_args(extra_args);
        for id in 1..=count {
            cluster.start_node(id);
        }
        cluster
    }

    /// Sets the arguments every node is started with from now on (one
    /// shard unless they say `--shards`).
    pub fn set_extra_args(&mut self, extra_args: &[&str]) {
        self.extra_args = extra_args.iter().map(|arg| (*arg).to_owned()).collect();
        if !self.extra_args.iter().any(|arg| arg == "--shards") {
            self.extra_args
                .extend(["--shards".to_owned(), "1".to_owned()]);
        }
    }

    /// Returns the `--member` list of the first members.
    fn members(&self) -> String {
        self.nodes
            .iter()
            .filter(|node| node.join.is_none())
            .map(NodeSpec::member)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Adds node `count + 1` to the running cluster: started with
    /// `--join` to node `via`'s peer address. Returns its id.
    pub fn add_node(&mut self, via: u64) -> u64 {
        let id = self.nodes.len() as u64 + 1;
        let (addrs, ports) = polis_client::local::free_addrs(1).expect("free ports");
        let addr = &addrs[0];
        self.nodes.push(NodeSpec {
            data: self._dir.path().join(format!("node-{id}")),
            id,
            resp: addr.resp.clone(),
            admin: addr.admin.clone(),
            peer: addr.peer.clone(),
            join: Some(self.node(via).peer.clone()),
        });
        self.children.push(None);
        self._ports.push(ports);
        self.start_node(id);
        id
    }

    pub fn node(&self, id: u64) -> &NodeSpec {
        &self.nodes[(id - 1) as usize]
    }

    /// Starts (or restarts) node `id` on its data directory.
    pub fn start_node(&mut self, id: u64) {
        let node = self.node(id);
        let members = match &node.join {
            Some(_) => node.member(),
            None => self.members(),
        };
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
            .args(node.join.iter().flat_map(|seed| ["--join", seed.as_str()]))
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

    /// Returns node `id`'s /status JSON (the whole cluster as it sees
    /// it), if it answers.
    pub async fn cluster_status(&self, id: u64) -> Option<serde_json::Value> {
        polis_client::admin::status(&self.node(id).admin).await.ok()
    }

    /// Returns node `id`'s own replica of group `group` as it reports it
    /// (`state`, `term`, `applied`, `snapshot_index`, `items`...).
    pub async fn replica_status(&self, id: u64, group: u64) -> Option<serde_json::Value> {
        let status = self.cluster_status(id).await?;
        status["replicas"]
            .as_array()?
            .iter()
            .find(|replica| replica["group_id"].as_u64() == Some(group))
            .cloned()
    }

    /// Returns node `id`'s replica of [`SHARD`], if it answers.
    pub async fn status(&self, id: u64) -> Option<serde_json::Value> {
        self.replica_status(id, SHARD).await
    }

    /// Waits until the cluster is ready (every shard serving) and a
    /// running node leads [`SHARD`]; returns that node's id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> u64 {
        wait_for("a leader", timeout, || async {
            for node in &self.nodes {
                if !self.is_running(node.id) {
                    continue;
                }
                let Some(status) = self.cluster_status(node.id).await else {
                    continue;
                };
                if status["state"] != "ok" {
                    continue;
                }
                let leader = polis_client::admin::shard_leader(&status, SHARD)?.0;
                if self.is_running(leader) && self.status(leader).await?["state"] == "Leader" {
                    return Some(leader);
                }
            }
            None
        })
        .await
    }

    /// Waits until a running node says every shard serves; returns its
    /// status.
    pub async fn wait_ready(&self, timeout: Duration) -> serde_json::Value {
        wait_for("every shard serving", timeout, || async {
            for node in &self.nodes {
                if !self.is_running(node.id) {
                    continue;
                }
                let status = self.cluster_status(node.id).await?;
                if status["state"] == "ok" {
                    return Some(status);
                }
            }
            None
        })
        .await
    }

    /// Returns the addresses of the RESP listeners of every node.
    pub fn resp_addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|node| node.resp.clone()).collect()
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

    /// Runs `polis chaos` with `args` against node 1's admin address (the
    /// nodes must run with fault injection); panics if it fails.
    pub fn chaos(&self, args: &[&str]) {
        let output = Command::new(env!("CARGO_BIN_EXE_polis"))
            .args(["chaos", "--node", &self.node(1).admin])
            .args(args)
            .output()
            .expect("run polis chaos");
        assert!(
            output.status.success(),
            "polis chaos {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
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
            // Show what the nodes said, so a failure in CI can be read;
            // POLIS_TEST_LOGS=<dir> keeps whole logs there too.
            let keep = std::env::var_os("POLIS_TEST_LOGS").map(std::path::PathBuf::from);
            for node in &self.nodes {
                if let Some(keep) = &keep {
                    let _ = std::fs::create_dir_all(keep);
                    let _ = std::fs::copy(
                        node.data.with_extension("log"),
                        keep.join(format!("node-{}.log", node.id)),
                    );
                }
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

/// Runs `polis cluster ARGS` and returns whether it succeeded and what it
/// printed (standard output, then standard error).
pub fn polis_cluster(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_polis"))
        .arg("cluster")
        .args(args)
        .output()
        .expect("run polis cluster");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Returns node `id`'s record in a node's `/status`.
pub fn node_record(status: &serde_json::Value, id: u64) -> Option<serde_json::Value> {
    status["nodes"]
        .as_array()?
        .iter()
        .find(|node| node["id"] == id)
        .cloned()
}

/// Returns how many shard replicas node `id` runs, if each is a voter of
/// a group of exactly three voters (no learner, no change under way).
pub async fn shard_groups_of_three(cluster: &Cluster, id: u64) -> Option<usize> {
    let own = cluster.cluster_status(id).await?;
    let groups: Vec<&serde_json::Value> = own["replicas"]
        .as_array()?
        .iter()
        .filter(|replica| replica["group_id"] != 0)
        .collect();
    for group in &groups {
        let members = group["members"].as_array()?;
        let voters = members.iter().filter(|m| m["voter"] == true).count();
        (voters == 3 && members.len() == 3).then_some(())?;
    }
    Some(groups.len())
}

/// Returns each shard's leader node, as `status` (a node's /status) says.
pub fn shard_leaders(status: &serde_json::Value) -> BTreeMap<u64, u64> {
    status["shards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|shard| Some((shard["id"].as_u64()?, shard["leader_node"].as_u64()?)))
        .collect()
}

/// Returns each shard's term, as `status` says.
pub fn shard_terms(status: &serde_json::Value) -> BTreeMap<u64, u64> {
    status["shards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|shard| Some((shard["id"].as_u64()?, shard["term"].as_u64()?)))
        .collect()
}

/// Returns a key of each shard (in its first slot range), as `status` says.
pub fn shard_keys(status: &serde_json::Value, label: &str) -> BTreeMap<u64, String> {
    status["shards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|shard| {
            let id = shard["id"].as_u64()?;
            let range = shard["slots"].as_array()?.first()?.as_str()?;
            let (start, end) = range.split_once('-').unwrap_or((range, range));
            let key = probe::key_in(
                start.parse().ok()?,
                end.parse().ok()?,
                &format!("{label}:{id}"),
            );
            Some((id, key))
        })
        .collect()
}
