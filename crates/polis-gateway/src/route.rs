//! Where a request goes: the nodes' own classifier (`polis_commands`)
//! names its keys and their slot; what it cannot serve in one place is
//! split, fanned out, or answered by the gateway itself.

use bytes::Bytes;
use polis_commands::classify::{classify, single_slot, Scope};
use polis_commands::spec::{command_keys, is_write, lookup, BLOCKING};
use polis_resp::{Reply, ReplyError};
use polis_types::key_hash_slot;

/// How the replies of a request's parts make its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    /// Integers added up (DEL, UNLINK, EXISTS, TOUCH, DBSIZE).
    Sum,
    /// Arrays put end to end (KEYS).
    Concat,
    /// Each part's array put back at its keys' places (MGET).
    Places,
    /// +OK from every part (FLUSHALL, CONFIG SET).
    AllOk,
    /// The first part that is not null (RANDOMKEY).
    FirstNonNull,
    /// INFO: the home node's text, with the counts that add up over the
    /// cluster (clients, blocked clients, keys) added up.
    Info,
}

/// Where a part of a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The node serving a slot.
    Slot(u16),
    /// The client's home node: commands any node answers the same
    /// (PING, INFO, PUBLISH, CLIENT, SUBSCRIBE).
    Home,
    /// Every node leading a shard (node-wide data commands).
    Leaders,
    /// Every node (settings).
    All,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Answered by the gateway (errors of the classifier, CROSSSLOT).
    Answer(Reply),
    /// Connection and transaction commands the session handles itself.
    Session(SessionCommand),
    /// One command to one place.
    Send { target: Target, write: bool },
    /// The same command to several nodes, the replies merged.
    Fanout { target: Target, merge: MergeKind },
    /// A multi-key command split by slot; each part's key positions.
    Split {
        merge: MergeKind,
        parts: Vec<(u16, Vec<Bytes>, Vec<usize>)>,
    },
    /// SCAN: the shard the cursor names, at its leader.
    Scan,
    /// (P|S)(UN)SUBSCRIBE: the confirmations come as pushes.
    Subscription { target: Target },
}

/// The commands a session answers or orchestrates itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCommand {
    Ping,
    Echo,
    Quit,
    Reset,
    Hello,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    ClientReply,
    ClientId,
    ClientUnblock,
    ReadOnly,
    ReadWrite,
}

/// Multi-key commands the gateway splits across slots.
const SPLIT: &[(&str, MergeKind)] = &[
    ("mget", MergeKind::Places),
    ("del", MergeKind::Sum),
    ("unlink", MergeKind::Sum),
    ("exists", MergeKind::Sum),
    ("touch", MergeKind::Sum),
];

/// Node-wide data commands, and how their nodes' replies merge.
const FANOUT: &[(&str, MergeKind)] = &[
    ("dbsize", MergeKind::Sum),
    ("keys", MergeKind::Concat),
    ("flushall", MergeKind::AllOk),
    ("flushdb", MergeKind::AllOk),
    ("randomkey", MergeKind::FirstNonNull),
];

/// Returns the lowercase text of `arg`.
pub fn lower(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_lowercase()
}

/// Plans a request (`args[0]` is the command's name).
pub fn plan(args: &[Bytes]) -> Plan {
    let Some(name) = args.first() else {
        return Plan::Answer(Reply::Error(ReplyError::err("empty command")));
    };
    let name = lower(name);
    if let Some(command) = session_command(&name, args) {
        return Plan::Session(command);
    }
    if let Some((_, merge)) = SPLIT.iter().find(|(split, _)| *split == name) {
        if let Some(plan) = split(args, *merge) {
            return plan;
        }
    }
    let classified = match classify(args) {
        Ok(classified) => classified,
        Err(error) => return Plan::Answer(Reply::Error(error)),
    };
    let write = classified.write;
    match classified.scope {
        Scope::Slot(slot) => Plan::Send {
            target: Target::Slot(slot.get()),
            write,
        },
        Scope::Keyless => Plan::Send {
            target: Target::Home,
            write,
        },
        Scope::NodeShards if name == "scan" => Plan::Scan,
        Scope::NodeShards => match FANOUT.iter().find(|(fanout, _)| *fanout == name) {
            Some((_, merge)) => Plan::Fanout {
                target: Target::Leaders,
                merge: *merge,
            },
            None => Plan::Send {
                target: Target::Home,
                write,
            },
        },
        Scope::Node => node_command(&name, args, classified.governing),
    }
}

