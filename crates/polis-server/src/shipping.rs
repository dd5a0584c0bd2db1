//! Shipping a migration's keys from the source's leader to the target's
//! leader in chunks (up to [`WINDOW`] in flight, paced by
//! `--migration-bytes-per-sec`), and staging them there: each chunk is
//! one `Stage` entry of the target, committed before it counts as sent.
//! A collection larger than a chunk travels in parts of a chunk's size:
//! its first part as a key of its own, the others in `StageParts`
//! entries, one at a time.

use std::sync::Arc;
use std::time::Duration;

use polis_cluster::Migration;
use polis_types::{GroupId, SlotSet};
use tokio::time::Instant;

use crate::machine::Op;
use crate::migrate::{current, note, propose, ATTEMPTS_MAX, RETRY_AFTER};
use crate::migrating::ShippedKey;
use crate::node::{Node, ShardGroup};
use crate::rpc::{self, NodeAnswer, NodeRequest};

/// Keys read from the source's keyspace per page of the copy.
const PAGE_KEYS: usize = 1024;
/// Bytes of keys per `Stage` entry, at most (a larger single key goes
/// alone).
const CHUNK_BYTES: usize = 1 << 20;
/// How long the target's leader may take to stage one chunk.
const STAGE_TIMEOUT: Duration = Duration::from_secs(3);
/// Chunks in flight to the target at once (its leader batches them into
/// fewer appends and fsyncs).
const WINDOW: usize = 4;

/// Ships keys to the target's leader in chunks.
pub(crate) struct Sender {
    node: Arc<Node>,
    id: u64,
    target: GroupId,
    slots: SlotSet,
    reset: bool,
    sent_bytes: u64,
    started: Instant,
    in_flight: futures::stream::FuturesUnordered<InFlight>,
}

impl Sender {
    pub(crate) fn new(node: &Arc<Node>, migration: &Migration, slots: SlotSet) -> Self {
        Self {
            node: node.clone(),
            id: migration.id,
            target: migration.target,
            slots,
            reset: true,
            sent_bytes: 0,
            started: Instant::now(),
            in_flight: futures::stream::FuturesUnordered::new(),
        }
    }

