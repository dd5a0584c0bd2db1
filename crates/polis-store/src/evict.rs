//! Choosing keys to evict, as Redis's approximated algorithms do, and
//! deleting them.
//!
//! A node over `maxmemory` samples `maxmemory-samples` keys of each
//! keyspace it leads (all keys, or only keys with a deadline, per
//! policy), keeps the best candidates seen in a small pool (Redis's
//! eviction pool of 16) and evicts the best of the pool; random policies
//! take a random key instead, and volatile-ttl the nearest deadlines.
//! Choosing only reads: the leader proposes the keys chosen as one log
//! entry, and [`Db::evict`] deletes them on every replica alike.
//!
//! ```text
//!  keyspaces led ──sample──> pool (16, best last) ──pop best──> victims
//!                                                   (still there? not
//!                                                    chosen already?)
//! ```
//!
//! A sample starts at a random key hash (O(log n) in the hash-ordered
//! map) and walks on: Redis's `dictGetSomeKeys` likewise reads
//! neighbouring buckets from a random one.

use std::collections::HashSet;

use bytes::Bytes;

pub use polis_types::EvictionPolicy;

use crate::access::Tracking;
use crate::db::{entry_bytes, Db, Entry};
use crate::events::class;

/// Times a choice fills the pool afresh when every candidate in it was
/// gone, before it gives up.
const POPULATE_ROUNDS_MAX: usize = 3;
/// Redis's `EVPOOL_SIZE`: candidates the pool keeps.
pub const EVICTION_POOL_SIZE: usize = 16;
/// Keys a volatile sample walks past, at most, looking for keys with a
/// deadline among keys without one; past it the sample takes keys from
/// the deadline index around a random deadline instead.
pub const VOLATILE_WALK_MAX: usize = 1024;
/// Keys a sample scoped to one cache namespace walks past, at most,
/// looking for the namespace's keys among the others.
pub const NAMESPACE_WALK_MAX: usize = 16 * 1024;

/// Returns how keys' access words are kept under this policy, with
/// `lfu-log-factor` and `lfu-decay-time` for the LFU ones.
pub fn tracking_of(policy: EvictionPolicy, log_factor: u32, decay_minutes: u32) -> Tracking {
    if policy.is_lfu() {
        Tracking::Lfu {
            log_factor,
            decay_minutes,
        }
    } else {
        Tracking::Lru
    }
}

/// A key the pool holds: the higher its score, the sooner it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub score: u64,
    /// Which keyspace holds it (the caller's numbering: a shard).
    pub source: u64,
    /// A copy of the key: a clone of the stored `Bytes` would give the
    /// stored key a shared header for good.
    pub key: Bytes,
}

/// Redis's eviction pool: the best candidates sampled so far, in
/// ascending score, kept from one choice to the next.
#[derive(Clone, Debug, Default)]
pub struct EvictionPool {
    candidates: Vec<Candidate>,
}

impl EvictionPool {
    /// Returns the candidates, best last.
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// Adds `candidate` in its place, unless the pool is full of better
    /// ones or holds the key already; the worst goes when it is full.
    pub fn offer(&mut self, candidate: Candidate) {
        let known = self
            .candidates
            .iter()
            .any(|held| held.source == candidate.source && held.key == candidate.key);
        if known {
            return;
        }
        let place = self
            .candidates
            .partition_point(|held| held.score < candidate.score);
        if self.candidates.len() == EVICTION_POOL_SIZE {
            if place == 0 {
                return;
            }
            self.candidates.remove(0);
            self.candidates.insert(place - 1, candidate);
        } else {
            self.candidates.insert(place, candidate);
        }
    }

    /// Takes the best candidate out.
    pub fn pop_best(&mut self) -> Option<Candidate> {
        self.candidates.pop()
    }

    /// Keeps only the candidates whose source `keep` accepts (a shard no
    /// longer led is no longer this node's to evict from).
    pub fn retain_sources(&mut self, keep: impl Fn(u64) -> bool) {
        self.candidates.retain(|candidate| keep(candidate.source));
    }
}

/// One key chosen: its keyspace, the key, and the bytes it frees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Victim {
    pub source: u64,
    pub key: Bytes,
    pub bytes: usize,
}

/// What a choice of victims is bounded by and works with.
#[derive(Clone, Copy, Debug)]
pub struct Choice<'a> {
    /// Only keys counted in the cache namespace of this prefix (see
    /// [`Db::limited_namespace_of`]); None: any key.
    pub within: Option<&'a [u8]>,
    pub policy: EvictionPolicy,
    /// `maxmemory-samples`.
    pub samples: usize,
    /// Stop once the victims free this many bytes.
    pub bytes: usize,
    /// Stop at this many victims.
    pub keys_max: usize,
    pub now_ms: u64,
}

/// Chooses victims over several keyspaces, keeping its pool and its
/// random state from one choice to the next (the leader's own state:
/// nothing here is replicated).
#[derive(Clone, Debug)]
pub struct Evictor {
    pool: EvictionPool,
    rng: u64,
    /// The keyspace a random policy samples next (round-robin).
    next_source: usize,
}

