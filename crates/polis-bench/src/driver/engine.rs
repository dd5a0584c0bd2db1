//! The request loop. A slot sends a batch of requests and waits for all
//! their replies; a connection has `pipeline` requests in flight either
//! as one slot with batches of `pipeline` (closed loop over RESP: one
//! pipeline write, as redis-benchmark -P does) or as `pipeline` slots with
//! batches of one (open loop, where each request has its own due time, and
//! etcd, whose channel multiplexes concurrent calls).
//!
//! - Closed loop: a slot sends its next batch as soon as the previous one
//!   is answered; latency runs from the send.
//! - Open loop: the slots of a connection take due times from the
//!   connection's [`Schedule`] and send at (or, when all were busy, after)
//!   that time; latency runs from the due time.
//!
//! Requests due (open) or sent (closed) before the end of the warm-up are
//! not recorded; none is started after the end, and at most `ops_max` are
//! recorded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::rngs::StdRng;

use super::resp::lock;
use super::Connection;
use crate::histogram::Recorder;
use crate::keys::KeyChooser;
use crate::limits::{OPEN_LOOP_LAG_MAX, REQUEST_TIMEOUT};
use crate::schedule::Schedule;
use crate::workload::OpMix;

/// The times of a run.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub warmup_end: Instant,
    pub end: Instant,
}

impl Clock {
    fn recorded(&self, at: Instant) -> bool {
        at >= self.warmup_end
    }
}

/// How many more operations may be recorded (`ops_max`).
#[derive(Debug)]
pub struct Budget {
    remaining: AtomicU64,
}

impl Budget {
    pub fn new(ops_max: u64) -> Self {
        Self {
            remaining: AtomicU64::new(ops_max),
        }
    }

    /// Takes up to `wanted` operations from the budget; returns how many
    /// it got (0 once it is spent).
    fn take(&self, wanted: u64) -> u64 {
        let taken = self
            .remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                (left > 0).then(|| left - left.min(wanted))
            });
        match taken {
            Ok(left) => left.min(wanted),
            Err(_) => 0,
        }
    }
}

/// How a slot paces its requests.
#[derive(Clone)]
pub enum Pacing {
    Closed,
    Open(Arc<Mutex<Schedule>>),
}

/// Everything one slot needs.
pub struct Slot {
    pub connection: Connection,
    pub keys: Arc<KeyChooser>,
    pub mix: OpMix,
    pub value: Arc<[u8]>,
    pub rng: StdRng,
    /// Requests sent together and awaited together.
    pub batch: usize,
    pub pacing: Pacing,
    pub recorder: Arc<Mutex<Recorder>>,
    pub budget: Option<Arc<Budget>>,
    pub clock: Clock,
}

impl Slot {
    /// Sends requests until the end, the budget is spent, or the schedule
    /// runs out; returns when the last recorded request finished.
    pub async fn run(mut self) -> Option<Instant> {
        let mut last_recorded = None;
        loop {
            let Some(start) = self.next_start().await else {
                break;
            };
            let recorded = self.clock.recorded(start);
            let mut count = self.batch as u64;
            if let (true, Some(budget)) = (recorded, &self.budget) {
                count = budget.take(count);
                if count == 0 {
                    break;
                }
            }
            let requests: Vec<_> = (0..count)
                .map(|_| (self.mix.next(&mut self.rng), self.keys.next(&mut self.rng)))
                .collect();
            let outcomes = tokio::time::timeout(
                REQUEST_TIMEOUT,
                self.connection.execute_batch(&requests, &self.value),
            )
            .await;
            let done = Instant::now();
            if !recorded {
                continue;
            }
            last_recorded = Some(done);
            let latency = done.saturating_duration_since(start);
            let mut recorder = lock(&self.recorder);
            match outcomes {
                Ok(outcomes) => {
                    for ((op, _), outcome) in requests.iter().zip(outcomes) {
                        match outcome {
                            Ok(()) => recorder.record(*op, latency),
                            Err(error) => {
                                recorder.record_errors(1, &format!("{}: {error}", op.name()))
                            }
                        }
                    }
                }
                Err(_) => {
                    recorder.record_errors(count, &format!("no reply within {REQUEST_TIMEOUT:?}"))
                }
            }
        }
        last_recorded
    }

    /// Returns when the next request starts (closed loop: now; open loop:
    /// its due time, after waiting for it), or None when the run is over.
    async fn next_start(&mut self) -> Option<Instant> {
        let now = Instant::now();
        match &self.pacing {
            Pacing::Closed => (now < self.clock.end).then_some(now),
            Pacing::Open(schedule) => {
                let (ticket, skipped_recorded) = {
                    let mut schedule = lock(schedule);
                    let ticket = schedule.next(now);
                    let skipped = schedule.count_due_between(
                        &ticket.skipped,
                        self.clock.warmup_end,
                        self.clock.end,
                    );
                    (ticket, skipped)
                };
                if skipped_recorded > 0 {
                    lock(&self.recorder).record_errors(
                        skipped_recorded,
                        &format!(
                            "not sent: more than {OPEN_LOOP_LAG_MAX:?} behind the open-loop schedule"
                        ),
                    );
                }
                if ticket.due >= self.clock.end {
                    return None;
                }
                tokio::time::sleep_until(ticket.due.into()).await;
                Some(ticket.due)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_hands_out_exactly_ops_max() {
        let budget = Budget::new(10);
        assert_eq!(budget.take(4), 4);
        assert_eq!(budget.take(4), 4);
        assert_eq!(budget.take(4), 2);
        assert_eq!(budget.take(4), 0);
        assert_eq!(budget.take(1), 0);
    }
}
