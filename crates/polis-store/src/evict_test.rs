use std::collections::BTreeSet;

use bytes::Bytes;

use super::*;
use crate::value::Value;

const T0: u64 = 1_700_000_000_000;

fn key(index: usize) -> Bytes {
    Bytes::from(format!("key:{index}"))
}

fn value() -> Value {
    Value::String(Bytes::from_static(b"value"))
}

/// Returns the seed of a test's random picks, printed for replay.
fn seed(test: &str) -> u64 {
    let seed = std::env::var("POLIS_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(42);
    println!("{test}: seed {seed} (replay: POLIS_TEST_SEED={seed})");
    seed
}

/// Returns a keyspace of `count` keys written at `T0`, none with a
/// deadline.
fn keyspace(count: usize, tracking: Tracking) -> Db {
    let mut db = Db::new();
    db.set_tracking(tracking);
    for index in 0..count {
        db.insert(key(index), value(), None, T0);
    }
    db
}

fn choice(policy: EvictionPolicy, samples: usize, keys_max: usize) -> Choice<'static> {
    Choice {
        within: None,
        policy,
        samples,
        bytes: usize::MAX,
        keys_max,
        now_ms: T0 + 60_000,
    }
}

fn keys_of(victims: &[Victim]) -> Vec<Bytes> {
    victims.iter().map(|victim| victim.key.clone()).collect()
}

#[test]
fn lru_picks_the_least_recently_touched_of_the_samples() {
    let db = keyspace(50, Tracking::Lru);
    for index in (0..50).filter(|index| *index != 7) {
        assert!(db.get(&key(index), T0 + 1_000).is_some());
    }
    let mut evictor = Evictor::new(seed("lru"));
    // Sampling every key, the one not read since it was written goes.
    let sources = [(1, &db)];
    let victims = evictor.choose(&sources, choice(EvictionPolicy::AllKeysLru, 50, 1));
    assert_eq!(keys_of(&victims), vec![key(7)]);
}

#[test]
fn lru_with_five_samples_evicts_mostly_the_untouched() {
    let db = keyspace(2_000, Tracking::Lru);
    // The first half is read later; the second half stays as written.
    for index in 0..1_000 {
        db.get(&key(index), T0 + 5_000);
    }
    let mut evictor = Evictor::new(seed("lru five samples"));
    let sources = [(1, &db)];
    let victims = evictor.choose(&sources, choice(EvictionPolicy::AllKeysLru, 5, 200));
    assert_eq!(victims.len(), 200);
    let untouched = victims
        .iter()
        .filter(|victim| {
            let index: usize = std::str::from_utf8(&victim.key[4..])
                .unwrap()
                .parse()
                .unwrap();
            index >= 1_000
        })
        .count();
    assert!(
        untouched >= 190,
        "only {untouched} of 200 victims were untouched"
    );
    let distinct: BTreeSet<Bytes> = keys_of(&victims).into_iter().collect();
    assert_eq!(distinct.len(), 200, "a key chosen twice");
}

#[test]
fn lfu_picks_the_least_frequently_used() {
    // Factor 0: every hit counts, so the counters are exact.
    let tracking = Tracking::Lfu {
        log_factor: 0,
        decay_minutes: 1,
    };
    let db = keyspace(40, tracking);
    for index in 0..40 {
        for _ in 0..(index % 9) + 1 {
            db.get(&key(index), T0);
        }
    }
    // key:17 and key:26 were read 9 times... key:9, key:18, key:27 and
    // key:36 once, key:0 too: the least used goes first.
    let mut evictor = Evictor::new(seed("lfu"));
    let sources = [(1, &db)];
    let victims = evictor.choose(&sources, choice(EvictionPolicy::AllKeysLfu, 40, 5));
    let once: BTreeSet<Bytes> = [0, 9, 18, 27, 36].into_iter().map(key).collect();
    assert_eq!(keys_of(&victims).into_iter().collect::<BTreeSet<_>>(), once);
    assert_eq!(
        score(
            &db,
            db.peek(&key(0), T0).unwrap(),
            EvictionPolicy::AllKeysLfu,
            T0
        ),
        Some(255 - 6)
    );
}

