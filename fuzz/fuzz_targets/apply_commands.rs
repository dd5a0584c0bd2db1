//! Fuzzes the command layer as replicas run it: the input is a sequence
//! of requests (arguments split on 0x00, requests on 0x01), each applied
//! to two keyspaces the way a replica applies a log entry (or run as a
//! read). Properties:
//! - no panic, whatever the arguments;
//! - both keyspaces answer alike and hold the same bytes at the end;
//! - a snapshot of the result decodes to the same bytes.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use polis_commands::{execute_read_with, execute_write, is_write, lookup, resolve, ReadContext};
use polis_store::Db;

/// Requests per input: keeps one input's run short.
const REQUESTS_MAX: usize = 64;

fn apply(db: &mut Db, args: &[Bytes], step: u64) -> polis_resp::Reply {
    let now_ms = 1_700_000_000_000 + step * 7;
    let write = lookup(&args[0])
        .map(|spec| resolve(spec, args))
        .is_some_and(is_write);
    if write {
        db.begin_write(step, step.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        execute_write(db, args, now_ms)
    } else {
        execute_read_with(db, args, &ReadContext::new(now_ms).with_seed(step))
    }
}

fuzz_target!(|data: &[u8]| {
    let mut first = Db::new();
    let mut second = Db::new();
    for (step, request) in data.split(|byte| *byte == 1).take(REQUESTS_MAX).enumerate() {
        let args: Vec<Bytes> = request
            .split(|byte| *byte == 0)
            .map(Bytes::copy_from_slice)
            .collect();
        if args.first().is_none_or(|name| name.is_empty()) {
            continue;
        }
        let step = step as u64 + 1;
        let one = apply(&mut first, &args, step);
        let other = apply(&mut second, &args, step);
        assert_eq!(one, other, "the replicas answered differently");
    }
    let bytes = first.to_snapshot();
    assert!(bytes == second.to_snapshot(), "the replicas' states differ");
    let restored = Db::from_snapshot(&bytes).expect("a snapshot decodes");
    assert!(restored.to_snapshot() == bytes, "a snapshot round trip changed it");
});
