//! `polis server`: one node. Each setting comes from the first of: flag,
//! `POLIS_*` environment variable, the TOML file given with `--config`,
//! the default.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use polis_cluster::reshape::SplitAbove;
use polis_server::{ClusterShape, MemberSpec, RaftSettings, ServerConfig};
use polis_types::{limits, NodeId};
use serde::Deserialize;

/// How long a node may be silent before its replicas are rebuilt elsewhere.
const DOWN_AFTER_DEFAULT_SECS: u64 = 30 * 60;
/// A shard holding more bytes than this is split, unless told otherwise.
const SPLIT_ABOVE_BYTES_DEFAULT: u64 = 512 * 1024 * 1024;

/// Flags of `polis server`. Every flag also reads `POLIS_<NAME>`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// TOML file with any of the settings below (snake_case keys).
    #[arg(long, env = "POLIS_CONFIG")]
    config: Option<PathBuf>,
    /// This node's id (1 or more).
    #[arg(long, env = "POLIS_NODE_ID")]
    node_id: Option<u64>,
    /// Directory for the Raft log and snapshots.
    #[arg(long, env = "POLIS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// RESP listen address.
    #[arg(long, env = "POLIS_RESP_ADDR")]
    resp_addr: Option<String>,
    /// Admin HTTP listen address (/metrics, /health, /status).
    #[arg(long, env = "POLIS_ADMIN_ADDR")]
    admin_addr: Option<String>,
    /// Peer RPC listen address.
    #[arg(long, env = "POLIS_PEER_ADDR")]
    peer_addr: Option<String>,
    /// Initial members, `ID=PEER_ADDR/RESP_ADDR/ADMIN_ADDR`, comma separated
    /// or repeated: the nodes of a new cluster, and where a node with empty
    /// storage looks for the cluster map. Default: this node alone.
    #[arg(long = "member", env = "POLIS_MEMBERS", value_delimiter = ',')]
    members: Vec<String>,
    /// Create the cluster map on this node if no member has one. Without
    /// it, the member with the lowest id creates it once a majority of the
    /// members answer with empty storage.
    #[arg(long, env = "POLIS_INIT")]
    init: bool,
    /// Join a running cluster: the peer address (`HOST:PORT`) of any of its
    /// members, comma separated or repeated. The node registers as a new
    /// node of the cluster (give it a `--node-id` no other node has) and
    /// then receives replicas.
    #[arg(long, env = "POLIS_JOIN", value_delimiter = ',')]
    join: Vec<String>,
    /// Shards of a cluster this node creates.
    #[arg(long, env = "POLIS_SHARDS")]
    shards: Option<usize>,
    /// Replicas per shard of a cluster this node creates.
    #[arg(long, env = "POLIS_REPLICAS")]
    replicas: Option<usize>,
    /// Planned moves of shard leaders (balancing) per minute, at most.
    #[arg(long, env = "POLIS_LEADER_MOVES_PER_MINUTE")]
    leader_moves_per_minute: Option<u32>,
    /// A node silent this long is taken for gone: the meta leader rebuilds
    /// its shard replicas on the other nodes (default 1800 s).
    #[arg(long, env = "POLIS_DOWN_AFTER_SECS")]
    down_after_secs: Option<u64>,
    /// How long a migrating slot range may refuse writes (TRYAGAIN) while
    /// its switch is made; one that would take longer lets writes in again
    /// and copies the rest first (default 2000 ms).
    #[arg(long, env = "POLIS_MIGRATION_PAUSE_MAX_MS")]
    migration_pause_max_ms: Option<u64>,
    /// Bytes per second each slot migration ships at most, so moving data
    /// leaves room for clients (default 0: no limit).
    #[arg(long, env = "POLIS_MIGRATION_BYTES_PER_SEC")]
    migration_bytes_per_sec: Option<u64>,
    /// Let the meta leader split shards past a threshold below and merge
    /// small ones (true or false; default true).
    #[arg(long, env = "POLIS_SCHEDULER", action = clap::ArgAction::Set)]
    scheduler: Option<bool>,
    /// Split a shard holding more keys than this (default 0: off).
    #[arg(long, env = "POLIS_SPLIT_ABOVE_KEYS")]
    split_above_keys: Option<u64>,
    /// Split a shard holding more bytes than this (default 512 MiB; 0: off).
    #[arg(long, env = "POLIS_SPLIT_ABOVE_BYTES")]
    split_above_bytes: Option<u64>,
    /// Split a shard taking more writes per second than this, sustained
    /// (default 0: off).
    #[arg(long, env = "POLIS_SPLIT_ABOVE_WRITES_PER_SEC")]
    split_above_writes_per_sec: Option<u64>,
    /// Raft heartbeat interval.
    #[arg(long, env = "POLIS_HEARTBEAT_MS")]
    heartbeat_ms: Option<u64>,
    /// Raft election timeout, lower bound.
    #[arg(long, env = "POLIS_ELECTION_TIMEOUT_MIN_MS")]
    election_timeout_min_ms: Option<u64>,
    /// Raft election timeout, upper bound.
    #[arg(long, env = "POLIS_ELECTION_TIMEOUT_MAX_MS")]
    election_timeout_max_ms: Option<u64>,
    /// Build a snapshot after this many log entries.
    #[arg(long, env = "POLIS_SNAPSHOT_EVERY_ENTRIES")]
    snapshot_every_entries: Option<u64>,
    /// Also build a snapshot once the log has grown by the last
    /// snapshot's size since it, and by at least this many bytes.
    #[arg(long, env = "POLIS_SNAPSHOT_LOG_BYTES_MIN")]
    snapshot_log_bytes_min: Option<u64>,
    /// Log entries kept behind a snapshot for lagging followers.
    #[arg(long, env = "POLIS_ENTRIES_KEPT_AFTER_SNAPSHOT")]
    entries_kept_after_snapshot: Option<u64>,
    /// Bytes per second of snapshots this node sends, at most, over all
    /// its shards: what a replica move or a lagging follower catches up
    /// from (default 0: no limit).
    #[arg(long, env = "POLIS_SNAPSHOT_BYTES_PER_SEC")]
    snapshot_bytes_per_sec: Option<u64>,
    /// How long a write or linearizable read waits for a quorum before it
    /// fails (outcome unknown for writes).
    #[arg(long, env = "POLIS_REQUEST_TIMEOUT_MS")]
    request_timeout_ms: Option<u64>,
    /// Park idle Raft groups: no heartbeats until they are used again
    /// (true or false).
    #[arg(long, env = "POLIS_HIBERNATE", action = clap::ArgAction::Set)]
    hibernate: Option<bool>,
    /// A leader parks its idle group after this long without a request.
    #[arg(long, env = "POLIS_IDLE_BEFORE_PARK_MS")]
    idle_before_park_ms: Option<u64>,
    /// Largest bulk string a client may send, in bytes.
    #[arg(long, env = "POLIS_PROTO_MAX_BULK_LEN")]
    proto_max_bulk_len: Option<u64>,
    /// Most bytes buffered for one client's unfinished request.
    #[arg(long, env = "POLIS_CLIENT_QUERY_BUFFER_LIMIT")]
    client_query_buffer_limit: Option<u64>,
    /// Most concurrent clients.
    #[arg(long, env = "POLIS_MAXCLIENTS")]
    maxclients: Option<usize>,
    /// Keyspace notifications at start, in Redis's letters (e.g. `KEA`);
    /// CONFIG SET notify-keyspace-events changes them while running.
    #[arg(long, env = "POLIS_NOTIFY_KEYSPACE_EVENTS")]
    notify_keyspace_events: Option<String>,
    /// The keyspace bytes this node may hold over all its shard replicas
    /// (`100mb`, `2gb`; default 0: no limit), as CONFIG SET maxmemory.
    #[arg(long, env = "POLIS_MAXMEMORY")]
    maxmemory: Option<String>,
    /// What goes over maxmemory: noeviction (writes get -OOM),
    /// allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru,
    /// volatile-lfu, volatile-random, volatile-ttl.
    #[arg(long, env = "POLIS_MAXMEMORY_POLICY")]
    maxmemory_policy: Option<String>,
    /// Keys sampled per shard for each key evicted (1 to 64; default 5).
    #[arg(long, env = "POLIS_MAXMEMORY_SAMPLES")]
    maxmemory_samples: Option<u32>,
    /// LFU: how many hits a counter needs to grow (default 10).
    #[arg(long, env = "POLIS_LFU_LOG_FACTOR")]
    lfu_log_factor: Option<u32>,
    /// LFU: minutes per step a counter loses while unused (default 1).
    #[arg(long, env = "POLIS_LFU_DECAY_TIME")]
    lfu_decay_time: Option<u32>,
    /// Serve the fault-injection endpoints of the admin API (tests and
    /// chaos runs only: never in production).
    #[arg(long, env = "POLIS_ENABLE_FAULT_INJECTION")]
    enable_fault_injection: bool,
    /// Register as a binary that knows log entry formats up to this one
    /// (default: all this binary knows): the cluster then proposes no
    /// newer entry, as with an older release. For upgrade tests.
    #[arg(long, hide = true, value_parser = clap::value_parser!(u32).range(1..=i64::from(polis_cluster::ENTRY_FORMAT_MAX)))]
    entry_format_max: Option<u32>,
    /// Log format: text or json.
    #[arg(long, env = "POLIS_LOG_FORMAT")]
    log_format: Option<String>,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `polis_raft=debug`.
    #[arg(long, env = "POLIS_LOG")]
    log: Option<String>,
    #[command(flatten)]
    tls: crate::tls_args::TlsArgs,
    #[command(flatten)]
    cluster_tls: crate::tls_args::ClusterTlsArgs,
    #[command(flatten)]
    traces: crate::telemetry::TraceArgs,
    /// Encrypts everything the node stores with a master key read from
    /// this file (64 hexadecimal digits; `polis encryption new-key FILE`
    /// writes one). Without it, `POLIS_ENCRYPTION_KEY` may hold the key
    /// itself. A data directory is encrypted or not from its creation.
    #[arg(long, env = "POLIS_ENCRYPTION_KEY_FILE")]
    encryption_key_file: Option<PathBuf>,
}

