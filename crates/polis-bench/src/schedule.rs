//! The open-loop schedule of one connection: request `k` is due at
//! `start + phase + k * interval`, whatever the replies do.
//!
//! A request is sent at its due time if a slot of the connection is free,
//! otherwise as soon as one is, and its latency is measured from the due
//! time: a stall of the target shows in the latencies of every request
//! that should have been sent during it, instead of hiding in fewer
//! requests (coordinated omission). The backlog is bounded: requests due
//! more than `lag_max` ago are skipped and counted as errors.

use std::ops::Range;
use std::time::{Duration, Instant};

/// The next request's due time, and the requests skipped to get there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub due: Instant,
    /// Request numbers skipped because they were due more than `lag_max`
    /// before now.
    pub skipped: Range<u64>,
}

/// Due times of one connection's requests.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The due time of request 0.
    origin: Instant,
    interval_ns: f64,
    lag_max: Duration,
    /// The next request to hand out.
    next: u64,
}

impl Schedule {
    /// Returns the schedule of connection `connection` of `connections`
    /// that together send `rate_per_s` requests per second from `start`.
    /// Connections are shifted by one global interval each, so together
    /// they send evenly spaced requests.
    pub fn new(
        start: Instant,
        rate_per_s: u64,
        connection: usize,
        connections: usize,
        lag_max: Duration,
    ) -> Self {
        let global_interval_ns = 1e9 / rate_per_s.max(1) as f64;
        let phase_ns = global_interval_ns * connection as f64;
        Self {
            origin: start + Duration::from_nanos(phase_ns as u64),
            interval_ns: global_interval_ns * connections.max(1) as f64,
            lag_max,
            next: 0,
        }
    }

    /// Returns the due time of request `k`.
    pub fn due(&self, k: u64) -> Instant {
        self.origin + Duration::from_nanos((k as f64 * self.interval_ns) as u64)
    }

    /// Returns the first request due at or after `at`.
    fn first_due_at_or_after(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin).as_nanos() as f64;
        let mut k = (since / self.interval_ns).ceil() as u64;
        // Float rounding may land one off either way.
        while k > 0 && self.due(k - 1) >= at {
            k -= 1;
        }
        while self.due(k) < at {
            k += 1;
        }
        k
    }

    /// Hands out the next request, skipping those due more than `lag_max`
    /// before `now`.
    pub fn next(&mut self, now: Instant) -> Ticket {
        let first = self.next;
        let oldest_allowed = now.checked_sub(self.lag_max).unwrap_or(self.origin);
        let k = if self.due(first) < oldest_allowed {
            self.first_due_at_or_after(oldest_allowed).max(first)
        } else {
            first
        };
        self.next = k + 1;
        Ticket {
            due: self.due(k),
            skipped: first..k,
        }
    }

    /// Returns how many of `requests` were due in `[from, to)`.
    pub fn count_due_between(&self, requests: &Range<u64>, from: Instant, to: Instant) -> u64 {
        if requests.is_empty() || from >= to {
            return 0;
        }
        let low = self.first_due_at_or_after(from).max(requests.start);
        let high = self.first_due_at_or_after(to).min(requests.end);
        high.saturating_sub(low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG_MAX: Duration = Duration::from_secs(1);

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn due_times_are_evenly_spaced_and_connections_interleave() {
        let start = Instant::now();
        // 1000 requests/s over 4 connections: each sends every 4 ms,
        // connection c shifted by c ms.
        let mut schedules: Vec<Schedule> = (0..4)
            .map(|c| Schedule::new(start, 1000, c, 4, LAG_MAX))
            .collect();
        let mut all = Vec::new();
        for schedule in &mut schedules {
            for _ in 0..5 {
                all.push(schedule.next(start).due);
            }
        }
        all.sort();
        for (k, due) in all.iter().enumerate() {
            let offset = due.duration_since(start);
            assert!(
                offset.abs_diff(ms(k as u64)) < Duration::from_micros(1),
                "request {k} due at {offset:?}"
            );
        }
    }

    #[test]
    fn a_free_slot_gets_the_next_due_time_even_if_it_is_past() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 100, 0, 1, LAG_MAX);
        // 55 ms late: requests 0..5 are overdue but within the lag bound,
        // so they are still handed out, each with its own due time.
        let late = start + ms(55);
        for k in 0..6 {
            let ticket = schedule.next(late);
            assert_eq!(ticket.due, start + ms(10 * k));
            assert!(ticket.skipped.is_empty());
        }
        assert_eq!(schedule.next(late).due, start + ms(60));
    }

    #[test]
    fn a_backlog_past_the_lag_bound_is_skipped_and_counted() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 1000, 0, 1, LAG_MAX);
        assert_eq!(schedule.next(start).due, start);
        // A 3 s stall: requests due before now - 1 s are skipped.
        let now = start + ms(3000);
        let ticket = schedule.next(now);
        assert_eq!(ticket.due, start + ms(2000));
        assert_eq!(ticket.skipped, 1..2000);
        // Of those, the ones due in [0.5 s, 1.5 s) are 1000.
        let counted =
            schedule.count_due_between(&ticket.skipped, start + ms(500), start + ms(1500));
        assert_eq!(counted, 1000);
        // Then it goes on from there.
        assert_eq!(schedule.next(now).due, start + ms(2001));
    }

    #[test]
    fn count_due_between_clips_to_the_window() {
        let start = Instant::now();
        let schedule = Schedule::new(start, 10, 0, 1, LAG_MAX);
        let requests = 0..100;
        assert_eq!(
            schedule.count_due_between(&requests, start, start + ms(1000)),
            10
        );
        assert_eq!(
            schedule.count_due_between(&requests, start + ms(9950), start + ms(20_000)),
            0
        );
        assert_eq!(
            schedule.count_due_between(&(5..7), start, start + ms(60_000)),
            2
        );
        assert_eq!(
            schedule.count_due_between(&(5..5), start, start + ms(60_000)),
            0
        );
    }
}
