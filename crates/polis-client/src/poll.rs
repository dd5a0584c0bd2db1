//! Waiting for a condition with a deadline, for tests and tools: never a
//! fixed sleep.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Polls `probe` every `every` until it returns `Some`, or returns `None`
/// once `timeout` has passed.
pub async fn until<T, F, Fut>(timeout: Duration, every: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut poll = tokio::time::interval(every);
    loop {
        poll.tick().await;
        if let Some(value) = probe().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
    }
}
