//! Convergence after a partition, by anti-entropy alone: on a cluster
//! whose nodes accept network faults, with hints and read repair off.
//!
//! ```text
//!  namespace part: (N=3 W=1 R=1); CONFIG SET eventual-hints no, eventual-read-repair no
//!  partition {3} | {1, 2}
//!    node 3 writes its keys and the shared ones; nodes 1 and 2 theirs and the shared ones,
//!    paced over the partition's duration
//!  wait until nodes 1 and 2 agree (GET /eventual: same keys, same digest)
//!  heal ── poll GET /eventual on every node until all agree: the time to converge,
//!          and how much each node's anti_entropy_bytes_total grew meanwhile
//! ```
//!
//! Diverged bytes are the key and value bytes of every write acknowledged
//! on the minority side (which nodes 1 and 2 lack) plus those of every
//! write acknowledged on the majority side (which node 3 lacks); a shared
//! key counts once per side, since each side lacks the other's write.
//!
//! A node counts the anti-entropy bytes it sends: digests, slot numbers,
//! the keys and hashes of its pages, and the states it gives. The sum
//! over the nodes is the bytes on the wire (message framing aside).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use polis_client::faults::Faults;
use polis_client::local::NodeAddrs;
use serde::{Deserialize, Serialize};

use super::view::{self, NodeView, ANTI_ENTROPY_BYTES, ANTI_ENTROPY_ROUNDS};
use super::writes::{self, KeyPlan, SidePlan, SideTally, PREFIX};
use super::{make_namespaces, value_bytes};
use crate::driver::resp;
use crate::limits::PARTITION_OVERRUN_MAX;

/// How often the nodes' views are read while waiting for them to agree.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// How often a long phase says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What the partition measurement needs.
#[derive(Debug, Clone)]
pub struct PartitionConfig {
    /// Distinct keys written, both sides together.
    pub keys: u64,
    /// The share of them both sides write, in percent.
    pub shared_percent: u8,
    pub value_size: usize,
    /// How long the partition lasts; the writes are spread over it.
    pub duration: Duration,
    /// Writer connections on each side.
    pub writers: usize,
    /// `eventual-anti-entropy-ms` to set, or the nodes' default.
    pub anti_entropy_ms: Option<u64>,
    /// How long the replicas may take to agree.
    pub converge_timeout: Duration,
    pub seed: u64,
}

/// What the partition measurement found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionReport {
    pub keys: u64,
    pub shared_keys: u64,
    pub value_size: usize,
    pub writers_per_side: usize,
    /// The node cut off from the others.
    pub minority_node: u64,
    /// `eventual-anti-entropy-ms` in force on every node.
    pub anti_entropy_ms: u64,
    /// The partition's duration, as asked.
    pub duration_s: f64,
    /// From the partition to the heal, as it happened.
    pub held_s: f64,
    pub minority: SideTally,
    pub majority: SideTally,
    /// SETs acknowledged on both sides.
    pub operations: u64,
    /// Keys written on either side: on every one of them the sides differ.
    pub divergent_keys: u64,
    /// See the module's documentation.
    pub diverged_bytes: u64,
    /// From the end of the writes until nodes 1 and 2 agreed (None: not
    /// within the timeout; the heal went ahead).
    pub majority_agreed_s: Option<f64>,
    pub before_heal: Vec<NodeView>,
    pub after: Vec<NodeView>,
    pub converged: bool,
    /// From the heal to the end of the first poll that found every node
    /// agreeing (polled every `poll_ms`), or to the timeout.
    pub converge_s: f64,
    pub poll_ms: u64,
    /// Growth of anti_entropy_bytes_total per node from the heal until
    /// converged.
    pub anti_entropy_bytes_by_node: Vec<(u64, u64)>,
    /// Their sum: every byte sent for anti-entropy, once.
    pub anti_entropy_bytes: u64,
    /// anti_entropy_bytes / diverged_bytes.
    pub ratio: f64,
    /// The diverged bytes counted once per replica that lacks them: a
    /// minority write is lacked by both majority nodes, a majority write
    /// by the minority node.
    pub missing_bytes: u64,
    /// anti_entropy_bytes / missing_bytes.
    pub ratio_missing: f64,
    /// Rounds run over all nodes from the heal until converged.
    pub anti_entropy_rounds: u64,
    /// Hints written and read repairs over the whole measurement (both
    /// off: they must stay 0).
    pub hints_written: u64,
    pub read_repairs: u64,
}

