//! The state machine's cost of one SET, without network, Raft or disk:
//! 100,000 keys of 100-byte values, then 2,000,000 SETs on keys drawn
//! uniformly (xorshift, seed 42), timed.
//!
//!     cargo run --release -p polis-commands --example set_cost
//!
//! The machine's noise is large; take the lowest of several runs.

use std::time::Instant;

use bytes::Bytes;
use polis_store::Db;

const KEYS: u64 = 100_000;
const SETS: usize = 2_000_000;
const SEED: u64 = 42;

fn set(key: u64, value: &Bytes) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"SET"),
        Bytes::from(format!("key:{key:012}")),
        value.clone(),
    ]
}

fn main() {
    let value = Bytes::from(vec![b'v'; 100]);
    let mut db = Db::default();
    for key in 0..KEYS {
        polis_commands::execute_write(&mut db, &set(key, &value), 1);
    }
    let mut state = SEED;
    let requests: Vec<Vec<Bytes>> = (0..SETS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            set(state % KEYS, &value)
        })
        .collect();
    let start = Instant::now();
    for args in &requests {
        polis_commands::execute_write(&mut db, args, 2);
    }
    let each = start.elapsed().as_nanos() as f64 / SETS as f64;
    println!("{SETS} SETs over {KEYS} keys (seed {SEED}): {each:.0} ns each");
}
