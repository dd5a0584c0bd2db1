//! A small seeded generator (SplitMix64) for the read path's random picks
//! (RANDOMKEY, HRANDFIELD). Never used on the write path, where nothing
//! may be random.

/// A SplitMix64 generator: fast, seedable, good enough to sample keys.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Returns `count` distinct indexes below `len` (`count < len`),
    /// uniformly: HRANDFIELD's and ZRANDMEMBER's picks.
    pub fn distinct_picks(&mut self, len: usize, count: usize) -> Vec<usize> {
        if count * 3 <= len {
            // Few picks: draw until `count` distinct ones. With count <=
            // len/3 a draw repeats with probability < 1/3, so the attempt
            // cap is practically never reached; if it is, shuffle instead.
            let mut seen = std::collections::HashSet::with_capacity(count);
            let mut picks = Vec::with_capacity(count);
            for _ in 0..count.saturating_mul(64) {
                let index = self.below(len);
                if seen.insert(index) {
                    picks.push(index);
                    if picks.len() == count {
                        return picks;
                    }
                }
            }
        }
        // Many picks: shuffle the first `count` places of all indexes.
        let mut indexes: Vec<usize> = (0..len).collect();
        for place in 0..count {
            let other = place + self.below(len - place);
            indexes.swap(place, other);
        }
        indexes.truncate(count);
        indexes
    }

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
