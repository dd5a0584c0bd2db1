//! What a command leaves behind besides its reply, recorded by the
//! connection once the pipeline it came in has run: its call in INFO
//! commandstats (and LATENCY HISTOGRAM), the slow log, the latency
//! monitor, and a line for each MONITOR client.
//!
//! ```text
//!  pipeline read ──> keep(): the arguments, when the slow log or a monitor may need them
//!        │                   (one atomic load each when neither is on)
//!        ▼
//!  pipeline::execute ──> replies ──> Observer::record, per command:
//!                                      stats ─ latency ─ slow log ─ MONITOR line
//! ```
//!
//! A command counts as having run unless its reply says it was refused
//! first (arity, ACL, redirect: [`CallOutcome::Rejected`]); as in Redis,
//! only commands that ran are logged or shown. Commands queued by MULTI
//! are logged and shown when EXEC runs them, in their order, before EXEC
//! itself; they share EXEC's time, as a pipeline's commands share its.

use std::net::SocketAddr;

use bytes::Bytes;
use polis_commands::spec::{ADMIN, FAST, SKIP_MONITOR, SKIP_SLOWLOG};
use polis_commands::CommandSpec;
use polis_resp::Reply;

use crate::node::Node;
use crate::stats::CallOutcome;

/// What replaces an argument that carries a secret.
const REDACTED: &[u8] = b"(redacted)";
/// CONFIG parameters whose values are secrets (Redis's sensitive
/// configs).
const SENSITIVE_PARAMETERS: &[&str] = &[
    "requirepass",
    "masterauth",
    "masteruser",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
];

/// A request's arguments as kept for the slow log and MONITOR: all of
/// them while someone monitors, else the first
/// [`crate::slowlog::ARGS_MAX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    args: Vec<Bytes>,
    /// How many arguments the request had.
    argc: usize,
}

impl Kept {
    fn complete(&self) -> bool {
        self.args.len() == self.argc
    }
}

/// Returns the arguments of `requests` the slow log or the monitors may
/// need once they have run; None when neither is on.
pub fn keep(node: &Node, requests: &[Vec<Bytes>]) -> Option<Vec<Kept>> {
    let monitored = node.monitors.active();
    if !monitored && !node.slowlog.enabled() {
        return None;
    }
    let kept = requests
        .iter()
        .map(|args| {
            let len = if monitored {
                args.len()
            } else {
                args.len().min(crate::slowlog::ARGS_MAX)
            };
            Kept {
                args: args[..len].to_vec(),
                argc: args.len(),
            }
        })
        .collect();
    Some(kept)
}

/// Replaces the arguments of `args` that carry secrets with
/// `(redacted)`, as Redis does before it logs or shows a command: AUTH's
/// arguments, HELLO's `AUTH <user> <password>`, ACL SETUSER's name and
/// rules, and CONFIG SET's values of sensitive parameters.
pub fn redact(args: &mut [Bytes]) {
    let is = |at: usize, word: &str| {
        args.get(at)
            .is_some_and(|arg| arg.eq_ignore_ascii_case(word.as_bytes()))
    };
    let redacted: Vec<usize> = if is(0, "auth") {
        (1..args.len()).collect()
    } else if is(0, "hello") {
        args.iter()
            .enumerate()
            .skip(1)
            .filter(|(at, arg)| arg.eq_ignore_ascii_case(b"auth") && at + 2 < args.len())
            .flat_map(|(at, _)| [at + 1, at + 2])
            .collect()
    } else if is(0, "acl") && is(1, "setuser") {
        (2..args.len()).collect()
    } else if is(0, "config") && is(1, "set") {
        (2..args.len())
            .step_by(2)
            .filter(|&at| {
                SENSITIVE_PARAMETERS
                    .iter()
                    .any(|name| args[at].eq_ignore_ascii_case(name.as_bytes()))
            })
            .map(|at| at + 1)
            .collect()
    } else {
        Vec::new()
    };
    for at in redacted {
        if let Some(arg) = args.get_mut(at) {
            *arg = Bytes::from_static(REDACTED);
        }
    }
}

