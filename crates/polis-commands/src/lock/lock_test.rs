#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use polis_resp::Reply;
use polis_store::{LockValue, Value};

use crate::test_support::{args, assert_error, bulk, err, int, ok, run_table, Harness};

/// A harness whose shard is at epoch 1.
fn harness() -> Harness {
    let mut harness = Harness::new();
    harness.db.set_epoch(1);
    harness
}

/// Returns the token an `ok` ACQUIRE answered.
fn token(reply: Reply) -> i64 {
    match reply {
        Reply::Integer(token) => token,
        other => panic!("expected a token, got {other:?}"),
    }
}

fn info(owner: &str, token: i64, lease_remaining_ms: i64) -> Reply {
    Reply::Map(vec![
        (bulk("owner"), bulk(owner)),
        (bulk("token"), int(token)),
        (bulk("lease_remaining_ms"), int(lease_remaining_ms)),
    ])
}

#[test]
fn acquire_grants_a_token_and_another_owner_waits_for_the_lease() {
    let mut h = harness();
    let first = token(h.run_entry("LOCK ACQUIRE x a 1000"));
    assert_eq!(first, (1 << 40) + 1, "epoch 1, log index 1");
    assert_eq!(h.run("LOCK INFO x"), info("a", first, 1000));
    h.advance(400);
    assert_eq!(h.run_entry("LOCK ACQUIRE x b 1000"), Reply::Null);
    assert_eq!(h.run("LOCK INFO x"), info("a", first, 600));
    // Its lease ends at 1000 ms exactly: then b gets a larger token.
    h.advance(599);
    assert_eq!(h.run_entry("LOCK ACQUIRE x b 1000"), Reply::Null);
    h.advance(1);
    assert_eq!(h.run("LOCK INFO x"), Reply::Null);
    let second = token(h.run_entry("LOCK ACQUIRE x b 1000"));
    assert!(second > first, "{second} after {first}");
    assert_eq!(h.run("LOCK INFO x"), info("b", second, 1000));
}

#[test]
fn the_same_owner_acquiring_again_gets_its_token_back_and_a_longer_lease() {
    let mut h = harness();
    let first = token(h.run_entry("LOCK ACQUIRE x a 1000"));
    h.advance(900);
    // A retried ACQUIRE whose reply was lost: same token, lease from now.
    assert_eq!(token(h.run_entry("LOCK ACQUIRE x a 1000")), first);
    assert_eq!(h.run("LOCK INFO x"), info("a", first, 1000));
    h.advance(999);
    assert_eq!(h.run_entry("LOCK ACQUIRE x b 10"), Reply::Null);
}

#[test]
fn refresh_extends_only_the_current_token_while_its_lease_runs() {
    let mut h = harness();
    let a = token(h.run_entry("LOCK ACQUIRE x a 100"));
    h.advance(50);
    assert_eq!(h.run_entry(&format!("LOCK REFRESH x {a} 500")), ok());
    assert_eq!(h.run("LOCK INFO x"), info("a", a, 500));
    h.advance(500);
    assert_error(
        &h.run_entry(&format!("LOCK REFRESH x {a} 500")),
        &format!("FENCED token {a} is not the current token of lock 'x' (its lease ended)"),
    );
    let b = token(h.run_entry("LOCK ACQUIRE x b 100"));
    assert_error(
        &h.run_entry(&format!("LOCK REFRESH x {a} 500")),
        &format!(
            "FENCED token {a} is not the current token of lock 'x' (held by 'b' with token {b})"
        ),
    );
    assert_error(
        &h.run_entry("LOCK REFRESH nosuch 1 500"),
        "FENCED token 1 is not the current token of lock 'nosuch' (nobody holds it)",
    );
    assert_eq!(h.run("LOCK INFO x"), info("b", b, 100), "unchanged");
}

