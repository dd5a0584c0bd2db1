//! The change-feed workload: the run first sets a change feed (`CONFIG SET
//! changefeeds "verify:feed: verify:{feed}stream"`) and waits until every
//! shard holds it; then each client APPENDs unique tokens
//! (`"<client>.<n>,"`) to a few string keys under the prefix, on every
//! shard. After healing, once every outbox is empty, one GET of every key
//! appended to and one read of the whole stream (XRANGE, page by page),
//! which the checker ([`crate::check::changefeed`]) holds against each
//! other and against the APPENDs' outcomes.
//!
//! Keys rotate so that values stay short (every feed entry carries its
//! key's whole value): the clients move to fresh keys every
//! `keys * APPENDS_PER_KEY` appends.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use polis_client::admin;
use polis_client::resp::{Client, Outcome};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value;
use tokio::time::Instant;

use super::step::{self, text};
use super::ClientPlan;
use crate::history::{FeedEntry, Kind, Op};
use crate::recorder::Recorder;

/// Every key of the workload starts with this: the feed's prefix.
pub const FEED_PREFIX: &str = "verify:feed:";

/// The feed stream (outside the prefix).
pub const FEED_STREAM: &str = "verify:{feed}stream";

/// Appends one key receives on average before the clients move on.
const APPENDS_PER_KEY: u64 = 48;

/// Entries one XRANGE page asks for.
const PAGE_ENTRIES: usize = 1_000;

/// Pages the final read takes at most (the run's entries are far fewer).
const PAGES_MAX: usize = 10_000;

/// Attempts at each final read before the run gives up on it.
const ATTEMPTS_MAX: usize = 20;

/// Returns the key of feed key `id`.
pub fn feed_key(id: u64) -> String {
    format!("{FEED_PREFIX}k{id}")
}

/// Runs one client until the deadline.
pub async fn run_client(plan: ClientPlan, keys: u32, recorder: Recorder, values: Arc<AtomicU64>) {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ plan.client.wrapping_mul(0x9e37_79b9));
    let mut client = Client::new(plan.addrs.clone(), plan.client as usize, plan.timeout);
    let mut process = plan.client;
    let keys = u64::from(keys.max(1));
    let mut ticker = tokio::time::interval(plan.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 1.. {
        if Instant::now() >= plan.deadline || recorder.is_full() {
            break;
        }
        ticker.tick().await;
        let generation = values.fetch_add(1, Ordering::Relaxed) / (keys * APPENDS_PER_KEY);
        let key = feed_key(generation * keys + rng.random_range(0..keys));
        let token = format!("{}.{n},", plan.client);
        if append(&mut client, &recorder, process, &key, &token).await == Kind::Info {
            // The APPEND stays open forever; this client goes on as a new
            // process, as a real client would with a new connection.
            process += plan.clients;
        }
    }
}

/// APPENDs `token` to `key` as `process`, recorded; returns how it ended.
pub async fn append(
    client: &mut Client,
    recorder: &Recorder,
    process: u64,
    key: &str,
    token: &str,
) -> Kind {
    let op = Op::FeedAppend {
        key: key.to_owned(),
        token: token.to_owned(),
        length: None,
    };
    let mut cmd = redis::cmd("APPEND");
    cmd.arg(key).arg(token);
    let (kind, _) = step::call(client, recorder, process, op, &cmd, |reply| match reply {
        Value::Int(length) => Ok(Op::FeedAppend {
            key: key.to_owned(),
            token: token.to_owned(),
            length: u64::try_from(length).ok(),
        }),
        other => Err(format!("APPEND answered {other:?}")),
    })
    .await;
    kind
}