/// The same settings, as the TOML file spells them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    node_id: Option<u64>,
    data_dir: Option<PathBuf>,
    resp_addr: Option<String>,
    admin_addr: Option<String>,
    peer_addr: Option<String>,
    members: Option<Vec<MemberSpec>>,
    init: Option<bool>,
    join: Option<Vec<String>>,
    shards: Option<usize>,
    replicas: Option<usize>,
    leader_moves_per_minute: Option<u32>,
    down_after_secs: Option<u64>,
    migration_pause_max_ms: Option<u64>,
    migration_bytes_per_sec: Option<u64>,
    scheduler: Option<bool>,
    split_above_keys: Option<u64>,
    split_above_bytes: Option<u64>,
    split_above_writes_per_sec: Option<u64>,
    heartbeat_ms: Option<u64>,
    election_timeout_min_ms: Option<u64>,
    election_timeout_max_ms: Option<u64>,
    snapshot_every_entries: Option<u64>,
    snapshot_log_bytes_min: Option<u64>,
    entries_kept_after_snapshot: Option<u64>,
    snapshot_bytes_per_sec: Option<u64>,
    request_timeout_ms: Option<u64>,
    hibernate: Option<bool>,
    idle_before_park_ms: Option<u64>,
    proto_max_bulk_len: Option<u64>,
    client_query_buffer_limit: Option<u64>,
    maxclients: Option<usize>,
    notify_keyspace_events: Option<String>,
    maxmemory: Option<String>,
    maxmemory_policy: Option<String>,
    maxmemory_samples: Option<u32>,
    lfu_log_factor: Option<u32>,
    lfu_decay_time: Option<u32>,
    enable_fault_injection: Option<bool>,
    log_format: Option<String>,
    log: Option<String>,
    tls_port: Option<u16>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    tls_ca_cert_file: Option<PathBuf>,
    tls_auth_clients: Option<String>,
    tls_cluster: Option<String>,
    tls_cluster_name: Option<String>,
    encryption_key_file: Option<PathBuf>,
}

