//! `polis backup`: a copy of every shard and of the cluster map, each at
//! one log index of its group (recorded), taken from the groups' leaders
//! while the cluster serves.
//!
//! ```text
//!   DIR/manifest.json     what the backup holds (written last)
//!   DIR/meta.bin          the meta group's snapshot: the cluster map
//!   DIR/shard-N.bin       shard N's snapshot
//!   DIR/namespaces.json   the namespaces, as GET /namespaces lists them
//!   DIR/status.json       the cluster as a node saw it, for people
//! ```
//!
//! Each shard's snapshot holds every write the cluster acknowledged before
//! the backup asked for it (its leader confirms its leadership first,
//! then takes a snapshot at least that recent); shards are taken one after
//! another, so the backup is not one instant across shards. The slots the
//! shards owned must cover every slot exactly once: a backup taken while
//! slots moved is taken again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use polis_client::admin::{self, Method};
use polis_server::backup::ShardHead;
use polis_types::{SlotSet, SLOT_COUNT};
use serde::{Deserialize, Serialize};

/// The manifest's format.
const MANIFEST_FORMAT: u32 = 1;
/// How long one group's snapshot may take to build and send.
const GROUP_TIMEOUT: Duration = Duration::from_secs(660);
/// How many times a group's leader is looked for.
const LEADER_ATTEMPTS: u32 = 20;
/// How many times the whole backup is taken when slots moved under it.
const BACKUP_ATTEMPTS: u32 = 3;

/// Flags of `polis backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Admin HTTP address of any node of the cluster.
    #[arg(long, default_value = "127.0.0.1:7100")]
    pub(crate) node: String,
    /// The directory to write the backup to: created, or empty.
    #[arg(long)]
    pub(crate) to: PathBuf,
}

/// What `manifest.json` says of a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The polis version that took it.
    pub polis_version: String,
    pub cluster_id: Option<String>,
    /// When the backup ended, in ms since the Unix epoch.
    pub taken_at_ms: u64,
    pub meta: GroupFile,
    pub shards: Vec<ShardFile>,
}

/// One group's snapshot in the backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupFile {
    pub file: String,
    /// The log index (and its term) the snapshot holds everything up to.
    pub index: u64,
    pub term: u64,
    /// The group's clock at that index.
    pub time_ms: u64,
    pub bytes: u64,
    /// The xxh3 hash of the file, in hex.
    pub xxh3: String,
}

/// One shard in the backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardFile {
    pub id: u64,
    /// The slots it owned at the index, as ranges.
    pub slots: String,
    pub owned_version: u64,
    /// The keys it stored at the index (some may have expired since).
    pub keys: u64,
    #[serde(flatten)]
    pub group: GroupFile,
}

/// Runs `polis backup`.
pub async fn run(args: BackupArgs) -> anyhow::Result<()> {
    prepare_dir(&args.to)?;
    let started = std::time::Instant::now();
    let mut attempt = 1;
    let manifest = loop {
        match take(&args.node, &args.to).await? {
            Ok(manifest) => break manifest,
            Err(moved) if attempt < BACKUP_ATTEMPTS => {
                eprintln!("{moved}; taking the backup again");
                attempt += 1;
            }
            Err(moved) => bail!(
                "{moved}, {BACKUP_ATTEMPTS} times: run the backup when no slots are moving \
                 (`polis status` lists migrations)"
            ),
        }
    };
    let namespaces = polis_client::admin_namespaces::namespaces(&args.node).await?;
    write_json(&args.to.join("namespaces.json"), &namespaces)?;
    write_json(
        &args.to.join("status.json"),
        &admin::status(&args.node).await?,
    )?;
    write_json(&args.to.join("manifest.json"), &manifest)?;
    let keys: u64 = manifest.shards.iter().map(|shard| shard.keys).sum();
    let bytes: u64 = manifest.shards.iter().map(|shard| shard.group.bytes).sum();
    println!(
        "backed up {} shards ({keys} keys, {bytes} bytes) and the cluster map (meta index {}) \
         to {} in {:.1}s",
        manifest.shards.len(),
        manifest.meta.index,
        args.to.display(),
        started.elapsed().as_secs_f64()
    );
    for shard in &manifest.shards {
        println!(
            "  shard {}: slots {}, {} keys, log index {} (term {})",
            shard.id, shard.slots, shard.keys, shard.group.index, shard.group.term
        );
    }
    Ok(())
}