#[test]
fn volatile_ttl_takes_the_nearest_deadlines_first() {
    let mut db = keyspace(100, Tracking::Lru);
    for index in 0..30 {
        // Deadlines in no particular order of the keys.
        let deadline = T0 + 1_000_000 + ((index * 7919) % 30) as u64 * 1_000;
        db.set_expire(&key(index), Some(deadline), T0);
    }
    let mut nearest: Vec<(u64, Bytes)> = (0..30)
        .map(|index| {
            let entry = db.peek(&key(index), T0).unwrap();
            (entry.expire_at_ms().unwrap(), key(index))
        })
        .collect();
    nearest.sort();
    let mut evictor = Evictor::new(seed("ttl"));
    let sources = [(1, &db)];
    let victims = evictor.choose(&sources, choice(EvictionPolicy::VolatileTtl, 5, 10));
    let expected: Vec<Bytes> = nearest.into_iter().take(10).map(|(_, key)| key).collect();
    assert_eq!(keys_of(&victims), expected);
}

#[test]
fn volatile_policies_never_choose_keys_without_a_deadline() {
    for policy in [
        EvictionPolicy::VolatileLru,
        EvictionPolicy::VolatileLfu,
        EvictionPolicy::VolatileRandom,
        EvictionPolicy::VolatileTtl,
    ] {
        let mut db = keyspace(3_000, crate::tracking_of(policy, 10, 1));
        // Few keys with a deadline, so samples walk far or fall back on
        // the deadline index.
        let volatile: BTreeSet<Bytes> = (0..3_000).step_by(400).map(key).collect();
        for key in &volatile {
            db.set_expire(key, Some(T0 + 3_600_000), T0);
        }
        let mut evictor = Evictor::new(seed(policy.name()));
        let sources = [(1, &db)];
        let victims = evictor.choose(&sources, choice(policy, 5, 100));
        let chosen: BTreeSet<Bytes> = keys_of(&victims).into_iter().collect();
        assert_eq!(
            chosen.len(),
            victims.len(),
            "{policy:?}: a key chosen twice"
        );
        assert!(
            chosen.is_subset(&volatile),
            "{policy:?} chose keys without a deadline: {chosen:?}"
        );
        assert_eq!(chosen, volatile, "{policy:?}: every volatile key may go");
        // Without any key with a deadline, nothing may go.
        let plain = keyspace(100, crate::tracking_of(policy, 10, 1));
        let sources = [(1, &plain)];
        assert!(evictor.choose(&sources, choice(policy, 5, 10)).is_empty());
    }
}

#[test]
fn random_picks_follow_the_seed() {
    let db = keyspace(1_000, Tracking::Lru);
    let sources = [(1, &db)];
    let picks = |seed| {
        let mut evictor = Evictor::new(seed);
        keys_of(&evictor.choose(&sources, choice(EvictionPolicy::AllKeysRandom, 5, 20)))
    };
    let seed = seed("random");
    assert_eq!(picks(seed), picks(seed));
    assert_ne!(picks(seed), picks(seed ^ 1));
    let distinct: BTreeSet<Bytes> = picks(seed).into_iter().collect();
    assert_eq!(distinct.len(), 20);
}

#[test]
fn a_choice_stops_at_the_bytes_asked_for() {
    let db = keyspace(100, Tracking::Lru);
    let sources = [(1, &db)];
    let one = entry_bytes(&key(1), db.peek(&key(1), T0).unwrap());
    let mut evictor = Evictor::new(seed("bytes"));
    let mut bounded = choice(EvictionPolicy::AllKeysLru, 5, 100);
    bounded.bytes = one * 3 + 1;
    let victims = evictor.choose(&sources, bounded);
    let freed: usize = victims.iter().map(|victim| victim.bytes).sum();
    let last = victims.last().map_or(0, |victim| victim.bytes);
    assert!(freed >= bounded.bytes, "{victims:?}");
    assert!(
        freed - last < bounded.bytes,
        "one victim too many: {victims:?}"
    );
    assert!((3..=4).contains(&victims.len()), "{victims:?}");
    bounded.policy = EvictionPolicy::NoEviction;
    assert!(evictor.choose(&sources, bounded).is_empty());
}