fn parse_member(text: &str) -> anyhow::Result<MemberSpec> {
    let (id, addrs) = text
        .split_once('=')
        .context("expected ID=PEER/RESP/ADMIN")?;
    let parts: Vec<&str> = addrs.split('/').collect();
    let [peer, resp, admin] = parts.as_slice() else {
        bail!("member {text:?}: expected ID=PEER_ADDR/RESP_ADDR/ADMIN_ADDR");
    };
    Ok(MemberSpec {
        id: id
            .trim()
            .parse::<u64>()
            .map(NodeId)
            .with_context(|| format!("member {text:?}: bad id"))?,
        peer_addr: (*peer).to_owned(),
        resp_addr: (*resp).to_owned(),
        admin_addr: (*admin).to_owned(),
    })
}

/// Resolves flags, environment, file and defaults into a node config.
/// What [`resolve`] returns: the node's settings, its log format and
/// filter, and the encryption key's file (checked once the log is set up).
type Resolved = (ServerConfig, String, String, Option<PathBuf>);

fn resolve(args: ServerArgs) -> anyhow::Result<Resolved> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let node_id = NodeId(args.node_id.or(file.node_id).unwrap_or(1));
    let resp_addr = args
        .resp_addr
        .or(file.resp_addr)
        .unwrap_or_else(|| "127.0.0.1:7000".into());
    let admin_addr = args
        .admin_addr
        .or(file.admin_addr)
        .unwrap_or_else(|| "127.0.0.1:7100".into());
    let peer_addr = args
        .peer_addr
        .or(file.peer_addr)
        .unwrap_or_else(|| "127.0.0.1:7200".into());
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(format!("polis-data/node-{node_id}")));
    let members = if !args.members.is_empty() {
        args.members
            .iter()
            .map(|text| parse_member(text))
            .collect::<anyhow::Result<Vec<_>>>()?
    } else if let Some(members) = file.members {
        members
    } else {
        vec![MemberSpec {
            id: node_id,
            peer_addr: peer_addr.clone(),
            resp_addr: resp_addr.clone(),
            admin_addr: admin_addr.clone(),
        }]
    };
    let defaults = RaftSettings::default();
    let raft = RaftSettings {
        heartbeat_ms: args
            .heartbeat_ms
            .or(file.heartbeat_ms)
            .unwrap_or(defaults.heartbeat_ms),
        election_timeout_min_ms: args
            .election_timeout_min_ms
            .or(file.election_timeout_min_ms)
            .unwrap_or(defaults.election_timeout_min_ms),
        election_timeout_max_ms: args
            .election_timeout_max_ms
            .or(file.election_timeout_max_ms)
            .unwrap_or(defaults.election_timeout_max_ms),
        snapshot_every_entries: args
            .snapshot_every_entries
            .or(file.snapshot_every_entries)
            .unwrap_or(defaults.snapshot_every_entries),
        snapshot_log_bytes_min: args
            .snapshot_log_bytes_min
            .or(file.snapshot_log_bytes_min)
            .unwrap_or(defaults.snapshot_log_bytes_min),
        snapshot_step_items: defaults.snapshot_step_items,
        snapshot_bytes_per_sec: args
            .snapshot_bytes_per_sec
            .or(file.snapshot_bytes_per_sec)
            .unwrap_or(defaults.snapshot_bytes_per_sec),
        entries_kept_after_snapshot: args
            .entries_kept_after_snapshot
            .or(file.entries_kept_after_snapshot)
            .unwrap_or(defaults.entries_kept_after_snapshot),
        request_timeout_ms: args
            .request_timeout_ms
            .or(file.request_timeout_ms)
            .unwrap_or(defaults.request_timeout_ms),
        hibernate: args
            .hibernate
            .or(file.hibernate)
            .unwrap_or(defaults.hibernate),
        idle_before_park_ms: args
            .idle_before_park_ms
            .or(file.idle_before_park_ms)
            .unwrap_or(defaults.idle_before_park_ms),
    };
    let notify_keyspace_events = args.notify_keyspace_events.or(file.notify_keyspace_events);
    if let Some(flags) = &notify_keyspace_events {
        if polis_server::notify::parse_flags(flags).is_none() {
            anyhow::bail!(
                "--notify-keyspace-events {flags:?}: use Redis's letters (A g $ l s h z x e t m d n K E), e.g. KEA"
            );
        }
    }
    let parameters: Vec<(String, String)> = [
        ("notify-keyspace-events", notify_keyspace_events),
        ("maxmemory", args.maxmemory.or(file.maxmemory)),
        (
            "maxmemory-policy",
            args.maxmemory_policy.or(file.maxmemory_policy),
        ),
        (
            "maxmemory-samples",
            args.maxmemory_samples
                .or(file.maxmemory_samples)
                .map(|samples| samples.to_string()),
        ),
        (
            "lfu-log-factor",
            args.lfu_log_factor
                .or(file.lfu_log_factor)
                .map(|factor| factor.to_string()),
        ),
        (
            "lfu-decay-time",
            args.lfu_decay_time
                .or(file.lfu_decay_time)
                .map(|minutes| minutes.to_string()),
        ),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|value| (name.to_owned(), value)))
    .collect();
    let shape_defaults = ClusterShape::default();
    let peer_tls = args.cluster_tls.resolve(
        crate::tls_args::ClusterTlsArgs {
            tls_cluster: file.tls_cluster.clone(),
            tls_cluster_name: file.tls_cluster_name.clone(),
        },
        [
            args.tls
                .tls_cert_file
                .clone()
                .or(file.tls_cert_file.clone()),
            args.tls.tls_key_file.clone().or(file.tls_key_file.clone()),
            args.tls
                .tls_ca_cert_file
                .clone()
                .or(file.tls_ca_cert_file.clone()),
        ],
    )?;
    let tls = args.tls.resolve(
        crate::tls_args::TlsArgs {
            tls_port: file.tls_port,
            tls_cert_file: file.tls_cert_file.clone(),
            tls_key_file: file.tls_key_file.clone(),
            tls_ca_cert_file: file.tls_ca_cert_file.clone(),
            tls_auth_clients: file.tls_auth_clients.clone(),
        },
        &resp_addr,
    )?;
    let key_file = args.encryption_key_file.or(file.encryption_key_file);
    let encryption_key = crate::encryption::master_key(key_file.as_deref())?;
    let config = ServerConfig {
        node_id,
        data_dir,
        tls,
        peer_tls,
        encryption_key,
        resp_addr,
        admin_addr,
        peer_addr,
        members,
        init: args.init || file.init.unwrap_or(false),
        join: if args.join.is_empty() {
            file.join.unwrap_or_default()
        } else {
            args.join
        },
        shape: ClusterShape {
            shards: args.shards.or(file.shards).unwrap_or(shape_defaults.shards),
            replicas: args
                .replicas
                .or(file.replicas)
                .unwrap_or(shape_defaults.replicas),
        },
        leader_moves_per_minute: args
            .leader_moves_per_minute
            .or(file.leader_moves_per_minute)
            .unwrap_or(30),
        down_after: Duration::from_secs(
            args.down_after_secs
                .or(file.down_after_secs)
                .unwrap_or(DOWN_AFTER_DEFAULT_SECS),
        ),
        migration_pause_max: Duration::from_millis(
            args.migration_pause_max_ms
                .or(file.migration_pause_max_ms)
                .unwrap_or(2000),
        ),
        migration_bytes_per_sec: args
            .migration_bytes_per_sec
            .or(file.migration_bytes_per_sec)
            .unwrap_or(0),
        scheduler: args.scheduler.or(file.scheduler).unwrap_or(true),
        split_above: SplitAbove {
            keys: args.split_above_keys.or(file.split_above_keys).unwrap_or(0),
            bytes: args
                .split_above_bytes
                .or(file.split_above_bytes)
                .unwrap_or(SPLIT_ABOVE_BYTES_DEFAULT),
            writes_per_sec: args
                .split_above_writes_per_sec
                .or(file.split_above_writes_per_sec)
                .unwrap_or(0),
        },
        raft,
        proto_max_bulk_len: args
            .proto_max_bulk_len
            .or(file.proto_max_bulk_len)
            .unwrap_or(limits::PROTO_MAX_BULK_LEN_DEFAULT),
        client_query_buffer_limit: args
            .client_query_buffer_limit
            .or(file.client_query_buffer_limit)
            .unwrap_or(limits::QUERY_BUFFER_LEN_MAX_DEFAULT),
        maxclients: args
            .maxclients
            .or(file.maxclients)
            .unwrap_or(limits::CLIENTS_MAX_DEFAULT),
        parameters,
        enable_fault_injection: args.enable_fault_injection
            || file.enable_fault_injection.unwrap_or(false),
        entry_format_max: args
            .entry_format_max
            .unwrap_or(polis_cluster::ENTRY_FORMAT_MAX),
    };
    let log_format = args
        .log_format
        .or(file.log_format)
        .unwrap_or_else(|| "text".into());
    let log = args
        .log
        .or(file.log)
        .unwrap_or_else(|| DEFAULT_LOG_FILTER.into());
    Ok((config, log_format, log, key_file))
}

