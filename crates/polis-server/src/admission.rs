//! Admitting DENYOOM writes within the node's `maxmemory`.
//!
//! A write reserves the bytes it brings ([`Admitted`]) until its shard
//! has applied it, so writes admitted together count against the limit
//! before any of them lands: a pipeline of 256 SETs is judged by what
//! the 256 bring, not let through whole because the node was under its
//! limit when it came.
//!
//! ```text
//!  DENYOOM write ──> used + reserved <= maxmemory? ── yes ──────────────> reserve, propose
//!                        │ no
//!                        ├─ noeviction: used > maxmemory ─────────────────> -OOM
//!                        ├─ its bytes within the slack, eviction going ──> wake the loop, reserve, propose
//!                        └─ a round (shared by every writer waiting), then look again
//!                              ├─ nothing evicted and still over ──────────> -OOM
//!                              └─ no room within ROOM_WAIT_MAX ─────────────> -OOM
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use polis_resp::Reply;

use crate::eviction::{make_room, oom, slack};
use crate::node::Node;

/// What a write is taken to add beyond its arguments' bytes: the key's
/// slot in the keyspace.
const WRITE_OVERHEAD_BYTES: u64 = polis_store::entry::KEY_SLOT_BYTES as u64;
/// How long a write waits for eviction to make room before -OOM.
const ROOM_WAIT_MAX: Duration = Duration::from_secs(5);
/// How long a writer waits before looking again when its node's rounds
/// cannot free more (the other leaders are evicting, or admitted writes
/// are still being applied).
const ROOM_RECHECK: Duration = Duration::from_millis(5);

/// Returns the bytes a write of `args` is taken to add.
pub fn estimate(args: &[Bytes]) -> u64 {
    args.iter().map(|arg| arg.len() as u64).sum::<u64>() + WRITE_OVERHEAD_BYTES
}

/// Bytes reserved for admitted writes, given back when dropped (after
/// the writes are applied, or failed).
#[must_use = "the reservation ends when dropped"]
pub struct Admitted<'a> {
    pending: &'a AtomicU64,
    bytes: u64,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.pending.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Admits writes bringing `bytes` on `node`: at once when the node is
/// within its limit, counting the writes admitted before and not yet
/// applied. Over it, writes that stay within the slack ([`slack`]) while
/// eviction frees memory go ahead too, as Redis admits a command while its
/// eviction runs (`EVICT_RUNNING`); further over, they wait for eviction
/// (at most [`ROOM_WAIT_MAX`]).
///
/// # Errors
/// Redis's -OOM reply: the node is over `maxmemory` under noeviction,
/// nothing is left to evict, or no room came in time.
pub async fn admit(node: &Arc<Node>, bytes: u64) -> Result<Admitted<'_>, Reply> {
    let eviction = &node.eviction;
    let reserve = || {
        eviction.pending.fetch_add(bytes, Ordering::AcqRel);
        Admitted {
            pending: &eviction.pending,
            bytes,
        }
    };
    let deadline = Instant::now() + ROOM_WAIT_MAX;
    loop {
        let config = eviction.config();
        let limit = config.maxmemory_bytes;
        if limit == 0 {
            return Ok(reserve());
        }
        let used = eviction.used_memory();
        if !config.policy.evicts() {
            // Redis refuses under noeviction once memory is over, not
            // before the write that takes it over.
            return if used > limit {
                Err(oom())
            } else {
                Ok(reserve())
            };
        }
        let reserved = used + eviction.pending.load(Ordering::Acquire);
        // Within the limit, a write goes ahead even if it takes the node
        // over, as in Redis; the writes admitted and not yet applied count.
        if reserved <= limit {
            return Ok(reserve());
        }
        if reserved + bytes <= limit + slack(&config)
            && eviction.last_round_freed.load(Ordering::Acquire)
        {
            eviction.wake();
            return Ok(reserve());
        }
        let freed = make_room(node).await;
        if !freed && eviction.over(&eviction.config()) > 0 {
            return Err(oom());
        }
        if Instant::now() >= deadline {
            tracing::debug!(bytes, "no room for a write within maxmemory in time");
            return Err(oom());
        }
        if !freed || eviction.used_memory() > limit + slack(&config) {
            tokio::time::sleep(ROOM_RECHECK).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_brings_its_arguments_and_an_entry() {
        let args = [
            Bytes::from_static(b"SET"),
            Bytes::from(vec![b'k'; 10]),
            Bytes::from(vec![b'v'; 100]),
        ];
        assert_eq!(estimate(&args), 113 + WRITE_OVERHEAD_BYTES);
    }

    #[test]
    fn a_reservation_ends_when_dropped() {
        let pending = AtomicU64::new(5);
        pending.fetch_add(7, Ordering::AcqRel);
        let admitted = Admitted {
            pending: &pending,
            bytes: 7,
        };
        assert_eq!(pending.load(Ordering::Acquire), 12);
        drop(admitted);
        assert_eq!(pending.load(Ordering::Acquire), 5);
    }
}