impl Evictor {
    /// Returns an evictor whose random picks follow from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            pool: EvictionPool::default(),
            rng: seed,
            next_source: 0,
        }
    }

    /// Returns the pool.
    pub fn pool(&self) -> &EvictionPool {
        &self.pool
    }

    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.rng;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Chooses keys of `sources` (each a source number and its keyspace)
    /// to evict under `choice`, in the order they should go: until they
    /// free `choice.bytes`, `choice.keys_max` are chosen, or no key may
    /// go (none at all, or none with a deadline for a volatile policy).
    pub fn choose(&mut self, sources: &[(u64, &Db)], choice: Choice<'_>) -> Vec<Victim> {
        let mut victims = Vec::new();
        if !choice.policy.evicts() || sources.is_empty() {
            return victims;
        }
        self.pool
            .retain_sources(|source| sources.iter().any(|(known, _)| *known == source));
        let mut chosen: HashSet<(u64, Bytes)> = HashSet::new();
        let mut freed = 0;
        while freed < choice.bytes && victims.len() < choice.keys_max {
            let victim = if choice.policy.is_random() {
                self.random_victim(sources, choice, &chosen)
            } else {
                self.pooled_victim(sources, choice, &chosen)
            };
            let Some(victim) = victim else {
                break;
            };
            freed += victim.bytes;
            chosen.insert((victim.source, victim.key.clone()));
            victims.push(victim);
        }
        victims
    }

    /// The random policies: a random key of the next keyspace in turn.
    fn random_victim(
        &mut self,
        sources: &[(u64, &Db)],
        choice: Choice<'_>,
        chosen: &HashSet<(u64, Bytes)>,
    ) -> Option<Victim> {
        let volatile = choice.policy.volatile_only();
        for _ in 0..sources.len() {
            let (source, db) = sources[self.next_source % sources.len()];
            self.next_source = self.next_source.wrapping_add(1);
            let seed = self.next_random();
            let mut found = None;
            db.sample(seed, 1, volatile, walk_max(choice), &mut |key, entry| {
                if !within(db, key, choice) {
                    return false;
                }
                let key = Bytes::copy_from_slice(key);
                if chosen.contains(&(source, key.clone())) {
                    return false;
                }
                found = Some(Victim {
                    source,
                    bytes: entry_bytes(&key, entry),
                    key,
                });
                true
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// The LRU, LFU and TTL policies: sample every keyspace into the pool
    /// and take the best candidate that is still there.
    fn pooled_victim(
        &mut self,
        sources: &[(u64, &Db)],
        choice: Choice<'_>,
        chosen: &HashSet<(u64, Bytes)>,
    ) -> Option<Victim> {
        // A pool left holding only keys gone since is filled again: a few
        // rounds, as every one samples afresh.
        for _ in 0..POPULATE_ROUNDS_MAX {
            self.populate(sources, choice, chosen);
            // Bounded by the pool's size: every iteration takes one out.
            while let Some(candidate) = self.pool.pop_best() {
                if let Some(victim) = eligible(sources, choice.policy, chosen, candidate) {
                    return Some(victim);
                }
            }
        }
        None
    }

    /// Samples every keyspace into the pool.
    fn populate(
        &mut self,
        sources: &[(u64, &Db)],
        choice: Choice<'_>,
        chosen: &HashSet<(u64, Bytes)>,
    ) {
        for (source, db) in sources {
            let seed = self.next_random();
            let pool = &mut self.pool;
            let mut offer = |key: &[u8], entry: &Entry| {
                if !within(db, key, choice) {
                    return false;
                }
                let Some(score) = score(db, entry, choice.policy, choice.now_ms) else {
                    return false;
                };
                let key = Bytes::copy_from_slice(key);
                if chosen.contains(&(*source, key.clone())) {
                    return false;
                }
                pool.offer(Candidate {
                    score,
                    source: *source,
                    key,
                });
                true
            };
            if choice.policy == EvictionPolicy::VolatileTtl {
                db.nearest_deadlines(choice.samples, walk_max(choice), &mut offer);
            } else {
                db.sample(
                    seed,
                    choice.samples,
                    choice.policy.volatile_only(),
                    walk_max(choice),
                    &mut offer,
                );
            }
        }
    }
}

/// Returns true when `key` of `db` is in the scope of `choice`.
fn within(db: &Db, key: &[u8], choice: Choice<'_>) -> bool {
    choice.within.is_none_or(|prefix| {
        db.limited_namespace_of(key)
            .is_some_and(|counted| counted.as_ref() == prefix)
    })
}

/// Returns how many keys a sample of `choice` walks past at most.
fn walk_max(choice: Choice<'_>) -> usize {
    if choice.within.is_some() {
        NAMESPACE_WALK_MAX
    } else {
        VOLATILE_WALK_MAX
    }
}

/// Returns `candidate` as a victim if it may still go: its keyspace is
/// among `sources`, it was not chosen already, it is still there (and
/// still has a deadline, for a volatile policy).
fn eligible(
    sources: &[(u64, &Db)],
    policy: EvictionPolicy,
    chosen: &HashSet<(u64, Bytes)>,
    candidate: Candidate,
) -> Option<Victim> {
    let (_, db) = sources
        .iter()
        .find(|(source, _)| *source == candidate.source)?;
    if chosen.contains(&(candidate.source, candidate.key.clone())) {
        return None;
    }
    let (stored, entry) = db.keys.get_key_value(&candidate.key)?;
    if policy.volatile_only() && entry.expire_at_ms().is_none() {
        return None;
    }
    Some(Victim {
        bytes: entry_bytes(stored, entry),
        source: candidate.source,
        key: candidate.key,
    })
}

/// Returns how strongly `entry` should go under `policy` at `now_ms`
/// (higher goes sooner), None when it may not go at all: Redis's idle
/// time for LRU, 255 less the decayed counter for LFU, the distance of
/// the deadline from the end of time for volatile-ttl.
pub fn score(db: &Db, entry: &Entry, policy: EvictionPolicy, now_ms: u64) -> Option<u64> {
    if policy.volatile_only() && entry.expire_at_ms().is_none() {
        return None;
    }
    Some(match policy {
        EvictionPolicy::NoEviction => return None,
        EvictionPolicy::AllKeysLru | EvictionPolicy::VolatileLru => entry.access().idle_ms(now_ms),
        EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu => {
            let decay_minutes = match db.tracking() {
                Tracking::Lfu { decay_minutes, .. } => decay_minutes,
                Tracking::Lru => 0,
            };
            255 - u64::from(entry.access().frequency(now_ms, decay_minutes))
        }
        EvictionPolicy::VolatileTtl => u64::MAX - entry.expire_at_ms().unwrap_or(u64::MAX),
        EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom => 0,
    })
}

impl Db {
    /// Offers keys to `visit` from a random position (`seed`), in hash
    /// order, until it accepted `count` (it returns true for a key it
    /// takes): any key, or with `volatile` only keys with a deadline.
    /// O(log n) to start; a walk passes at most `passed_max` keys it does
    /// not take ([`VOLATILE_WALK_MAX`], or [`NAMESPACE_WALK_MAX`] for a
    /// sample of one namespace), and a volatile sample that found nothing
    /// that way takes keys from the deadline index, around a random
    /// deadline.
    pub fn sample(
        &self,
        seed: u64,
        count: usize,
        volatile: bool,
        passed_max: usize,
        visit: &mut dyn FnMut(&[u8], &Entry) -> bool,
    ) {
        if count == 0 || self.keys.is_empty() || (volatile && self.expires.is_empty()) {
            return;
        }
        let (mut taken, mut passed) = (0, 0);
        for (key, entry) in self.keys.iter_from(seed) {
            if taken == count || passed > passed_max {
                break;
            }
            let offered = !volatile || entry.expire_at_ms().is_some();
            if offered && visit(key, entry) {
                taken += 1;
            } else {
                passed += 1;
            }
        }
        if taken > 0 || !volatile {
            return;
        }
        // Few keys have a deadline: start at a random one of the deadline
        // range instead (biased towards keys after gaps, but bounded).
        let (Some((first, _)), Some((last, _))) = (self.expires.first(), self.expires.last())
        else {
            return;
        };
        let span = last - first;
        let start = first + if span == 0 { 0 } else { seed % (span + 1) };
        let from = (start, Bytes::new());
        let tail = self.expires.range(&from..);
        let head = self.expires.range(..&from);
        let mut passed = 0;
        for (_, key) in tail.chain(head) {
            if taken == count || passed > passed_max {
                break;
            }
            match self.keys.get(key) {
                Some(entry) if visit(key, entry) => taken += 1,
                _ => passed += 1,
            }
        }
    }

    /// Offers `visit` the keys with the nearest deadlines, nearest first,
    /// until it accepted `count` or passed `passed_max` keys.
    pub fn nearest_deadlines(
        &self,
        count: usize,
        passed_max: usize,
        visit: &mut dyn FnMut(&[u8], &Entry) -> bool,
    ) {
        let (mut taken, mut passed) = (0, 0);
        for (_, key) in &self.expires {
            if taken == count || passed > passed_max {
                break;
            }
            match self.keys.get(key) {
                Some(entry) if visit(key, entry) => taken += 1,
                _ => passed += 1,
            }
        }
    }

    /// Evicts `keys`: deletes those present whatever their deadline,
    /// counts each in `evicted_keys` and records its `evicted` event.
    /// Returns how many it deleted.
    pub fn evict(&mut self, keys: &[Bytes]) -> usize {
        let mut evicted = 0;
        for key in keys {
            if self.remove_raw(key).is_some() {
                self.stats.evicted_keys += 1;
                self.notify(class::EVICTED, "evicted", key);
                evicted += 1;
            }
        }
        evicted
    }
}

#[cfg(test)]
#[path = "evict_test.rs"]
mod tests;
