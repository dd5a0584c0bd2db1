//! `polis restore`: fills a new, empty cluster from a backup, then
//! compares a digest of every backed-up shard with the same slots in the
//! cluster.
//!
//! The cluster may have another shape than the one backed up (other
//! nodes, another number of shards): keys go slot by slot to whichever
//! shard owns the slot now, each request written through that shard's
//! log by its leader. Keys whose deadline passed are left out. A slot
//! that moves meanwhile is sent again to its new owner (a restored key
//! replaces the key of its name, so sending twice changes nothing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use futures::StreamExt;
use polis_client::admin::{self, Method};
use polis_server::backup::{chunks, RestoreChunk, ShardContents, SlotDigest};
use polis_server::node::now_ms;
use polis_store::Entry;
use tokio::sync::RwLock;

use crate::backup::Manifest;

/// Restore requests in flight at once.
const IN_FLIGHT: usize = 16;
/// How many times one slot's keys are sent before the restore gives up.
const SEND_ATTEMPTS: u32 = 30;
/// How long one restore request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Flags of `polis restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Admin HTTP address of any node of the new cluster.
    #[arg(long, default_value = "127.0.0.1:7100")]
    pub(crate) node: String,
    /// The backup's directory (what `polis backup --to` wrote).
    #[arg(long)]
    pub(crate) from: PathBuf,
}

/// Runs `polis restore`.
pub async fn run(args: RestoreArgs) -> anyhow::Result<()> {
    let manifest = read_manifest(&args.from)?;
    let status = admin::wait_until_ready(std::slice::from_ref(&args.node), Duration::from_secs(60))
        .await
        .with_context(|| format!("the cluster at {} is not ready", args.node))?;
    let held: u64 = status["shards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|shard| shard["keys"].as_u64())
        .sum();
    if held > 0 {
        bail!(
            "the cluster at {} holds {held} keys: restore fills a new cluster; start an empty one",
            args.node
        );
    }
    restore_namespaces(&args.node, &args.from).await?;
    let started = std::time::Instant::now();
    let at_ms = now_ms();
    let total: u64 = manifest.shards.iter().map(|shard| shard.keys).sum();
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} keys ({per_sec})  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let router = Router {
        node: args.node.clone(),
        status: RwLock::new(status),
    };
    let mut written = 0;
    for shard in &manifest.shards {
        bar.set_message(format!("shard {}", shard.id));
        let contents = load_shard(&args.from, &shard.group.file)?;
        written += send_shard(&router, &contents, at_ms, &bar).await?;
    }
    bar.finish_and_clear();
    println!(
        "restored {written} keys of {} shards into the cluster at {} in {:.1}s",
        manifest.shards.len(),
        args.node,
        started.elapsed().as_secs_f64()
    );
    verify(&router, &args.from, &manifest).await?;
    restore_users(&router, &args.from, &manifest).await
}

/// Sets the backup's ACL users in the cluster (`ACL SETUSER`, through a
/// node's RESP port), the default user last: once it has a password,
/// every later request needs it. Done after the keys, which go through
/// the admin API as the default user.
async fn restore_users(router: &Router, dir: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let bytes = std::fs::read(dir.join(&manifest.meta.file))?;
    let map = polis_cluster::ClusterMap::decode_optional(&bytes)
        .map_err(|error| anyhow::anyhow!("{} does not decode: {error}", manifest.meta.file))?;
    let Some(map) = map else {
        return Ok(());
    };
    if map.users.is_empty() {
        return Ok(());
    }
    let addr = router.status.read().await["nodes"][0]["resp_addr"]
        .as_str()
        .map(str::to_owned)
        .context("the cluster's status names no RESP address")?;
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    if let Ok(password) = std::env::var("POLIS_PASSWORD") {
        let user = std::env::var("POLIS_USER").unwrap_or_else(|_| "default".to_owned());
        redis::cmd("AUTH")
            .arg(&user)
            .arg(&password)
            .query_async::<()>(&mut connection)
            .await
            .with_context(|| format!("AUTH as {user} at {addr}"))?;
    }
    let mut users: Vec<(&String, &Vec<String>)> = map.users.iter().collect();
    users.sort_by_key(|(name, _)| name.as_str() == "default");
    for (name, rules) in &users {
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg(name.as_str())
            .arg("reset")
            .arg(rules.as_slice())
            .query_async::<()>(&mut connection)
            .await
            .with_context(|| format!("ACL SETUSER {name} at {addr}"))?;
    }
    println!("restored {} ACL users", users.len());
    Ok(())
}

