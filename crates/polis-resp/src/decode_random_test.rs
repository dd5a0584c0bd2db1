//! Seeded random-input tests for the decoder, and the inputs fuzzing found.
//! The same properties as `fuzz/fuzz_targets/decode_request.rs`, run on
//! every `cargo test` without a fuzzing toolchain.

use super::tests::{decode_all, decode_bytewise, decode_split, pipeline};
use super::*;

/// xorshift64: a tiny deterministic generator for the garbage test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Makes an input: pure garbage, or a valid pipeline with a few bytes
/// flipped, cut or repeated, biased towards protocol bytes.
fn garbage(rng: &mut XorShift, valid: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8] = b"*$\r\n\"'\\x -0123456789aZ:+\0\xff";
    let mut input = if rng.below(3) == 0 {
        Vec::new()
    } else {
        let start = rng.below(valid.len());
        valid[start..].to_vec()
    };
    let edits = rng.below(8);
    for _ in 0..edits {
        let byte = if rng.below(4) == 0 {
            rng.next() as u8
        } else {
            ALPHABET[rng.below(ALPHABET.len())]
        };
        match rng.below(3) {
            0 if !input.is_empty() => {
                let at = rng.below(input.len());
                input[at] = byte;
            }
            1 => {
                let at = rng.below(input.len() + 1);
                input.insert(at, byte);
            }
            _ => {
                for _ in 0..rng.below(6) {
                    input.push(ALPHABET[rng.below(ALPHABET.len())]);
                }
            }
        }
    }
    input
}

#[test]
fn random_garbage_never_panics_and_splits_never_matter() {
    let seed = std::env::var("POLIS_RESP_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x5eed_c0de_u64);
    println!(
        "seed {seed} (replay: POLIS_RESP_SEED={seed} cargo test -p polis-resp random_garbage)"
    );
    let mut rng = XorShift(seed.max(1));
    let (valid, _) = pipeline();
    let small = DecodeLimits {
        bulk_len_max: 16,
        multibulk_len_max: 4,
        inline_len_max: 24,
        query_buffer_len_max: 1024,
    };
    for case in 0..20_000 {
        let input = garbage(&mut rng, &valid);
        let limits = if case % 2 == 0 {
            DecodeLimits::default()
        } else {
            small
        };
        let whole = decode_all(&input, &limits);
        assert!(
            !matches!(whole.1, Some(ProtocolError::Codec(_))),
            "seed {seed} case {case}: codec disagreed on {input:?}: {whole:?}"
        );
        let cut = rng.below(input.len() + 1);
        let split = decode_split(&input, &[cut], &limits);
        // After an error the rest of the buffer is never looked at, so
        // only requests and error are compared, not what was left.
        assert_eq!(
            (&whole.0, &whole.1),
            (&split.0, &split.1),
            "seed {seed} case {case}: cut at {cut} of {input:?}"
        );
    }
}

/// Replays the committed fuzz corpus (`fuzz/corpus/decode_request`, inputs
/// cargo-fuzz found and minimized to the ones reaching distinct code) with
/// the fuzz target's properties, so every `cargo test` covers them.
/// Inputs that ever crashed belong in that directory too, and in
/// [`super::tests`] as a named case.
#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/decode_request");
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    let small = DecodeLimits {
        bulk_len_max: 32,
        multibulk_len_max: 8,
        inline_len_max: 64,
        query_buffer_len_max: 1 << 20,
    };
    let mut replayed = 0;
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let input = std::fs::read(&path).expect("a readable corpus file");
        // The fuzz target's layout: a control byte, then the data.
        let Some((&control, data)) = input.split_first() else {
            continue;
        };
        let limits = if control & 1 == 0 {
            DecodeLimits::default()
        } else {
            small
        };
        let whole = decode_all(data, &limits);
        assert!(
            !matches!(whole.1, Some(ProtocolError::Codec(_))),
            "{}: {whole:?}",
            path.display()
        );
        let cut = usize::from(control >> 1) * data.len() / 127;
        let split = decode_split(data, &[cut], &limits);
        assert_eq!(
            (&whole.0, &whole.1),
            (&split.0, &split.1),
            "{}",
            path.display()
        );
        let bytewise = decode_bytewise(data, &limits);
        assert_eq!((whole.0, whole.1), bytewise, "{}", path.display());
        replayed += 1;
    }
    assert!(
        replayed >= 10,
        "only {replayed} corpus files in {}",
        dir.display()
    );
}
