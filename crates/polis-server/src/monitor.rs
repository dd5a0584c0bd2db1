//! MONITOR: clients that see every command this node runs, one status
//! line per command, as Redis writes them:
//!
//! ```text
//! +1700000000.123456 [0 127.0.0.1:52100] "set" "k" "v"
//! ```
//!
//! A line reaches each monitor through its pub/sub mailbox
//! ([`crate::pubsub::Mailbox`]): the connection writes it between
//! replies, and a monitor that does not read is disconnected once its
//! waiting lines pass `client-output-buffer-limit`'s pubsub class, as a
//! subscriber is. (Redis counts monitors as normal clients, whose default
//! limit is none; polis bounds every queue.)
//!
//! Commands that run while nobody monitors pay one atomic load: the
//! connection checks [`Monitors::active`] before it keeps or formats
//! anything.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use tokio::time::Instant;

use crate::pubsub::{Mailbox, OutputLimit};

/// Bytes a line is counted as beyond its text (the `+` and `\r\n`, with
/// room to spare), against the output limit.
const LINE_OVERHEAD_BYTES: u64 = 16;

#[derive(Default)]
struct State {
    limit: OutputLimit,
    /// Each monitor's mailbox, by client id.
    mailboxes: BTreeMap<u64, Arc<Mailbox>>,
}

/// The node's monitors.
#[derive(Default)]
pub struct Monitors {
    /// How many monitors there are: read before any work for them.
    count: AtomicUsize,
    state: Mutex<State>,
}

impl Monitors {
    /// Returns a registry without monitors that disconnects those past
    /// `limit`.
    pub fn new(limit: OutputLimit) -> Self {
        let monitors = Self::default();
        monitors.set_output_limit(limit);
        monitors
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets the output limit that lines from now on are checked against.
    pub fn set_output_limit(&self, limit: OutputLimit) {
        self.lock().limit = limit;
    }

    /// Returns true when at least one client monitors.
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// Makes client `id` a monitor: its mailbox gets every line from now.
    pub fn add(&self, id: u64, mailbox: &Arc<Mailbox>) {
        let mut state = self.lock();
        state.mailboxes.insert(id, mailbox.clone());
        self.count.store(state.mailboxes.len(), Ordering::Relaxed);
    }

    /// Stops client `id` monitoring (RESET, or it disconnected).
    pub fn remove(&self, id: u64) {
        let mut state = self.lock();
        state.mailboxes.remove(&id);
        self.count.store(state.mailboxes.len(), Ordering::Relaxed);
    }

    /// Returns true when client `id` monitors.
    pub fn contains(&self, id: u64) -> bool {
        self.lock().mailboxes.contains_key(&id)
    }

    /// Gives `line` to every monitor; forgets those it puts past their
    /// output limit (their connections close).
    pub fn feed(&self, line: &str) {
        let mut state = self.lock();
        let limit = state.limit;
        let now = Instant::now();
        let bytes = line.len() as u64 + LINE_OVERHEAD_BYTES;
        let mut overflowed = Vec::new();
        for (id, mailbox) in &state.mailboxes {
            if !mailbox.deliver(Reply::Simple(line.to_owned()), bytes, &limit, now) {
                overflowed.push(*id);
            }
        }
        for id in overflowed {
            state.mailboxes.remove(&id);
        }
        self.count.store(state.mailboxes.len(), Ordering::Relaxed);
    }
}

/// Returns the microseconds since the Unix epoch, by the wall clock.
pub fn now_usec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as u64)
        .unwrap_or(0)
}

/// Returns the line a monitor sees for `args` sent by the client at
/// `peer` (`ip:port`) at `unix_usec`: the time, the database (always 0)
/// and the peer, then each argument quoted.
pub fn line(unix_usec: u64, peer: &str, args: &[Bytes]) -> String {
    let quoted: usize = args.iter().map(|arg| arg.len() + 3).sum();
    let mut line = String::with_capacity(32 + peer.len() + quoted);
    let _ = write!(
        line,
        "{}.{:06} [0 {peer}]",
        unix_usec / 1_000_000,
        unix_usec % 1_000_000
    );
    for arg in args {
        line.push(' ');
        quote(&mut line, arg);
    }
    line
}

