#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_resp::Reply;
use polis_types::key_hash_slot;

use crate::classify::Scope;
use crate::test_support::{args, assert_error, bulk, bulks, err, int, ok, run_table, Harness};

fn harness() -> Harness {
    let mut harness = Harness::new();
    harness.db.set_epoch(1);
    harness
}

fn token(reply: Reply) -> i64 {
    match reply {
        Reply::Integer(token) => token,
        other => panic!("expected a token, got {other:?}"),
    }
}

#[test]
fn a_current_token_applies_the_command_and_answers_its_reply() {
    let mut h = harness();
    let t = token(h.run_entry("LOCK ACQUIRE {o}lock a 1000"));
    assert_eq!(
        h.run_entry(&format!("FENCED {{o}}lock {t} SET {{o}}:status paid")),
        ok()
    );
    assert_eq!(
        h.run_entry(&format!("FENCED {{o}}lock {t} RPUSH {{o}}:log a:{t}")),
        int(1)
    );
    assert_eq!(
        h.run_entry(&format!("FENCED {{o}}lock {t} GET {{o}}:status")),
        bulk("paid")
    );
    // The command's own errors come through, and it ran as it would alone.
    assert_error(
        &h.run_entry(&format!("FENCED {{o}}lock {t} INCR {{o}}:status")),
        "ERR value is not an integer or out of range",
    );
    assert_eq!(h.run("GET {o}:status"), bulk("paid"));
}

