//! A RESP client that finds the node that can serve it and says, for
//! every command, whether it happened: yes (with the reply), certainly
//! not, or unknown. Checkers need that third answer to be honest: a
//! command whose reply was lost may still have been applied.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Cmd, Pipeline, RedisError, Value};

/// Attempts per command: redirects and refused connections are retried
/// (neither can have applied the command), up to this many times.
const ATTEMPTS_MAX: usize = 6;

/// Pause between attempts while no node can take the command (an
/// election runs, a node restarts).
const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// What became of one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The server replied.
    Ok(Value),
    /// The command certainly did not take effect: refused before it was
    /// sent, redirected every time, or rejected by the server.
    Fail(String),
    /// It may or may not have taken effect: the connection broke or the
    /// reply did not come in time after it was sent.
    Unknown(String),
}

/// Talks to one node at a time from a list, following MOVED redirects
/// and moving on from nodes that refuse.
pub struct Client {
    addrs: Vec<String>,
    current: usize,
    connection: Option<MultiplexedConnection>,
    timeout: Duration,
}

impl Client {
    /// A client of `addrs` (RESP `host:port`), starting at `addrs[start]`,
    /// giving each reply `timeout`.
    pub fn new(addrs: Vec<String>, start: usize, timeout: Duration) -> Self {
        let current = if addrs.is_empty() {
            0
        } else {
            start % addrs.len()
        };
        Self {
            addrs,
            current,
            connection: None,
            timeout,
        }
    }

    /// Returns the address the next command goes to.
    pub fn current_addr(&self) -> Option<&str> {
        self.addrs.get(self.current).map(String::as_str)
    }

    async fn connect(&mut self) -> Result<MultiplexedConnection, String> {
        if let Some(connection) = &self.connection {
            return Ok(connection.clone());
        }
        let addr = self.current_addr().ok_or("no address to connect to")?;
        let client = redis::Client::open(format!("redis://{addr}/")).map_err(|e| e.to_string())?;
        let connection =
            tokio::time::timeout(self.timeout, client.get_multiplexed_async_connection())
                .await
                .map_err(|_| format!("connecting to {addr} timed out"))?
                .map_err(|error| format!("connecting to {addr}: {error}"))?;
        self.connection = Some(connection.clone());
        Ok(connection)
    }

