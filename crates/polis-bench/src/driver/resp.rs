//! The RESP driver: one benchmark connection is a multiplexed `redis`
//! connection (several requests in flight, answered in order), plus one to
//! each other address that MOVED sent it to.
//!
//! - Writes (and reads, unless READONLY) go where [`Routes`] says; a
//!   `MOVED slot addr` reply teaches the route and the request is sent
//!   again there; `ASK` sends it once to the named node after `ASKING`.
//! - `readonly`: the connection also holds a read connection to one of the
//!   given addresses (connections take them in turn) on which READONLY was
//!   sent; reads go there, and may be stale.
//! - `wait_replicas: (n, timeout_ms)`: a write counts as done after
//!   `WAIT n timeout_ms` on the same connection answers at least `n`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, ErrorKind, RedisError, Value};

use super::routes::{self, Routes};
use crate::keys;
use crate::limits::{CONNECT_TIMEOUT, REDIRECTS_MAX, REQUEST_TIMEOUT};
use crate::workload::Op;

/// How a RESP target is used.
#[derive(Debug, Clone)]
pub struct RespOptions {
    pub addrs: Vec<String>,
    pub readonly: bool,
    pub wait_replicas: Option<(u32, u64)>,
}

/// One benchmark connection to a RESP target; clones share it.
#[derive(Clone)]
pub struct RespConnection {
    inner: Arc<Inner>,
}

struct Inner {
    /// Reads in readonly mode go here.
    read: Option<MultiplexedConnection>,
    /// Connections by address, opened on first use.
    by_addr: Mutex<HashMap<Arc<str>, MultiplexedConnection>>,
    routes: Mutex<Routes>,
    wait_replicas: Option<(u32, u64)>,
}

/// Returns the address among `addrs` that serves `key`: its slot's
/// primary as CLUSTER SLOTS of the first address says, or that address
/// itself when it is no cluster.
///
/// # Errors
/// Fails if the first address cannot be reached.
pub async fn owner_of(addrs: &[String], key: &str) -> Result<String, String> {
    let first = addrs.first().ok_or("no RESP address given")?;
    let mut connection = open(first).await?;
    let mut routes = Routes::new(addrs, 0);
    if let Some(table) = cluster_slots(&mut connection).await {
        routes.learn(&table);
    }
    Ok(routes.address(routes::slot(key.as_bytes())).to_string())
}

/// Returns the slot table of the cluster `connection` belongs to (the
/// primary of each range, from CLUSTER SLOTS), or `None` when it is no
/// cluster or the answer is unusable.
pub(super) async fn cluster_slots(
    connection: &mut MultiplexedConnection,
) -> Option<Vec<(u16, u16, String)>> {
    let reply: Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(connection)
        .await
        .ok()?;
    let Value::Array(ranges) = reply else {
        return None;
    };
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    };
    let number = |value: &Value| match value {
        Value::Int(number) => u16::try_from(*number).ok(),
        _ => None,
    };
    let mut table = Vec::new();
    for range in ranges {
        let Value::Array(fields) = range else {
            return None;
        };
        let (Some(start), Some(end), Some(Value::Array(primary))) = (
            fields.first().and_then(number),
            fields.get(1).and_then(number),
            fields.get(2),
        ) else {
            return None;
        };
        let host = primary.first().and_then(text)?;
        let port = match primary.get(1)? {
            Value::Int(port) => *port,
            _ => return None,
        };
        table.push((start, end, format!("{host}:{port}")));
    }
    Some(table)
}

/// Opens a multiplexed connection to `addr` and checks it answers PING.
///
/// # Errors
/// Fails with the address and the cause if it cannot connect.
pub async fn open(addr: &str) -> Result<MultiplexedConnection, String> {
    let client = redis::Client::open(format!("redis://{addr}/"))
        .map_err(|error| format!("bad address {addr}: {error}"))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(REQUEST_TIMEOUT);
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|error| format!("cannot connect to {addr}: {error}"))?;
    redis::cmd("PING")
        .query_async::<Value>(&mut connection)
        .await
        .map_err(|error| format!("{addr} does not answer PING: {error}"))?;
    Ok(connection)
}