/// One connection's recorder.
pub struct Observer {
    /// The client's `ip:port`, as the slow log and MONITOR show it.
    peer: String,
    /// The commands of the transaction being queued (each answered
    /// QUEUED), for when EXEC runs them.
    queued: Vec<(&'static CommandSpec, Kept)>,
}

impl Observer {
    /// Returns the recorder of the client at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            peer: addr.to_string(),
            queued: Vec::new(),
        }
    }

    /// Records the commands of a pipeline that ran: `specs` (None for an
    /// unknown command) and `kept` (from [`keep`]) are in the order of
    /// the requests, `replies` too (it may be shorter: QUIT ends a
    /// pipeline). Each command ran `usec` microseconds.
    pub fn record(
        &mut self,
        node: &Node,
        client_id: u64,
        specs: &[Option<&'static CommandSpec>],
        kept: Option<Vec<Kept>>,
        replies: &[Reply],
        usec: u64,
    ) {
        let mut kept = kept.map(Vec::into_iter);
        for (spec, reply) in specs.iter().zip(replies) {
            let args = kept.as_mut().and_then(Iterator::next);
            let Some(spec) = *spec else {
                continue;
            };
            if matches!(reply, Reply::Simple(status) if status == "QUEUED") {
                // Counted, logged and shown when EXEC runs it.
                if let Some(args) = args {
                    if self.queued.len() < polis_types::limits::TRANSACTION_COMMANDS_MAX {
                        self.queued.push((spec, args));
                    }
                }
                continue;
            }
            let outcome = CallOutcome::of(reply);
            node.stats.record_command(spec.name, usec, outcome);
            match spec.name {
                "exec" => {
                    let queued = std::mem::take(&mut self.queued);
                    if matches!(reply, Reply::Array(_)) && !queued.is_empty() {
                        let share = usec / queued.len() as u64;
                        for (spec, args) in queued {
                            self.ran(node, client_id, spec, Some(args), share);
                        }
                    }
                }
                "multi" | "discard" if *reply == Reply::ok() => self.queued.clear(),
                "reset" => self.queued.clear(),
                _ => {}
            }
            // EXEC runs even when it aborts the transaction.
            if outcome != CallOutcome::Rejected || spec.name == "exec" {
                self.ran(node, client_id, spec, args, usec);
            }
        }
    }

    /// Records one command that ran `usec` microseconds.
    fn ran(
        &self,
        node: &Node,
        client_id: u64,
        spec: &'static CommandSpec,
        args: Option<Kept>,
        usec: u64,
    ) {
        node.latency.record_command(spec.has(FAST), usec, || {
            (crate::node::now_ms() / 1000) as i64
        });
        let Some(mut args) = args else {
            return;
        };
        let logged = !spec.has(SKIP_SLOWLOG) && node.slowlog.wants(usec);
        let shown =
            node.monitors.active() && spec.flags & (ADMIN | SKIP_MONITOR) == 0 && args.complete();
        if !logged && !shown {
            return;
        }
        redact(&mut args.args);
        if logged {
            let client_name = node
                .clients
                .info(client_id)
                .and_then(|info| info.name)
                .unwrap_or_default();
            node.slowlog
                .push(&args.args, args.argc, usec, self.peer.clone(), client_name);
        }
        if shown {
            let unix_usec = crate::monitor::now_usec();
            node.monitors
                .feed(&crate::monitor::line(unix_usec, &self.peer, &args.args));
        }
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

    fn redacted(line: &str) -> String {
        let mut args = words(line);
        redact(&mut args);
        args.iter()
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn secrets_are_redacted_as_redis_does() {
        let table = [
            ("auth not-real", "auth (redacted)"),
            ("AUTH user pass", "AUTH (redacted) (redacted)"),
            (
                "hello 3 AUTH user pass SETNAME me",
                "hello 3 AUTH (redacted) (redacted) SETNAME me",
            ),
            ("hello 3 auth user", "hello 3 auth user"),
            ("hello 3", "hello 3"),
            (
                "acl setuser bob on >secret +get",
                "acl setuser (redacted) (redacted) (redacted) (redacted)",
            ),
            ("acl getuser bob", "acl getuser bob"),
            (
                "config set masterauth x maxmemory 1mb",
                "config set masterauth (redacted) maxmemory 1mb",
            ),
            (
                "CONFIG SET maxmemory 1mb requirepass p",
                "CONFIG SET maxmemory 1mb requirepass (redacted)",
            ),
            ("config get requirepass", "config get requirepass"),
            ("set auth k", "set auth k"),
        ];
        for (line, expected) in table {
            assert_eq!(redacted(line), expected, "{line}");
        }
    }

    #[test]
    fn kept_arguments_are_complete_only_when_all_are_there() {
        let full = Kept {
            args: words("set k v"),
            argc: 3,
        };
        assert!(full.complete());
        let cut = Kept {
            args: words("sadd s a"),
            argc: 40,
        };
        assert!(!cut.complete());
    }
}
