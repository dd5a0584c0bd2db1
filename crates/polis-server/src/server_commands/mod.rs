//! Commands the node answers itself rather than the keyspace: connection
//! state, introspection (SLOWLOG, LATENCY, MONITOR among it),
//! configuration, cluster topology and pub/sub.

pub(crate) mod acl;
mod cluster;
pub mod config;
mod connection;
mod info;
mod introspection;
mod latency;
mod migrations;
pub mod pubsub;
pub mod slowlog;

use std::sync::Arc;

use bytes::Bytes;
use polis_commands::CommandSpec;
use polis_resp::{Reply, ReplyError};

use crate::connection::Session;
use crate::node::Node;
use crate::pubsub::Kind;

/// Executes node-level command `spec` with `args` (arity already checked).
pub async fn execute(
    node: &Arc<Node>,
    session: &mut Session,
    spec: &CommandSpec,
    args: &[Bytes],
) -> Reply {
    let result = match spec.name {
        "ping" => connection::ping(session, args),
        "echo" => Ok(Reply::Bulk(args[1].clone())),
        "hello" => connection::hello(node, session, args),
        "auth" => crate::acl::auth(node, session, args),
        "acl" => acl::acl(node, session, args).await,
        "quit" => {
            session.closing = true;
            Ok(Reply::ok())
        }
        "select" => connection::select(args),
        "client" => connection::client(node, session, args),
        "readonly" => {
            session.readonly = true;
            node.clients
                .update(session.client_id, |info| info.readonly = true);
            Ok(Reply::ok())
        }
        "readwrite" => {
            session.readonly = false;
            node.clients
                .update(session.client_id, |info| info.readonly = false);
            Ok(Reply::ok())
        }
        "asking" => Ok(Reply::ok()),
        "command" => introspection::command(args),
        "info" => Ok(info::info(node, args)),
        "config" => config::config(node, args).await,
        "debug" => config::debug(node, args).await,
        "function" => config::function(args),
        "time" => Ok(introspection::time()),
        "cluster" if migrations::handles(&args[1]) => migrations::answer(node, args).await,
        "cluster" => cluster::cluster(node, session.tls, args),
        "save" => Ok(config::save(node)),
        "shutdown" => Err(ReplyError::err(
            "SHUTDOWN is not served over RESP: stop a polis node with SIGTERM (or Ctrl-C for polis dev)",
        )),
        "lastsave" => Ok(Reply::Integer((crate::node::now_ms() / 1000) as i64)),
        "reset" => Ok(connection::reset(node, session)),
        "subscribe" => Ok(pubsub::subscribe(node, session, Kind::Channel, args)),
        "psubscribe" => Ok(pubsub::subscribe(node, session, Kind::Pattern, args)),
        "ssubscribe" => Ok(pubsub::ssubscribe(node, session, args)),
        "unsubscribe" => Ok(pubsub::unsubscribe(node, session, Kind::Channel, args)),
        "punsubscribe" => Ok(pubsub::unsubscribe(node, session, Kind::Pattern, args)),
        "sunsubscribe" => Ok(pubsub::sunsubscribe(node, session, args)),
        "publish" => Ok(pubsub::publish(node, session, args).await),
        "spublish" => Ok(pubsub::spublish(node, session, args).await),
        "pubsub" => pubsub::pubsub(node, args),
        "slowlog" => slowlog::slowlog(node, args),
        "latency" => latency::latency(node, args),
        "monitor" => Ok(slowlog::monitor(node, session)),
        _ => Err(ReplyError::err(format!(
            "command '{}' is not available on this node",
            spec.name
        ))),
    };
    result.unwrap_or_else(Reply::Error)
}

/// Returns `arg` as lowercase text, for matching subcommands and options.
fn lower(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_lowercase()
}