    /// Drops the connection and moves to the next address.
    pub fn rotate(&mut self) {
        self.connection = None;
        if !self.addrs.is_empty() {
            self.current = (self.current + 1) % self.addrs.len();
        }
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

    /// Sends `cmd` and classifies what became of it.
    pub async fn call(&mut self, cmd: &Cmd) -> Outcome {
        let mut last_error = String::from("no attempt");
        for attempt in 0..ATTEMPTS_MAX {
            if attempt > 0 {
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
            let mut connection = match self.connect().await {
                Ok(connection) => connection,
                Err(error) => {
                    // Never sent: it cannot have happened.
                    last_error = error;
                    self.rotate();
                    continue;
                }
            };
            let reply =
                tokio::time::timeout(self.timeout, cmd.query_async::<Value>(&mut connection)).await;
            match reply {
                Ok(Ok(value)) => return Outcome::Ok(value),
                Ok(Err(error)) => match classify(&error) {
                    Verdict::Redirect(addr) => {
                        last_error = error.to_string();
                        self.follow(&addr);
                    }
                    Verdict::NotApplied { retry } => {
                        last_error = error.to_string();
                        self.rotate();
                        if !retry {
                            return Outcome::Fail(last_error);
                        }
                    }
                    Verdict::Rejected => return Outcome::Fail(error.to_string()),
                    Verdict::Unknown => {
                        self.rotate();
                        return Outcome::Unknown(error.to_string());
                    }
                },
                Err(_) => {
                    self.rotate();
                    return Outcome::Unknown(format!("no reply within {:?}", self.timeout));
                }
            }
        }
        Outcome::Fail(last_error)
    }

    /// Sends `pipe` (MULTI, its commands, EXEC: `replies` replies in all)
    /// in one write on one connection, so that a reconnection can never
    /// run the commands outside the transaction, and classifies what
    /// became of it as [`Client::call`] does a command. On success, EXEC's
    /// reply; EXEC's null (a WATCH failed) certainly did nothing.
    pub async fn transaction(&mut self, pipe: &Pipeline, replies: usize) -> Outcome {
        let mut last_error = String::from("no attempt");
        for attempt in 0..ATTEMPTS_MAX {
            if attempt > 0 {
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
            let mut connection = match self.connect().await {
                Ok(connection) => connection,
                Err(error) => {
                    last_error = error;
                    self.rotate();
                    continue;
                }
            };
            let sent = connection.send_packed_commands(pipe, 0, replies);
            let answers = match tokio::time::timeout(self.timeout, sent).await {
                Ok(Ok(answers)) => answers,
                Ok(Err(error)) if error.is_connection_refusal() => {
                    last_error = error.to_string();
                    self.rotate();
                    continue;
                }
                Ok(Err(error)) => {
                    self.rotate();
                    return Outcome::Unknown(error.to_string());
                }
                Err(_) => {
                    self.rotate();
                    return Outcome::Unknown(format!("no reply within {:?}", self.timeout));
                }
            };
            let error = match answers.last() {
                _ if answers.len() != replies => {
                    self.rotate();
                    return Outcome::Unknown(format!("{} replies to a transaction", answers.len()));
                }
                Some(Value::ServerError(error)) => RedisError::from(error.clone()),
                Some(Value::Nil) => return Outcome::Fail("EXEC answered null".into()),
                Some(reply) => match answers.first() {
                    Some(Value::ServerError(error)) => RedisError::from(error.clone()),
                    _ => return Outcome::Ok(reply.clone()),
                },
                None => return Outcome::Unknown("no reply to EXEC".into()),
            };
            last_error = error.to_string();
            // EXECABORT: a command was refused while queued, so nothing
            // ran; its refusal may still say where to go (a replica's
            // READONLY, a MOVED).
            let queued = answers[1..answers.len() - 1]
                .iter()
                .find_map(|answer| match answer {
                    Value::ServerError(error) => Some(RedisError::from(error.clone())),
                    _ => None,
                });
            let verdict = match queued {
                Some(queued) => match classify(&queued) {
                    Verdict::Unknown => Verdict::Rejected,
                    verdict => verdict,
                },
                None => classify(&error),
            };
            match verdict {
                Verdict::Redirect(addr) => self.follow(&addr),
                Verdict::NotApplied { retry: true } => self.rotate(),
                Verdict::NotApplied { retry: false } | Verdict::Rejected => {
                    return Outcome::Fail(last_error)
                }
                Verdict::Unknown => {
                    self.rotate();
                    return Outcome::Unknown(last_error);
                }
            }
        }
        Outcome::Fail(last_error)
    }
}

enum Verdict {
    /// MOVED: another node owns it; nothing happened here.
    Redirect(String),
    /// Refused before anything was applied; `retry` elsewhere may help.
    NotApplied { retry: bool },
    /// The server rejected the command itself (syntax, wrong type, ...).
    Rejected,
    /// Sent, and the reply is lost or says the outcome is unknown.
    Unknown,
}

fn classify(error: &RedisError) -> Verdict {
    if let Some((addr, _slot)) = error.redirect_node() {
        return Verdict::Redirect(addr.to_owned());
    }
    if error.is_connection_refusal() {
        return Verdict::NotApplied { retry: true };
    }
    if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() {
        return Verdict::Unknown;
    }
    let text = error.to_string();
    match error.code() {
        // polis answers these before proposing anything.
        Some("CLUSTERDOWN")
            if text.contains("no leader is known") || text.contains("no cluster map yet") =>
        {
            Verdict::NotApplied { retry: true }
        }
        // polis: the proposal may have been appended before the quorum
        // was lost; Redis Cluster: refused outright, but assume the worse.
        Some("CLUSTERDOWN") => Verdict::Unknown,
        // A replica refuses writes before doing anything.
        Some("READONLY") => Verdict::NotApplied { retry: true },
        Some("TRYAGAIN" | "LOADING" | "MASTERDOWN") => Verdict::NotApplied { retry: true },
        // polis, eventual keys: fewer replicas than the write quorum took
        // the write in time; it is kept and may still take effect.
        Some("OUTCOMEUNKNOWN") => Verdict::Unknown,
        Some(_) => Verdict::Rejected,
        None => Verdict::Unknown,
    }
}
