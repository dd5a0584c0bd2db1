use bytes::Bytes;

use crate::db::Db;
use crate::hash::HashValue;
use crate::value::Value;

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// A small deterministic generator (xorshift64*), seeded by the test.
struct Draws(u64);

impl Draws {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
    }
}

fn loaded(keys: u32) -> Db {
    let mut db = Db::new();
    for index in 0..keys {
        let deadline = (index % 4 == 0).then_some(50_000 + u64::from(index));
        db.insert(
            bytes(&format!("k{index}")),
            Value::String(bytes(&format!("v{index}"))),
            deadline,
            0,
        );
    }
    db
}

/// Encodes the pinned snapshot `count` keys per step, running `between`
/// before every step.
fn steps(db: &mut Db, count: usize, mut between: impl FnMut(&mut Db)) -> Vec<u8> {
    let mut out = db.pin();
    for round in 0.. {
        assert!(round < 100_000, "the steps do not end");
        between(db);
        match db.pinned_step(&mut out, count) {
            Some(true) => break,
            Some(false) => {}
            None => panic!("the pin was lost"),
        }
    }
    assert!(!db.is_pinned());
    out
}

/// One write of any kind to a key that may or may not exist.
fn write(db: &mut Db, draws: &mut Draws, now_ms: u64) {
    let name = bytes(&format!("k{}", draws.below(300)));
    match draws.below(9) {
        0 | 1 => db.insert(name, Value::String(bytes("new")), None, now_ms),
        2 => db.insert(name, Value::String(bytes("ttl")), Some(90_000), now_ms),
        3 => {
            db.remove(&name, now_ms);
        }
        4 => {
            db.set_expire(&name, Some(70_000), now_ms);
        }
        5 => {
            db.set_expire(&name, None, now_ms);
        }
        6 => {
            let mut hash = HashValue::new();
            hash.insert(b"f", b"1");
            db.insert(name, Value::hash(hash), None, now_ms);
        }
        7 => {
            db.update(&name, now_ms, |value| {
                if let Some(hash) = value.as_hash_mut() {
                    hash.insert(b"g", b"2");
                }
            });
        }
        _ => db.insert_keep_ttl(name, Value::String(bytes("kept")), now_ms),
    }
}

#[test]
fn steps_without_writes_give_the_whole_snapshot() {
    let mut db = loaded(1_000);
    let expected = db.to_snapshot();
    for count in [1, 7, 1_000, 5_000] {
        assert_eq!(steps(&mut db, count, |_| {}), expected, "{count} per step");
    }
    let mut empty = Db::new();
    assert_eq!(steps(&mut empty, 3, |_| {}), empty.to_snapshot());
}

#[test]
fn writes_between_steps_do_not_change_the_snapshot() {
    for seed in 1..=60u64 {
        eprintln!("seed {seed}");
        let mut draws = Draws(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut db = loaded(200);
        let expected = db.to_snapshot();
        let mut now_ms = 1_000;
        let count = 1 + draws.below(20) as usize;
        let got = steps(&mut db, count, |db| {
            for _ in 0..draws.below(6) {
                write(db, &mut draws, now_ms);
            }
            if draws.below(40) == 0 {
                db.clear();
            }
            if draws.below(30) == 0 {
                // Keys of slots given away, in one call.
                let digit = draws.below(10).to_string();
                db.remove_where(|key| key.ends_with(digit.as_bytes()));
            }
            // Deadlines pass too: lazy expiry deletes keys.
            now_ms += 400;
        });
        assert_eq!(got, expected, "seed {seed}, {count} keys per step");
        // The live keyspace is whole and what a fresh snapshot says.
        let live = db.to_snapshot();
        assert_eq!(Db::from_snapshot(&live).unwrap().to_snapshot(), live);
    }
}

#[test]
fn a_replaced_keyspace_loses_the_pin() {
    let mut db = loaded(100);
    let mut out = db.pin();
    assert_eq!(db.pinned_step(&mut out, 10), Some(false));
    db = Db::from_snapshot(&db.to_snapshot()).unwrap();
    assert_eq!(db.pinned_step(&mut out, 10), None);
}

#[test]
fn saved_values_are_dropped_once_the_steps_pass_them() {
    let mut db = loaded(100);
    let mut out = db.pin();
    for index in 0..100 {
        db.insert(
            bytes(&format!("k{index}")),
            Value::String(bytes("x")),
            None,
            0,
        );
    }
    assert_eq!(db.pin.as_ref().map(|pin| pin.saved()), Some(100));
    db.pinned_step(&mut out, 50);
    assert_eq!(db.pin.as_ref().map(|pin| pin.saved()), Some(50));
    // Writes behind the steps save nothing.
    let behind = db.iter(0).next().map(|(key, _)| key.clone()).unwrap();
    db.insert(behind, Value::String(bytes("y")), None, 0);
    assert_eq!(db.pin.as_ref().map(|pin| pin.saved()), Some(50));
}

#[test]
fn removing_keys_in_one_pass_leaves_what_removing_them_one_by_one_leaves() {
    let gone = |key: &[u8]| key.ends_with(b"3") || key.ends_with(b"4");
    let mut bulk = loaded(500);
    let mut one_by_one = loaded(500);
    let keys: Vec<Bytes> = one_by_one
        .iter(0)
        .map(|(key, _)| key.clone())
        .filter(|key| gone(key))
        .collect();
    for key in &keys {
        one_by_one.remove(key, 0);
    }
    assert_eq!(bulk.remove_where(gone), keys.len());
    assert_eq!(keys.len(), 100);
    assert_eq!(bulk.to_snapshot(), one_by_one.to_snapshot());
    assert_eq!(bulk.len(), 400);
    assert_eq!(bulk.used_memory(), one_by_one.used_memory());
    assert_eq!(bulk.expires_len(), one_by_one.expires_len());
    // The expiry index names no removed key.
    let due = bulk.expired_keys(u64::MAX, usize::MAX);
    assert_eq!(due.len(), bulk.expires_len());
    assert_eq!(
        due.len(),
        100,
        "every fourth of the 400 left has a deadline"
    );
    assert!(due.iter().all(|key| !gone(key)));
}