/// Reads the manifest and checks every file it names against its hash.
fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join("manifest.json");
    let text = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {}: is {} a backup (`polis backup --to`) that finished?",
            path.display(),
            dir.display()
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a backup's manifest", path.display()))?;
    if manifest.format != 1 {
        bail!(
            "{} has format {}; this polis reads format 1",
            path.display(),
            manifest.format
        );
    }
    for group in
        std::iter::once(&manifest.meta).chain(manifest.shards.iter().map(|shard| &shard.group))
    {
        let bytes = std::fs::read(dir.join(&group.file))
            .with_context(|| format!("the backup lacks {}", group.file))?;
        let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
        if hash != group.xxh3 || bytes.len() as u64 != group.bytes {
            bail!(
                "{} is damaged (xxh3 {hash}, {} bytes; the manifest says {}, {} bytes): \
                 restore from another copy of the backup",
                dir.join(&group.file).display(),
                bytes.len(),
                group.xxh3,
                group.bytes
            );
        }
    }
    Ok(manifest)
}

fn load_shard(dir: &Path, file: &str) -> anyhow::Result<ShardContents> {
    let data = std::fs::read(dir.join(file))?;
    ShardContents::decode(&data).map_err(|error| anyhow::anyhow!("{file} does not decode: {error}"))
}

/// Sets the backup's namespaces in the cluster.
async fn restore_namespaces(node: &str, dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("namespaces.json");
    let namespaces: Vec<serde_json::Value> = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
    )?;
    for namespace in namespaces {
        let (code, body) =
            admin::put_json(node, "/namespaces", &namespace, Duration::from_secs(60)).await?;
        if code != 200 {
            bail!(
                "namespace {} was not set: {}",
                namespace["prefix"],
                String::from_utf8_lossy(&body)
            );
        }
    }
    Ok(())
}

/// Where each slot's keys go: the cluster's status, read again when a
/// request is refused.
struct Router {
    node: String,
    status: RwLock<serde_json::Value>,
}

impl Router {
    /// The shard owning `slot` and its leader's admin address.
    async fn owner(&self, slot: u16) -> Option<(u64, String)> {
        let status = self.status.read().await;
        let shard = admin::slot_owner(&status, slot)?;
        Some((shard, admin::shard_leader_admin(&status, shard)?))
    }

    async fn refresh(&self) {
        if let Ok(status) = admin::status(&self.node).await {
            *self.status.write().await = status;
        }
    }

    /// Sends one slot's pieces, in order, to the slot's owner; all of
    /// them again after a refusal or a failure.
    async fn send(&self, slot: u16, pieces: &[RestoreChunk]) -> anyhow::Result<u64> {
        let mut last = String::new();
        for attempt in 1..=SEND_ATTEMPTS {
            match self.send_once(slot, pieces).await {
                Ok(keys) => return Ok(keys),
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt.min(10)))).await;
            self.refresh().await;
        }
        bail!("slot {slot}'s keys were not restored after {SEND_ATTEMPTS} tries: {last}")
    }

    async fn send_once(&self, slot: u16, pieces: &[RestoreChunk]) -> anyhow::Result<u64> {
        let (shard, addr) = self
            .owner(slot)
            .await
            .with_context(|| format!("no leader known for slot {slot}"))?;
        let path = format!("/restore/shards/{shard}");
        let mut keys = 0;
        for piece in pieces {
            let body = postcard::to_stdvec(piece)?;
            let (code, _, answer) = admin::exchange(
                Method::POST,
                &addr,
                &path,
                Some(("application/octet-stream", body.into())),
                REQUEST_TIMEOUT,
            )
            .await?;
            if code != 200 {
                bail!(
                    "{addr} answered {code}: {}",
                    String::from_utf8_lossy(&answer)
                );
            }
            // Every key written, every part added to its key: else the
            // whole sequence goes again.
            let written = serde_json::from_slice::<serde_json::Value>(&answer)?["written"].as_u64();
            let sent = match piece {
                RestoreChunk::Keys(sent) => sent.len(),
                RestoreChunk::Parts(sent) => sent.len(),
            } as u64;
            if written != Some(sent) {
                bail!("{addr} wrote {written:?} of {sent} restored items");
            }
            if let RestoreChunk::Keys(_) = piece {
                keys += sent;
            }
        }
        Ok(keys)
    }
}

