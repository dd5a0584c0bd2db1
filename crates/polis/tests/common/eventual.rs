//! Helpers of the eventual-namespace tests: namespaces through the CLI,
//! commands on one node, waiting until every node answers alike, INFO
//! eventual's figures and GET /eventual.

use std::process::Command;
use std::time::Duration;

use redis::Value;

use super::{wait_for, Cluster};

/// Runs `polis namespace ARGS` against node 1; panics if it fails.
pub fn namespace(cluster: &Cluster, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_polis"))
        .arg("namespace")
        .args(args)
        .args(["--node", &cluster.node(1).admin])
        .output()
        .expect("run polis namespace");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "polis namespace {args:?}: {text}");
    text
}

pub async fn query(cluster: &Cluster, id: u64, cmd: &redis::Cmd) -> redis::RedisResult<Value> {
    let mut connection = cluster.connect(id).await;
    cmd.query_async(&mut connection).await
}

/// Waits until every node answers `cmd` with `expected`.
pub async fn converge(cluster: &Cluster, cmd: &redis::Cmd, expected: &Value, what: &str) {
    wait_for(what, Duration::from_secs(30), || async {
        for id in 1..=3 {
            match query(cluster, id, cmd).await {
                Ok(value) if value == *expected => {}
                _ => return None,
            }
        }
        Some(())
    })
    .await;
}

pub fn bulk(text: &str) -> Value {
    Value::BulkString(text.as_bytes().to_vec())
}

pub fn members(value: Value) -> Vec<String> {
    let Value::Array(items) = value else {
        panic!("expected an array, got {value:?}");
    };
    let mut names: Vec<String> = items
        .into_iter()
        .map(|item| match item {
            Value::BulkString(bytes) => String::from_utf8(bytes).unwrap(),
            other => panic!("expected a bulk string, got {other:?}"),
        })
        .collect();
    names.sort();
    names
}

/// Returns INFO eventual's field `name` on node `id`.
pub async fn eventual_figure(cluster: &Cluster, id: u64, name: &str) -> u64 {
    let info = query(cluster, id, redis::cmd("INFO").arg("eventual"))
        .await
        .unwrap();
    let text = match info {
        Value::BulkString(bytes) => String::from_utf8(bytes).unwrap(),
        Value::VerbatimString { text, .. } => text,
        other => panic!("INFO answered {other:?}"),
    };
    let field = format!("eventual_{name}:");
    text.lines()
        .find_map(|line| line.strip_prefix(&field))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

pub fn eventual_namespace(cluster: &Cluster, prefix: &str, write: &str, read: &str) {
    namespace(
        cluster,
        &[
            "set",
            prefix,
            "--consistency",
            "eventual",
            "--replicas",
            "3",
            "--write-quorum",
            write,
            "--read-quorum",
            read,
        ],
    );
}

pub async fn config_set(cluster: &Cluster, name: &str, value: &str) {
    let set = query(
        cluster,
        1,
        redis::cmd("CONFIG").arg("SET").arg(name).arg(value),
    )
    .await;
    assert_eq!(set.unwrap(), Value::Okay, "CONFIG SET {name} {value}");
}

/// Returns node `id`'s GET /eventual.
pub async fn eventual_status(cluster: &Cluster, id: u64) -> Option<serde_json::Value> {
    let (code, body) =
        polis_client::admin::get(&cluster.node(id).admin, "/eventual", Duration::from_secs(5))
            .await
            .ok()?;
    (code == 200).then(|| serde_json::from_slice(&body).ok())?
}

/// Returns the nodes holding a replica of `shard`, from node 1's status.
pub async fn shard_nodes(cluster: &Cluster, shard: u64) -> Vec<u64> {
    let status = cluster.cluster_status(1).await.unwrap();
    let mut nodes: Vec<u64> = status["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|record| record["id"] == shard)
        .unwrap()["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|replica| replica["node_id"].as_u64().unwrap())
        .collect();
    nodes.sort_unstable();
    nodes
}
