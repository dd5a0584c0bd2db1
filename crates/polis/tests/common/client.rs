//! A test client that follows MOVED and fails over between nodes, and
//! classifies every outcome as acknowledged or indeterminate.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Cmd, RedisResult, Value};

/// How long to wait before retrying after a refused connection or while
/// no leader is known.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Talks to whichever node leads, following MOVED and skipping dead nodes.
pub struct FollowingClient {
    addrs: Vec<String>,
    current: usize,
    connection: Option<MultiplexedConnection>,
    timeout: Duration,
}

impl FollowingClient {
    pub fn new(addrs: Vec<String>, start: usize) -> Self {
        Self {
            addrs,
            current: start,
            connection: None,
            timeout: Duration::from_secs(2),
        }
    }

    async fn connection(&mut self) -> RedisResult<&mut MultiplexedConnection> {
        if self.connection.is_none() {
            let client = redis::Client::open(format!("redis://{}/", self.addrs[self.current]))?;
            let connect = client.get_multiplexed_async_connection();
            let connection =
                tokio::time::timeout(self.timeout, connect)
                    .await
                    .map_err(|_| {
                        redis::RedisError::from(std::io::Error::other("connect timed out"))
                    })??;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("just connected"))
    }

    fn rotate(&mut self) {
        self.connection = None;
        self.current = (self.current + 1) % self.addrs.len();
    }

    fn follow(&mut self, addr: &str) {
        self.connection = None;
        match self.addrs.iter().position(|known| known == addr) {
            Some(index) => self.current = index,
            None => {
                self.addrs.push(addr.to_owned());
                self.current = self.addrs.len() - 1;
            }
        }
    }

    /// Sends `cmd` once. `Ok` means the server acknowledged it; `Err`
    /// means the outcome is unknown (it may or may not have applied).
    /// Redirects are followed up to `attempts` times; a redirect is a
    /// definite "not applied", so retrying after one is safe.
    pub async fn query(&mut self, cmd: &Cmd, attempts: usize) -> Result<Value, String> {
        let mut last_error = String::from("no attempt");
        let timeout = self.timeout;
        for _ in 0..attempts {
            let connection = match self.connection().await {
                Ok(connection) => connection,
                Err(error) => {
                    last_error = error.to_string();
                    self.rotate();
                    tokio::time::sleep(RETRY_BACKOFF).await; // retry-backoff
                    continue;
                }
            };
            let result = tokio::time::timeout(timeout, cmd.query_async::<Value>(connection)).await;
            match result {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => {
                    if let Some((addr, _slot)) = error.redirect_node() {
                        let addr = addr.to_owned();
                        self.follow(&addr);
                        last_error = error.to_string();
                        continue;
                    }
                    let text = error.to_string();
                    let never_applied =
                        text.contains("no leader is known") || error.is_connection_refusal();
                    self.rotate();
                    if never_applied {
                        last_error = text;
                        // Back off while an election runs: a retry policy,
                        // not synchronization.
                        tokio::time::sleep(RETRY_BACKOFF).await; // retry-backoff
                        continue;
                    }
                    return Err(text);
                }
                Err(_) => {
                    self.rotate();
                    return Err("timed out".into());
                }
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
