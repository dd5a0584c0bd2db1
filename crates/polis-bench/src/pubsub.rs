//! PUBLISH fan-out: `subscribers` clients subscribed to one channel, spread
//! over the nodes, and `publishers` clients publishing to it, for a
//! duration; measured on a fresh 3-node polis and on one Redis node (no
//! persistence: pub/sub is never persisted), side by side.
//!
//! ```text
//! subscribers x S (round-robin over the nodes): SUBSCRIBE bench
//! publishers  x P (round-robin over the nodes): PUBLISH bench <payload>, one at a time
//! ```
//!
//! The figure is messages delivered per second: every message a
//! subscriber received, over the time from the first PUBLISH to the last
//! delivery. Publishers stop after `duration`; deliveries are counted
//! until none arrives for [`QUIET`] (at most [`DRAIN_MAX`]). Pub/sub is at
//! most once, so `lost` (published x subscribers - delivered) is reported
//! too: a subscriber disconnected at its output limit, or a forward
//! dropped at a full peer queue, loses messages.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::driver::resp::open;
use crate::peers::polis::PolisCluster;
use crate::peers::redis::{RedisServers, RedisSetup};
use crate::peers::PeerConfig;
use crate::spec::Target;

/// The channel.
const CHANNEL: &str = "bench";
/// Deliveries are over once none arrived for this long.
const QUIET: Duration = Duration::from_millis(500);
/// The longest wait for deliveries after the publishers stopped.
const DRAIN_MAX: Duration = Duration::from_secs(10);
/// The most subscribers or publishers one run opens.
pub const CLIENTS_MAX: usize = 1_000;

/// What the pub/sub measurement needs.
#[derive(Debug, Clone)]
pub struct PubSubConfig {
    pub subscribers: usize,
    pub publishers: usize,
    pub duration: Duration,
    pub message_size: usize,
    pub peers: PeerConfig,
    pub data_dir: PathBuf,
}

/// One system's run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PubSubSide {
    /// PUBLISH calls answered.
    pub published: u64,
    /// Messages subscribers received.
    pub delivered: u64,
    /// published x subscribers - delivered.
    pub lost: u64,
    pub errors: u64,
    /// From the first PUBLISH to the last delivery.
    pub elapsed_s: f64,
    pub delivered_per_s: f64,
    pub published_per_s: f64,
}

/// Both systems, and polis against Redis.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PubSubReport {
    pub subscribers: usize,
    pub publishers: usize,
    pub duration_s: f64,
    pub message_size: usize,
    pub polis: PubSubSide,
    pub redis: PubSubSide,
    /// polis delivered/s over Redis delivered/s.
    pub ratio: f64,
}

/// Runs the measurement on polis, then on Redis.
///
/// # Errors
/// Returns an error when a system cannot start or a client cannot
/// subscribe.
pub async fn measure(config: &PubSubConfig, log: &dyn Fn(&str)) -> anyhow::Result<PubSubReport> {
    anyhow::ensure!(
        (1..=CLIENTS_MAX).contains(&config.subscribers)
            && (1..=CLIENTS_MAX).contains(&config.publishers),
        "subscribers and publishers must each be 1 to {CLIENTS_MAX}"
    );
    log("starting a 3-node polis");
    let mut polis = PolisCluster::start(
        &config.peers.polis,
        config.data_dir.join("polis"),
        crate::peers::polis::SHARDS,
        &config.peers.polis_server_args,
    )
    .await?;
    let addrs = resp_addrs(&polis.target());
    let polis_side = run(config, &addrs, log).await;
    polis.stop().await;
    let polis_side = polis_side?;
    log(&format!(
        "polis: {:.0} delivered/s ({} of {} published x {})",
        polis_side.delivered_per_s, polis_side.delivered, polis_side.published, config.subscribers
    ));

    log("starting one Redis node");
    let mut redis = RedisServers::start(
        &config.peers.redis_server,
        config.data_dir.join("redis"),
        RedisSetup::Memory,
    )
    .await?;
    let addrs = vec![redis.primary_addr().to_owned()];
    let redis_side = run(config, &addrs, log).await;
    redis.stop().await;
    let redis_side = redis_side?;
    log(&format!(
        "redis: {:.0} delivered/s ({} of {} published x {})",
        redis_side.delivered_per_s, redis_side.delivered, redis_side.published, config.subscribers
    ));
    let ratio = if redis_side.delivered_per_s > 0.0 {
        polis_side.delivered_per_s / redis_side.delivered_per_s
    } else {
        0.0
    };
    Ok(PubSubReport {
        subscribers: config.subscribers,
        publishers: config.publishers,
        duration_s: config.duration.as_secs_f64(),
        message_size: config.message_size,
        polis: polis_side,
        redis: redis_side,
        ratio,
    })
}

