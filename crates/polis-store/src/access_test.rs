use super::*;

/// A seeded splitmix64 for the draws of a test, printed so a failure
/// can be replayed.
struct Draws(u64);

impl Draws {
    fn seeded(test: &str) -> Self {
        let seed = std::env::var("POLIS_TEST_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or(0x5EED_0FAC_CE55);
        println!("{test}: seed {seed} (replay: POLIS_TEST_SEED={seed})");
        Self(seed)
    }

    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^= mixed >> 31;
        (mixed >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Returns the counter of a new key after `hits` hits.
fn counter_after(hits: u64, log_factor: u32, draws: &mut Draws) -> u8 {
    let mut counter = LFU_INIT_VAL;
    for _ in 0..hits {
        counter = lfu_log_incr(counter, log_factor, draws.unit());
    }
    counter
}

#[test]
fn the_lfu_counter_grows_logarithmically_as_redis_documents() {
    let mut draws = Draws::seeded("lfu growth");
    // Factor 0: every hit counts, up to 255.
    assert_eq!(counter_after(100, 0, &mut draws), LFU_INIT_VAL + 100);
    assert_eq!(counter_after(1_000, 0, &mut draws), 255);
    // redis.conf's table for the default factor 10: 100 hits give 10,
    // 1,000 give 18, 100,000 give 142, 1,000,000 give 255.
    for (hits, low, high) in [
        (100, 8, 12),
        (1_000, 15, 23),
        (100_000, 130, 155),
        (1_000_000, 240, 255),
    ] {
        let counter = counter_after(hits, LFU_LOG_FACTOR_DEFAULT, &mut draws);
        assert!(
            (low..=high).contains(&counter),
            "{hits} hits gave {counter}, expected {low}..={high}"
        );
    }
    // A larger factor needs more hits: factor 100 after 1,000 hits (~10).
    let slow = counter_after(1_000, 100, &mut draws);
    assert!((8..=12).contains(&slow), "{slow}");
    assert_eq!(lfu_log_incr(255, 0, 0.0), 255);
}

#[test]
fn the_lfu_counter_decays_one_step_per_decay_time() {
    assert_eq!(lfu_decay(20, 0, 1), 20);
    assert_eq!(lfu_decay(20, 7, 1), 13);
    assert_eq!(lfu_decay(20, 7, 2), 17, "3 whole periods of 2 minutes");
    assert_eq!(lfu_decay(20, 100, 1), 0);
    assert_eq!(lfu_decay(20, 100, 0), 20, "decay time 0: never");
}

#[test]
fn a_word_reads_back_its_counter_decayed_by_the_minutes_since() {
    let tracking = Tracking::Lfu {
        log_factor: 0,
        decay_minutes: 1,
    };
    let start = 1_000 * 60_000;
    let access = Access::new(tracking, start);
    assert_eq!(access.frequency(start, 1), LFU_INIT_VAL);
    for _ in 0..10 {
        access.touch(tracking, start);
    }
    assert_eq!(access.frequency(start, 1), LFU_INIT_VAL + 10);
    // Three minutes later, three steps lower; reading does not store.
    assert_eq!(access.frequency(start + 3 * 60_000, 1), LFU_INIT_VAL + 7);
    assert_eq!(access.frequency(start, 1), LFU_INIT_VAL + 10);
    // A touch stores the decayed counter plus the hit, stamped now.
    access.touch(tracking, start + 3 * 60_000);
    assert_eq!(access.frequency(start + 3 * 60_000, 1), LFU_INIT_VAL + 8);
    // The minutes wrap at 2^16 as Redis's do.
    let wrapped = Access::new(tracking, 65_535 * 60_000);
    assert_eq!(wrapped.frequency(65_537 * 60_000, 1), LFU_INIT_VAL - 2);
}

#[test]
fn the_lru_clock_gives_idle_time_and_never_a_negative_one() {
    let start = 1_700_000_000_000;
    let access = Access::new(Tracking::Lru, start);
    assert_eq!(access.idle_ms(start), 0);
    assert_eq!(access.idle_ms(start + 2_345), 2_340);
    access.touch(Tracking::Lru, start + 5_000);
    assert_eq!(access.idle_ms(start + 6_000), 1_000);
    // Stamped by a leader whose clock is ahead: idle 0, not ~248 days.
    assert_eq!(access.idle_ms(start + 4_000), 0);
    // The clock wraps at 2^32 units; a difference still reads right.
    let near_wrap = (u64::from(u32::MAX) - 5) * LRU_CLOCK_MS;
    let wrapping = Access::new(Tracking::Lru, near_wrap);
    assert_eq!(wrapping.idle_ms(near_wrap + 100 * LRU_CLOCK_MS), 1_000);
}

#[test]
fn access_words_do_not_make_entries_differ() {
    let early = Access::new(Tracking::Lru, 0);
    let late = Access::new(Tracking::Lru, 1_000_000);
    assert_eq!(early, late);
    assert_eq!(late.clone().raw(), late.raw());
}
