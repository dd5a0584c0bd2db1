use std::time::Duration;

use tokio::time::Instant;

use super::SnapshotPace;

#[test]
fn no_limit_never_waits() {
    let pace = SnapshotPace::new(0);
    let now = Instant::now();
    for _ in 0..3 {
        assert_eq!(pace.reserve(1 << 30, now), Duration::ZERO);
    }
}

#[test]
fn snapshots_sent_together_wait_for_the_ones_before_them() {
    // 10 MB/s: 20 MB, then 10 MB, then 5 MB reserved at the same moment.
    let pace = SnapshotPace::new(10_000_000);
    let now = Instant::now();
    assert_eq!(pace.reserve(20_000_000, now), Duration::ZERO);
    assert_eq!(pace.reserve(10_000_000, now), Duration::from_secs(2));
    assert_eq!(pace.reserve(5_000_000, now), Duration::from_secs(3));
}

#[test]
fn time_that_passed_is_not_owed_again() {
    let pace = SnapshotPace::new(1_000_000);
    let start = Instant::now();
    assert_eq!(pace.reserve(2_000_000, start), Duration::ZERO);
    // One second later, one second of the first is still to run.
    let later = start + Duration::from_secs(1);
    assert_eq!(pace.reserve(1_000_000, later), Duration::from_secs(1));
    // Long after both: no wait, and no credit saved up for a burst.
    let much_later = start + Duration::from_secs(60);
    assert_eq!(pace.reserve(1_000_000, much_later), Duration::ZERO);
    assert_eq!(pace.reserve(1_000_000, much_later), Duration::from_secs(1));
}