fn session_command(name: &str, args: &[Bytes]) -> Option<SessionCommand> {
    Some(match name {
        "ping" if args.len() <= 2 => SessionCommand::Ping,
        "echo" if args.len() == 2 => SessionCommand::Echo,
        "quit" => SessionCommand::Quit,
        "reset" => SessionCommand::Reset,
        "hello" => SessionCommand::Hello,
        "multi" => SessionCommand::Multi,
        "exec" => SessionCommand::Exec,
        "discard" => SessionCommand::Discard,
        "watch" if args.len() >= 2 => SessionCommand::Watch,
        "unwatch" => SessionCommand::Unwatch,
        "readonly" => SessionCommand::ReadOnly,
        "readwrite" => SessionCommand::ReadWrite,
        "client" if args.get(1).is_some_and(|sub| lower(sub) == "reply") => {
            SessionCommand::ClientReply
        }
        "client" if args.len() == 2 && lower(&args[1]) == "id" => SessionCommand::ClientId,
        "client" if args.get(1).is_some_and(|sub| lower(sub) == "unblock") => {
            SessionCommand::ClientUnblock
        }
        _ => return None,
    })
}

/// Splits a multi-key command by slot; `None` when its keys share one
/// (it is then sent whole) or its arity is wrong (the classifier says).
fn split(args: &[Bytes], merge: MergeKind) -> Option<Plan> {
    let keys = args.get(1..).filter(|keys| !keys.is_empty())?;
    if single_slot(keys).is_ok() {
        return None;
    }
    let mut parts: Vec<(u16, Vec<Bytes>, Vec<usize>)> = Vec::new();
    for (place, key) in keys.iter().enumerate() {
        let slot = key_hash_slot(key).get();
        match parts
            .iter_mut()
            .find(|(part_slot, _, _)| *part_slot == slot)
        {
            Some((_, part_args, places)) => {
                part_args.push(key.clone());
                places.push(place);
            }
            None => parts.push((slot, vec![args[0].clone(), key.clone()], vec![place])),
        }
    }
    Some(Plan::Split { merge, parts })
}

/// Plans a command the nodes execute themselves.
fn node_command(
    name: &str,
    args: &[Bytes],
    governing: &'static polis_commands::CommandSpec,
) -> Plan {
    let sub = args.get(1).map(|sub| lower(sub)).unwrap_or_default();
    match name {
        "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" => {
            return Plan::Subscription {
                target: Target::Home,
            }
        }
        "ssubscribe" | "sunsubscribe" => {
            return match args.get(1) {
                Some(channel) => Plan::Subscription {
                    target: Target::Slot(key_hash_slot(channel).get()),
                },
                None => Plan::Subscription {
                    target: Target::Home,
                },
            };
        }
        "info" => {
            return Plan::Fanout {
                target: Target::All,
                merge: MergeKind::Info,
            }
        }
        "config" if sub == "set" || sub == "resetstat" => {
            return Plan::Fanout {
                target: Target::All,
                merge: MergeKind::AllOk,
            }
        }
        "debug"
            if matches!(
                sub.as_str(),
                "object" | "digest-value" | "listpack" | "quicklist-packed-threshold"
            ) =>
        {
            if let Some(key) = args.get(2) {
                return Plan::Send {
                    target: Target::Slot(key_hash_slot(key).get()),
                    write: false,
                };
            }
        }
        "debug"
            if matches!(
                sub.as_str(),
                "set-active-expire" | "reload" | "change-repl-id"
            ) =>
        {
            return Plan::Fanout {
                target: Target::All,
                merge: MergeKind::AllOk,
            }
        }
        _ => {}
    }
    let keys = lookup(name.as_bytes())
        .map(|spec| command_keys(spec, args))
        .unwrap_or_default();
    match single_slot(&keys) {
        Err(error) => Plan::Answer(Reply::Error(error)),
        Ok(Some(slot)) => Plan::Send {
            target: Target::Slot(slot.get()),
            write: is_write(governing),
        },
        Ok(None) => Plan::Send {
            target: Target::Home,
            write: is_write(governing),
        },
    }
}

