//! SLOWLOG and MONITOR: what this node ran slowly, and what it runs.

use std::sync::Arc;

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};

use super::lower;
use crate::connection::Session;
use crate::latency::LatencyMonitor;
use crate::node::Node;
use crate::settings::Settings;
use crate::slowlog::{Entry, SlowLog};

/// Entries SLOWLOG GET returns without a count.
const GET_COUNT_DEFAULT: usize = 10;

/// Gives the slow log and the latency monitor their parameters from
/// `settings` (at start, and after each CONFIG SET).
pub fn configure(settings: &Settings, slowlog: &SlowLog, latency: &LatencyMonitor) {
    slowlog.configure(
        settings.integer("slowlog-log-slower-than"),
        settings.integer("slowlog-max-len"),
    );
    latency.configure(settings.integer("latency-monitor-threshold"));
}

/// Returns the lines of a HELP reply.
pub(super) fn help(lines: &[&str]) -> Reply {
    Reply::Array(
        lines
            .iter()
            .map(|line| Reply::Simple((*line).into()))
            .collect(),
    )
}

/// Returns Redis's error for a subcommand it does not know, or that has
/// the wrong number of arguments.
pub(super) fn subcommand_error(args: &[Bytes], command: &str) -> ReplyError {
    let sub = String::from_utf8_lossy(&args[1]);
    let sub: String = sub.chars().take(128).collect();
    ReplyError::err(format!(
        "unknown subcommand or wrong number of arguments for '{sub}'. Try {command} HELP."
    ))
}

fn entry_reply(entry: Entry) -> Reply {
    Reply::Array(vec![
        Reply::Integer(i64::try_from(entry.id).unwrap_or(i64::MAX)),
        Reply::Integer(entry.unix_secs),
        Reply::Integer(i64::try_from(entry.duration_usec).unwrap_or(i64::MAX)),
        Reply::Array(entry.args.into_iter().map(Reply::Bulk).collect()),
        Reply::bulk(entry.peer),
        Reply::bulk(entry.client_name),
    ])
}

/// SLOWLOG GET [count] / LEN / RESET / HELP.
pub fn slowlog(node: &Node, args: &[Bytes]) -> Result<Reply, ReplyError> {
    match (lower(&args[1]).as_str(), args.len()) {
        ("get", 2 | 3) => {
            let count = match args.get(2) {
                None => Some(GET_COUNT_DEFAULT),
                Some(count) => match polis_commands::args::parse_i64(count) {
                    Some(-1) => None,
                    Some(count) if count >= 0 => Some(usize::try_from(count).unwrap_or(usize::MAX)),
                    _ => {
                        return Err(ReplyError::err(
                            "count should be greater than or equal to -1",
                        ))
                    }
                },
            };
            Ok(Reply::Array(
                node.slowlog
                    .newest(count)
                    .into_iter()
                    .map(entry_reply)
                    .collect(),
            ))
        }
        ("len", 2) => Ok(Reply::Integer(node.slowlog.len() as i64)),
        ("reset", 2) => {
            node.slowlog.reset();
            Ok(Reply::ok())
        }
        ("help", 2) => Ok(help(&[
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Prints this help.",
        ])),
        _ => Err(subcommand_error(args, "SLOWLOG")),
    }
}

/// MONITOR: from now on the client sees every command the node runs.
/// Sent again, it is not answered at all, as in Redis.
pub fn monitor(node: &Arc<Node>, session: &mut Session) -> Reply {
    if session.monitor {
        return Reply::Frames(Vec::new());
    }
    session.monitor = true;
    node.monitors.add(session.client_id, &session.mailbox);
    Reply::ok()
}

/// Returns MONITOR's refusal inside a transaction (Redis refuses it to
/// a client that expects one reply per command).
pub fn monitor_in_transaction() -> Reply {
    Reply::Error(ReplyError::err(
        "MONITOR isn't allowed for DENY BLOCKING client",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_have_redis_six_fields() {
        let entry = Entry {
            id: 7,
            unix_secs: 1_700_000_000,
            duration_usec: 250_000,
            args: vec![Bytes::from_static(b"debug"), Bytes::from_static(b"sleep")],
            peer: "127.0.0.1:5000".into(),
            client_name: "foobar".into(),
        };
        assert_eq!(
            entry_reply(entry),
            Reply::Array(vec![
                Reply::Integer(7),
                Reply::Integer(1_700_000_000),
                Reply::Integer(250_000),
                Reply::Array(vec![Reply::bulk("debug"), Reply::bulk("sleep")]),
                Reply::bulk("127.0.0.1:5000"),
                Reply::bulk("foobar"),
            ])
        );
    }

    #[test]
    fn subcommand_errors_name_the_subcommand_and_the_help() {
        let args = [Bytes::from_static(b"slowlog"), Bytes::from_static(b"GET")];
        assert_eq!(
            subcommand_error(&args, "SLOWLOG").render(),
            "ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP."
        );
    }
}
