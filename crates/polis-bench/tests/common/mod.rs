//! Real servers for the load generator's tests: redis-server and etcd on
//! loopback ports the OS picked, in temporary directories, killed when
//! dropped; and waiting for conditions with deadlines.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use polis_bench::spec::{BenchSpec, Distribution, Mode, Workload};
use tokio::process::{Child, Command};

/// A server process and its directory; the process is killed on drop.
pub struct Server {
    child: Child,
    _dir: tempfile::TempDir,
    pub addr: String,
}

impl Server {
    /// Stops the server (by its own PID) and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

/// Returns a port the OS just had free on loopback.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Returns the path of `name` on PATH, or in /usr/bin.
pub fn find_executable(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Polls `probe` every 20 ms until it returns `Some`, or returns `None`
/// after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    polis_client::poll::until(timeout, Duration::from_millis(20), probe).await
}

/// Starts a server with `args(dir, ports)` until one answers `ready`
/// (another process may take a picked port before the server binds it:
/// then it exits, and another port is tried).
async fn start<A, R, Fut>(exe: &Path, ports: usize, args: A, ready: R) -> Server
where
    A: Fn(&Path, &[u16]) -> Vec<String>,
    R: Fn(String) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _attempt in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let picked: Vec<u16> = (0..ports).map(|_| free_port()).collect();
        let child = Command::new(exe)
            .args(args(dir.path(), &picked))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", exe.display()));
        let mut server = Server {
            child,
            _dir: dir,
            addr: format!("127.0.0.1:{}", picked[0]),
        };
        let addr = server.addr.clone();
        let up = wait_for(Duration::from_secs(20), || {
            let exited = server.exited();
            let addr = addr.clone();
            let ready = &ready;
            async move {
                if exited {
                    return Some(false);
                }
                ready(addr).await.then_some(true)
            }
        })
        .await;
        match up {
            Some(true) => return server,
            Some(false) => continue,
            None => panic!("{} did not become ready on {addr}", exe.display()),
        }
    }
    panic!("{} could not start on any picked port", exe.display());
}

/// Starts a redis-server without persistence.
pub async fn start_redis() -> Server {
    let exe = find_executable("redis-server")
        .expect("redis-server is not installed (scripts/install-deps.sh installs it)");
    start(
        &exe,
        1,
        |dir, ports| {
            [
                "--port",
                &ports[0].to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &dir.display().to_string(),
            ]
            .map(str::to_string)
            .to_vec()
        },
        |addr| async move { redis_ping(&addr).await },
    )
    .await
}

async fn redis_ping(addr: &str) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://{addr}/")) else {
        return false;
    };
    let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    redis::cmd("PING")
        .query_async::<String>(&mut connection)
        .await
        .is_ok()
}

/// Starts a single-member etcd.
pub async fn start_etcd() -> Server {
    let exe = find_executable("etcd").expect(
        "etcd is not installed: apt-get install -y etcd-server \
         (scripts/install-deps.sh installs it); this test must not pass without it",
    );
    start(
        &exe,
        2,
        |dir, ports| {
            let client = format!("http://127.0.0.1:{}", ports[0]);
            let peer = format!("http://127.0.0.1:{}", ports[1]);
            vec![
                "--name".to_string(),
                "bench".to_string(),
                "--data-dir".to_string(),
                dir.join("data").display().to_string(),
                "--listen-client-urls".to_string(),
                client.clone(),
                "--advertise-client-urls".to_string(),
                client,
                "--listen-peer-urls".to_string(),
                peer.clone(),
                "--initial-advertise-peer-urls".to_string(),
                peer.clone(),
                "--initial-cluster".to_string(),
                format!("bench={peer}"),
            ]
        },
        |addr| async move {
            match polis_bench::driver::etcd::EtcdConnection::connect(&[addr], 0).await {
                Ok(connection) => connection.check().await.is_ok(),
                Err(_) => false,
            }
        },
    )
    .await
}

/// A short run: 4 connections, 4 requests in flight each, 200 ms of
/// warm-up, `duration_ms` measured.
pub fn short_spec(workload: Workload, mode: Mode, duration_ms: u64) -> BenchSpec {
    BenchSpec {
        workload,
        keys: 1000,
        value_size: 32,
        distribution: Distribution::Zipfian(0.99),
        connections: 4,
        pipeline: 4,
        mode,
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(duration_ms),
        ops_max: None,
        seed: 42,
    }
}

pub const ALL_WORKLOADS: [Workload; 5] = [
    Workload::A,
    Workload::B,
    Workload::C,
    Workload::WriteOnly,
    Workload::Mixed,
];

/// The writes of one data type each (RESP only: etcd has no lists, sets
/// or streams).
pub const DATA_TYPE_WORKLOADS: [Workload; 5] = [
    Workload::Lpush,
    Workload::Sadd,
    Workload::Zadd,
    Workload::Xadd,
    Workload::Hset,
];

/// Returns the operation names a workload must show in its results.
pub fn expected_ops(workload: Workload) -> Vec<&'static str> {
    match workload {
        Workload::A | Workload::B => vec!["get", "set"],
        Workload::C => vec!["get"],
        Workload::WriteOnly => vec!["set"],
        Workload::Mixed => vec!["get", "hget", "hset", "incr", "set"],
        Workload::Lpush => vec!["lpush"],
        Workload::Sadd => vec!["sadd"],
        Workload::Zadd => vec!["zadd"],
        Workload::Xadd => vec!["xadd"],
        Workload::Hset => vec!["hset"],
    }
}