/// Takes every group once; the inner error says the shards' slots did
/// not add up (slots moved meanwhile).
async fn take(node: &str, dir: &Path) -> anyhow::Result<Result<Manifest, String>> {
    let status = wait_until_still(node).await?;
    let ids = admin::shard_ids(&status);
    let bar = indicatif::ProgressBar::new(ids.len() as u64 + 1);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} groups  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.set_message("the cluster map");
    let meta = fetch(node, None, dir, "meta.bin").await?;
    bar.inc(1);
    let mut shards = Vec::with_capacity(ids.len());
    let mut covered = SlotSet::default();
    let mut overlap = false;
    for id in ids {
        bar.set_message(format!("shard {id}"));
        let file = format!("shard-{id}.bin");
        let group = fetch(node, Some(id), dir, &file).await?;
        let data = std::fs::read(dir.join(&file))?;
        let head = ShardHead::read(&data)
            .map_err(|error| anyhow::anyhow!("shard {id}'s snapshot does not decode: {error}"))?;
        for range in head.owned.ranges() {
            for slot in range.slots() {
                overlap |= covered.contains(slot);
                covered.insert(slot);
            }
        }
        shards.push(ShardFile {
            id,
            slots: polis_cluster::migration::render(&head.owned.ranges()),
            owned_version: head.owned_version,
            keys: head.keys,
            group,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    if overlap || covered.len() != usize::from(SLOT_COUNT) {
        return Ok(Err(format!(
            "the shards' slots did not add up ({} of {SLOT_COUNT} slots{}): slots moved while \
             the backup ran",
            covered.len(),
            if overlap { ", some twice" } else { "" }
        )));
    }
    Ok(Ok(Manifest {
        format: MANIFEST_FORMAT,
        polis_version: env!("CARGO_PKG_VERSION").to_owned(),
        cluster_id: status["cluster_id"].as_str().map(str::to_owned),
        taken_at_ms: polis_server::node::now_ms(),
        meta,
        shards,
    }))
}

/// Waits (a minute at most) until no migration is under way; returns
/// the status that says so.
async fn wait_until_still(node: &str) -> anyhow::Result<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = admin::status(node)
            .await
            .with_context(|| format!("no status from {node}: is it a node's admin address?"))?;
        let moving = status["migrations"].as_array().map_or(0, Vec::len);
        if moving == 0 {
            return Ok(status);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{moving} slot migrations still under way after a minute: back up once they end");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Fetches group `shard`'s snapshot (the meta group's for `None`) from its
/// leader into `dir/file`.
async fn fetch(
    node: &str,
    shard: Option<u64>,
    dir: &Path,
    file: &str,
) -> anyhow::Result<GroupFile> {
    let (name, path) = match shard {
        Some(id) => (format!("shard {id}"), format!("/backup/shards/{id}")),
        None => ("the meta group".to_owned(), "/backup/meta".to_owned()),
    };
    let mut last_refusal = String::new();
    for attempt in 1..=LEADER_ATTEMPTS {
        let status = admin::status(node).await?;
        let addr = match shard {
            Some(id) => admin::shard_leader_admin(&status, id),
            None => status["meta_leader"]
                .as_u64()
                .and_then(|leader| admin::node_admin_addr(&status, leader)),
        };
        let Some(addr) = addr else {
            last_refusal = format!("{name} has no leader");
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            continue;
        };
        let (code, headers, body) =
            admin::exchange(Method::GET, &addr, &path, None, GROUP_TIMEOUT).await?;
        if code == 200 {
            let number = |header: &str| -> anyhow::Result<u64> {
                headers
                    .get(header)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse().ok())
                    .with_context(|| format!("{name}'s snapshot came without {header}"))
            };
            std::fs::write(dir.join(file), &body)
                .with_context(|| format!("cannot write {}", dir.join(file).display()))?;
            return Ok(GroupFile {
                file: file.to_owned(),
                index: number("x-polis-index")?,
                term: number("x-polis-term")?,
                time_ms: number("x-polis-time-ms")?,
                bytes: body.len() as u64,
                xxh3: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&body)),
            });
        }
        last_refusal = String::from_utf8_lossy(&body).into_owned();
        if !matches!(code, 421 | 503) {
            bail!("{name}: {addr} answered {code}: {last_refusal}");
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
    }
    bail!("{name}: no leader gave its snapshot ({last_refusal})")
}

/// Makes `dir`, or checks it is empty: a backup never mixes with another.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty: back up into a new directory",
            dir.display()
        );
    }
    Ok(())
}

fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path)?;
    Ok(())
}
