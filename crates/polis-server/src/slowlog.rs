//! The slow log (SLOWLOG): the commands of this node that ran for
//! `slowlog-log-slower-than` microseconds or longer, newest first, at most
//! `slowlog-max-len` of them, as Redis keeps it.
//!
//! An entry keeps what Redis keeps: an id that only grows (SLOWLOG RESET
//! does not restart it), the Unix time, the duration, at most
//! [`ARGS_MAX`] arguments of at most [`ARG_BYTES_MAX`] bytes each, the
//! client's address and name. Arguments that carry secrets are redacted
//! before they get here ([`crate::observe::redact`]).
//!
//! The duration is the one INFO commandstats counts: a pipeline's time
//! shared out over its commands (see `connection.rs`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};

/// Arguments an entry keeps at most, the last one saying how many more
/// there were (Redis's SLOWLOG_ENTRY_MAX_ARGC).
pub const ARGS_MAX: usize = 32;
/// Bytes of one argument an entry keeps at most, followed by how many
/// more there were (Redis's SLOWLOG_ENTRY_MAX_STRING).
pub const ARG_BYTES_MAX: usize = 128;
/// Entries the log keeps at most, whatever `slowlog-max-len` says: an
/// entry holds up to about 5 KiB, so the log stays under 320 MiB.
pub const ENTRIES_MAX: usize = 65_536;

/// One slow command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    /// When it was logged, in seconds since the Unix epoch.
    pub unix_secs: i64,
    pub duration_usec: u64,
    /// Its arguments, cut to [`ARGS_MAX`] and [`ARG_BYTES_MAX`].
    pub args: Vec<Bytes>,
    /// The client's `ip:port`.
    pub peer: String,
    /// The client's name (CLIENT SETNAME), empty without one.
    pub client_name: String,
}

/// The node's slow log.
pub struct SlowLog {
    /// Newest first.
    entries: Mutex<VecDeque<Entry>>,
    next_id: AtomicU64,
    /// `slowlog-log-slower-than`: negative disables the log.
    slower_than_usec: AtomicI64,
    /// `slowlog-max-len`, capped at [`ENTRIES_MAX`].
    len_max: AtomicUsize,
}

/// Returns `args` (of a command that had `argc` arguments; `args` may
/// hold only the first [`ARGS_MAX`]) as an entry keeps them: at most
/// [`ARGS_MAX`], the last of them then `... (N more arguments)`, each cut
/// at [`ARG_BYTES_MAX`] bytes and followed by `... (N more bytes)`.
pub fn logged_args(args: &[Bytes], argc: usize) -> Vec<Bytes> {
    let argc = argc.max(args.len());
    let kept = argc.min(ARGS_MAX);
    let mut logged = Vec::with_capacity(kept);
    for (index, arg) in args.iter().take(kept).enumerate() {
        if kept != argc && index == kept - 1 {
            let more = argc - kept + 1;
            logged.push(Bytes::from(format!("... ({more} more arguments)")));
        } else if arg.len() > ARG_BYTES_MAX {
            let more = arg.len() - ARG_BYTES_MAX;
            let mut cut = BytesMut::with_capacity(ARG_BYTES_MAX + 32);
            cut.extend_from_slice(&arg[..ARG_BYTES_MAX]);
            cut.extend_from_slice(format!("... ({more} more bytes)").as_bytes());
            logged.push(cut.freeze());
        } else {
            logged.push(arg.clone());
        }
    }
    logged
}

impl SlowLog {
    /// Returns an empty log with Redis's defaults (10000 µs, 128 entries).
    pub fn new() -> Self {
        let log = Self {
            entries: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
            slower_than_usec: AtomicI64::new(0),
            len_max: AtomicUsize::new(0),
        };
        log.configure(10_000, 128);
        log
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes `slowlog-log-slower-than` and `slowlog-max-len`. A shorter
    /// log drops its oldest entries at the next one logged, as in Redis.
    pub fn configure(&self, slower_than_usec: i64, len_max: i64) {
        let len_max = usize::try_from(len_max).unwrap_or(0).min(ENTRIES_MAX);
        self.slower_than_usec
            .store(slower_than_usec, Ordering::Relaxed);
        self.len_max.store(len_max, Ordering::Relaxed);
    }

    /// Returns true when the log takes entries at all (the connection
    /// keeps a command's arguments only then).
    pub fn enabled(&self) -> bool {
        self.slower_than_usec.load(Ordering::Relaxed) >= 0
            && self.len_max.load(Ordering::Relaxed) > 0
    }

    /// Returns true when a command that ran `usec` microseconds belongs
    /// in the log.
    pub fn wants(&self, usec: u64) -> bool {
        let slower_than = self.slower_than_usec.load(Ordering::Relaxed);
        self.enabled() && u64::try_from(slower_than).is_ok_and(|slower_than| usec >= slower_than)
    }

    /// Logs a command that ran `duration_usec` with `args` (of `argc`
    /// arguments; see [`logged_args`]); drops the oldest entries past
    /// the length limit.
    pub fn push(
        &self,
        args: &[Bytes],
        argc: usize,
        duration_usec: u64,
        peer: String,
        client_name: String,
    ) {
        let entry = Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            unix_secs: (crate::node::now_ms() / 1000) as i64,
            duration_usec,
            args: logged_args(args, argc),
            peer,
            client_name,
        };
        let len_max = self.len_max.load(Ordering::Relaxed);
        let mut entries = self.lock();
        entries.push_front(entry);
        entries.truncate(len_max);
    }