/// Sends the keys of one backed-up shard live at `at_ms`; returns how
/// many went.
async fn send_shard(
    router: &Router,
    contents: &ShardContents,
    at_ms: u64,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<u64> {
    let mut by_slot: BTreeMap<u16, Vec<(&bytes::Bytes, &Entry)>> = BTreeMap::new();
    for (key, entry) in contents.live_keys(at_ms) {
        by_slot
            .entry(polis_types::key_hash_slot(key).get())
            .or_default()
            .push((key, entry));
    }
    let jobs: Vec<(u16, Vec<RestoreChunk>)> = by_slot
        .into_iter()
        .flat_map(|(slot, keys)| chunks(keys).into_iter().map(move |pieces| (slot, pieces)))
        .collect();
    let router = Arc::new(router);
    let mut sent = futures::stream::iter(jobs)
        .map(|(slot, pieces)| {
            let router = router.clone();
            async move { router.send(slot, &pieces).await }
        })
        .buffer_unordered(IN_FLIGHT);
    let mut written = 0;
    while let Some(keys) = sent.next().await {
        let keys = keys?;
        written += keys;
        bar.inc(keys);
    }
    Ok(written)
}

/// Compares each backed-up shard's digest with the digest of the same
/// slots in the cluster, over keys live now.
async fn verify(router: &Router, dir: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    router.refresh().await;
    let at_ms = now_ms();
    let cluster = cluster_digests(router, at_ms).await?;
    let mut differ = Vec::new();
    for shard in &manifest.shards {
        let contents = load_shard(dir, &shard.group.file)?;
        let mut expected = SlotDigest::default();
        let mut found = SlotDigest::default();
        for digest in contents.digests(at_ms).into_values() {
            expected.add(digest);
        }
        for range in contents.owned.ranges() {
            for slot in range.slots() {
                if let Some(digest) = cluster.get(&slot.get()) {
                    found.add(*digest);
                }
            }
        }
        let same = expected == found;
        println!(
            "  shard {} (slots {}): backup {} keys, digest {:016x}; cluster {} keys, digest {:016x}: {}",
            shard.id,
            shard.slots,
            expected.keys,
            expected.digest,
            found.keys,
            found.digest,
            if same { "same" } else { "DIFFERENT" }
        );
        if !same {
            differ.push(shard.id);
        }
    }
    if !differ.is_empty() {
        bail!(
            "the cluster differs from the backup in the slots of shards {differ:?} (keys with \
             deadlines may have expired since; otherwise restore into a new cluster again)"
        );
    }
    println!("verified: every shard's digest matches the backup");
    Ok(())
}

/// Every slot's digest in the cluster, from each shard's leader.
async fn cluster_digests(router: &Router, at_ms: u64) -> anyhow::Result<BTreeMap<u16, SlotDigest>> {
    let status = router.status.read().await.clone();
    let mut digests = BTreeMap::new();
    for id in admin::shard_ids(&status) {
        let answer = shard_digests(&router.node, id, at_ms).await?;
        for entry in answer["slots"].as_array().into_iter().flatten() {
            let number = |at: usize| entry[at].as_u64().unwrap_or_default();
            digests.insert(
                number(0) as u16,
                SlotDigest {
                    keys: number(1),
                    digest: number(2),
                },
            );
        }
    }
    Ok(digests)
}

/// GET /backup/shards/{id}/digest from the shard's leader.
pub async fn shard_digests(node: &str, id: u64, at_ms: u64) -> anyhow::Result<serde_json::Value> {
    let mut last = String::new();
    for attempt in 1..=10u64 {
        let status = admin::status(node).await?;
        if let Some(addr) = admin::shard_leader_admin(&status, id) {
            let path = format!("/backup/shards/{id}/digest?at_ms={at_ms}");
            let (code, body) = admin::get(&addr, &path, Duration::from_secs(60)).await?;
            if code == 200 {
                return Ok(serde_json::from_slice(&body)?);
            }
            last = String::from_utf8_lossy(&body).into_owned();
        }
        tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
    }
    bail!("no digest of shard {id}: {last}")
}