fn resp_addrs(target: &Target) -> Vec<String> {
    match target {
        Target::Resp { addrs, .. } => addrs.clone(),
        _ => Vec::new(),
    }
}

/// Subscribes, publishes for the duration, counts deliveries.
async fn run(
    config: &PubSubConfig,
    addrs: &[String],
    log: &dyn Fn(&str),
) -> anyhow::Result<PubSubSide> {
    anyhow::ensure!(!addrs.is_empty(), "no address to connect to");
    let delivered = Arc::new(AtomicU64::new(0));
    let last_delivery_us = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut subscribers = JoinSet::new();
    for index in 0..config.subscribers {
        let addr = &addrs[index % addrs.len()];
        let client = redis::Client::open(format!("redis://{addr}/"))?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        let (delivered, last, done) = (delivered.clone(), last_delivery_us.clone(), done.clone());
        subscribers.spawn(async move {
            let mut messages = pubsub.into_on_message();
            while !done.load(Ordering::Relaxed) {
                match tokio::time::timeout(QUIET, messages.next()).await {
                    Ok(Some(_)) => {
                        delivered.fetch_add(1, Ordering::Relaxed);
                        last.fetch_max(start.elapsed().as_micros() as u64, Ordering::Relaxed);
                    }
                    Ok(None) => return,
                    Err(_) => {}
                }
            }
        });
    }
    log(&format!(
        "{} subscribers on {} node(s); publishing for {:.0} s",
        config.subscribers,
        addrs.len(),
        config.duration.as_secs_f64()
    ));
    let payload = vec![b'x'; config.message_size];
    let published = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let publish_start = Instant::now();
    let publish_start_us = start.elapsed().as_micros() as u64;
    let mut publishers = JoinSet::new();
    for index in 0..config.publishers {
        let mut connection = open(&addrs[index % addrs.len()])
            .await
            .map_err(anyhow::Error::msg)?;
        let (published, errors, payload) = (published.clone(), errors.clone(), payload.clone());
        let duration = config.duration;
        publishers.spawn(async move {
            while publish_start.elapsed() < duration {
                let reply: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                    .arg(CHANNEL)
                    .arg(&payload)
                    .query_async(&mut connection)
                    .await;
                match reply {
                    Ok(_) => published.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
    }
    while publishers.join_next().await.is_some() {}
    // Deliveries go on until they stop (or the drain's bound).
    let drain_start = Instant::now();
    let mut seen = delivered.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(QUIET).await;
        let now = delivered.load(Ordering::Relaxed);
        if now == seen || drain_start.elapsed() > DRAIN_MAX {
            break;
        }
        seen = now;
    }
    done.store(true, Ordering::Relaxed);
    subscribers.abort_all();
    while subscribers.join_next().await.is_some() {}
    let published = published.load(Ordering::Relaxed);
    let delivered = delivered.load(Ordering::Relaxed);
    let last = last_delivery_us.load(Ordering::Relaxed);
    let elapsed_s = last.saturating_sub(publish_start_us) as f64 / 1e6;
    let per_s = |count: u64| {
        if elapsed_s > 0.0 {
            count as f64 / elapsed_s
        } else {
            0.0
        }
    };
    Ok(PubSubSide {
        published,
        delivered,
        lost: (published * config.subscribers as u64).saturating_sub(delivered),
        errors: errors.load(Ordering::Relaxed),
        elapsed_s,
        delivered_per_s: per_s(delivered),
        published_per_s: per_s(published),
    })
}