impl RespConnection {
    /// Opens benchmark connection number `index`.
    ///
    /// # Errors
    /// Fails if the first address it uses cannot be reached, or refuses
    /// READONLY for a reason other than not being a cluster.
    pub async fn connect(options: &RespOptions, index: usize) -> Result<Self, String> {
        if options.addrs.is_empty() {
            return Err("no RESP address given".to_string());
        }
        // Round robin over the addresses; in readonly mode reads do that and
        // writes start at the first address (the primary).
        let first_write = if options.readonly { 0 } else { index };
        let routes = Routes::new(&options.addrs, first_write);
        let read = if options.readonly {
            let addr = &options.addrs[index % options.addrs.len()];
            let mut connection = open(addr).await?;
            send_readonly(&mut connection, addr).await?;
            Some(connection)
        } else {
            None
        };
        let mut routes = routes;
        let first = routes.address(0);
        let mut connection = open(&first).await?;
        if let Some(table) = cluster_slots(&mut connection).await {
            routes.learn(&table);
        }
        let by_addr = HashMap::from([(first, connection)]);
        Ok(Self {
            inner: Arc::new(Inner {
                read,
                by_addr: Mutex::new(by_addr),
                routes: Mutex::new(routes),
                wait_replicas: options.wait_replicas,
            }),
        })
    }

    /// Executes one operation on key number `key`.
    ///
    /// # Errors
    /// Returns the server's error or the I/O failure, as text.
    pub async fn execute(&self, op: Op, key: u64, value: &[u8]) -> Result<(), String> {
        let (name, cmd) = command(op, key, value);
        if let (Some(read), false) = (&self.inner.read, op.is_write()) {
            let mut read = read.clone();
            return match cmd.query_async::<Value>(&mut read).await {
                Ok(_) => Ok(()),
                Err(error) if error.redirect_node().is_some() => {
                    // Not served here even with READONLY: follow it.
                    self.send_routed(&name, &cmd, false).await
                }
                Err(error) => Err(error.to_string()),
            };
        }
        self.send_routed(&name, &cmd, op.is_write()).await
    }

    /// Executes several operations as pipelines (one per address: the
    /// read connection in readonly mode, and where the routes say), and
    /// returns each one's outcome, in order.
    ///
    /// A pipeline that fails as a whole (a MOVED, any error reply, an I/O
    /// failure) does not tell which commands took effect; its operations
    /// are then executed one by one, which follows redirects. After a
    /// MOVED nothing took effect; after other errors a command may run
    /// twice (harmless for SET and HSET; an INCR counts twice).
    pub async fn execute_batch(
        &self,
        requests: &[(Op, u64)],
        value: &[u8],
    ) -> Vec<Result<(), String>> {
        let mut results: Vec<Result<(), String>> = vec![Ok(()); requests.len()];
        // Group by destination: None is the read connection.
        let mut groups: Vec<(Option<Arc<str>>, Vec<usize>)> = Vec::new();
        for (position, (op, key)) in requests.iter().enumerate() {
            let destination = if self.inner.read.is_some() && !op.is_write() {
                None
            } else {
                let name = key_name(*op, *key);
                Some(lock(&self.inner.routes).address(routes::slot(name.as_bytes())))
            };
            match groups.iter_mut().find(|(d, _)| *d == destination) {
                Some((_, positions)) => positions.push(position),
                None => groups.push((destination, vec![position])),
            }
        }
        for (destination, positions) in groups {
            let sent = self
                .send_pipeline(destination.as_ref(), requests, &positions, value)
                .await;
            match sent {
                Ok(outcomes) => {
                    for (position, outcome) in positions.iter().zip(outcomes) {
                        results[*position] = outcome;
                    }
                }
                Err(()) => {
                    for position in positions {
                        let (op, key) = requests[position];
                        results[position] = self.execute(op, key, value).await;
                    }
                }
            }
        }
        results
    }