#[test]
fn release_ends_the_grant_and_keeps_the_last_token() {
    let mut h = harness();
    let a = token(h.run_entry("LOCK ACQUIRE x a 1000"));
    assert_error(
        &h.run_entry(&format!("LOCK RELEASE x {}", a + 1)),
        &format!(
            "FENCED token {} is not the current token of lock 'x' (held by 'a' with token {a})",
            a + 1
        ),
    );
    assert_eq!(h.run_entry(&format!("LOCK RELEASE x {a}")), ok());
    assert_eq!(h.run("LOCK INFO x"), Reply::Null);
    assert_error(
        &h.run_entry(&format!("LOCK RELEASE x {a}")),
        &format!("FENCED token {a} is not the current token of lock 'x' (nobody holds it)"),
    );
    // The key stays, with the last token, so a later grant is larger.
    assert_eq!(h.run("TYPE x"), Reply::Simple("lock".into()));
    let lock = h.db.get(b"x", h.now_ms).and_then(Value::as_lock).unwrap();
    assert_eq!((lock.holder.clone(), lock.last_granted), (None, a as u64));
    let b = token(h.run_entry("LOCK ACQUIRE x b 1000"));
    assert!(b > a);
    // An expired lease cannot be released: the holder learns it lost it.
    h.advance(1000);
    assert_error(
        &h.run_entry(&format!("LOCK RELEASE x {b}")),
        &format!("FENCED token {b} is not the current token of lock 'x' (its lease ended)"),
    );
}

#[test]
fn tokens_increase_after_the_lock_is_deleted_and_on_a_shard_at_a_higher_epoch() {
    let mut h = harness();
    let mut granted = vec![token(h.run_entry("LOCK ACQUIRE x a 1000"))];
    assert_eq!(h.run_entry("DEL x"), int(1));
    granted.push(token(h.run_entry("LOCK ACQUIRE x a 1000")));
    assert_eq!(h.run_entry("FLUSHALL"), ok());
    granted.push(token(h.run_entry("LOCK ACQUIRE x a 1000")));
    h.run_entry("PEXPIRE x 1");
    h.advance(1);
    granted.push(token(h.run_entry("LOCK ACQUIRE x a 1000")));

    // The slot moves to a shard whose log is shorter but whose ownership
    // came from a later map version: its tokens are larger still, with
    // the lock's key or without it.
    let moved = h.db.get(b"x", h.now_ms).cloned().unwrap();
    let mut target = harness();
    target.now_ms = h.now_ms;
    target.db.set_epoch(2);
    target
        .db
        .insert(bytes::Bytes::from_static(b"x"), moved, None, target.now_ms);
    target.advance(1000);
    granted.push(token(target.run_entry("LOCK ACQUIRE x b 1000")));
    target.run_entry("DEL x");
    granted.push(token(target.run_entry("LOCK ACQUIRE x c 1000")));
    assert!(
        granted.windows(2).all(|pair| pair[0] < pair[1]),
        "{granted:?}"
    );
    assert!(granted[4] > 2 << 40, "{granted:?}");
}

#[test]
fn a_log_entry_grants_at_most_one_lock() {
    let mut h = harness();
    h.run_entry("LOCK ACQUIRE {t}a o 1000");
    // Two more commands of the same entry, as in one transaction.
    assert_eq!(h.run("LOCK ACQUIRE {t}a o 1000"), int((1 << 40) + 1));
    assert_error(
        &h.run("LOCK ACQUIRE {t}b o 1000"),
        "ERR a log entry grants at most one lock: acquire it in a command (or transaction) of its own",
    );
    assert_eq!(h.run("EXISTS {t}b"), int(0));
    assert!(matches!(
        h.run_entry("LOCK ACQUIRE {t}b o 1000"),
        Reply::Integer(_)
    ));
}