/// Appends `arg` to `out` in double quotes, escaped as Redis's
/// `sdscatrepr` does: `\\` and `\"`, `\n \r \t \a \b`, other bytes
/// outside printable ASCII as `\xNN`.
pub fn quote(out: &mut String, arg: &[u8]) {
    out.push('"');
    for &byte in arg {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out.push('"');
}

/// Returns the refusal of `spec`'s command from a client in monitor
/// mode: like a Redis replica (which a monitor is, to Redis), it may not
/// touch the keyspace; None for the other commands, which run.
pub fn refused_in_monitor_mode(spec: &polis_commands::CommandSpec) -> Option<Reply> {
    use polis_commands::spec::{MAY_REPLICATE, READONLY, WRITE};
    (spec.flags & (READONLY | WRITE | MAY_REPLICATE) != 0)
        .then(|| Reply::Error(ReplyError::err("Replica can't interact with the keyspace")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_quote_and_escape_as_redis() {
        let args = [
            Bytes::from_static(b"set"),
            Bytes::from_static(b"k \"q\" \\"),
            Bytes::from_static(b"a\r\n\t\x07\x08\x00\xff~"),
        ];
        assert_eq!(
            line(1_700_000_000_000_042, "127.0.0.1:5000", &args),
            r#"1700000000.000042 [0 127.0.0.1:5000] "set" "k \"q\" \\" "a\r\n\t\a\b\x00\xff~""#
        );
        assert_eq!(
            line(5_000_000, "[::1]:7000", &[Bytes::from_static(b"")]),
            r#"5.000000 [0 [::1]:7000] """#
        );
    }

    #[test]
    fn monitors_get_lines_until_removed_and_the_count_follows() {
        let monitors = Monitors::new(OutputLimit::default());
        assert!(!monitors.active());
        let mailbox = Mailbox::new(7);
        monitors.add(7, &mailbox);
        assert!(monitors.active());
        assert!(monitors.contains(7));
        let line = "1.000000 [0 127.0.0.1:1] \"ping\"";
        monitors.feed(line);
        assert_eq!(
            mailbox.take(),
            crate::pubsub::Taken::Pushes(
                vec![Reply::Simple(line.into())],
                line.len() as u64 + LINE_OVERHEAD_BYTES
            )
        );
        monitors.remove(7);
        assert!(!monitors.active());
        monitors.feed("2.000000 [0 127.0.0.1:1] \"ping\"");
        assert_eq!(mailbox.take(), crate::pubsub::Taken::Pushes(Vec::new(), 0));
    }

    #[test]
    fn a_monitor_that_does_not_read_is_closed_and_forgotten() {
        let limit = OutputLimit {
            hard_bytes: 100,
            soft_bytes: 0,
            soft_seconds: 0,
        };
        let monitors = Monitors::new(limit);
        let slow = Mailbox::new(1);
        monitors.add(1, &slow);
        let line = "x".repeat(40);
        monitors.feed(&line);
        assert!(monitors.active());
        // 2 × 56 bytes pass the 100-byte limit.
        monitors.feed(&line);
        assert!(slow.is_closed());
        assert!(!monitors.active());
        assert_eq!(slow.take(), crate::pubsub::Taken::Closed);
    }

    #[test]
    fn monitors_may_not_touch_the_keyspace() {
        let spec = |name: &str| polis_commands::lookup(name.as_bytes()).expect(name);
        assert!(refused_in_monitor_mode(spec("get")).is_some());
        assert!(refused_in_monitor_mode(spec("set")).is_some());
        assert!(refused_in_monitor_mode(spec("publish")).is_some());
        assert!(refused_in_monitor_mode(spec("ping")).is_none());
        assert!(refused_in_monitor_mode(spec("quit")).is_none());
        assert!(refused_in_monitor_mode(spec("reset")).is_none());
    }
}