/// The log filter unless `--log` says otherwise: polis's own lines at
/// info (a healthy idle cluster writes none), openraft's internals only
/// from warn.
pub(crate) const DEFAULT_LOG_FILTER: &str = "info,openraft=warn";

/// A node's settings, resolved, with its log set up.
pub struct Prepared {
    config: ServerConfig,
    /// The span every log line of the node is in: it names the node.
    pub span: tracing::Span,
}

/// Resolves `polis server`'s settings and sets up its log, before the
/// runtime starts (so that its threads can enter the node's span).
pub fn prepare(args: ServerArgs) -> anyhow::Result<Prepared> {
    let traces = args.traces.clone();
    let (config, log_format, log, key_file) = resolve(args)?;
    let origin = crate::telemetry::Origin {
        service: "polis-node",
        instance: config.node_id.to_string(),
    };
    crate::telemetry::init(&log_format, &log, &traces, origin)?;
    let span = tracing::info_span!("node", id = %config.node_id);
    if let Some(file) = &key_file {
        span.in_scope(|| crate::encryption::warn_if_readable_by_others(file));
    }
    Ok(Prepared { config, span })
}

/// Runs `polis server`.
pub async fn run(prepared: Prepared) -> anyhow::Result<()> {
    crate::process::raise_file_limit(prepared.config.maxclients);
    let served = polis_server::run(prepared.config, crate::process::shutdown_signal()).await;
    crate::telemetry::flush();
    served?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ServerArgs,
    }

    #[test]
    fn flags_beat_file_and_file_beats_defaults() {
        let dir = std::env::temp_dir().join(format!("polis-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("polis.toml");
        std::fs::write(
            &path,
            "node_id = 2\nresp_addr = \"127.0.0.1:9000\"\nheartbeat_ms = 77\n",
        )
        .unwrap();
        let wrapper = Wrapper::parse_from([
            "polis",
            "--config",
            path.to_str().unwrap(),
            "--resp-addr",
            "127.0.0.1:9999",
        ]);
        let (config, _, _, _) = resolve(wrapper.args).unwrap();
        assert_eq!(config.resp_addr, "127.0.0.1:9999", "flag wins over file");
        assert_eq!(config.node_id, NodeId(2), "file wins over default");
        assert_eq!(config.raft.heartbeat_ms, 77);
        assert_eq!(
            config.admin_addr, "127.0.0.1:7100",
            "default when nobody sets it"
        );
        assert_eq!(config.members.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn members_parse() {
        let member = parse_member("3=127.0.0.1:7202/127.0.0.1:7002/127.0.0.1:7102").unwrap();
        assert_eq!(member.id, NodeId(3));
        assert_eq!(member.resp_addr, "127.0.0.1:7002");
        assert!(parse_member("3=a/b").is_err());
        assert!(parse_member("x=a/b/c").is_err());
    }
}