    /// Sends the operations at `positions` as one pipeline, with a WAIT
    /// after each write if asked to. Returns each one's outcome, or Err if
    /// the pipeline failed as a whole.
    async fn send_pipeline(
        &self,
        destination: Option<&Arc<str>>,
        requests: &[(Op, u64)],
        positions: &[usize],
        value: &[u8],
    ) -> Result<Vec<Result<(), String>>, ()> {
        let mut connection = match (destination, &self.inner.read) {
            (Some(addr), _) => self.connection(addr).await.map_err(|_| ())?,
            (None, Some(read)) => read.clone(),
            (None, None) => return Err(()),
        };
        let mut pipe = redis::pipe();
        // For each operation, the reply index of its WAIT, if any.
        let mut waits = Vec::with_capacity(positions.len());
        let mut replies = 0;
        for position in positions {
            let (op, key) = requests[*position];
            pipe.add_command(command(op, key, value).1);
            replies += 1;
            match (op.is_write(), self.inner.wait_replicas) {
                (true, Some((replicas, timeout_ms))) => {
                    pipe.cmd("WAIT").arg(replicas).arg(timeout_ms);
                    waits.push(Some(replies));
                    replies += 1;
                }
                _ => waits.push(None),
            }
        }
        let values = match pipe.query_async::<Vec<Value>>(&mut connection).await {
            Ok(values) if values.len() == replies => values,
            Ok(_) => return Err(()),
            Err(error) => {
                if let Some((to, slot)) = error
                    .redirect_node()
                    .filter(|_| error.kind() == ErrorKind::Moved)
                {
                    // Learn it now, so the one-by-one retries go there.
                    let to: Arc<str> = Arc::from(to);
                    lock(&self.inner.routes).moved(slot, &to);
                    self.refresh_slots(&to).await;
                } else if let Some(addr) = destination {
                    self.forget_if_broken(addr, &error);
                }
                return Err(());
            }
        };
        Ok(waits
            .into_iter()
            .map(|wait| match (wait, self.inner.wait_replicas) {
                (Some(index), Some((replicas, timeout_ms))) => match values.get(index) {
                    Some(Value::Int(acknowledged)) if *acknowledged >= i64::from(replicas) => {
                        Ok(())
                    }
                    Some(Value::Int(acknowledged)) => Err(format!(
                        "WAIT {replicas} {timeout_ms}: only {acknowledged} replicas acknowledged"
                    )),
                    other => Err(format!(
                        "WAIT {replicas} {timeout_ms}: unexpected {other:?}"
                    )),
                },
                _ => Ok(()),
            })
            .collect())
    }

    /// Sends `cmd` for key `name` where the routes say, following
    /// redirects; after a write, WAITs if asked to.
    async fn send_routed(&self, name: &str, cmd: &Cmd, is_write: bool) -> Result<(), String> {
        let slot = routes::slot(name.as_bytes());
        let mut ask: Option<String> = None;
        for _ in 0..=REDIRECTS_MAX {
            let (addr, asking): (Arc<str>, bool) = match ask.take() {
                Some(addr) => (Arc::from(addr.as_str()), true),
                None => (lock(&self.inner.routes).address(slot), false),
            };
            let mut connection = self.connection(&addr).await?;
            let reply = if asking {
                let mut pipe = redis::pipe();
                pipe.cmd("ASKING").ignore().add_command(cmd.clone());
                pipe.query_async::<Vec<Value>>(&mut connection)
                    .await
                    .map(|_| Value::Okay)
            } else {
                cmd.query_async::<Value>(&mut connection).await
            };
            match reply {
                Ok(_) => {
                    if is_write {
                        self.wait_replicas(&mut connection).await?;
                    }
                    return Ok(());
                }
                Err(error) => match error.kind() {
                    ErrorKind::Moved => {
                        let (to, slot) = redirect(&error)?;
                        lock(&self.inner.routes).moved(slot, &to);
                        self.refresh_slots(&Arc::from(to.as_str())).await;
                    }
                    ErrorKind::Ask => ask = Some(redirect(&error)?.0),
                    _ => {
                        self.forget_if_broken(&addr, &error);
                        return Err(error.to_string());
                    }
                },
            }
        }
        Err(format!("more than {REDIRECTS_MAX} redirects for {name}"))
    }

    async fn wait_replicas(&self, connection: &mut MultiplexedConnection) -> Result<(), String> {
        let Some((replicas, timeout_ms)) = self.inner.wait_replicas else {
            return Ok(());
        };
        let acknowledged: i64 = redis::cmd("WAIT")
            .arg(replicas)
            .arg(timeout_ms)
            .query_async(connection)
            .await
            .map_err(|error| format!("WAIT: {error}"))?;
        if acknowledged < i64::from(replicas) {
            return Err(format!(
                "WAIT {replicas} {timeout_ms}: only {acknowledged} replicas acknowledged"
            ));
        }
        Ok(())
    }

    /// Asks `addr` for the slot table after a MOVED: a cluster's layout
    /// changed (or was never learned), and one redirect per slot would be
    /// slow to learn it.
    async fn refresh_slots(&self, addr: &Arc<str>) {
        if let Ok(mut connection) = self.connection(addr).await {
            if let Some(table) = cluster_slots(&mut connection).await {
                lock(&self.inner.routes).learn(&table);
            }
        }
    }