    /// Returns the newest `count` entries (all of them with None),
    /// newest first.
    pub fn newest(&self, count: Option<usize>) -> Vec<Entry> {
        let entries = self.lock();
        let count = count.unwrap_or(entries.len());
        entries.iter().take(count).cloned().collect()
    }

    /// Returns the number of entries.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Returns true when the log holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry (SLOWLOG RESET); ids go on from where they were.
    pub fn reset(&self) {
        self.lock().clear();
    }
}

impl Default for SlowLog {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|word| Bytes::from(word.to_owned()))
            .collect()
    }

    fn push(log: &SlowLog, line: &str, usec: u64) {
        let args = words(line);
        log.push(
            &args,
            args.len(),
            usec,
            "127.0.0.1:5000".into(),
            String::new(),
        );
    }

    #[test]
    fn long_commands_keep_31_arguments_and_say_how_many_more() {
        // Redis's "commands with too many arguments are trimmed".
        let line = format!(
            "sadd set {}",
            (3..=33)
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let args = words(&line);
        assert_eq!(args.len(), 33);
        let logged = logged_args(&args, args.len());
        assert_eq!(logged.len(), ARGS_MAX);
        assert_eq!(logged[30], Bytes::from("31"));
        assert_eq!(logged[31], Bytes::from("... (2 more arguments)"));
        // Only the first 32 kept by the connection: the count still holds.
        assert_eq!(
            logged_args(&args[..ARGS_MAX], 1000)[31],
            Bytes::from("... (969 more arguments)")
        );
        // Exactly 32 arguments: all kept.
        assert_eq!(
            logged_args(&args[..ARGS_MAX], ARGS_MAX),
            args[..ARGS_MAX].to_vec()
        );
    }

    #[test]
    fn long_arguments_keep_128_bytes_and_say_how_many_more() {
        let long = Bytes::from("A".repeat(129));
        let exact = Bytes::from("B".repeat(128));
        let logged = logged_args(&[Bytes::from("sadd"), long, exact.clone()], 3);
        let expected = format!("{}... (1 more bytes)", "A".repeat(128));
        assert_eq!(logged[1], Bytes::from(expected));
        assert_eq!(logged[2], exact);
    }

    #[test]
    fn entries_are_newest_first_with_growing_ids_and_a_bounded_length() {
        let log = SlowLog::new();
        log.configure(0, 3);
        for n in 0..5 {
            push(&log, &format!("set k{n} v"), n);
        }
        assert_eq!(log.len(), 3);
        let entries = log.newest(None);
        let ids: Vec<u64> = entries.iter().map(|entry| entry.id).collect();
        assert_eq!(ids, vec![4, 3, 2]);
        assert_eq!(entries[0].args, words("set k4 v"));
        assert_eq!(entries[0].duration_usec, 4);
        assert_eq!(entries[0].peer, "127.0.0.1:5000");
        assert_eq!(log.newest(Some(1)).len(), 1);
        assert_eq!(log.newest(Some(0)).len(), 0);
        // RESET empties the log; ids go on.
        log.reset();
        assert!(log.is_empty());
        push(&log, "ping", 0);
        assert_eq!(log.newest(None)[0].id, 5);
        // A shorter log drops the oldest at the next entry.
        for n in 0..3 {
            push(&log, &format!("get k{n}"), 0);
        }
        log.configure(0, 1);
        assert_eq!(log.len(), 3);
        push(&log, "get last", 0);
        assert_eq!(log.newest(None).len(), 1);
        // The length is capped whatever the setting.
        log.configure(0, i64::MAX);
        assert_eq!(log.len_max.load(Ordering::Relaxed), ENTRIES_MAX);
    }

    #[test]
    fn the_threshold_decides_what_is_logged() {
        let log = SlowLog::new();
        assert!(!log.wants(9_999));
        assert!(log.wants(10_000));
        log.configure(0, 128);
        assert!(log.wants(0));
        log.configure(-1, 128);
        assert!(!log.enabled());
        assert!(!log.wants(u64::MAX));
        // slowlog-max-len 0 disables it too, as in Redis.
        log.configure(0, 0);
        assert!(!log.enabled());
        assert!(!log.wants(1));
    }
}