/// Sets the feed of `prefix` to `stream` through `resp` (CONFIG SET), and
/// waits until every shard replica on every node of `admins` holds it.
///
/// # Errors
/// Returns an error if that does not happen within `timeout`.
pub async fn configure(
    resp: &[String],
    admins: &[String],
    prefix: &str,
    stream: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut client = Client::new(resp.to_vec(), 0, Duration::from_secs(5));
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("SET")
        .arg("changefeeds")
        .arg(format!("{prefix} {stream}"));
    loop {
        match client.call(&cmd).await {
            Outcome::Ok(_) => break,
            Outcome::Fail(error) | Outcome::Unknown(error) if Instant::now() >= deadline => {
                bail!("CONFIG SET changefeeds: {error}")
            }
            // Setting the same feeds twice is harmless.
            Outcome::Fail(_) | Outcome::Unknown(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let adopted = polis_client::poll::until(left, Duration::from_millis(100), || async {
        for addr in admins {
            let view = admin::changefeeds(addr).await.ok()?;
            let listed = view["feeds"].as_array()?.iter().any(|feed| {
                feed["prefix"].as_str() == Some(prefix) && feed["stream"].as_str() == Some(stream)
            });
            (listed && admin::changefeeds_adopted(&view)).then_some(())?;
        }
        Some(())
    })
    .await;
    adopted.with_context(|| format!("not every shard took the feed within {timeout:?}"))
}

/// Waits until no shard replica on a node of `admins` holds events still
/// to send; returns false if some still do at `deadline`.
pub async fn wait_drained(admins: &[String], deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    polis_client::poll::until(left, Duration::from_millis(100), || async {
        for addr in admins {
            let view = admin::changefeeds(addr).await.ok()?;
            admin::changefeeds_drained(&view).then_some(())?;
        }
        Some(())
    })
    .await
    .is_some()
}

/// Reads back, recorded as processes from `process_base`: the value of
/// every key the history appended to (GET), then the whole feed
/// `stream`.
///
/// # Errors
/// Returns an error if a read never succeeds.
pub async fn final_read(
    client: &mut Client,
    recorder: &Recorder,
    stream: &str,
    process_base: u64,
) -> anyhow::Result<()> {
    let keys: BTreeSet<(usize, String)> = recorder
        .events()
        .into_iter()
        .filter(|event| event.kind == Kind::Invoke)
        .filter_map(|event| match event.op {
            // Ordered by length first, so k9 comes before k10.
            Op::FeedAppend { key, .. } => Some((key.len(), key)),
            _ => None,
        })
        .collect();
    for (number, (_, key)) in keys.iter().enumerate() {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        let op = Op::FeedGet {
            key: key.clone(),
            value: None,
        };
        let mut done = false;
        for attempt in 0..ATTEMPTS_MAX {
            let process = process_base + number as u64 + (attempt as u64) * (1 << 20);
            let (kind, _) = step::call(client, recorder, process, op.clone(), &cmd, |reply| {
                let value = match reply {
                    Value::Nil => None,
                    other => Some(text(&other).ok_or(format!("GET answered {other:?}"))?),
                };
                Ok(Op::FeedGet {
                    key: key.clone(),
                    value,
                })
            })
            .await;
            if kind == Kind::Ok {
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        anyhow::ensure!(done, "the final GET of {key} never succeeded");
    }
    let process = process_base + keys.len() as u64;
    let op = |entries| Op::FeedRead {
        stream: stream.to_owned(),
        entries,
    };
    recorder.record(process, Kind::Invoke, op(None), None);
    match read_stream(client, stream).await {
        Ok(entries) => {
            recorder.record(process, Kind::Ok, op(Some(entries)), None);
            Ok(())
        }
        Err(error) => {
            recorder.record(process, Kind::Info, op(None), Some(format!("{error:#}")));
            Err(error)
        }
    }
}

/// Reads every entry of `stream`, XRANGE page by page; a page that fails
/// is read again.
///
/// # Errors
/// Returns an error if a page never reads, or the stream does not end.
pub async fn read_stream(client: &mut Client, stream: &str) -> anyhow::Result<Vec<FeedEntry>> {
    let mut entries: Vec<FeedEntry> = Vec::new();
    let mut start = "-".to_owned();
    for _ in 0..PAGES_MAX {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(stream)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(PAGE_ENTRIES);
        let mut last_error = String::new();
        let mut page = None;
        for _ in 0..ATTEMPTS_MAX {
            match client.call(&cmd).await {
                Outcome::Ok(reply) => {
                    page = Some(parse_entries(&reply).map_err(anyhow::Error::msg)?);
                    break;
                }
                Outcome::Fail(error) | Outcome::Unknown(error) => last_error = error,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let page = page.with_context(|| format!("XRANGE {stream}: {last_error}"))?;
        let full = page.len() >= PAGE_ENTRIES;
        if let Some(last) = page.last() {
            start = next_id(&last.id)?;
        }
        entries.extend(page);
        if !full {
            return Ok(entries);
        }
    }
    bail!(
        "{stream} holds more than {} entries",
        PAGES_MAX * PAGE_ENTRIES
    )
}

/// Returns the stream id right after `id` (`ms-seq`).
fn next_id(id: &str) -> anyhow::Result<String> {
    let (ms, seq) = id
        .split_once('-')
        .with_context(|| format!("stream id {id}"))?;
    let seq: u64 = seq.parse().with_context(|| format!("stream id {id}"))?;
    Ok(match seq.checked_add(1) {
        Some(seq) => format!("{ms}-{seq}"),
        None => format!("{}-0", ms.parse::<u64>()? + 1),
    })
}

/// Parses XRANGE's `[[id, [field, value, ...]], ...]` as feed entries.
///
/// # Errors
/// Returns the reply, described, when an entry lacks a field of the feed.
pub fn parse_entries(reply: &Value) -> Result<Vec<FeedEntry>, String> {
    let unexpected = || format!("unexpected feed entries {reply:?}");
    let Value::Array(items) = reply else {
        return Err(unexpected());
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(parts) = item else {
            return Err(unexpected());
        };
        let [id, Value::Array(fields)] = parts.as_slice() else {
            return Err(unexpected());
        };
        let mut found: std::collections::HashMap<String, String> = fields
            .chunks(2)
            .filter_map(|pair| Some((text(pair.first()?)?, text(pair.get(1)?)?)))
            .collect();
        let value = found.remove("value");
        let mut take = |name: &str| found.remove(name).ok_or_else(unexpected);
        let number = |value: String| value.parse::<u64>().map_err(|_| unexpected());
        entries.push(FeedEntry {
            id: text(id).ok_or_else(unexpected)?,
            key: take("key")?,
            event: take("event")?,
            shard: number(take("shard")?)?,
            index: number(take("index")?)?,
            seq: number(take("seq")?)?,
            value,
        });
    }
    Ok(entries)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn xrange_entries_become_feed_entries() {
        let entry = |id: &str, value: Option<&str>| {
            let mut fields = vec![
                bulk("key"),
                bulk("verify:feed:k1"),
                bulk("event"),
                bulk("append"),
                bulk("shard"),
                bulk("2"),
                bulk("index"),
                bulk("17"),
                bulk("seq"),
                bulk("1"),
            ];
            if let Some(value) = value {
                fields.extend([bulk("value"), bulk(value)]);
            }
            Value::Array(vec![bulk(id), Value::Array(fields)])
        };
        let reply = Value::Array(vec![entry("5-0", Some("0.1,")), entry("5-1", None)]);
        let entries = parse_entries(&reply).unwrap();
        assert_eq!(entries[0].position(), (2, 17, 1));
        assert_eq!(entries[0].value.as_deref(), Some("0.1,"));
        assert_eq!(entries[1].value, None);
        assert_eq!(entries[1].id, "5-1");
        let short = Value::Array(vec![Value::Array(vec![
            bulk("1-0"),
            Value::Array(vec![bulk("key"), bulk("k")]),
        ])]);
        assert!(parse_entries(&short).is_err());
    }

    #[test]
    fn pages_start_after_the_last_id() {
        assert_eq!(next_id("1700-4").unwrap(), "1700-5");
        assert_eq!(next_id(&format!("9-{}", u64::MAX)).unwrap(), "10-0");
        assert!(next_id("nonsense").is_err());
    }

    #[test]
    fn keys_are_under_the_prefix_and_the_stream_is_not() {
        assert!(feed_key(12).starts_with(FEED_PREFIX));
        assert!(!FEED_STREAM.starts_with(FEED_PREFIX));
    }
}
