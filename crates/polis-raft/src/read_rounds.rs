//! Linearizable reads share ReadIndex rounds. A round (confirm leadership
//! with a quorum, then wait for apply) serves every read that arrived
//! before it started, so concurrent reads cost one round between them
//! instead of one each.
//!
//! Why it stays linearizable: a read waits for a round whose number is
//! higher than the last round started when the read arrived, so the round
//! it uses started after it arrived, as a round of its own would have.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

use crate::group::ProposeError;

/// The rounds of one group.
pub(crate) struct ReadRounds {
    /// The number of the last round started.
    started: AtomicU64,
    /// The last round finished and its outcome; held while a round runs.
    last: Mutex<(u64, Result<(), ProposeError>)>,
}

impl Default for ReadRounds {
    fn default() -> Self {
        Self {
            started: AtomicU64::new(0),
            last: Mutex::new((0, Ok(()))),
        }
    }
}

impl ReadRounds {
    /// Waits for a round that started after this call, running it if no
    /// one else does; `round` performs one.
    pub(crate) async fn read<F, Fut>(&self, round: F) -> Result<(), ProposeError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), ProposeError>>,
    {
        let needed = self.started.load(Ordering::SeqCst) + 1;
        let mut last = self.last.lock().await;
        if last.0 >= needed {
            return last.1.clone();
        }
        let number = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        debug_assert!(number >= needed);
        let outcome = round().await;
        *last = (number, outcome.clone());
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_reads_share_rounds_that_start_after_them() {
        let rounds = Arc::new(ReadRounds::default());
        let performed = Arc::new(AtomicUsize::new(0));
        let mut reads = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let rounds = rounds.clone();
            let performed = performed.clone();
            reads.spawn(async move {
                rounds
                    .read(|| async {
                        performed.fetch_add(1, Ordering::SeqCst);
                        // A round takes a while: let every other read
                        // arrive and queue meanwhile.
                        for _ in 0..100 {
                            tokio::task::yield_now().await;
                        }
                        Ok(())
                    })
                    .await
            });
        }
        while let Some(result) = reads.join_next().await {
            assert!(matches!(result, Ok(Ok(()))));
        }
        let performed = performed.load(Ordering::SeqCst);
        // The first read runs a round alone; everyone who queued behind
        // it shares the second.
        assert!(
            (1..=3).contains(&performed),
            "{performed} rounds for 50 reads"
        );

        // A read arriving after a round finished never reuses it.
        let before = rounds.started.load(Ordering::SeqCst);
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        rounds
            .read(|| async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .await
            .map_err(|error| error.to_string())
            .ok();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(rounds.started.load(Ordering::SeqCst), before + 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_round_fails_the_reads_it_served() {
        let rounds = ReadRounds::default();
        let outcome = rounds
            .read(|| async { Err(ProposeError::Unavailable("no quorum".into())) })
            .await;
        assert!(matches!(outcome, Err(ProposeError::Unavailable(_))));
        // The next read runs a round of its own.
        assert!(rounds.read(|| async { Ok(()) }).await.is_ok());
    }
}
