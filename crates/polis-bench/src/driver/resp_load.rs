//! Loading the keyspace over RESP: pipelines of SETs (and, for the mixed
//! workload, counters and HSETs) on a few connections at once.
//!
//! Not MSET: a cluster answers CROSSSLOT to multi-key commands whose keys
//! hash to different slots. Each batch is split by the address its keys'
//! slots route to; a MOVED reply teaches the route and the batch is sent
//! again (the writes are idempotent).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::{Cmd, ErrorKind, Value};
use tokio::task::JoinSet;

use super::resp::{cluster_slots, load_commands, open, redirect, RespOptions};
use super::routes::{self, Routes};
use crate::limits::{LOAD_BATCH_KEYS, LOAD_CONNECTIONS_MAX, REDIRECTS_MAX, REQUEST_TIMEOUT};

/// What to load.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub keys: u64,
    pub value: Arc<[u8]>,
    pub with_counters_and_hashes: bool,
    /// Connections to load on (at most [`LOAD_CONNECTIONS_MAX`] are used).
    pub connections: usize,
}

/// Times a batch is sent again after a leader change or a broken
/// connection.
const LOAD_RETRIES_MAX: usize = 20;
/// Pause before sending it again.
const LOAD_RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(250);

/// Returns true for an error a later try may not meet: the cluster
/// electing a leader, a slot changing hands, a connection lost.
fn transient(error: &redis::RedisError) -> bool {
    matches!(error.code(), Some("CLUSTERDOWN" | "TRYAGAIN" | "LOADING"))
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_timeout()
}

