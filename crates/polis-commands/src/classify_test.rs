#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use super::*;
use crate::spec::all_commands;

fn args(line: &str) -> Vec<Bytes> {
    line.split_whitespace()
        .map(|word| Bytes::from(word.to_owned()))
        .collect()
}

fn slot_of(key: &str) -> Scope {
    Scope::Slot(key_hash_slot(key.as_bytes()))
}

/// One row: a request, where it goes, and whether it writes.
#[test]
fn every_command_family_routes_as_expected() {
    let table: &[(&str, Scope, bool)] = &[
        // Strings.
        ("GET k", slot_of("k"), false),
        ("SET k v", slot_of("k"), true),
        ("set k v EX 10", slot_of("k"), true),
        ("MGET {u}a {u}b", slot_of("u"), false),
        ("MSET {u}a 1 {u}b 2", slot_of("u"), true),
        ("INCR counter", slot_of("counter"), true),
        ("GETEX k PERSIST", slot_of("k"), true),
        ("LCS {x}1 {x}2", slot_of("x"), false),
        // Hashes.
        ("HSET h f v", slot_of("h"), true),
        ("HGETALL h", slot_of("h"), false),
        ("HSCAN h 0", slot_of("h"), false),
        // Sets.
        ("SADD s a", slot_of("s"), true),
        ("SPOP s 2", slot_of("s"), true),
        ("SMOVE {s}a {s}b m", slot_of("s"), true),
        ("SINTERSTORE {s}d {s}a {s}b", slot_of("s"), true),
        ("SINTERCARD 2 {s}a {s}b LIMIT 1", slot_of("s"), false),
        ("SSCAN s 0", slot_of("s"), false),
        // Bitmaps.
        ("BITOP AND {b}d {b}x {b}y", slot_of("b"), true),
        ("BITFIELD k INCRBY u8 0 1", slot_of("k"), true),
        ("BITFIELD_RO k GET u8 0", slot_of("k"), false),
        // Keys and expiry.
        ("DEL a", slot_of("a"), true),
        ("EXISTS {t}a {t}b", slot_of("t"), false),
        ("EXPIRE k 5", slot_of("k"), true),
        ("TTL k", slot_of("k"), false),
        ("RENAME {r}a {r}b", slot_of("r"), true),
        ("COPY {c}a {c}b", slot_of("c"), true),
        ("OBJECT ENCODING k", slot_of("k"), false),
        ("OBJECT HELP", Scope::Keyless, false),
        ("MEMORY USAGE k", slot_of("k"), false),
        // Locks: grants and fences go through the log; FENCED routes by
        // its lock and the keys of the command it guards.
        ("LOCK ACQUIRE l o 1000", slot_of("l"), true),
        ("LOCK REFRESH l 7 1000", slot_of("l"), true),
        ("LOCK RELEASE l 7", slot_of("l"), true),
        ("LOCK INFO l", slot_of("l"), false),
        ("LOCK HELP", Scope::Keyless, false),
        ("FENCED {l}lock 7 SET {l}k v", slot_of("l"), true),
        ("FENCED {l}lock 7 GET {l}k", slot_of("l"), true),
        // The keyspace a node serves.
        ("DBSIZE", Scope::NodeShards, false),
        ("KEYS *", Scope::NodeShards, false),
        ("SCAN 0 COUNT 5", Scope::NodeShards, false),
        ("RANDOMKEY", Scope::NodeShards, false),
        ("FLUSHALL", Scope::NodeShards, true),
        ("FLUSHDB ASYNC", Scope::NodeShards, true),
        // The node's own commands.
        ("PING", Scope::Node, false),
        ("INFO keyspace", Scope::Node, false),
        ("CLUSTER SLOTS", Scope::Node, false),
        ("CLIENT ID", Scope::Node, false),
        ("COMMAND COUNT", Scope::Node, false),
        ("READONLY", Scope::Node, false),
        ("MEMORY STATS", Scope::Node, false),
    ];
    for (line, scope, write) in table {
        let classified = classify(&args(line)).unwrap_or_else(|error| panic!("{line}: {error:?}"));
        assert_eq!(classified.scope, *scope, "{line}");
        assert_eq!(classified.write, *write, "{line}");
        assert_eq!(
            classified.command.is_some(),
            *scope != Scope::Node,
            "{line}: data commands come parsed"
        );
    }
}

#[test]
fn errors_are_the_ones_redis_gives() {
    let table: &[(&str, &str)] = &[
        ("NOSUCH x", "ERR unknown command 'NOSUCH'"),
        ("GET", "ERR wrong number of arguments for 'get' command"),
        (
            "MGET a b",
            "CROSSSLOT Keys in request don't hash to the same slot",
        ),
        (
            "SINTERCARD 2 a b",
            "CROSSSLOT Keys in request don't hash to the same slot",
        ),
        (
            "BITOP OR dest a",
            "CROSSSLOT Keys in request don't hash to the same slot",
        ),
        (
            "SET k v EX notanumber",
            "ERR value is not an integer or out of range",
        ),
        ("SET k v NX XX", "ERR syntax error"),
        (
            "OBJECT NOSUCH k",
            "ERR unknown subcommand 'NOSUCH'. Try OBJECT HELP.",
        ),
    ];
    for (line, start) in table {
        let error = classify(&args(line))
            .err()
            .unwrap_or_else(|| panic!("{line} passed"));
        assert!(
            error.render().starts_with(start),
            "{line}: {} does not start with {start}",
            error.render()
        );
    }
}

#[test]
fn every_data_command_is_classified_and_keyed_ones_go_to_a_slot() {
    for spec in all_commands() {
        if crate::spec::is_node(spec) || !spec.subcommands.is_empty() {
            continue;
        }
        // A numkeys/STREAMS command declares 0 0 0 as Redis does and
        // finds its keys through `movablekeys`.
        let keyed = spec.first_key > 0 || spec.has(crate::spec::MOVABLE_KEYS);
        let keyless_scoped = NODE_SHARDS.contains(&spec.name);
        assert!(
            keyed || keyless_scoped,
            "{} has no keys and no node-wide scope",
            spec.name
        );
    }
}