#[test]
fn a_lock_is_a_key_of_its_own_type() {
    let mut h = harness();
    h.run_entry("LOCK ACQUIRE x owner 1000");
    let wrongtype = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    run_table(
        &mut h,
        &[
            ("TYPE x", Reply::Simple("lock".into())),
            ("OBJECT ENCODING x", bulk("lock")),
            ("GET x", wrongtype.clone()),
            ("LPUSH x a", wrongtype.clone()),
            ("HSET x f v", wrongtype.clone()),
            ("SET s v", ok()),
            ("LOCK ACQUIRE s o 10", wrongtype.clone()),
            ("LOCK INFO s", wrongtype.clone()),
            ("LOCK REFRESH s 1 10", wrongtype.clone()),
            ("LOCK RELEASE s 1", wrongtype),
            ("EXPIRE x 100", int(1)),
            ("TTL x", int(100)),
            (
                "SCAN 0 TYPE lock",
                Reply::Array(vec![bulk("0"), Reply::Array(vec![bulk("x")])]),
            ),
        ],
    );
    let Reply::Integer(usage) = h.run("MEMORY USAGE x") else {
        panic!("MEMORY USAGE answers an integer");
    };
    // A lock is a collection's box (as large as the largest type's
    // header) holding its tokens and owner: more than a short string,
    // well under a KiB.
    let Reply::Integer(string_usage) = h.run("MEMORY USAGE s") else {
        panic!("MEMORY USAGE answers an integer");
    };
    assert!(
        usage > string_usage && usage < 1024,
        "{usage} vs {string_usage}"
    );
    assert_eq!(h.run("DEL x"), int(1));
    assert_eq!(h.run("LOCK INFO x"), Reply::Null);
}

#[test]
fn bad_arguments_get_syntax_and_value_errors() {
    let mut h = harness();
    let lease = "ERR invalid lease: give milliseconds from 1 to 2592000000";
    let token = "ERR invalid fencing token: give the integer LOCK ACQUIRE answered";
    run_table(
        &mut h,
        &[
            ("LOCK ACQUIRE x o 0", err(lease)),
            ("LOCK ACQUIRE x o -5", err(lease)),
            ("LOCK ACQUIRE x o 1.5", err(lease)),
            ("LOCK ACQUIRE x o 2592000001", err(lease)),
            ("LOCK REFRESH x nope 10", err(token)),
            ("LOCK RELEASE x -1", err(token)),
            (
                "LOCK ACQUIRE x o",
                err("ERR wrong number of arguments for 'lock|acquire' command"),
            ),
            (
                "LOCK INFO x y",
                err("ERR wrong number of arguments for 'lock|info' command"),
            ),
            (
                "LOCK STEAL x",
                err("ERR unknown subcommand 'STEAL'. Try LOCK HELP."),
            ),
            (
                "LOCK",
                err("ERR wrong number of arguments for 'lock' command"),
            ),
        ],
    );
    assert_eq!(h.db.len(), 0, "nothing was written");
    let Reply::Array(help) = h.run("LOCK HELP") else {
        panic!("LOCK HELP answers lines");
    };
    assert!(help.len() > 8);
}

#[test]
fn info_is_a_read_and_its_map_flattens_for_resp2() {
    let mut h = harness();
    h.run_entry("LOCK ACQUIRE x a 1000");
    let request = args("LOCK INFO x");
    let classified = crate::classify(&request).unwrap();
    assert!(!classified.write, "LOCK INFO reads");
    for line in [
        "LOCK ACQUIRE x a 1",
        "LOCK REFRESH x 1 1",
        "LOCK RELEASE x 1",
    ] {
        assert!(crate::classify(&args(line)).unwrap().write, "{line}");
    }
    // The same map for both protocols; RESP2 clients see it flat.
    h.protocol = crate::Protocol::Resp3;
    assert!(matches!(h.run("LOCK INFO x"), Reply::Map(_)));
    // On the write path (inside MULTI) it reads too.
    let written = crate::execute_write(&mut h.db, &request, h.now_ms);
    assert!(matches!(written, Reply::Map(_)), "{written:?}");
    let _ = LockValue::default();
}
