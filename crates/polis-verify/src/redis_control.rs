//! The positive control: Redis 7 with one primary and two asynchronous
//! replicas, on loopback. Failing over to a replica loses the writes the
//! primary acknowledged but had not yet shipped; a checker that does not
//! report them is wrong.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use polis_client::resp::{Client, Outcome};
use tokio::process::{Child, Command};

use crate::link::Link;

/// Starts of a group tried before giving up.
const START_ATTEMPTS: u32 = 3;

/// How long a replica may take to connect to its primary at start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Log lines quoted per process when a start fails.
const LOG_TAIL_LINES: usize = 8;

/// Three redis-server processes: a primary and its replicas.
pub struct RedisGroup {
    exe: PathBuf,
    dir: PathBuf,
    ports: Vec<u16>,
    /// Held while the group runs (see `polis_client::ports`).
    _lease: polis_client::ports::PortLease,
    children: Vec<Option<Child>>,
    /// Replicas reach process i through `links[i]`, so the nemesis can
    /// cut replication.
    links: Vec<Link>,
    primary: usize,
}

impl RedisGroup {
    /// Starts a primary and `replicas` replicas of it under `dir`.
    ///
    /// A port picked free can be taken by another process before Redis
    /// binds it, so a group that does not come up is started again on
    /// fresh ports, [`START_ATTEMPTS`] times at most.
    ///
    /// # Errors
    /// Returns an error if redis-server cannot be started or its replicas
    /// do not connect; the message carries the tail of each log.
    pub async fn start(exe: PathBuf, dir: PathBuf, replicas: usize) -> anyhow::Result<Self> {
        let mut attempt = 1;
        loop {
            let attempt_dir = dir.join(format!("attempt-{attempt}"));
            match Self::start_once(exe.clone(), attempt_dir, replicas).await {
                Ok(group) => return Ok(group),
                Err(error) if attempt < START_ATTEMPTS => {
                    eprintln!("redis control: start attempt {attempt} failed: {error:#}");
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn start_once(exe: PathBuf, dir: PathBuf, replicas: usize) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let lease = polis_client::ports::reserve(replicas + 1)?;
        let ports = lease.ports().to_vec();
        let mut links = Vec::new();
        for port in &ports {
            links.push(Link::start(format!("127.0.0.1:{port}")).await?);
        }
        let mut group = Self {
            exe,
            dir,
            children: ports.iter().map(|_| None).collect(),
            ports,
            _lease: lease,
            links,
            primary: 0,
        };
        let started = async {
            for index in 0..group.ports.len() {
                group.start_process(index)?;
            }
            group.wait_for_replication(START_TIMEOUT).await
        }
        .await;
        if let Err(error) = started {
            group.stop().await;
            return Err(error.context(group.log_tails()));
        }
        Ok(group)
    }

    /// Returns the last lines of every process's log, for error messages.
    fn log_tails(&self) -> String {
        let mut tails = String::new();
        for index in 0..self.ports.len() {
            let log = std::fs::read_to_string(self.log_path(index)).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n  ");
            tails.push_str(&format!(
                "redis {index} log ({}):\n  {tail}\n",
                self.log_path(index).display()
            ));
        }
        tails
    }

    fn log_path(&self, index: usize) -> PathBuf {
        self.dir.join(format!("redis-{index}.log"))
    }

    /// Returns every address, the primary's first... in index order.
    pub fn addrs(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect()
    }

    /// Returns the primary's address.
    pub fn primary_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports[self.primary])
    }

    /// Returns the index of the primary.
    pub fn primary(&self) -> usize {
        self.primary
    }

    /// Returns the indexes of the replicas.
    pub fn replicas(&self) -> Vec<usize> {
        (0..self.ports.len())
            .filter(|i| *i != self.primary)
            .collect()
    }

    fn start_process(&mut self, index: usize) -> anyhow::Result<()> {
        let port = self.ports[index];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(index))?;
        let mut command = Command::new(&self.exe);
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--dbfilename", &format!("dump-{index}.rdb")]);
        if index != self.primary {
            let (host, port) = self.link_host_port(self.primary);
            command.args(["--replicaof", &host, &port]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        self.children[index] = Some(child);
        Ok(())
    }

    fn link_host_port(&self, index: usize) -> (String, String) {
        let addr = self.links[index].addr();
        let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "0"));
        (host.to_owned(), port.to_owned())
    }

    /// Cuts the primary off from its replicas (clients still reach it).
    pub fn isolate_primary(&self) {
        self.links[self.primary].cut();
    }