/// Requests that wait for every reply owed before them: they change how
/// the client's connections speak.
pub(crate) fn is_barrier(args: &[Bytes]) -> bool {
    args.first()
        .is_some_and(|name| matches!(lower(name).as_str(), "hello" | "reset"))
}

/// Returns true for commands that leave state on the node's connection:
/// those the command table flags blocking (one may still be blocked when
/// the client leaves), and the connection commands that change it.
pub(crate) fn is_stateful(args: &[Bytes]) -> bool {
    let Some(name) = args.first() else {
        return false;
    };
    lookup(name).is_some_and(|spec| spec.has(BLOCKING))
        || matches!(
            lower(name).as_str(),
            "client" | "select" | "watch" | "multi" | "asking" | "monitor" | "auth"
        )
}

/// Returns true for the commands a RESP2 client may send while
/// subscribed.
pub(crate) fn allowed_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "psubscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "punsubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|word| Bytes::copy_from_slice(word.as_bytes()))
            .collect()
    }

    #[test]
    fn blocking_and_connection_commands_leave_state_on_a_connection() {
        for words in [
            &["BLPOP", "q", "0"][..],
            &["xread", "BLOCK", "0", "STREAMS", "s", "$"],
            &["CLIENT", "SETNAME", "n"],
        ] {
            assert!(is_stateful(&args(words)), "{words:?}");
        }
        for words in [&["BITCOUNT", "k"][..], &["GET", "k"], &["BITFIELD", "k"]] {
            assert!(!is_stateful(&args(words)), "{words:?}");
        }
    }

    #[test]
    fn keyed_commands_go_to_their_slot() {
        let slot = key_hash_slot(b"user:1").get();
        assert_eq!(
            plan(&args(&["SET", "user:1", "x"])),
            Plan::Send {
                target: Target::Slot(slot),
                write: true
            }
        );
        assert_eq!(
            plan(&args(&["get", "user:1"])),
            Plan::Send {
                target: Target::Slot(slot),
                write: false
            }
        );
    }

    #[test]
    fn mget_across_slots_is_split_and_mset_refused() {
        let Plan::Split { merge, parts } = plan(&args(&["MGET", "a", "b", "{a}c"])) else {
            panic!("MGET across slots is split");
        };
        assert_eq!(merge, MergeKind::Places);
        let a = parts
            .iter()
            .find(|(slot, _, _)| *slot == key_hash_slot(b"a").get())
            .unwrap();
        assert_eq!(a.1, args(&["MGET", "a", "{a}c"]));
        assert_eq!(a.2, vec![0, 2]);
        assert!(matches!(
            plan(&args(&["MGET", "{x}1", "{x}2"])),
            Plan::Send { .. }
        ));
        assert_eq!(
            plan(&args(&["MSET", "a", "1", "b", "2"])),
            Plan::Answer(Reply::Error(ReplyError::CrossSlot))
        );
    }

    #[test]
    fn node_wide_commands_fan_out_and_session_commands_stay() {
        assert_eq!(
            plan(&args(&["DBSIZE"])),
            Plan::Fanout {
                target: Target::Leaders,
                merge: MergeKind::Sum
            }
        );
        assert_eq!(plan(&args(&["scan", "0"])), Plan::Scan);
        assert_eq!(
            plan(&args(&["CONFIG", "SET", "maxmemory", "0"])),
            Plan::Fanout {
                target: Target::All,
                merge: MergeKind::AllOk
            }
        );
        assert_eq!(
            plan(&args(&["MULTI"])),
            Plan::Session(SessionCommand::Multi)
        );
        assert_eq!(
            plan(&args(&["client", "REPLY", "off"])),
            Plan::Session(SessionCommand::ClientReply)
        );
        assert_eq!(
            plan(&args(&["INFO", "clients"])),
            Plan::Fanout {
                target: Target::All,
                merge: MergeKind::Info
            }
        );
        assert!(matches!(
            plan(&args(&["TIME"])),
            Plan::Send {
                target: Target::Home,
                ..
            }
        ));
        assert!(matches!(plan(&args(&["NOSUCH"])), Plan::Answer(_)));
        assert_eq!(
            plan(&args(&["SSUBSCRIBE", "ch"])),
            Plan::Subscription {
                target: Target::Slot(key_hash_slot(b"ch").get())
            }
        );
    }
}