/// Runs the measurement on the three `nodes` of a cluster started with
/// `--enable-fault-injection`; the last node is the minority.
///
/// # Errors
/// Fails if the cluster cannot be set up, a writer cannot connect, or a
/// node stops answering; replicas that do not converge in time are
/// reported, not an error.
pub async fn measure(
    nodes: &[NodeAddrs],
    config: &PartitionConfig,
    log: &dyn Fn(&str),
) -> anyhow::Result<PartitionReport> {
    anyhow::ensure!(nodes.len() == 3, "the partition needs 3 nodes");
    let (minority, majority) = nodes.split_last().ok_or_else(|| anyhow!("no nodes"))?;
    let admins: Vec<(u64, String)> = nodes
        .iter()
        .map(|node| (node.id, node.admin.clone()))
        .collect();
    let majority_admins = &admins[..majority.len()];
    make_namespaces(&admins, &[(PREFIX, 1)]).await?;
    let anti_entropy_ms = configure(nodes, config.anti_entropy_ms).await?;
    log(&format!(
        "partition: namespace {PREFIX} N=3 W=1 R=1; hints and read repair off; anti-entropy every {anti_entropy_ms} ms"
    ));
    let start_views = view::fetch_all(&admins).await?;

    let faults = Faults::new(admins.iter().cloned().collect());
    faults
        .partition(&[BTreeSet::from([minority.id])])
        .await
        .context("partitioning the cluster")?;
    let partitioned_at = Instant::now();
    let plan = KeyPlan::new(config.keys, config.shared_percent);
    log(&format!(
        "partition: node {} cut off from nodes {}; writing {} keys of {} bytes over {:.0} s ({} on each side only, {} on both)",
        minority.id,
        majority
            .iter()
            .map(|node| node.id.to_string())
            .collect::<Vec<_>>()
            .join(" and "),
        config.keys,
        config.value_size,
        config.duration.as_secs_f64(),
        plan.minority_only,
        plan.shared
    ));
    let ((minority_tally, minority_keys), (majority_tally, majority_keys)) =
        write_both_sides(minority, majority, &plan, config, partitioned_at, log).await?;
    let written_at = Instant::now();
    // The partition lasts its duration even if the writes ended early.
    tokio::time::sleep_until((partitioned_at + config.duration).into()).await;

    let majority_agreed_s = wait_until_agreed(majority_admins, config.converge_timeout)
        .await
        .map(|_| written_at.elapsed().as_secs_f64());
    if majority_agreed_s.is_none() {
        log("partition: nodes 1 and 2 did not agree within the timeout; healing anyway");
    }
    let before_heal = view::fetch_all(&admins).await?;
    let held_s = partitioned_at.elapsed().as_secs_f64();
    let healed_at = Instant::now();
    let unhealed = faults.heal().await;
    if let Some((id, error)) = unhealed.first() {
        return Err(anyhow!("node {id} could not be healed: {error:#}"));
    }
    log(&format!(
        "partition: healed after {held_s:.1} s; node views: {}",
        describe(&before_heal)
    ));

    let divergent: BTreeSet<u64> = minority_keys.union(&majority_keys).copied().collect();
    let (converged, after, converge_s) = wait_until_converged(
        &admins,
        divergent.len() as u64,
        healed_at,
        config.converge_timeout,
        log,
    )
    .await?;
    let by_node = view::growth(&before_heal, &after, ANTI_ENTROPY_BYTES);
    let counted: u64 = by_node.iter().map(|(_, bytes)| bytes).sum();
    let diverged_bytes = minority_tally.bytes + majority_tally.bytes;
    let majority_nodes = nodes.len().saturating_sub(1) as u64;
    let missing_bytes = minority_tally.bytes * majority_nodes + majority_tally.bytes;
    let ratio_of = |bytes: u64, of: u64| {
        if of > 0 {
            bytes as f64 / of as f64
        } else {
            0.0
        }
    };
    let per_diverged = |bytes: u64| ratio_of(bytes, diverged_bytes);
    let total = |views: &[NodeView], name: &str| -> u64 {
        view::growth(&start_views, views, name)
            .iter()
            .map(|(_, grown)| grown)
            .sum()
    };
    Ok(PartitionReport {
        keys: config.keys,
        shared_keys: plan.shared,
        value_size: config.value_size,
        writers_per_side: config.writers,
        minority_node: minority.id,
        anti_entropy_ms,
        duration_s: config.duration.as_secs_f64(),
        held_s,
        operations: minority_tally.acknowledged + majority_tally.acknowledged,
        minority: minority_tally,
        majority: majority_tally,
        divergent_keys: divergent.len() as u64,
        diverged_bytes,
        majority_agreed_s,
        converged,
        converge_s,
        poll_ms: POLL_EVERY.as_millis() as u64,
        anti_entropy_bytes_by_node: by_node,
        anti_entropy_bytes: counted,
        ratio: per_diverged(counted),
        missing_bytes,
        ratio_missing: ratio_of(counted, missing_bytes),
        anti_entropy_rounds: view::growth(&before_heal, &after, ANTI_ENTROPY_ROUNDS)
            .iter()
            .map(|(_, rounds)| rounds)
            .sum(),
        hints_written: total(&after, "hints_written_total"),
        read_repairs: total(&after, "read_repairs_total"),
        before_heal,
        after,
    })
}

