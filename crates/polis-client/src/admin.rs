//! A small client of a node's admin HTTP endpoint.

use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
pub use hyper::Method;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Sends one request to `http://{addr}{path}` and returns the status code
/// and body; `json` is sent as the body when given.
pub(crate) async fn send(
    method: Method,
    addr: &str,
    path: &str,
    json: Option<&serde_json::Value>,
    timeout: Duration,
) -> anyhow::Result<(u16, Bytes)> {
    let body = match json {
        Some(value) => Some(("application/json", Bytes::from(serde_json::to_vec(value)?))),
        None => None,
    };
    let (status, _, body) = exchange(method, addr, path, body, timeout).await?;
    Ok((status, body))
}

/// Sends one request to `http://{addr}{path}` with `body` (its content
/// type and bytes) and returns the status code, the response's headers
/// and its body.
///
/// # Errors
/// Returns why no answer came within `timeout`.
pub async fn exchange(
    method: Method,
    addr: &str,
    path: &str,
    body: Option<(&str, Bytes)>,
    timeout: Duration,
) -> anyhow::Result<(u16, hyper::HeaderMap, Bytes)> {
    let credentials = credentials();
    exchange_as(method, addr, path, credentials.as_deref(), body, timeout).await
}

/// As [`exchange`], with `authorization` as the request's
/// `Authorization` header (none: no header), as a server passing on
/// its own client's request does.
///
/// # Errors
/// Returns why no answer came within `timeout`.
pub async fn exchange_as(
    method: Method,
    addr: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<(&str, Bytes)>,
    timeout: Duration,
) -> anyhow::Result<(u16, hyper::HeaderMap, Bytes)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let body = match body {
        Some((content_type, bytes)) => {
            request = request.header("content-type", content_type);
            bytes
        }
        None => Bytes::new(),
    };
    let request = request.body(Full::new(body)).context("bad admin request")?;
    let response = tokio::time::timeout(timeout, client.request(request))
        .await
        .context("admin request timed out")??;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = tokio::time::timeout(timeout, response.into_body().collect())
        .await
        .context("admin response timed out")??
        .to_bytes();
    Ok((status, headers, body))
}

static CREDENTIALS: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every later admin request of this process carry `user` and
/// `password` (over the environment's). Once per process.
pub fn set_credentials(user: &str, password: &str) {
    let _ = CREDENTIALS.set(basic(user, password));
}

