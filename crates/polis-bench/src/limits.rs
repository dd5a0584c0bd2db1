//! Every cap of the load generator in one place.

use std::time::Duration;

/// Benchmark connections in one run.
pub const CONNECTIONS_MAX: usize = 4096;

/// Requests in flight on one connection.
pub const PIPELINE_MAX: usize = 1024;

/// Requests in flight in one run (each is a task).
pub const IN_FLIGHT_MAX: usize = 65_536;

/// The size of one value: etcd refuses requests over 1.5 MiB by default.
pub const VALUE_SIZE_MAX: usize = 1 << 20;

/// Keys in the keyspace (also what the zipfian generator accepts).
pub const KEYS_MAX: u64 = 100_000_000;

/// Warm-up plus measured time.
pub const RUN_DURATION_MAX: Duration = Duration::from_secs(24 * 3600);

/// The open-loop rate over all connections.
pub const OPEN_LOOP_RATE_PER_S_MAX: u64 = 10_000_000;

/// How far behind its schedule an open-loop connection may fall: a request
/// whose intended send time is further in the past is not sent and counts
/// as an error. This bounds the burst that follows a stall and the time a
/// run takes after its end.
pub const OPEN_LOOP_LAG_MAX: Duration = Duration::from_secs(1);

/// How long one request (with its redirects and WAIT) may take before it
/// counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening one connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// MOVED/ASK redirects followed for one request or one load batch.
pub const REDIRECTS_MAX: usize = 5;

/// Connections that load the keyspace.
pub const LOAD_CONNECTIONS_MAX: usize = 8;

/// Keys written by one pipeline while loading over RESP.
pub const LOAD_BATCH_KEYS: usize = 256;

/// Puts in flight on one gRPC channel while loading etcd.
pub const LOAD_ETCD_IN_FLIGHT: usize = 64;

/// Latency recorders a run's connections share (a recorder holds up to six
/// histograms of ~140 KiB; one per connection would not scale to
/// thousands of connections).
pub const RECORDER_SHARDS_MAX: usize = 16;

const _: () = assert!(PIPELINE_MAX <= IN_FLIGHT_MAX);
const _: () = assert!(CONNECTIONS_MAX <= IN_FLIGHT_MAX);
const _: () = assert!(KEYS_MAX <= crate::keys::Zipfian::KEYS_MAX);
const _: () = assert!(LOAD_CONNECTIONS_MAX <= CONNECTIONS_MAX);

/// Elements per collection in the element-memory measurement.
pub const ELEMENTS_MAX: u64 = 10_000_000;

/// Elements one variadic command adds while building a collection.
pub const ELEMENT_BATCH: usize = 100;

/// Commands in one pipeline while building a collection.
pub const ELEMENT_PIPELINE: usize = 16;

/// Connections that build one collection together.
pub const ELEMENT_LOADERS: usize = 4;

/// Producers, and consumers, on the queue's stream.
pub const QUEUE_CLIENTS_MAX: usize = 256;

/// Messages the queue measurement produces, at most.
pub const QUEUE_MESSAGES_MAX: u64 = 100_000_000;

/// Entries one XREADGROUP may return (its COUNT).
pub const QUEUE_READ_COUNT_MAX: usize = 1000;

/// How long consumers may go on after the producers stopped, draining
/// what was produced.
pub const QUEUE_DRAIN_MAX: Duration = Duration::from_secs(30);

const _: () = assert!(ELEMENT_BATCH * ELEMENT_PIPELINE <= IN_FLIGHT_MAX);
const _: () = assert!(QUEUE_CLIENTS_MAX * 2 <= CONNECTIONS_MAX);

/// Distinct keys written during the eventual benchmark's partition.
pub const PARTITION_KEYS_MAX: u64 = 10_000_000;

/// Writer connections on each side of the eventual benchmark's partition.
pub const PARTITION_WRITERS_MAX: usize = 256;

/// How long the eventual benchmark's partition writes may run past the
/// partition's duration (writes slower than their pacing) before the
/// rest are left unwritten.
pub const PARTITION_OVERRUN_MAX: Duration = Duration::from_secs(120);

/// The longest wait for replicas of eventual keys to converge.
pub const CONVERGE_TIMEOUT_MAX: Duration = Duration::from_secs(3600);

const _: () = assert!(PARTITION_KEYS_MAX <= KEYS_MAX);
const _: () = assert!(PARTITION_WRITERS_MAX * 2 <= CONNECTIONS_MAX);
