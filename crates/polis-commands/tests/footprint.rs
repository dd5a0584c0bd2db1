//! The keyspace's memory figure (`Db::used_memory`, what INFO reports
//! and `maxmemory` bounds) against what the process really grows by,
//! per data type and layout, with the commands a client would send.
//!
//! Strings of 10, 100 and 1000 bytes, 100 with a deadline; hashes,
//! lists, sets, sorted sets and streams as keys of 8 elements and as one
//! large key (18-byte elements). Every case builds its elements in two halves in a keyspace of its
//! own and compares, over the second half, the growth of the figure
//! with the growth of this process's resident set (`VmRSS`). Keyspaces
//! are kept until the end, so that no case reuses memory another freed.
//! One test in this binary: nothing else allocates meanwhile.
//!
//! `POLIS_FOOTPRINT_ELEMENTS=N` changes the elements per case.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use bytes::Bytes;
use polis_commands::execute_write;
use polis_store::Db;

/// Elements per case (streams: half as many entries).
const ELEMENTS_DEFAULT: u64 = 200_000;
/// Elements per small key.
const SMALL: u64 = 8;
/// Elements one command adds to a large key.
const BATCH: u64 = 100;
/// How far the figure may be from the real growth.
const RATIO_MIN: f64 = 0.85;
const RATIO_MAX: f64 = 1.15;
const NOW_MS: u64 = 1_700_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    String,
    /// Strings of 10 bytes.
    ShortString,
    /// Strings of 1000 bytes.
    LongString,
    StringWithDeadline,
    Hash,
    List,
    Set,
    SortedSet,
    Stream,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    SmallKeys,
    OneKey,
}

const CASES: [(Kind, Layout); 14] = [
    (Kind::String, Layout::SmallKeys),
    (Kind::ShortString, Layout::SmallKeys),
    (Kind::LongString, Layout::SmallKeys),
    (Kind::StringWithDeadline, Layout::SmallKeys),
    (Kind::Hash, Layout::SmallKeys),
    (Kind::Hash, Layout::OneKey),
    (Kind::List, Layout::SmallKeys),
    (Kind::List, Layout::OneKey),
    (Kind::Set, Layout::SmallKeys),
    (Kind::Set, Layout::OneKey),
    (Kind::SortedSet, Layout::SmallKeys),
    (Kind::SortedSet, Layout::OneKey),
    (Kind::Stream, Layout::SmallKeys),
    (Kind::Stream, Layout::OneKey),
];

fn per_command(kind: Kind, layout: Layout) -> u64 {
    match (kind, layout) {
        (Kind::Stream, _) => 1,
        (kind, _) if is_string(kind) => 1,
        (_, Layout::SmallKeys) => SMALL,
        (_, Layout::OneKey) => BATCH,
    }
}

fn key(kind: Kind, layout: Layout, n: u64) -> String {
    match (kind, layout) {
        (kind, _) if is_string(kind) => format!("s:{n:010}"),
        (_, Layout::SmallKeys) => format!("k:{:010}", n / SMALL),
        (_, Layout::OneKey) => "large".to_owned(),
    }
}

/// Returns the command adding elements `first..last` (of one key).
fn command(kind: Kind, layout: Layout, first: u64, last: u64) -> Vec<Bytes> {
    let mut args: Vec<String> = Vec::new();
    let name = match kind {
        Kind::String | Kind::ShortString | Kind::LongString | Kind::StringWithDeadline => "SET",
        Kind::Hash => "HSET",
        Kind::List => "RPUSH",
        Kind::Set => "SADD",
        Kind::SortedSet => "ZADD",
        Kind::Stream => "XADD",
    };
    args.push(name.to_owned());
    args.push(key(kind, layout, first));
    match kind {
        Kind::String => args.push("v".repeat(100)),
        Kind::ShortString => args.push("v".repeat(10)),
        Kind::LongString => args.push("v".repeat(1000)),
        Kind::StringWithDeadline => {
            args.extend(["v".repeat(100), "PX".to_owned(), "3600000".to_owned()]);
        }
        Kind::Stream => {
            args.extend([
                "*".to_owned(),
                "field".to_owned(),
                format!("value:{first:010}"),
            ]);
        }
        _ => {
            for n in first..last {
                let element = format!("element:{n:010}");
                match kind {
                    Kind::Hash => args.extend([element, format!("value:{n}")]),
                    // Scores in no particular order, as most sorted sets
                    // get them.
                    Kind::SortedSet => {
                        args.extend([
                            (n.wrapping_mul(0x9E37_79B9) % 1_000_003).to_string(),
                            element,
                        ]);
                    }
                    _ => args.push(element),
                }
            }
        }
    }
    args.into_iter().map(Bytes::from).collect()
}

fn is_string(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::String | Kind::ShortString | Kind::LongString | Kind::StringWithDeadline
    )
}

fn build(db: &mut Db, kind: Kind, layout: Layout, first: u64, last: u64) {
    let step = per_command(kind, layout);
    let mut next = first;
    while next < last {
        let end = (next + step).min(last);
        let reply = execute_write(db, &command(kind, layout, next, end), NOW_MS + next);
        assert!(!reply.is_error(), "{kind:?}: {reply:?}");
        next = end;
    }
}

/// Returns this process's resident set, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn the_memory_figure_follows_the_real_growth_of_every_type() {
    let elements: u64 = std::env::var("POLIS_FOOTPRINT_ELEMENTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(ELEMENTS_DEFAULT);
    let mut kept = Vec::new();
    let mut rows = Vec::new();
    for (kind, layout) in CASES {
        let count = if kind == Kind::Stream {
            elements / 2
        } else {
            elements
        };
        let half = (count / 2).div_ceil(SMALL) * SMALL;
        let mut db = Db::new();
        build(&mut db, kind, layout, 0, half);
        let (rss_half, used_half) = (rss_bytes(), db.used_memory());
        build(&mut db, kind, layout, half, 2 * half);
        let (rss_end, used_end) = (rss_bytes(), db.used_memory());
        let real = rss_end.saturating_sub(rss_half) as f64 / half as f64;
        let figure = used_end.saturating_sub(used_half) as f64 / half as f64;
        rows.push((kind, layout, real, figure, figure / real));
        kept.push(db);
    }
    println!("| case | real B/element | figure B/element | figure ÷ real |");
    println!("|---|---|---|---|");
    for (kind, layout, real, figure, ratio) in &rows {
        println!("| {kind:?} {layout:?} | {real:.0} | {figure:.0} | {ratio:.2} |");
    }
    let off: Vec<_> = rows
        .iter()
        .filter(|(_, _, _, _, ratio)| !(RATIO_MIN..=RATIO_MAX).contains(ratio))
        .collect();
    assert!(off.is_empty(), "figures off by more than 15 %: {off:?}");
}