/// The credentials admin requests carry, as an `Authorization` header:
/// those set with [`set_credentials`], else the user `POLIS_USER` names
/// (`default` if unset) with the password of `POLIS_PASSWORD`, when that
/// is set.
fn credentials() -> Option<String> {
    if let Some(set) = CREDENTIALS.get() {
        return Some(set.clone());
    }
    let password = std::env::var("POLIS_PASSWORD").ok()?;
    let user = std::env::var("POLIS_USER").unwrap_or_else(|_| "default".to_owned());
    Some(basic(&user, &password))
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// Returns the status code and body of `GET http://{addr}{path}`.
pub async fn get(addr: &str, path: &str, timeout: Duration) -> anyhow::Result<(u16, Bytes)> {
    send(Method::GET, addr, path, None, timeout).await
}

/// Sends `POST http://{addr}{path}` with an empty body; returns the
/// status code and body.
pub async fn post(addr: &str, path: &str, timeout: Duration) -> anyhow::Result<(u16, Bytes)> {
    send(Method::POST, addr, path, None, timeout).await
}

/// Sends `POST http://{addr}{path}` with a JSON body; returns the status
/// code and body.
pub async fn post_json(
    addr: &str,
    path: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> anyhow::Result<(u16, Bytes)> {
    send(Method::POST, addr, path, Some(body), timeout).await
}

/// Sends `PUT http://{addr}{path}` with a JSON body; returns the status
/// code and body.
pub async fn put_json(
    addr: &str,
    path: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> anyhow::Result<(u16, Bytes)> {
    send(Method::PUT, addr, path, Some(body), timeout).await
}

/// Returns a node's /status as JSON.
pub async fn status(addr: &str) -> anyhow::Result<serde_json::Value> {
    let (code, body) = get(addr, "/status", Duration::from_secs(2)).await?;
    anyhow::ensure!(
        code == 200,
        "GET /status answered {code}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(serde_json::from_slice(&body)?)
}

/// Waits until one of `admin_addrs` reports the cluster ready (every shard
/// has a leader serving its slots); returns that node's /status.
///
/// # Errors
/// Returns an error if no node says so within `timeout`.
pub async fn wait_until_ready(
    admin_addrs: &[String],
    timeout: Duration,
) -> anyhow::Result<serde_json::Value> {
    let ready = crate::poll::until(timeout, Duration::from_millis(100), || async {
        for addr in admin_addrs {
            if let Ok(status) = status(addr).await {
                if status["state"] == "ok" {
                    return Some(status);
                }
            }
        }
        None
    })
    .await;
    ready.ok_or_else(|| anyhow::anyhow!("the cluster was not ready after {timeout:?}"))
}

/// Waits until every node of `admin_addrs` reports the cluster ready with
/// every shard led from the node the map prefers for it (where the leader
/// balancer keeps it while that node is up), so all of them name the same
/// leaders; returns one node's /status. A shard whose first election was
/// won elsewhere (a node slow to start) is moved back by the balancer
/// about ten seconds later, so this can take that long.
///
/// # Errors
/// Returns an error if that does not happen within `timeout`.
pub async fn wait_until_settled(
    admin_addrs: &[String],
    timeout: Duration,
) -> anyhow::Result<serde_json::Value> {
    let settled = crate::poll::until(timeout, Duration::from_millis(100), || async {
        let mut last = None;
        for addr in admin_addrs {
            let status = status(addr).await.ok()?;
            if status["state"] != "ok" || !leaders_preferred(&status) {
                return None;
            }
            last = Some(status);
        }
        last
    })
    .await;
    settled.ok_or_else(|| {
        anyhow::anyhow!("the shard leaders were not where the map places them after {timeout:?}")
    })
}

/// Returns true when every shard in `status` is led from its preferred
/// node.
fn leaders_preferred(status: &serde_json::Value) -> bool {
    status["shards"].as_array().is_some_and(|shards| {
        shards
            .iter()
            .all(|shard| shard["leader_node"] == shard["preferred_leader"])
    })
}

/// Returns the node leading shard `shard` and its RESP address, as
/// `status` (a node's /status) says.
pub fn shard_leader(status: &serde_json::Value, shard: u64) -> Option<(u64, String)> {
    let shard = status["shards"]
        .as_array()?
        .iter()
        .find(|candidate| candidate["id"].as_u64() == Some(shard))?;
    Some((
        shard["leader_node"].as_u64()?,
        shard["leader_resp_addr"].as_str()?.to_owned(),
    ))
}

/// Waits until the cluster is ready (see [`wait_until_ready`]); returns
/// the node leading shard 1 and its RESP address (with one shard, the
/// node that serves every slot).
///
/// # Errors
/// Returns an error if the cluster is not ready within `timeout`.
pub async fn wait_for_leader(
    admin_addrs: &[String],
    timeout: Duration,
) -> anyhow::Result<(u64, String)> {
    let status = wait_until_ready(admin_addrs, timeout).await?;
    shard_leader(&status, 1).ok_or_else(|| anyhow::anyhow!("shard 1 has no leader"))
}

/// Asks the node at admin address `addr` to remove node `node` from the
/// cluster; returns what the cluster answered.
///
/// # Errors
/// Returns the refusal (a removal that would leave too few nodes, an
/// unknown node) or why the node could not be asked.
pub async fn remove_node(addr: &str, node: u64) -> anyhow::Result<String> {
    let path = format!("/cluster/nodes/{node}/remove");
    let (code, body) = post(addr, &path, Duration::from_secs(30)).await?;
    let text = String::from_utf8_lossy(&body).into_owned();
    anyhow::ensure!(code == 200, "{text}");
    Ok(text)
}

/// Where a node stands, as one /status says: its state (`active`,
/// `leaving`, `removed`) and how many replicas the map still places on it.
pub fn node_state(status: &serde_json::Value, node: u64) -> Option<(String, u64)> {
    let record = status["nodes"]
        .as_array()?
        .iter()
        .find(|record| record["id"] == node)?;
    Some((
        record["state"].as_str()?.to_owned(),
        record["replicas"].as_u64()?,
    ))
}

/// Asks the node at admin address `addr` to move `slots` (as `0-99,200`)
/// to shard `to_shard`; returns what the cluster answered.
///
/// # Errors
/// Returns the refusal (bad ranges, an unknown shard, slots the shard
/// owns already, a shard busy with another migration).
pub async fn begin_migration(addr: &str, slots: &str, to_shard: u64) -> anyhow::Result<String> {
    let body = serde_json::json!({ "slots": slots, "to_shard": to_shard });
    let (code, body) =
        post_json(addr, "/cluster/migrations", &body, Duration::from_secs(30)).await?;
    let text = String::from_utf8_lossy(&body).into_owned();
    anyhow::ensure!(code == 200, "{text}");
    Ok(text)
}

/// Returns a node's `GET /changefeeds`: the newest feeds its replicas hold
/// (`version`, `feeds`) and, per replica, `version` and `outbox_events`.
///
/// # Errors
/// Returns why the node did not answer.
pub async fn changefeeds(addr: &str) -> anyhow::Result<serde_json::Value> {
    let (code, body) = get(addr, "/changefeeds", Duration::from_secs(5)).await?;
    anyhow::ensure!(
        code == 200,
        "GET /changefeeds answered {code}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(serde_json::from_slice(&body)?)
}

/// Sets the change feeds through the node at `addr` (`PUT /changefeeds`),
/// each `(prefix, stream)`; returns what it answered (`version`, `feeds`).
///
/// # Errors
/// Returns the refusal, or why the node could not be asked.
pub async fn set_changefeeds(
    addr: &str,
    feeds: &[(&str, &str)],
) -> anyhow::Result<serde_json::Value> {
    let body: Vec<serde_json::Value> = feeds
        .iter()
        .map(|(prefix, stream)| serde_json::json!({ "prefix": prefix, "stream": stream }))
        .collect();
    let (code, body) = put_json(
        addr,
        "/changefeeds",
        &serde_json::Value::Array(body),
        Duration::from_secs(30),
    )
    .await?;
    anyhow::ensure!(
        code == 200,
        "PUT /changefeeds answered {code}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(serde_json::from_slice(&body)?)
}

/// Returns true when every replica `view` (a node's `GET /changefeeds`)
/// lists holds the newest feeds it shows, and some were set.
pub fn changefeeds_adopted(view: &serde_json::Value) -> bool {
    let version = view["version"].as_u64().filter(|version| *version > 0);
    view["replicas"].as_array().is_some_and(|replicas| {
        version.is_some()
            && replicas
                .iter()
                .all(|replica| replica["version"].as_u64() == version)
    })
}

/// Returns true when no replica `view` (a node's `GET /changefeeds`)
/// lists holds events still to send.
pub fn changefeeds_drained(view: &serde_json::Value) -> bool {
    view["replicas"].as_array().is_some_and(|replicas| {
        replicas
            .iter()
            .all(|replica| replica["outbox_events"].as_u64() == Some(0))
    })
}

/// Returns the map version a node's answer to a map change names ("...
/// (map version N)"), or 0 when it names none.
pub fn map_version_in(said: &str) -> u64 {
    said.split("map version ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|number| number.trim().parse().ok())
        .unwrap_or(0)
}

/// Cancels every migration of the cluster that has not switched yet.
///
/// # Errors
/// Returns why the node could not be asked.
pub async fn cancel_migrations(addr: &str) -> anyhow::Result<String> {
    let (code, body) = post(addr, "/cluster/migrations/cancel", Duration::from_secs(30)).await?;
    let text = String::from_utf8_lossy(&body).into_owned();
    anyhow::ensure!(code == 200, "{text}");
    Ok(text)
}

/// Asks the node at admin address `addr` to split shard `shard`: half its
/// slots move to a new shard.
///
/// # Errors
/// Returns the refusal (an unknown shard, one of a single slot, a shard
/// busy with a migration) or why the node could not be asked.
pub async fn split_shard(addr: &str, shard: u64) -> anyhow::Result<String> {
    let path = format!("/cluster/shards/{shard}/split");
    let (code, body) = post(addr, &path, Duration::from_secs(30)).await?;
    let text = String::from_utf8_lossy(&body).into_owned();
    anyhow::ensure!(code == 200, "{text}");
    Ok(text)
}

/// Asks the node at admin address `addr` to merge shard `shard` into
/// shard `into`.
///
/// # Errors
/// Returns the refusal (an unknown shard, a shard busy with a migration)
/// or why the node could not be asked.
pub async fn merge_shard(addr: &str, shard: u64, into: u64) -> anyhow::Result<String> {
    let path = format!("/cluster/shards/{shard}/merge");
    let body = serde_json::json!({ "into": into });
    let (code, body) = post_json(addr, &path, &body, Duration::from_secs(30)).await?;
    let text = String::from_utf8_lossy(&body).into_owned();
    anyhow::ensure!(code == 200, "{text}");
    Ok(text)
}

/// Asks the meta leader, through the node at `addr`, for a balancing pass
/// now.
///
/// # Errors
/// Returns why the node could not be asked.
pub async fn rebalance(addr: &str) -> anyhow::Result<String> {
    let (code, body) = post(addr, "/cluster/rebalance", Duration::from_secs(30)).await?;
    let text = String::from_utf8_lossy(&body).into_owned();
    anyhow::ensure!(code == 200, "{text}");
    Ok(text)
}

/// What the meta leader's scheduler still wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedulerView {
    pub planned: Option<String>,
    pub migrations: u64,
    pub replica_moves: u64,
    pub leader_moves: u64,
    pub balanced: bool,
}

impl SchedulerView {
    /// Returns the operations under way or planned.
    pub fn operations_left(&self) -> u64 {
        self.migrations + self.replica_moves + self.leader_moves + u64::from(self.planned.is_some())
    }

    /// Returns true while an emptied shard waits to be retired.
    pub fn retiring(&self) -> bool {
        self.planned
            .as_deref()
            .is_some_and(|planned| planned.starts_with("retire"))
    }

    /// Returns what is left, in words.
    pub fn describe(&self) -> String {
        let mut said = format!(
            "{} migrations, {} replica moves, {} leader moves",
            self.migrations, self.replica_moves, self.leader_moves
        );
        if let Some(planned) = &self.planned {
            said.push_str(&format!("; next: {planned}"));
        }
        said
    }

    /// Reads the `scheduler` part of the meta leader's /status.
    pub fn from_status(status: &serde_json::Value) -> Option<Self> {
        let report = status.get("scheduler").filter(|report| !report.is_null())?;
        Some(Self {
            planned: report["planned"].as_str().map(str::to_owned),
            migrations: report["migrations"].as_u64()?,
            replica_moves: report["replica_moves"].as_u64()?,
            leader_moves: report["leader_moves"].as_u64()?,
            balanced: report["balanced"].as_bool()?,
        })
    }
}

/// Returns the meta leader's scheduler report, found through the node at
/// `addr`.
///
/// # Errors
/// Returns why no report could be read (no meta leader, or it has not
/// made a pass since it was elected).
pub async fn scheduler_report(addr: &str) -> anyhow::Result<SchedulerView> {
    let status = status(addr).await?;
    let leader = status["meta_leader"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("the meta group has no leader now"))?;
    let leader_addr = node_admin_addr(&status, leader)
        .ok_or_else(|| anyhow::anyhow!("no admin address for node {leader}"))?;
    let theirs = self::status(&leader_addr).await?;
    SchedulerView::from_status(&theirs)
        .ok_or_else(|| anyhow::anyhow!("node {leader} has no scheduler report yet"))
}

/// Returns the shard owning `slot`, as one /status says.
pub fn slot_owner(status: &serde_json::Value, slot: u16) -> Option<u64> {
    slot_range(status, slot).map(|(shard, _)| shard)
}

/// Returns the shard owning `slot` and the range of slots, as one /status
/// lists it, that holds `slot`.
pub fn slot_range(
    status: &serde_json::Value,
    slot: u16,
) -> Option<(u64, std::ops::RangeInclusive<u16>)> {
    status["shards"].as_array()?.iter().find_map(|shard| {
        let range = shard["slots"].as_array()?.iter().find_map(|range| {
            let text = range.as_str().unwrap_or_default();
            let (start, end) = text.split_once('-').unwrap_or((text, text));
            match (start.parse::<u16>(), end.parse::<u16>()) {
                (Ok(start), Ok(end)) if start <= slot && slot <= end => Some(start..=end),
                _ => None,
            }
        })?;
        Some((shard["id"].as_u64()?, range))
    })
}

/// Returns the highest node id one /status lists (0 for none): a node
/// added next takes the one after it.
pub fn highest_node_id(status: &serde_json::Value) -> u64 {
    status["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|node| node["id"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Returns the admin address of the node leading shard `shard`, as one
/// /status says.
pub fn shard_leader_admin(status: &serde_json::Value, shard: u64) -> Option<String> {
    let (leader, _) = shard_leader(status, shard)?;
    node_admin_addr(status, leader)
}

/// Returns the ids of the shards one /status lists, in its order.
pub fn shard_ids(status: &serde_json::Value) -> Vec<u64> {
    status["shards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|shard| shard["id"].as_u64())
        .collect()
}

/// Returns node `node`'s admin address, as one /status says.
pub fn node_admin_addr(status: &serde_json::Value, node: u64) -> Option<String> {
    status["nodes"]
        .as_array()?
        .iter()
        .find(|record| record["id"] == node)?["admin_addr"]
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_found_in_the_range_that_holds_it() {
        let status = serde_json::json!({"shards": [
            {"id": 1, "slots": ["0-99", "200"]},
            {"id": 2, "slots": ["100-199", "201-16383"]},
        ]});
        assert_eq!(slot_range(&status, 0), Some((1, 0..=99)));
        assert_eq!(slot_range(&status, 150), Some((2, 100..=199)));
        assert_eq!(slot_range(&status, 200), Some((1, 200..=200)));
        assert_eq!(slot_owner(&status, 16_383), Some(2));
        assert_eq!(slot_range(&serde_json::json!({}), 5), None);
    }

    #[test]
    fn the_map_version_of_a_change_is_read_from_its_answer() {
        assert_eq!(
            map_version_in("moving slots 0-99 to shard 2 (map version 17)"),
            17
        );
        assert_eq!(map_version_in("rebalancing from map version 4"), 4);
        assert_eq!(map_version_in("no version here"), 0);
    }
}