#[test]
fn the_pool_chooses_across_keyspaces() {
    let old = keyspace(100, Tracking::Lru);
    let mut young = Db::new();
    for index in 100..200 {
        young.insert(key(index), value(), None, T0 + 30_000);
    }
    let sources = [(1, &old), (2, &young)];
    let mut evictor = Evictor::new(seed("sources"));
    let victims = evictor.choose(&sources, choice(EvictionPolicy::AllKeysLru, 5, 30));
    assert_eq!(victims.len(), 30);
    assert!(
        victims.iter().all(|victim| victim.source == 1),
        "the younger keyspace lost keys first: {victims:?}"
    );
    // A keyspace no longer offered loses its candidates in the pool.
    let sources = [(2, &young)];
    let victims = evictor.choose(&sources, choice(EvictionPolicy::AllKeysLru, 5, 3));
    assert!(victims.iter().all(|victim| victim.source == 2));
}

#[test]
fn the_pool_keeps_the_best_candidates_in_order() {
    let mut pool = EvictionPool::default();
    for score in [5, 50, 1, 40, 3] {
        pool.offer(Candidate {
            score,
            source: 1,
            key: key(score as usize),
        });
    }
    for score in 100..(100 + EVICTION_POOL_SIZE as u64) {
        pool.offer(Candidate {
            score,
            source: 1,
            key: key(score as usize),
        });
    }
    let scores: Vec<u64> = pool.candidates().iter().map(|held| held.score).collect();
    let expected: Vec<u64> = (100..(100 + EVICTION_POOL_SIZE as u64)).collect();
    assert_eq!(scores, expected, "the worst made way for better ones");
    // Worse than everything held: not taken. Held already: not twice.
    pool.offer(Candidate {
        score: 0,
        source: 1,
        key: key(0),
    });
    pool.offer(Candidate {
        score: 200,
        source: 1,
        key: key(115),
    });
    assert_eq!(pool.candidates().len(), EVICTION_POOL_SIZE);
    assert_eq!(pool.candidates()[0].score, 100);
    assert_eq!(pool.pop_best().map(|best| best.score), Some(115));
}

#[test]
fn evict_deletes_whatever_the_deadline_and_counts_and_records() {
    let mut db = keyspace(5, Tracking::Lru);
    db.set_expire(&key(1), Some(T0 + 1_000_000), T0);
    // Past its deadline but not yet deleted: eviction takes it as it is.
    db.set_expire(&key(2), Some(T0 - 1), T0 - 10);
    db.set_events_mask(crate::events::class::EVICTED);
    let evicted = db.evict(&[key(0), key(1), key(2), key(99)]);
    assert_eq!(evicted, 3);
    assert_eq!(db.stats().evicted_keys, 3);
    assert_eq!(db.stats().expired_keys, 0);
    assert_eq!(db.len(), 2);
    assert_eq!(db.expires_len(), 0);
    let events: Vec<(&str, Bytes)> = db
        .take_events()
        .into_iter()
        .map(|event| (event.event, event.key))
        .collect();
    assert_eq!(
        events,
        vec![
            ("evicted", key(0)),
            ("evicted", key(1)),
            ("evicted", key(2))
        ]
    );
    assert_eq!(db.used_memory(), {
        let rest = [key(3), key(4)];
        rest.iter()
            .map(|key| entry_bytes(key, db.peek(key, T0).unwrap()))
            .sum::<usize>()
    });
}

#[test]
fn policies_parse_by_their_redis_names() {
    for policy in EvictionPolicy::ALL {
        assert_eq!(EvictionPolicy::parse(policy.name()), Some(policy));
    }
    assert_eq!(
        EvictionPolicy::parse("allkeys-lfu").map(EvictionPolicy::is_lfu),
        Some(true)
    );
    assert_eq!(EvictionPolicy::parse("lru"), None);
}
