//! LATENCY: this node's latency spikes ([`crate::latency`]) and the
//! latency histogram of each command it ran (INFO commandstats's
//! buckets).

use std::collections::BTreeMap;

use bytes::Bytes;
use polis_commands::CommandSpec;
use polis_resp::{Reply, ReplyError};

use super::lower;
use super::slowlog::{help, subcommand_error};
use crate::latency::{DoctorContext, Series};
use crate::node::Node;
use crate::stats::{CommandStat, LATENCY_BOUNDS_USEC};

fn integer(value: u64) -> Reply {
    Reply::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}

/// LATENCY LATEST's line of one event: its name, the time and latency
/// of its newest spike, and its highest latency.
fn latest(event: &str, series: &Series) -> Reply {
    let newest = series.samples.back();
    Reply::Array(vec![
        Reply::bulk(event),
        Reply::Integer(newest.map_or(0, |sample| sample.unix_secs)),
        integer(newest.map_or(0, |sample| sample.latency_ms)),
        integer(series.latency_ms_max),
    ])
}

/// Returns one command's LATENCY HISTOGRAM entry: its calls, and for each
/// bucket that holds calls, the bucket's upper bound with the calls at or
/// under it (cumulative, as Redis counts). Redis's buckets are powers of
/// two; polis's are INFO commandstats's ([`LATENCY_BOUNDS_USEC`]), the
/// last bounded by the slowest call.
pub fn histogram(stat: &CommandStat) -> Reply {
    let mut cumulative = 0;
    let mut buckets = Vec::new();
    for (at, count) in stat.latency.iter().enumerate() {
        if *count == 0 {
            continue;
        }
        cumulative += count;
        let bound = LATENCY_BOUNDS_USEC
            .get(at)
            .copied()
            .unwrap_or(stat.usec_max);
        buckets.push((integer(bound), integer(cumulative)));
    }
    Reply::Map(vec![
        (Reply::bulk("calls"), integer(stat.calls)),
        (Reply::bulk("histogram_usec"), Reply::Map(buckets)),
    ])
}

/// Returns the spec named `name`: a command, or `container|sub` for a
/// subcommand (as LATENCY HISTOGRAM takes them).
fn named(name: &[u8]) -> Option<&'static CommandSpec> {
    let text = std::str::from_utf8(name).ok()?;
    match text.split_once('|') {
        None => polis_commands::lookup(name),
        Some((container, sub)) => polis_commands::lookup(container.as_bytes())?
            .subcommand(sub.as_bytes())
            .filter(|_| !sub.contains('|')),
    }
}

/// LATENCY HISTOGRAM [command ...]: every command that ran, or those
/// named (a container stands for itself and its subcommands); names of
/// no command are skipped, as in Redis.
fn histograms(stats: &BTreeMap<&'static str, CommandStat>, names: &[Bytes]) -> Reply {
    let ran = |name: &str| stats.get(name).filter(|stat| stat.calls > 0);
    let mut entries = Vec::new();
    let mut add = |name: &'static str| {
        if let Some(stat) = ran(name) {
            entries.push((Reply::bulk(name), histogram(stat)));
        }
    };
    if names.is_empty() {
        stats.keys().for_each(|name| add(name));
    } else {
        for spec in names.iter().filter_map(|name| named(name)) {
            add(spec.name);
            spec.subcommands.iter().for_each(|sub| add(sub.name));
        }
    }
    Reply::Map(entries)
}