    /// Returns the connection to `addr`, opening it if needed.
    async fn connection(&self, addr: &Arc<str>) -> Result<MultiplexedConnection, String> {
        if let Some(connection) = lock(&self.inner.by_addr).get(addr) {
            return Ok(connection.clone());
        }
        match open(addr).await {
            Ok(connection) => {
                // Two requests may have opened one at once; keep the first.
                let mut by_addr = lock(&self.inner.by_addr);
                Ok(by_addr.entry(addr.clone()).or_insert(connection).clone())
            }
            Err(error) => {
                lock(&self.inner.routes).unreachable(addr);
                Err(error)
            }
        }
    }

    /// Drops the connection to `addr` after an I/O failure, so the next
    /// request opens a new one (or, if the node is gone, moves on).
    fn forget_if_broken(&self, addr: &Arc<str>, error: &RedisError) {
        let broken = error.is_io_error() || error.is_unrecoverable_error();
        if broken && !error.is_timeout() {
            lock(&self.inner.by_addr).remove(addr);
            lock(&self.inner.routes).unreachable(addr);
        }
    }
}

/// Returns the name of the key an operation on key number `key` uses.
fn key_name(op: Op, key: u64) -> String {
    match op {
        Op::Get | Op::Set => keys::string_key(key),
        Op::Incr => keys::counter_key(key),
        Op::Hset | Op::Hget => keys::hash_key(key),
        Op::Lpush => keys::container_key("list", key),
        Op::Sadd => keys::container_key("set", key),
        Op::Zadd => keys::container_key("zset", key),
        Op::Xadd => keys::container_key("stream", key),
    }
}

/// Returns the key name and the command of an operation.
fn command(op: Op, key: u64, value: &[u8]) -> (String, Cmd) {
    let name = key_name(op, key);
    let mut cmd = redis::cmd(match op {
        Op::Get => "GET",
        Op::Set => "SET",
        Op::Incr => "INCR",
        Op::Hset => "HSET",
        Op::Hget => "HGET",
        Op::Lpush => "LPUSH",
        Op::Sadd => "SADD",
        Op::Zadd => "ZADD",
        Op::Xadd => "XADD",
    });
    cmd.arg(&name);
    match op {
        Op::Get | Op::Incr => {}
        Op::Lpush => {
            cmd.arg(value);
        }
        Op::Sadd => {
            cmd.arg(keys::member(key));
        }
        Op::Zadd => {
            cmd.arg(key).arg(keys::member(key));
        }
        Op::Xadd => {
            cmd.arg("*").arg(keys::HASH_FIELD).arg(value);
        }
        Op::Set => {
            cmd.arg(value);
        }
        Op::Hset => {
            cmd.arg(keys::HASH_FIELD).arg(value);
        }
        Op::Hget => {
            cmd.arg(keys::HASH_FIELD);
        }
    }
    (name, cmd)
}

/// Returns the commands that load key number `key` (and, if asked, its
/// counter and hash) with their key names.
pub(super) fn load_commands(
    key: u64,
    value: &[u8],
    with_counters_and_hashes: bool,
) -> Vec<(String, Cmd)> {
    let mut commands = vec![command(Op::Set, key, value)];
    if with_counters_and_hashes {
        let name = keys::counter_key(key);
        let mut cmd = redis::cmd("SET");
        cmd.arg(&name).arg(0);
        commands.push((name, cmd));
        commands.push(command(Op::Hset, key, value));
    }
    commands
}

async fn send_readonly(connection: &mut MultiplexedConnection, addr: &str) -> Result<(), String> {
    match redis::cmd("READONLY")
        .query_async::<Value>(connection)
        .await
    {
        Ok(_) => Ok(()),
        // A Redis replica outside cluster mode serves reads without it.
        Err(error) if error.to_string().contains("cluster support disabled") => Ok(()),
        Err(error) => Err(format!("{addr} refuses READONLY: {error}")),
    }
}

/// Returns the address and slot of a MOVED or ASK reply.
pub(super) fn redirect(error: &RedisError) -> Result<(String, u16), String> {
    error
        .redirect_node()
        .map(|(addr, slot)| (addr.to_string(), slot))
        .ok_or_else(|| format!("malformed redirect: {error}"))
}

/// Locks a mutex, going on if a panicking holder poisoned it (the data is
/// a cache; any state of it is valid).
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
