//! Every cap polis enforces, in one place. Configurable caps have their
//! defaults here; the node's configuration may override them within the
//! bounds asserted below.

/// Default largest bulk string a client may send (`proto-max-bulk-len`).
pub const PROTO_MAX_BULK_LEN_DEFAULT: u64 = 512 * 1024 * 1024;
/// Smallest `proto-max-bulk-len` a user may configure, as in Redis.
pub const PROTO_MAX_BULK_LEN_MIN: u64 = 1024 * 1024;
/// Largest number of elements in one request array, as in Redis.
pub const MULTIBULK_LEN_MAX: u64 = 1024 * 1024 * 1024;
/// Largest inline command line, as in Redis (`PROTO_INLINE_MAX_SIZE`).
pub const INLINE_LEN_MAX: usize = 64 * 1024;
/// Default query buffer limit per client (`client-query-buffer-limit`).
pub const QUERY_BUFFER_LEN_MAX_DEFAULT: u64 = 1024 * 1024 * 1024;
/// Default number of concurrent clients (`maxclients`).
pub const CLIENTS_MAX_DEFAULT: usize = 10_000;
/// Commands one connection may have decoded but not answered.
pub const PIPELINE_DEPTH_MAX: usize = 1024;
/// Largest string value (`SETRANGE`, `APPEND`), as in Redis.
pub const STRING_LEN_MAX: u64 = 512 * 1024 * 1024;
/// Proposals a node keeps in flight, over all its groups, before new
/// writes wait.
pub const PROPOSALS_IN_FLIGHT_MAX: usize = 4096;
/// Bytes of proposals a node keeps in flight, over all its groups, before
/// new writes wait.
pub const PROPOSAL_BYTES_IN_FLIGHT_MAX: usize = 256 * 1024 * 1024;
/// Raft groups one node hosts replicas of, at most.
pub const GROUPS_PER_NODE_MAX: usize = 4096;
/// Leaderships one node beat carries, at most (one per hosted group).
pub const BEAT_LEADERSHIPS_MAX: usize = GROUPS_PER_NODE_MAX;
/// Shards a cluster has, at most.
pub const SHARDS_MAX: usize = 4096;
/// Nodes a cluster map holds, at most.
pub const NODES_MAX: usize = 1000;
/// Largest peer RPC message (a whole snapshot travels in one message).
pub const PEER_MESSAGE_LEN_MAX: usize = 1024 * 1024 * 1024;
/// Largest number of keys one active-expiry proposal deletes.
pub const EXPIRE_BATCH_KEYS_MAX: usize = 256;
/// Largest number of keys one eviction proposal deletes: a round of
/// eviction chooses at most this many over all the shards a node leads.
pub const EVICT_BATCH_KEYS_MAX: usize = 256;
/// Largest `maxmemory-samples`: keys sampled per shard for each key
/// evicted.
pub const EVICTION_SAMPLES_MAX: usize = 64;
/// Largest number of elements one HRANDFIELD reply may hold. Redis has no
/// such cap (a huge negative count streams until the client's output
/// limit); polis builds replies in memory, so it refuses instead.
pub const RANDOM_REPLY_LEN_MAX: u64 = 1 << 20;
/// Appends the log writer drains into one fsync.
pub const GROUP_COMMIT_BATCH_MAX: usize = 4096;

/// Pipelined writes of one connection proposed as one log entry, at most.
pub const WRITE_BATCH_COMMANDS_MAX: usize = 256;
/// Argument bytes of one batched log entry, at most; a bigger command is
/// proposed alone.
pub const WRITE_BATCH_BYTES_MAX: usize = 1024 * 1024;

const _: () = assert!(WRITE_BATCH_COMMANDS_MAX <= PIPELINE_DEPTH_MAX);
const _: () = assert!(WRITE_BATCH_BYTES_MAX <= PEER_MESSAGE_LEN_MAX);
const _: () = assert!(PROTO_MAX_BULK_LEN_MIN <= PROTO_MAX_BULK_LEN_DEFAULT);
const _: () = assert!(PROTO_MAX_BULK_LEN_DEFAULT <= QUERY_BUFFER_LEN_MAX_DEFAULT);
const _: () = assert!(STRING_LEN_MAX <= PROTO_MAX_BULK_LEN_DEFAULT);
const _: () = assert!(PIPELINE_DEPTH_MAX <= PROPOSALS_IN_FLIGHT_MAX);
const _: () = assert!(WRITE_BATCH_BYTES_MAX <= PROPOSAL_BYTES_IN_FLIGHT_MAX);
const _: () = assert!(PROPOSAL_BYTES_IN_FLIGHT_MAX <= u32::MAX as usize);
const _: () = assert!(SHARDS_MAX <= GROUPS_PER_NODE_MAX);
const _: () = assert!(SHARDS_MAX <= crate::slot::SLOT_COUNT as usize);
const _: () = assert!(PROTO_MAX_BULK_LEN_DEFAULT as usize <= PEER_MESSAGE_LEN_MAX);

/// Commands one transaction (MULTI ... EXEC) may queue, and keys one
/// connection may WATCH: the transaction is one log entry.
pub const TRANSACTION_COMMANDS_MAX: usize = 100_000;