    /// Copies every key of the slots; returns the log index from which
    /// changes must still be shipped. A chunk is labelled with the index
    /// its first page was read at: the earliest of its keys'.
    pub(crate) async fn copy_all(&mut self, group: &ShardGroup) -> Result<u64, String> {
        let mut cursor = 0;
        let mut mark = None;
        let mut chunk: Vec<ShippedKey> = Vec::new();
        let mut chunk_read_at = None;
        let mut bytes = 0;
        loop {
            let (page, next, read_at) = {
                let state = group.state().read();
                let read_at = state.last_applied.map_or(0, |log_id| log_id.index);
                mark.get_or_insert(read_at);
                let (page, next) = state
                    .app
                    .migrations
                    .copy_page(&state.app.db, cursor, PAGE_KEYS);
                (page, next, read_at)
            };
            if self.reset {
                // The staging starts over at the first page's index, before
                // any key goes (a large key's parts go ahead of the chunk
                // its page's other keys wait in).
                self.stage(Vec::new(), read_at, 0).await?;
            }
            for key in page {
                let Some(key) = self.ship_in_parts(key, read_at).await? else {
                    continue;
                };
                let first = *chunk_read_at.get_or_insert(read_at);
                bytes += shipped_bytes(&key);
                chunk.push(key);
                if bytes >= CHUNK_BYTES {
                    self.stage(std::mem::take(&mut chunk), first, bytes).await?;
                    chunk_read_at = None;
                    bytes = 0;
                }
            }
            let copied = if next == 0 {
                1.0
            } else {
                next as f64 / u64::MAX as f64
            };
            note(&self.node, self.id, |progress| progress.copied = copied);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mark = mark.unwrap_or(0);
        if !chunk.is_empty() || self.reset {
            self.stage(chunk, chunk_read_at.unwrap_or(mark), bytes)
                .await?;
        }
        self.flush().await?;
        Ok(mark)
    }

    /// Ships `keys`, read at the source's log index `read_at`, in chunks.
    pub(crate) async fn send(&mut self, keys: Vec<ShippedKey>, read_at: u64) -> Result<(), String> {
        let mut chunk = Vec::new();
        let mut bytes = 0;
        for key in keys {
            let Some(key) = self.ship_in_parts(key, read_at).await? else {
                continue;
            };
            bytes += shipped_bytes(&key);
            chunk.push(key);
            if bytes >= CHUNK_BYTES {
                self.stage(std::mem::take(&mut chunk), read_at, bytes)
                    .await?;
                bytes = 0;
            }
        }
        if !chunk.is_empty() {
            self.stage(chunk, read_at, bytes).await?;
        }
        self.flush().await
    }

    /// Ships a collection too large for one chunk in parts, read at
    /// `read_at`: the first as a key of its own, then each later part once
    /// the one before it committed (a part adds to what those before it
    /// staged). Returns any other key untouched, for a chunk.
    async fn ship_in_parts(
        &mut self,
        key: ShippedKey,
        read_at: u64,
    ) -> Result<Option<ShippedKey>, String> {
        let Some((entry, parts)) = key.1.as_ref().and_then(|entry| entry.split(CHUNK_BYTES)) else {
            return Ok(Some(key));
        };
        let key = key.0;
        let bytes = entry.value.mem_bytes();
        self.stage(vec![(key.clone(), Some(entry))], read_at, bytes)
            .await?;
        self.flush().await?;
        for part in parts {
            let bytes = part.mem_bytes();
            let request = NodeRequest::StageParts {
                shard: self.target,
                migration: self.id,
                slots: self.slots.clone(),
                read_at,
                parts: vec![(key.clone(), part)],
            };
            self.send_request(request, 0, bytes).await?;
            self.flush().await?;
        }
        Ok(None)
    }

    /// Stages one chunk on the target's leader, with up to [`WINDOW`]
    /// chunks in flight (the first, which resets the staging, alone);
    /// [`Sender::flush`] waits for them all.
    async fn stage(
        &mut self,
        keys: Vec<ShippedKey>,
        read_at: u64,
        bytes: usize,
    ) -> Result<(), String> {
        let count = keys.len() as u64;
        let request = NodeRequest::Stage {
            shard: self.target,
            migration: self.id,
            slots: self.slots.clone(),
            reset: self.reset,
            read_at,
            keys,
        };
        self.send_request(request, count, bytes).await
    }

    /// Sends one staging request of `count` keys and `bytes` bytes.
    async fn send_request(
        &mut self,
        request: NodeRequest,
        count: u64,
        bytes: usize,
    ) -> Result<(), String> {
        let staging = stage_chunk(self.node.clone(), self.id, self.target, request);
        let staging: InFlight = Box::pin(async move { staging.await.map(|()| (count, bytes)) });
        if self.reset {
            let done = staging.await?;
            self.reset = false;
            self.account(done).await;
            return Ok(());
        }
        self.in_flight.push(staging);
        while self.in_flight.len() >= WINDOW {
            self.complete_one().await?;
        }
        Ok(())
    }

    /// Waits for every chunk in flight.
    async fn flush(&mut self) -> Result<(), String> {
        while !self.in_flight.is_empty() {
            self.complete_one().await?;
        }
        Ok(())
    }

    async fn complete_one(&mut self) -> Result<(), String> {
        use futures::StreamExt;
        if let Some(done) = self.in_flight.next().await {
            let done = done?;
            self.account(done).await;
        }
        Ok(())
    }

    /// Counts a staged chunk and sleeps as long as the bytes shipped so
    /// far are ahead of the limit.
    async fn account(&mut self, (count, bytes): (u64, usize)) {
        self.sent_bytes += bytes as u64;
        note(&self.node, self.id, |progress| {
            progress.keys_sent += count;
            progress.bytes_sent += bytes as u64;
        });
        let limit = self.node.config.migration_bytes_per_sec;
        if limit == 0 {
            return;
        }
        let due = Duration::from_secs_f64(self.sent_bytes as f64 / limit as f64);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

/// A chunk being staged: its keys and bytes once committed.
type InFlight =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(u64, usize), String>> + Send>>;

/// Stages one chunk on the target's leader (committed there when this
/// returns), trying again while the leader changes.
async fn stage_chunk(
    node: Arc<Node>,
    id: u64,
    target: GroupId,
    request: NodeRequest,
) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..ATTEMPTS_MAX {
        if current(&node, id).is_none() {
            return Err("the migration ended".into());
        }
        match stage_once(&node, target, &request).await {
            Ok(()) => return Ok(()),
            Err(StageError::Refused(reason)) => return Err(reason),
            Err(StageError::Retry(reason)) => {
                tracing::debug!(migration = id, %reason, "staging tried again");
                last = reason;
            }
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
    Err(last)
}

async fn stage_once(
    node: &Arc<Node>,
    target: GroupId,
    request: &NodeRequest,
) -> Result<(), StageError> {
    let leader = node
        .leaders()
        .get(&target)
        .copied()
        .ok_or_else(|| StageError::Retry(format!("shard {target} has no known leader")))?;
    let answer = if leader == node.config.node_id {
        rpc::answer(node, leader, request.clone()).await
    } else {
        let addr = node
            .peer_addr(leader)
            .ok_or_else(|| StageError::Retry(format!("no address for node {leader}")))?;
        rpc::call_within(node, &addr, request, STAGE_TIMEOUT)
            .await
            .map_err(StageError::Retry)?
    };
    match answer {
        NodeAnswer::Changed(_) => Ok(()),
        NodeAnswer::Refused(reason) => Err(StageError::Refused(reason)),
        NodeAnswer::Retry(reason) => Err(StageError::Retry(reason)),
        other => Err(StageError::Retry(format!("unexpected answer {other:?}"))),
    }
}

/// Why a chunk was not staged.
enum StageError {
    /// For good: the migration ended.
    Refused(String),
    /// For now: a leader is changing.
    Retry(String),
}

fn shipped_bytes((key, entry): &ShippedKey) -> usize {
    key.len() + entry.as_ref().map_or(0, |entry| entry.value.mem_bytes()) + 16
}

/// Proposes `op` (a `Stage` or `StageParts` of `migration`) on shard
/// `shard`, which this node leads (the target of a migration): answers
/// once the entry applied.
pub(crate) async fn stage(node: &Arc<Node>, shard: GroupId, migration: u64, op: Op) -> NodeAnswer {
    let Some(group) = node.shard(shard).filter(|group| group.is_leader()) else {
        return NodeAnswer::Retry(format!("this node does not lead shard {shard}"));
    };
    if node
        .view()
        .is_some_and(|view| view.map().migration_ended(migration))
    {
        return NodeAnswer::Refused(format!("migration {migration} ended"));
    }
    match propose(&group, &op).await {
        Ok(_) => NodeAnswer::Changed(node.map.version()),
        Err(error) => NodeAnswer::Retry(error),
    }
}