    /// Heals every replication link.
    pub fn heal_links(&self) {
        for link in &self.links {
            link.heal();
        }
    }

    fn signal(&mut self, index: usize, signal: Signal) -> anyhow::Result<()> {
        let pid = self.children[index]
            .as_ref()
            .and_then(Child::id)
            .with_context(|| format!("redis {index} is not running"))?;
        kill(Pid::from_raw(i32::try_from(pid)?), signal)?;
        Ok(())
    }

    /// Pauses process `index` (SIGSTOP).
    ///
    /// # Errors
    /// Returns an error if it is not running.
    pub fn pause(&mut self, index: usize) -> anyhow::Result<()> {
        self.signal(index, Signal::SIGSTOP)
    }

    /// Resumes process `index` (SIGCONT).
    ///
    /// # Errors
    /// Returns an error if it is not running.
    pub fn resume(&mut self, index: usize) -> anyhow::Result<()> {
        self.signal(index, Signal::SIGCONT)
    }

    /// Kills the primary with SIGKILL; returns its index. Call
    /// [`Self::promote`] next.
    ///
    /// # Errors
    /// Returns an error if the primary is not running.
    pub async fn kill_primary(&mut self) -> anyhow::Result<usize> {
        let old = self.primary;
        self.signal(old, Signal::SIGKILL)?;
        if let Some(mut child) = self.children[old].take() {
            child.wait().await?;
        }
        Ok(old)
    }

    /// Promotes the replica after the dead primary, the way an operator
    /// or a sentinel would; the other live replicas follow it.
    ///
    /// # Errors
    /// Returns an error if a replica cannot be reconfigured.
    pub async fn promote(&mut self) -> anyhow::Result<()> {
        let new = (self.primary + 1) % self.ports.len();
        self.primary = new;
        self.admin(new, &["REPLICAOF", "NO", "ONE"]).await?;
        let (host, port) = self.link_host_port(new);
        for replica in self.replicas() {
            if self.children[replica].is_some() {
                self.admin(replica, &["REPLICAOF", &host, &port]).await?;
            }
        }
        Ok(())
    }

    /// Starts process `index` again, as a replica of the primary.
    ///
    /// # Errors
    /// Returns an error if it cannot be started.
    pub fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        if self.children[index].is_some() {
            bail!("redis {index} is running");
        }
        self.start_process(index)
    }

    /// Resumes every process and starts the dead ones as replicas.
    ///
    /// # Errors
    /// Returns an error if a process cannot be started.
    pub async fn recover(&mut self) -> anyhow::Result<()> {
        self.heal_links();
        for index in 0..self.ports.len() {
            if self.children[index].is_some() {
                self.resume(index)?;
            } else {
                self.restart(index)?;
            }
        }
        self.wait_for_replication(Duration::from_secs(30)).await
    }

    async fn admin(&self, index: usize, args: &[&str]) -> anyhow::Result<()> {
        let mut client = Client::new(vec![self.addrs()[index].clone()], 0, Duration::from_secs(5));
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        match client.call(&cmd).await {
            Outcome::Ok(_) => Ok(()),
            Outcome::Fail(error) | Outcome::Unknown(error) => {
                bail!("{} on redis {index}: {error}", args.join(" "))
            }
        }
    }

    /// Waits until every replica reports its link to the primary up.
    async fn wait_for_replication(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        for replica in self.replicas() {
            let mut client = Client::new(
                vec![self.addrs()[replica].clone()],
                0,
                Duration::from_secs(2),
            );
            loop {
                let mut cmd = redis::cmd("INFO");
                cmd.arg("replication");
                if let Outcome::Ok(redis::Value::BulkString(info)) = client.call(&cmd).await {
                    if String::from_utf8_lossy(&info).contains("master_link_status:up") {
                        break;
                    }
                }
                self.check_running()?;
                if tokio::time::Instant::now() > deadline {
                    bail!("redis {replica} did not connect to its primary within {timeout:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Fails if a process that should be running has exited (a port
    /// taken before it bound, a bad flag).
    fn check_running(&mut self) -> anyhow::Result<()> {
        for (index, child) in self.children.iter_mut().enumerate() {
            if let Some(status) = child.as_mut().map(Child::try_wait).transpose()?.flatten() {
                bail!("redis {index} exited: {status}");
            }
        }
        Ok(())
    }

    /// Stops every process.
    pub async fn stop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
            }
            let _ = child.kill().await;
        }
    }
}