/// Turns hints and read repair off (and sets the anti-entropy interval
/// if asked) on every node; returns the interval in force.
async fn configure(nodes: &[NodeAddrs], anti_entropy_ms: Option<u64>) -> anyhow::Result<u64> {
    let first = &nodes.first().ok_or_else(|| anyhow!("no nodes"))?.resp;
    let mut settings = vec![
        ("eventual-hints", "no".to_owned()),
        ("eventual-read-repair", "no".to_owned()),
    ];
    if let Some(ms) = anti_entropy_ms {
        settings.push(("eventual-anti-entropy-ms", ms.to_string()));
    }
    // Cluster-wide settings: set through one node, which sets them on
    // every node before it answers OK.
    for (name, value) in &settings {
        let answer: String = query(first, &["CONFIG", "SET", name, value]).await?;
        anyhow::ensure!(answer == "OK", "CONFIG SET {name} {value}: {answer}");
    }
    let mut interval_ms = None;
    for node in nodes {
        for (name, value) in &settings {
            let shown = config_get(&node.resp, name).await?;
            anyhow::ensure!(
                shown == *value,
                "node {} shows {name} {shown}, not {value}",
                node.id
            );
        }
        let shown = config_get(&node.resp, "eventual-anti-entropy-ms").await?;
        let shown: u64 = shown
            .parse()
            .with_context(|| format!("eventual-anti-entropy-ms {shown:?}"))?;
        anyhow::ensure!(
            interval_ms.is_none_or(|ms| ms == shown),
            "the nodes differ on eventual-anti-entropy-ms"
        );
        interval_ms = Some(shown);
    }
    let interval_ms = interval_ms.ok_or_else(|| anyhow!("no nodes"))?;
    anyhow::ensure!(
        interval_ms > 0,
        "eventual-anti-entropy-ms is 0: anti-entropy is off and nothing would converge"
    );
    Ok(interval_ms)
}

async fn query<T: redis::FromRedisValue>(addr: &str, args: &[&str]) -> anyhow::Result<T> {
    let mut connection = resp::open(addr).await.map_err(|error| anyhow!(error))?;
    let mut cmd = redis::cmd(args.first().copied().unwrap_or("PING"));
    for arg in args.iter().skip(1) {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut connection)
        .await
        .with_context(|| format!("{} on {addr}", args.join(" ")))
}

async fn config_get(addr: &str, name: &str) -> anyhow::Result<String> {
    let pairs: Vec<String> = query(addr, &["CONFIG", "GET", name]).await?;
    match pairs.as_slice() {
        [shown_name, value] if shown_name == name => Ok(value.clone()),
        other => Err(anyhow!("CONFIG GET {name} on {addr} answered {other:?}")),
    }
}

