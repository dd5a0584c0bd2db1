//! A polis node: the RESP listener, connections, command routing over the
//! cluster map, the node's replicas of the meta group and of its shards,
//! the control loop that keeps them in step with the map, and the admin
//! HTTP endpoint.
//!
//! ```text
//!  TcpStream -> connection (decode) -> pipeline (batch writes per shard)
//!      -> dispatch: polis_cluster::classify (spec, keys, slot, shard, read/write)
//!           node command  -> server_commands (INFO, CLIENT, CLUSTER, CONFIG...)
//!           keyed write   -> shard's Group::propose(Op) -> Raft -> DataMachine::apply
//!                              (ownership of the slot checked at apply) -> reply or MOVED
//!           keyed read    -> Group::linearizable_read -> execute on the shard's keyspace
//!           node-wide     -> every shard this node leads (DBSIZE, SCAN, FLUSHALL...)
//!           pub/sub       -> pubsub (this node's subscribers) + fanout (the other nodes')
//!  after each pipeline -> observe: commandstats, slow log, latency monitor, MONITOR lines
//!  map follower + controller: replicas, ownership entries, membership, leader balance
//!  expiry, eviction: the leaders' own entries (deadlines passed; a node over maxmemory)
//! ```
//!
//! It owns policy that cuts across commands (routing, MOVED, READONLY,
//! limits, stats); commands themselves live in polis-commands and must not
//! depend on this crate. It never imports openraft: polis-raft is the
//! boundary.

pub mod acl;
pub mod admin;
mod admin_auth;
mod admin_backup;
mod admin_dashboard;
pub mod admin_feeds;
pub mod admin_namespaces;
pub mod admission;
mod announce;
pub mod backup;
pub mod balance;
pub mod blocking;
pub mod bootstrap;
pub mod cache_namespaces;
pub mod clients;
pub mod cluster_ops;
pub mod config;
pub mod connection;
pub mod controller;
pub mod dispatch;
pub mod eventual;
pub mod eviction;
pub mod expiry;
pub mod fanout;
pub mod feed;
pub mod feed_forward;
pub mod latency;
pub mod machine;
mod machine_feed;
pub mod map_state;
pub mod meta_leader;
pub mod metrics;
pub mod migrate;
pub mod migrating;
pub mod monitor;
pub mod node;
pub mod node_wide;
pub mod notify;
pub mod observe;
pub mod pipeline;
pub mod pubsub;
pub mod removal;
pub mod replicas;
pub mod rpc;
pub mod schedule;
pub mod server_commands;
pub mod settings;
pub mod shipping;
pub mod slowlog;
pub mod stats;
pub mod tls_publish;
pub mod transaction;

pub use config::{ClusterShape, MemberSpec, ServerConfig};
pub use node::{run, Node, ServerError};
pub use polis_raft::{at_rest, MasterKey, RaftSettings};