/// Loads keys `0..keys` holding `value` with pipelined SETs on 8
/// connections; returns how long it took, in seconds.
///
/// # Errors
/// Fails as [`load`] does.
pub async fn load_timed(
    options: &RespOptions,
    keys: u64,
    value: std::sync::Arc<[u8]>,
) -> Result<f64, String> {
    let started = std::time::Instant::now();
    let plan = LoadPlan {
        keys,
        value,
        with_counters_and_hashes: false,
        connections: 8,
    };
    load(options, &plan).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// Loads the keyspace; returns the number of keys loaded.
///
/// # Errors
/// Fails with the first error a server answers or an I/O failure.
pub async fn load(options: &RespOptions, plan: &LoadPlan) -> Result<u64, String> {
    let loaders = plan.connections.clamp(1, LOAD_CONNECTIONS_MAX);
    let mut tasks = JoinSet::new();
    for loader in 0..loaders {
        let options = options.clone();
        let plan = plan.clone();
        tasks.spawn(async move { load_part(&options, &plan, loader, loaders).await });
    }
    let mut loaded = 0;
    while let Some(joined) = tasks.join_next().await {
        loaded += joined.map_err(|error| format!("a loader failed: {error}"))??;
    }
    Ok(loaded)
}

/// Loads batches `loader`, `loader + loaders`, ...
async fn load_part(
    options: &RespOptions,
    plan: &LoadPlan,
    loader: usize,
    loaders: usize,
) -> Result<u64, String> {
    let mut loader_state = Loader {
        routes: Routes::new(&options.addrs, 0),
        connections: HashMap::new(),
        written: HashSet::new(),
    };
    // A cluster's slot table first, so batches go straight to each slot's
    // primary instead of being redirected slot by slot.
    let seed = loader_state.routes.address(0);
    if let Ok(mut connection) = loader_state.connection(&seed).await {
        if let Some(table) = cluster_slots(&mut connection).await {
            loader_state.routes.learn(&table);
        }
    }
    let batch_keys = LOAD_BATCH_KEYS as u64;
    let mut first = loader as u64 * batch_keys;
    let mut loaded = 0;
    while first < plan.keys {
        let last = (first + batch_keys).min(plan.keys);
        let commands: Vec<(String, Cmd)> = (first..last)
            .flat_map(|key| load_commands(key, &plan.value, plan.with_counters_and_hashes))
            .collect();
        tokio::time::timeout(REQUEST_TIMEOUT, loader_state.send(&commands))
            .await
            .map_err(|_| format!("loading keys {first}..{last} took over {REQUEST_TIMEOUT:?}"))??;
        loaded += last - first;
        first += batch_keys * loaders as u64;
    }
    if let Some((replicas, timeout_ms)) = options.wait_replicas {
        loader_state.wait_everywhere(replicas, timeout_ms).await?;
    }
    Ok(loaded)
}

struct Loader {
    routes: Routes,
    connections: HashMap<Arc<str>, MultiplexedConnection>,
    /// The addresses that accepted writes.
    written: HashSet<Arc<str>>,
}

impl Loader {
    async fn connection(&mut self, addr: &Arc<str>) -> Result<MultiplexedConnection, String> {
        if let Some(connection) = self.connections.get(addr) {
            return Ok(connection.clone());
        }
        let connection = open(addr).await?;
        self.connections.insert(addr.clone(), connection.clone());
        Ok(connection)
    }

    /// Sends every command, grouped by address, following MOVED.
    async fn send(&mut self, commands: &[(String, Cmd)]) -> Result<(), String> {
        let mut redirects = 0;
        let mut retries = 0;
        'attempt: loop {
            let mut groups: HashMap<Arc<str>, redis::Pipeline> = HashMap::new();
            for (name, cmd) in commands {
                let addr = self.routes.address(routes::slot(name.as_bytes()));
                groups
                    .entry(addr)
                    .or_insert_with(redis::pipe)
                    .add_command(cmd.clone())
                    .ignore();
            }
            for (addr, pipe) in groups {
                let mut connection = self.connection(&addr).await?;
                match pipe.query_async::<Value>(&mut connection).await {
                    Ok(_) => {
                        self.written.insert(addr);
                    }
                    Err(error)
                        if error.redirect_node().is_some()
                            && error.kind() != ErrorKind::Ask
                            && redirects < REDIRECTS_MAX =>
                    {
                        let (to, slot) = redirect(&error)?;
                        self.routes.moved(slot, &to);
                        let to: Arc<str> = Arc::from(to.as_str());
                        if let Ok(mut connection) = self.connection(&to).await {
                            if let Some(table) = cluster_slots(&mut connection).await {
                                self.routes.learn(&table);
                            }
                        }
                        redirects += 1;
                        continue 'attempt;
                    }
                    // Every load command is idempotent (SET, HSET): one
                    // whose outcome is unknown (a leader changed under
                    // it) is sent again.
                    Err(error) if transient(&error) && retries < LOAD_RETRIES_MAX => {
                        retries += 1;
                        self.connections.remove(&addr);
                        tokio::time::sleep(LOAD_RETRY_AFTER).await;
                        let seed = self.routes.address(0);
                        if let Ok(mut connection) = self.connection(&seed).await {
                            if let Some(table) = cluster_slots(&mut connection).await {
                                self.routes.learn(&table);
                            }
                        }
                        continue 'attempt;
                    }
                    Err(error) => return Err(format!("loading on {addr}: {error}")),
                }
            }
            return Ok(());
        }
    }

    /// Sends WAIT on every connection that wrote, so replicas hold the
    /// keyspace before the run starts.
    async fn wait_everywhere(&mut self, replicas: u32, timeout_ms: u64) -> Result<(), String> {
        for addr in &self.written {
            let Some(connection) = self.connections.get_mut(addr) else {
                continue;
            };
            let acknowledged: i64 = redis::cmd("WAIT")
                .arg(replicas)
                .arg(timeout_ms)
                .query_async(connection)
                .await
                .map_err(|error| format!("WAIT on {addr}: {error}"))?;
            if acknowledged < i64::from(replicas) {
                return Err(format!(
                    "after loading, WAIT {replicas} {timeout_ms} on {addr}: only {acknowledged} replicas"
                ));
            }
        }
        Ok(())
    }
}