/// Writes both sides' keys at once, saying how far they got every few
/// seconds.
async fn write_both_sides(
    minority: &NodeAddrs,
    majority: &[NodeAddrs],
    plan: &KeyPlan,
    config: &PartitionConfig,
    start: Instant,
    log: &dyn Fn(&str),
) -> anyhow::Result<((SideTally, BTreeSet<u64>), (SideTally, BTreeSet<u64>))> {
    let deadline = start + config.duration + PARTITION_OVERRUN_MAX;
    let side = |addrs: Vec<String>, keys: Vec<u64>, stream: u64| SidePlan {
        addrs,
        keys,
        writers: config.writers,
        // Each side its own value, so shared keys differ across the partition.
        value: value_bytes(config.value_size, config.seed.wrapping_add(stream)),
        seed: config.seed.wrapping_add(stream),
        start,
        span: config.duration,
        deadline,
    };
    let minority_plan = side(vec![minority.resp.clone()], plan.minority_keys(), 1);
    let majority_plan = side(
        majority.iter().map(|node| node.resp.clone()).collect(),
        plan.majority_keys(),
        2,
    );
    let planned = (minority_plan.keys.len() + majority_plan.keys.len()) as u64;
    let answered = Arc::new(AtomicU64::new(0));
    let both = async {
        tokio::join!(
            writes::write_side(minority_plan, answered.clone()),
            writes::write_side(majority_plan, answered.clone())
        )
    };
    tokio::pin!(both);
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    ticker.tick().await;
    let (minority_side, majority_side) = loop {
        tokio::select! {
            done = &mut both => break done,
            _ = ticker.tick() => log(&format!(
                "partition: {:.0} s, {} of {planned} SETs answered",
                start.elapsed().as_secs_f64(),
                answered.load(Ordering::Relaxed)
            )),
        }
    };
    let (minority_side, majority_side) = (minority_side?, majority_side?);
    for (name, (tally, _)) in [("minority", &minority_side), ("majority", &majority_side)] {
        log(&format!(
            "partition: {name}: {} SETs acknowledged, {} errors, {} unwritten, in {:.1} s{}",
            tally.acknowledged,
            tally.errors,
            tally.unwritten,
            tally.elapsed_s,
            tally
                .error_samples
                .first()
                .map(|sample| format!(" (e.g. {sample})"))
                .unwrap_or_default()
        ));
    }
    Ok((minority_side, majority_side))
}

/// Waits until the nodes of `admins` agree; returns whether they did
/// within `timeout`.
async fn wait_until_agreed(admins: &[(u64, String)], timeout: Duration) -> Option<()> {
    polis_client::poll::until(timeout, POLL_EVERY, || async {
        let views = view::fetch_all(admins).await.ok()?;
        view::all_agree(&views).then_some(())
    })
    .await
}

/// Polls every node until all agree on at least `keys` keys, or until
/// `timeout` after `healed_at`; returns whether they did, the last views
/// read, and the seconds from `healed_at` to the end of that read.
///
/// # Errors
/// Fails if a node stops answering for the whole of the timeout.
async fn wait_until_converged(
    admins: &[(u64, String)],
    keys: u64,
    healed_at: Instant,
    timeout: Duration,
    log: &dyn Fn(&str),
) -> anyhow::Result<(bool, Vec<NodeView>, f64)> {
    let deadline = healed_at + timeout;
    let mut next_progress = healed_at + PROGRESS_EVERY;
    let mut last: Result<Vec<NodeView>, anyhow::Error> = Err(anyhow!("no node was asked"));
    loop {
        last = match view::fetch_all(admins).await {
            Ok(views) => {
                if view::all_agree(&views) && views.iter().all(|view| view.keys >= keys) {
                    let converge_s = healed_at.elapsed().as_secs_f64();
                    log(&format!(
                        "partition: converged {converge_s:.1} s after the heal: {}",
                        describe(&views)
                    ));
                    return Ok((true, views, converge_s));
                }
                Ok(views)
            }
            // A node slow to answer while it syncs: asked again, the
            // views read last kept.
            Err(error) => last.or(Err(error)),
        };
        let now = Instant::now();
        if now >= deadline {
            log(&format!(
                "partition: NOT converged {:.0} s after the heal",
                timeout.as_secs_f64()
            ));
            let waited_s = healed_at.elapsed().as_secs_f64();
            return last.map(|views| (false, views, waited_s));
        }
        if now >= next_progress {
            next_progress += PROGRESS_EVERY;
            if let Ok(views) = &last {
                log(&format!(
                    "partition: {:.0} s after the heal: {}",
                    healed_at.elapsed().as_secs_f64(),
                    describe(views)
                ));
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Returns the views in a line: keys, digest and anti-entropy bytes per node.
fn describe(views: &[NodeView]) -> String {
    let by_node: BTreeMap<u64, String> = views
        .iter()
        .map(|view| {
            (
                view.node,
                format!(
                    "{} keys, digest {}, AE {} B",
                    view.keys,
                    view.digest,
                    view.figure(ANTI_ENTROPY_BYTES)
                ),
            )
        })
        .collect();
    by_node
        .iter()
        .map(|(node, text)| format!("node {node}: {text}"))
        .collect::<Vec<_>>()
        .join("; ")
}