#[test]
fn a_stale_token_never_applies() {
    let mut h = harness();
    let a = token(h.run_entry("LOCK ACQUIRE {o}lock a 100"));
    assert_eq!(
        h.run_entry(&format!("FENCED {{o}}lock {a} RPUSH {{o}}:log a")),
        int(1)
    );
    // a pauses past its lease: its next write is refused at once...
    h.advance(100);
    assert_error(
        &h.run_entry(&format!("FENCED {{o}}lock {a} RPUSH {{o}}:log a-late")),
        &format!("FENCED token {a} is not the current token of lock '{{o}}lock' (its lease ended)"),
    );
    // ...and once b holds the lock, a's writes stay refused while b's apply.
    let b = token(h.run_entry("LOCK ACQUIRE {o}lock b 100"));
    assert_eq!(
        h.run_entry(&format!("FENCED {{o}}lock {b} RPUSH {{o}}:log b")),
        int(2)
    );
    for command in ["RPUSH {o}:log a-stale", "DEL {o}:log", "SET {o}:log x"] {
        assert_error(
            &h.run_entry(&format!("FENCED {{o}}lock {a} {command}")),
            &format!(
                "FENCED token {a} is not the current token of lock '{{o}}lock' (held by 'b' with token {b})"
            ),
        );
    }
    assert_eq!(h.run("LRANGE {o}:log 0 -1"), bulks(&["a", "b"]));
    // Released, deleted, or never there: nobody holds it.
    h.run_entry(&format!("LOCK RELEASE {{o}}lock {b}"));
    let nobody =
        format!("FENCED token {b} is not the current token of lock '{{o}}lock' (nobody holds it)");
    assert_error(
        &h.run_entry(&format!("FENCED {{o}}lock {b} RPUSH {{o}}:log b-after")),
        &nobody,
    );
    h.run_entry("DEL {o}lock");
    assert_error(
        &h.run_entry(&format!("FENCED {{o}}lock {b} RPUSH {{o}}:log b-after")),
        &nobody,
    );
    assert_eq!(h.run("LRANGE {o}:log 0 -1"), bulks(&["a", "b"]));
    // A lock's name holding another type is no lock.
    h.run("SET {o}lock v");
    assert_error(
        &h.run_entry("FENCED {o}lock 1 RPUSH {o}:log x"),
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
    assert_eq!(h.run("LLEN {o}:log"), int(2));
}

#[test]
fn fenced_routes_by_the_lock_and_its_commands_keys_and_always_writes() {
    let lock_slot = Scope::Slot(key_hash_slot(b"o"));
    for line in [
        "FENCED {o}lock 5 SET {o}:status paid",
        "FENCED {o}lock 5 GET {o}:status",
        "FENCED {o}lock 5 MGET {o}:a {o}:b",
        "FENCED {o}lock 5 ZUNIONSTORE {o}:d 2 {o}:a {o}:b",
    ] {
        let classified = crate::classify(&args(line)).unwrap();
        assert_eq!(classified.scope, lock_slot, "{line}");
        assert!(classified.write, "{line}: the check is ordered in the log");
    }
    let spec = crate::lookup(b"fenced").unwrap();
    assert_eq!(
        crate::command_keys(spec, &args("FENCED {o}lock 5 MSET {o}:a 1 {o}:b 2")),
        args("{o}lock {o}:a {o}:b")
    );
    // A request too short to name a command still yields the lock.
    assert_eq!(
        crate::command_keys(spec, &args("FENCED {o}lock")),
        args("{o}lock")
    );
    for line in [
        "FENCED lock 5 SET status paid",
        "FENCED {o}lock 5 MSET {o}:a 1 {p}:b 2",
    ] {
        assert_error(
            &Reply::Error(crate::classify(&args(line)).unwrap_err()),
            "CROSSSLOT Keys in request don't hash to the same slot",
        );
        // The parser checks it too, whoever calls it.
        assert_error(
            &harness().run(line),
            "CROSSSLOT Keys in request don't hash to the same slot",
        );
    }
}

#[test]
fn fenced_refuses_what_it_cannot_guard() {
    let mut h = harness();
    let refused = |name: &str, why: &str| err(&format!("ERR FENCED cannot run '{name}': {why}"));
    let node = "it is a node or connection command, not a data command";
    let blocks = "it may block, and a fenced write never waits";
    let transaction = "transactions cannot be fenced; put FENCED inside MULTI instead";
    let no_key = "it names no key for the lock to guard";
    run_table(
        &mut h,
        &[
            ("FENCED {o}l 1 PING", refused("ping", node)),
            ("FENCED {o}l 1 CLIENT ID", refused("client", node)),
            ("FENCED {o}l 1 CONFIG GET x", refused("config", node)),
            ("FENCED {o}l 1 MULTI", refused("multi", transaction)),
            ("FENCED {o}l 1 EXEC", refused("exec", transaction)),
            ("FENCED {o}l 1 WATCH {o}k", refused("watch", transaction)),
            ("FENCED {o}l 1 BLPOP {o}k 0", refused("blpop", blocks)),
            (
                "FENCED {o}l 1 XREAD STREAMS {o}k 0",
                refused("xread", blocks),
            ),
            (
                "FENCED {o}l 1 FENCED {o}l 1 SET {o}k v",
                refused("fenced", "fences do not nest"),
            ),
            (
                "FENCED {o}l 1 LOCK ACQUIRE {o}m a 10",
                refused("lock", "a lock's own commands check their tokens already"),
            ),
            ("FENCED {o}l 1 FLUSHALL", refused("flushall", no_key)),
            ("FENCED {o}l 1 DBSIZE", refused("dbsize", no_key)),
            (
                "FENCED {o}l 1 NOSUCH {o}k",
                refused("nosuch", "no such command"),
            ),
            (
                "FENCED {o}l 1",
                err("ERR wrong number of arguments for 'fenced' command"),
            ),
            (
                "FENCED {o}l 1 SET {o}k",
                err("ERR wrong number of arguments for 'set' command"),
            ),
            ("FENCED {o}l 1 SET {o}k v NX XX", err("ERR syntax error")),
            (
                "FENCED {o}l x SET {o}k v",
                err("ERR invalid fencing token: give the integer LOCK ACQUIRE answered"),
            ),
        ],
    );
    assert_eq!(h.db.len(), 0, "nothing was written");
}
