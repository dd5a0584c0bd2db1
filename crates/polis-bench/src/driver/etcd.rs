//! The etcd driver: etcd's v3 API over gRPC, one channel (one HTTP/2
//! connection, many concurrent streams) per benchmark connection.
//!
//! Reads are Range (linearizable, etcd's default), writes Put. The mixed
//! workload's INCR and HSET are Puts and HGET a Range of their keys: etcd
//! has no counters or hashes.

use std::sync::Arc;

use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

use crate::keys;
use crate::limits::{CONNECT_TIMEOUT, LOAD_CONNECTIONS_MAX, LOAD_ETCD_IN_FLIGHT, REQUEST_TIMEOUT};
use crate::workload::Op;

/// The generated protobuf types and client of etcd's KV service.
pub mod proto {
    tonic::include_proto!("etcdserverpb");
}

use proto::kv_client::KvClient;
use proto::{PutRequest, RangeRequest};

/// One benchmark connection to etcd; clones share the channel.
#[derive(Clone)]
pub struct EtcdConnection {
    client: KvClient<Channel>,
}

/// Returns `endpoint` as a URL (`host:port` becomes `http://host:port`).
fn url(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    }
}

impl EtcdConnection {
    /// Opens benchmark connection number `index`, to the endpoints in turn.
    ///
    /// # Errors
    /// Fails with the endpoint and the cause if it cannot connect.
    pub async fn connect(endpoints: &[String], index: usize) -> Result<Self, String> {
        let Some(endpoint) = endpoints.get(index % endpoints.len().max(1)) else {
            return Err("no etcd endpoint given".to_string());
        };
        let channel = Endpoint::from_shared(url(endpoint))
            .map_err(|error| format!("bad etcd endpoint {endpoint}: {error}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .connect()
            .await
            .map_err(|error| format!("cannot connect to etcd at {endpoint}: {error}"))?;
        Ok(Self {
            client: KvClient::new(channel),
        })
    }

    /// Checks the endpoint answers a Range (is etcd, and has a leader).
    ///
    /// # Errors
    /// Returns the gRPC status as text.
    pub async fn check(&self) -> Result<(), String> {
        self.range(keys::string_key(0))
            .await
            .map_err(|error| format!("etcd does not answer a Range: {error}"))
    }

    /// Executes one operation on key number `key`.
    ///
    /// # Errors
    /// Returns the gRPC status as text.
    pub async fn execute(&self, op: Op, key: u64, value: &[u8]) -> Result<(), String> {
        match op {
            Op::Get => self.range(keys::string_key(key)).await,
            Op::Set => self.put(keys::string_key(key), value.to_vec()).await,
            Op::Incr => {
                self.put(keys::counter_key(key), key.to_string().into_bytes())
                    .await
            }
            Op::Hset => self.put(keys::hash_key(key), value.to_vec()).await,
            Op::Hget => self.range(keys::hash_key(key)).await,
            Op::Lpush | Op::Sadd | Op::Zadd | Op::Xadd => {
                Err(format!("etcd has no {}", op.name().to_uppercase()))
            }
        }
    }

    async fn range(&self, key: String) -> Result<(), String> {
        let request = RangeRequest {
            key: key.into_bytes(),
            ..RangeRequest::default()
        };
        self.client
            .clone()
            .range(request)
            .await
            .map(|_| ())
            .map_err(|status| format!("Range: {}: {}", status.code(), status.message()))
    }

    async fn put(&self, key: String, value: Vec<u8>) -> Result<(), String> {
        let request = PutRequest {
            key: key.into_bytes(),
            value,
            ..PutRequest::default()
        };
        self.client
            .clone()
            .put(request)
            .await
            .map(|_| ())
            .map_err(|status| format!("Put: {}: {}", status.code(), status.message()))
    }
}

/// Loads `keys` keys (and, if asked, counters and hashes) with concurrent
/// Puts on up to [`LOAD_CONNECTIONS_MAX`] channels; returns the keys loaded.
///
/// # Errors
/// Fails on the first Put that fails.
pub async fn load(
    endpoints: &[String],
    keys: u64,
    value: Arc<[u8]>,
    with_counters_and_hashes: bool,
    connections: usize,
) -> Result<u64, String> {
    let loaders = connections.clamp(1, LOAD_CONNECTIONS_MAX);
    let mut channels = Vec::with_capacity(loaders);
    for index in 0..loaders {
        channels.push(EtcdConnection::connect(endpoints, index).await?);
    }
    let mut ops = vec![Op::Set];
    if with_counters_and_hashes {
        ops.extend([Op::Incr, Op::Hset]);
    }
    let in_flight_max = loaders * LOAD_ETCD_IN_FLIGHT;
    let mut tasks = JoinSet::new();
    for key in 0..keys {
        if tasks.len() >= in_flight_max {
            join_one(&mut tasks).await?;
        }
        let connection = channels[(key % loaders as u64) as usize].clone();
        let value = value.clone();
        let ops = ops.clone();
        tasks.spawn(async move {
            for op in ops {
                connection.execute(op, key, &value).await?;
            }
            Ok::<(), String>(())
        });
    }
    while !tasks.is_empty() {
        join_one(&mut tasks).await?;
    }
    Ok(keys)
}

async fn join_one(tasks: &mut JoinSet<Result<(), String>>) -> Result<(), String> {
    match tasks.join_next().await {
        Some(Ok(result)) => result.map_err(|error| format!("loading etcd: {error}")),
        Some(Err(error)) => Err(format!("a loading task failed: {error}")),
        None => Ok(()),
    }
}
