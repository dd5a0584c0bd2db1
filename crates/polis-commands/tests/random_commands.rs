//! Random commands against two keyspaces, as two replicas apply them:
//! every command of the table with arguments drawn from a vocabulary of
//! keys, numbers at and past their limits, option words and stray bytes.
//! Nothing may panic, both replicas must answer alike and hold the same
//! bytes, and a replica restored from a snapshot must go on exactly like
//! the others. The seed is printed; `POLIS_SEED=N` replays one.
//!
//! A longer search: `POLIS_SEED=N POLIS_COMMANDS=1000000 cargo test -p
//! polis-commands --test random_commands`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::Bytes;
use polis_commands::random::SplitMix64;
use polis_commands::spec::{all_commands, is_write, lookup, resolve, CommandSpec};
use polis_commands::{execute_read_with, execute_write, ReadContext};
use polis_resp::Reply;
use polis_store::Db;

/// Commands per seed in the test suite.
const COMMANDS: u64 = 200_000;
/// How often the replicas' bytes are compared, and one restarts from a
/// snapshot.
const COMPARE_EVERY: u64 = 2_000;
/// Most arguments after the name.
const ARGS_MAX: u64 = 9;

/// Keys: few, so that commands meet each other's values.
const KEYS: &[&str] = &["k1", "k2", "k3", "{t}a", "{t}b"];

/// Numbers, at and past the limits commands check.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "5",
    "-1",
    "-2",
    "-100",
    "100",
    "1000",
    "1.5",
    "-0.5",
    "1e3",
    "inf",
    "-inf",
    "+inf",
    "nan",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "4294967295",
    "4294967296",
    "2147483647",
    "-2147483648",
    "1e308",
    "1e309",
    "0x10",
    "",
    " 1",
    "1 ",
    "01",
];

/// Option words and ids of the commands' grammars.
const WORDS: &[&str] = &[
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "COUNT",
    "LIMIT",
    "BYSCORE",
    "BYLEX",
    "REV",
    "WITHSCORES",
    "WITHSCORE",
    "NX",
    "XX",
    "GT",
    "LT",
    "CH",
    "INCR",
    "MAXLEN",
    "MINID",
    "~",
    "=",
    "*",
    "STREAMS",
    "GROUP",
    "BLOCK",
    "NOACK",
    "$",
    ">",
    "0-0",
    "0-1",
    "1-0",
    "1-1",
    "1-*",
    "18446744073709551615-18446744073709551615",
    "MKSTREAM",
    "IDLE",
    "TIME",
    "RETRYCOUNT",
    "FORCE",
    "JUSTID",
    "LASTID",
    "ENTRIESREAD",
    "MATCH",
    "TYPE",
    "AGGREGATE",
    "SUM",
    "MIN",
    "MAX",
    "WEIGHTS",
    "STORE",
    "GET",
    "SET",
    "INCRBY",
    "OVERFLOW",
    "WRAP",
    "SAT",
    "FAIL",
    "u8",
    "i8",
    "u63",
    "i64",
    "i65",
    "u0",
    "#1",
    "#-1",
    "AND",
    "OR",
    "XOR",
    "NOT",
    "BIT",
    "BYTE",
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "KEEPTTL",
    "PERSIST",
    "RANK",
    "MAXLEN",
    "FULL",
    "CREATE",
    "DESTROY",
    "SETID",
    "CREATECONSUMER",
    "DELCONSUMER",
    "STREAM",
    "GROUPS",
    "CONSUMERS",
    "(1",
    "[a",
    "(a",
    "-",
    "+",
    "(",
    "[",
    "WITHVALUES",
    "ENCODING",
    "REFCOUNT",
    "IDLETIME",
    "FREQ",
    "REPLACE",
    "DB",
    "ASC",
    "DESC",
    "ALPHA",
    "BY",
    "LEN",
    "IDX",
    "MINMATCHLEN",
    "WITHMATCHLEN",
    "g",
    "c",
    "f",
    "v",
    "a",
    "b",
    "*",
    "?",
    "[a-z]",
    "\\",
];

fn pick<'a>(rng: &mut SplitMix64, from: &[&'a str]) -> &'a str {
    from[(rng.next_u64() % from.len() as u64) as usize]
}

fn argument(rng: &mut SplitMix64) -> Bytes {
    match rng.next_u64() % 10 {
        0..=2 => Bytes::from(pick(rng, KEYS)),
        3..=5 => Bytes::from(pick(rng, NUMBERS)),
        6..=8 => Bytes::from(pick(rng, WORDS)),
        _ => {
            let len = rng.next_u64() % 6;
            (0..len).map(|_| rng.next_u64() as u8).collect()
        }
    }
}

