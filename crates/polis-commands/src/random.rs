//! A small seeded generator (SplitMix64) for the read path's random picks
//! (RANDOMKEY, HRANDFIELD). Never used on the write path, where nothing
//! may be random.

/// A SplitMix64 generator: fast, seedable, good enough to sample keys.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Returns a generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Returns the next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Returns a number in `0..bound` (0 when `bound` is 0), without the
    /// bias of a plain modulo.
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            return 0;
        }
        let bound = bound as u128;
        ((u128::from(self.next_u64()) * bound) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_values_in_range() {
        let mut left = SplitMix64::new(42);
        let mut right = SplitMix64::new(42);
        let mut counts = [0usize; 10];
        for _ in 0..10_000 {
            let pick = left.below(10);
            assert_eq!(pick, right.below(10));
            counts[pick] += 1;
        }
        // Roughly uniform: each bucket near 1000.
        assert!(
            counts.iter().all(|&count| (800..1200).contains(&count)),
            "{counts:?}"
        );
        assert_eq!(left.below(0), 0);
    }
}