/// LATENCY LATEST / HISTORY / RESET / DOCTOR / GRAPH / HISTOGRAM / HELP.
pub fn latency(node: &Node, args: &[Bytes]) -> Result<Reply, ReplyError> {
    match (lower(&args[1]).as_str(), args.len()) {
        ("latest", 2) => Ok(Reply::Array(
            node.latency
                .events()
                .iter()
                .map(|(event, series)| latest(event, series))
                .collect(),
        )),
        ("history", 3) => {
            let samples = node.latency.series(&args[2]).unwrap_or_default().samples;
            Ok(Reply::Array(
                samples
                    .iter()
                    .map(|sample| {
                        Reply::Array(vec![
                            Reply::Integer(sample.unix_secs),
                            integer(sample.latency_ms),
                        ])
                    })
                    .collect(),
            ))
        }
        ("reset", _) => {
            let names: Vec<&[u8]> = args[2..].iter().map(|name| &name[..]).collect();
            Ok(Reply::Integer(node.latency.reset(&names) as i64))
        }
        ("doctor", 2) => {
            let context = DoctorContext {
                now_secs: (crate::node::now_ms() / 1000) as i64,
                threshold_ms: node.latency.threshold_ms(),
                slowlog_slower_than_usec: node.settings.integer("slowlog-log-slower-than"),
            };
            Ok(Reply::Verbatim {
                format: "txt".into(),
                text: Bytes::from(node.latency.doctor(context)),
            })
        }
        ("graph", 3) => match node.latency.series(&args[2]) {
            None => Err(ReplyError::err(format!(
                "No samples available for event '{}'",
                String::from_utf8_lossy(&args[2])
            ))),
            Some(_) => Err(ReplyError::err(
                "LATENCY GRAPH is not supported by polis: LATENCY HISTORY <event> gives the samples",
            )),
        },
        ("histogram", _) => Ok(histograms(&node.stats.commands(), &args[2..])),
        ("help", 2) => Ok(help(&[
            "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class (not supported by polis).",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
            "HELP",
            "    Prints this help.",
        ])),
        _ => Err(subcommand_error(args, "LATENCY")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{CallOutcome, Stats};

    fn histogram_of(reply: &Reply) -> Vec<(i64, i64)> {
        let Reply::Map(fields) = reply else {
            panic!("not a map: {reply:?}");
        };
        let Some((_, Reply::Map(buckets))) = fields.get(1) else {
            panic!("no histogram_usec: {reply:?}");
        };
        buckets
            .iter()
            .map(|pair| match pair {
                (Reply::Integer(bound), Reply::Integer(count)) => (*bound, *count),
                other => panic!("not integers: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn histograms_are_cumulative_over_the_buckets_that_hold_calls() {
        let stats = Stats::default();
        for usec in [10, 20, 700, 3_000, 7_000_000] {
            stats.record_command("set", usec, CallOutcome::Done);
        }
        stats.record_command("set", 5, CallOutcome::Rejected);
        let commands = stats.commands();
        let set = histogram(&commands["set"]);
        let Reply::Map(fields) = &set else {
            panic!("not a map");
        };
        assert_eq!(fields[0], (Reply::bulk("calls"), Reply::Integer(5)));
        // 10 and 20 under 50 µs, 700 under 1 ms, 3 ms under 5 ms, 7 s
        // past the last bound: bounded by the slowest call.
        assert_eq!(
            histogram_of(&set),
            vec![(50, 2), (1_000, 3), (5_000, 4), (7_000_000, 5)]
        );
    }

    #[test]
    fn histograms_name_commands_and_containers_and_skip_unknown_names() {
        let stats = Stats::default();
        stats.record_command("set", 10, CallOutcome::Done);
        stats.record_command("get", 10, CallOutcome::Done);
        stats.record_command("client|id", 10, CallOutcome::Done);
        stats.record_command("client|list", 10, CallOutcome::Done);
        // Refused only: no histogram, as in Redis.
        stats.record_command("hset", 10, CallOutcome::Rejected);
        let commands = stats.commands();
        let keys = |reply: Reply| -> Vec<Reply> {
            match reply {
                Reply::Map(entries) => entries.into_iter().map(|(key, _)| key).collect(),
                other => panic!("not a map: {other:?}"),
            }
        };
        let names = |words: &[&str]| -> Vec<Bytes> {
            words
                .iter()
                .map(|word| Bytes::from(word.to_string()))
                .collect()
        };
        let all = keys(histograms(&commands, &[]));
        assert_eq!(
            all,
            ["client|id", "client|list", "get", "set"]
                .map(Reply::bulk)
                .to_vec()
        );
        assert_eq!(
            keys(histograms(&commands, &names(&["blabla", "SET", "hset"]))),
            vec![Reply::bulk("set")]
        );
        assert_eq!(
            keys(histograms(&commands, &names(&["client"]))),
            vec![Reply::bulk("client|id"), Reply::bulk("client|list")]
        );
        assert_eq!(
            keys(histograms(&commands, &names(&["client|id", "client|id|x"]))),
            vec![Reply::bulk("client|id")]
        );
    }
}