/// A command name: one of the table's (a container with one of its
/// subcommands), now and then an unknown one.
fn name(rng: &mut SplitMix64, commands: &[&'static CommandSpec]) -> Vec<Bytes> {
    let spec = commands[(rng.next_u64() % commands.len() as u64) as usize];
    let mut args = vec![Bytes::from(spec.name.to_ascii_uppercase())];
    if !spec.subcommands.is_empty() {
        let sub = &spec.subcommands[(rng.next_u64() % spec.subcommands.len() as u64) as usize];
        let sub = sub.name.rsplit('|').next().unwrap_or(sub.name);
        args.push(Bytes::from(sub.to_owned()));
    }
    args
}

/// Commands whose first argument is a key get one most of the time, so
/// that they reach their type's code rather than only argument checks.
fn request(rng: &mut SplitMix64, commands: &[&'static CommandSpec]) -> Vec<Bytes> {
    let mut args = name(rng, commands);
    if !rng.next_u64().is_multiple_of(4) {
        args.push(Bytes::from(pick(rng, KEYS)));
    }
    let extra = rng.next_u64() % (ARGS_MAX + 1);
    for _ in 0..extra {
        args.push(argument(rng));
    }
    args
}

/// Runs `args` as a replica applies it (the write path, with the entry's
/// version and seed) or as a read.
fn apply(db: &mut Db, args: &[Bytes], step: u64, now_ms: u64) -> Reply {
    let write = lookup(&args[0])
        .map(|spec| resolve(spec, args))
        .is_some_and(is_write);
    if write {
        db.begin_write(step, step.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        execute_write(db, args, now_ms)
    } else {
        let ctx = ReadContext::new(now_ms).with_seed(step);
        execute_read_with(db, args, &ctx)
    }
}

/// Returns true for OBJECT IDLETIME and OBJECT FREQ: they read a
/// replica's own record of use, which snapshots leave out, so a replica
/// restored from one answers differently until its keys are used again.
fn reads_access_words(args: &[Bytes]) -> bool {
    args.len() > 1
        && args[0].eq_ignore_ascii_case(b"object")
        && (args[1].eq_ignore_ascii_case(b"idletime") || args[1].eq_ignore_ascii_case(b"freq"))
}

fn render(args: &[Bytes]) -> String {
    args.iter()
        .map(|arg| format!("{:?}", String::from_utf8_lossy(arg)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(seed: u64, count: u64) {
    println!("random commands: seed {seed}, {count} commands (POLIS_SEED={seed} replays)");
    // Node commands (MULTI, CONFIG, ...) never reach a keyspace.
    let commands: Vec<&'static CommandSpec> = all_commands()
        .iter()
        .filter(|spec| !polis_commands::spec::is_node(spec))
        .collect();
    let mut rng = SplitMix64::new(seed);
    let mut first = Db::new();
    let mut second = Db::new();
    let mut now_ms = 1_700_000_000_000;
    let mut errors = 0u64;
    // The most keys the keyspace held at once (it may end empty: a late
    // FLUSHALL, then a STORE of an empty result).
    let mut keys_seen = 0;
    for step in 1..=count {
        now_ms += rng.next_u64() % 50;
        let args = request(&mut rng, &commands);
        let replies = catch_unwind(AssertUnwindSafe(|| {
            (
                apply(&mut first, &args, step, now_ms),
                apply(&mut second, &args, step, now_ms),
            )
        }));
        let (one, other) = replies
            .unwrap_or_else(|_| panic!("seed {seed}, step {step}: {} panicked", render(&args)));
        if !reads_access_words(&args) {
            assert_eq!(
                one,
                other,
                "seed {seed}, step {step}: {} answered differently",
                render(&args)
            );
        }
        errors += u64::from(one.is_error());
        keys_seen = keys_seen.max(first.len());
        if step % COMPARE_EVERY == 0 {
            let bytes = first.to_snapshot();
            assert!(
                bytes == second.to_snapshot(),
                "seed {seed}, step {step}: the replicas' states differ"
            );
            // The second replica restarts from the first one's snapshot.
            second = Db::from_snapshot(&bytes).expect("a snapshot decodes");
            assert!(
                second.to_snapshot() == bytes,
                "seed {seed}: a snapshot round trip changed it"
            );
        }
    }
    println!("random commands: seed {seed}: {errors} of {count} answered an error");
    // Most requests are malformed, but enough must get through to
    // exercise the types themselves.
    assert!(
        errors < count * 95 / 100,
        "only {} commands of {count} succeeded",
        count - errors
    );
    assert!(keys_seen > 0, "no command ever made a key");
}

#[test]
fn random_commands_neither_panic_nor_split_replicas() {
    let seed = std::env::var("POLIS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|since| since.as_nanos() as u64)
                .unwrap_or(1)
        });
    let count = std::env::var("POLIS_COMMANDS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(COMMANDS);
    run(seed, count);
}