/// Bytes of arguments one transaction may queue (its log entry's size).
pub const TRANSACTION_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Pub/sub messages waiting to be forwarded to one peer node, at most;
/// more are dropped (and counted): delivery is at most once, and a slow
/// peer must neither slow the publisher nor grow memory.
pub const PUBSUB_FORWARD_QUEUE_MAX: usize = 4096;
/// Bytes of pub/sub messages waiting to be forwarded to one peer, at most.
pub const PUBSUB_FORWARD_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Messages one forward to a peer carries, at most.
pub const PUBSUB_FORWARD_BATCH_MAX: usize = 256;
/// Bytes one forward to a peer carries, at most (a bigger message goes
/// alone).
pub const PUBSUB_FORWARD_BATCH_BYTES_MAX: usize = 1024 * 1024;

const _: () = assert!(PUBSUB_FORWARD_BATCH_MAX <= PUBSUB_FORWARD_QUEUE_MAX);
const _: () = assert!(PUBSUB_FORWARD_BATCH_BYTES_MAX <= PUBSUB_FORWARD_BYTES_MAX);
// A forward holds at most the bytes queued for its peer.
const _: () = assert!(PUBSUB_FORWARD_BYTES_MAX <= PEER_MESSAGE_LEN_MAX);

/// The longest lease LOCK ACQUIRE and LOCK REFRESH grant, in
/// milliseconds (30 days): a lock is for work that renews it, and a
/// bound keeps every deadline far from overflowing.
pub const LOCK_LEASE_MS_MAX: u64 = 30 * 24 * 3600 * 1000;
/// Longest ack-wait of a consumer group and longest XNACK delay (polis's
/// queue options): a year, in milliseconds.
pub const QUEUE_WAIT_MS_MAX: u64 = 365 * 24 * 3600 * 1000;
/// Pending entries of a group one look for due entries examines at most
/// (a read of new entries at apply, or the leader's timer for blocked
/// readers), in id order: in a group with more pending entries, later
/// ones wait until earlier ones are acknowledged.
pub const QUEUE_DUE_SCAN_ENTRIES_MAX: usize = 100_000;
/// Entries one read moves to a dead-letter stream at most; the others
/// wait for the next read.
pub const QUEUE_DEAD_LETTER_MOVES_MAX: usize = 1024;

const _: () = assert!(QUEUE_DEAD_LETTER_MOVES_MAX <= QUEUE_DUE_SCAN_ENTRIES_MAX);
// A due time (now + wait) stays far from u64's end for any leader clock.
const _: () = assert!(QUEUE_WAIT_MS_MAX <= u64::MAX / 2);

/// Namespaces a cluster holds at most: every key's lookup may scan them.
pub const NAMESPACES_MAX: usize = 1024;
/// Bytes of a namespace's prefix at most.
pub const NAMESPACE_PREFIX_LEN_MAX: usize = 256;
/// Replicas (N) of an eventual namespace at most.
pub const NAMESPACE_REPLICAS_MAX: u8 = 7;

/// Bytes of log entries one AppendEntries carries at most (at least one
/// entry, however large): a follower far behind a log of large entries
/// catches up in requests that each finish within the RPC timeout. One
/// request of 300 entries of 1 MiB took longer than that, timed out, and
/// was read and sent again, over and over.
pub const APPEND_ENTRIES_BYTES_MAX: usize = 4 * 1024 * 1024;

const _: () = assert!(APPEND_ENTRIES_BYTES_MAX <= PEER_MESSAGE_LEN_MAX);
const _: () = assert!(WRITE_BATCH_BYTES_MAX <= APPEND_ENTRIES_BYTES_MAX);

/// Replies a gateway client may be owed (its pipeline depth through the
/// gateway); past it the gateway stops reading the client until replies
/// go out.
pub const GATEWAY_OWED_MAX: usize = PIPELINE_DEPTH_MAX;
/// Largest reply frame the gateway takes from a node; a larger one
/// closes that upstream connection.
pub const GATEWAY_REPLY_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// Connections to a node the gateway's clients share (lanes); another
/// opens only while every one has requests in flight.
pub const GATEWAY_LANES_PER_NODE_MAX: usize = 4;
/// Idle upstream connections the gateway keeps per node.
pub const GATEWAY_IDLE_PER_NODE_MAX: usize = 64;
/// Times the gateway sends a command again after MOVED, ASK, TRYAGAIN
/// or CLUSTERDOWN (none of which applied it).
pub const GATEWAY_ATTEMPTS_MAX: usize = 8;

/// Rate-limit buckets (users and client addresses) a gateway keeps;
/// past it, buckets that have filled up again are dropped, and when none
/// has, a request of a new user or address is refused.
pub const GATEWAY_RATE_BUCKETS_MAX: usize = 65_536;

/// Largest request body the gateway's HTTP API takes (a larger one gets
/// 413).
pub const HTTP_BODY_BYTES_MAX: usize = 1024 * 1024;
/// Stream entries one HTTP read returns at most.
pub const HTTP_STREAM_READ_COUNT_MAX: u64 = 1000;
/// Longest time to live the HTTP API sets: ten years, in milliseconds.
pub const HTTP_TTL_MS_MAX: u64 = 10 * 365 * 24 * 3600 * 1000;

const _: () = assert!(GATEWAY_OWED_MAX <= PIPELINE_DEPTH_MAX);
const _: () = assert!(HTTP_BODY_BYTES_MAX as u64 <= PROTO_MAX_BULK_LEN_MIN);

/// ACL users a cluster holds at most (the default user among them).
pub const ACL_USERS_MAX: usize = 1024;
/// Bytes of one ACL user's stored rules at most (its name, passwords,
/// patterns and command rules).
pub const ACL_USER_BYTES_MAX: usize = 64 * 1024;
/// Entries ACL LOG keeps on a node, the oldest dropped first.
pub const ACL_LOG_ENTRIES_MAX: usize = 128;
