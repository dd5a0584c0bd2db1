//! One server process of a peer (etcd, redis-server): started with its
//! output in a log file, stopped by its own PID, killed if dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// How long a process may take to exit after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// A child process started here.
pub struct ServerProcess {
    /// A short name for reports and errors (`etcd-1`, `redis-primary`).
    pub name: String,
    child: Child,
    log_path: PathBuf,
}

impl ServerProcess {
    /// Starts `exe` with `args`, its stdout and stderr appended to `log_path`.
    ///
    /// # Errors
    /// Returns an error if the log file cannot be opened or the process
    /// cannot be started.
    pub fn spawn(
        name: &str,
        exe: &Path,
        args: &[String],
        log_path: PathBuf,
    ) -> anyhow::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name} ({})", exe.display()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log_path,
        })
    }

    /// Returns the process id while the process is alive.
    pub fn pid(&mut self) -> Option<u32> {
        match self.child.try_wait() {
            Ok(None) => self.child.id(),
            _ => None,
        }
    }

    /// Returns an error naming the process and its log if it has exited.
    ///
    /// # Errors
    /// Returns an error if the process is no longer running.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => anyhow::bail!(
                "{} exited ({status}); see {}",
                self.name,
                self.log_path.display()
            ),
            Err(error) => Err(error).with_context(|| format!("checking on {}", self.name)),
        }
    }

    /// Stops the process: SIGTERM, then SIGKILL if it has not exited
    /// within [`STOP_GRACE`]. Waits for it either way.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.pid().and_then(|pid| i32::try_from(pid).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            if tokio::time::timeout(STOP_GRACE, self.child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}

/// Returns `count` distinct ports on 127.0.0.1, leased (see
/// `polis_client::ports`): keep the lease while the servers run.
///
/// # Errors
/// Returns an error if not enough ports are free.
pub fn free_ports(count: usize) -> anyhow::Result<(Vec<u16>, polis_client::ports::PortLease)> {
    let lease = polis_client::ports::reserve(count)?;
    Ok((lease.ports().to_vec(), lease))
}

/// Waits, polling every 50 ms, until `ready` returns true or `timeout`
/// passes; also fails as soon as one of `processes` has exited.
///
/// # Errors
/// Returns an error naming `what` on timeout, or the process that exited.
pub async fn wait_until<F, Fut>(
    what: &str,
    processes: &mut [ServerProcess],
    timeout: Duration,
    mut ready: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if ready().await {
            return Ok(());
        }
        for process in processes.iter_mut() {
            process.check_running()?;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{what} not ready within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
