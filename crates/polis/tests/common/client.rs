//! A test client that follows MOVED and fails over between nodes: a thin
//! layer over polis-client's RESP client, which already classifies every
//! outcome and backs off while no node can take a command.

use std::time::Duration;

use polis_client::resp::{Client, Outcome};
use redis::{Cmd, Value};

/// Talks to whichever node leads, following MOVED and skipping dead nodes.
pub struct FollowingClient {
    client: Client,
}

impl FollowingClient {
    pub fn new(addrs: Vec<String>, start: usize) -> Self {
        Self {
            client: Client::new(addrs, start, Duration::from_secs(2)),
        }
    }

    /// Sends `cmd`. `Ok` means the server acknowledged it; `Err` means it
    /// was not acknowledged (it may or may not have applied). Commands
    /// that certainly did not apply are tried again, `attempts` times.
    pub async fn query(&mut self, cmd: &Cmd, attempts: usize) -> Result<Value, String> {
        let mut last_error = String::from("no attempt");
        for _ in 0..attempts.max(1) {
            match self.client.call(cmd).await {
                Outcome::Ok(value) => return Ok(value),
                Outcome::Fail(error) => last_error = error,
                Outcome::Unknown(error) => return Err(error),
            }
        }
        Err(last_error)
    }

    /// Sends `cmd`, retrying on any error until `timeout`: only for
    /// idempotent commands (SET k v, HSET k f v), where applying twice is
    /// the same as once. Panics if it is never acknowledged.
    pub async fn query_idempotent(&mut self, cmd: &Cmd, timeout: Duration) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.query(cmd, 10).await {
                Ok(value) => return value,
                Err(error) => assert!(
                    std::time::Instant::now() < deadline,
                    "idempotent command not acknowledged within {timeout:?}: {error}"
                ),
            }
        }
    }
}
