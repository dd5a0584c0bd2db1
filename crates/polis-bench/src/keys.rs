//! The keyspace and how a key is chosen from it: uniformly, or zipfian
//! (a few hot keys take most of the requests, as in YCSB).
//!
//! Keys are numbered `0..keys`; the names are `key:{n}` for strings,
//! `counter:{n}` for INCR and `hash:{n}` for HSET/HGET, the same names in
//! every run and on every system. The element writes (LPUSH, SADD, ZADD,
//! XADD) go to [`CONTAINERS`] keys of each type (`list:{n % CONTAINERS}`
//! ...), the element named after the key number (`member:{n}`).

use rand::rngs::StdRng;
use rand::Rng;

use crate::spec::Distribution;

/// The name of the string key number `n`.
pub fn string_key(n: u64) -> String {
    format!("key:{n}")
}

/// The name of the counter number `n` (INCR).
pub fn counter_key(n: u64) -> String {
    format!("counter:{n}")
}

/// The name of the hash number `n` (HSET, HGET).
pub fn hash_key(n: u64) -> String {
    format!("hash:{n}")
}

/// The field that HSET writes and HGET reads in every hash.
pub const HASH_FIELD: &str = "field";

/// Lists, sets, sorted sets and streams the element writes spread over:
/// enough that every shard holds many of them.
pub const CONTAINERS: u64 = 4096;

/// The name of the container of type `kind` (`list`, `set`, `zset`,
/// `stream`) that key number `n` writes into.
pub fn container_key(kind: &str, n: u64) -> String {
    format!("{kind}:{}", n % CONTAINERS)
}

/// The element (set or sorted-set member) key number `n` adds.
pub fn member(n: u64) -> String {
    format!("member:{n}")
}

/// Chooses key numbers in `0..keys`.
#[derive(Debug, Clone)]
pub enum KeyChooser {
    Uniform { keys: u64 },
    Zipfian(Zipfian),
}

impl KeyChooser {
    /// Returns a chooser over `keys` keys.
    ///
    /// # Errors
    /// Fails if `keys` is 0 or a zipfian exponent is outside (0, 1).
    pub fn new(keys: u64, distribution: Distribution) -> Result<Self, String> {
        if keys == 0 {
            return Err("the keyspace is empty (keys = 0)".to_string());
        }
        match distribution {
            Distribution::Uniform => Ok(Self::Uniform { keys }),
            Distribution::Zipfian(theta) => Zipfian::new(keys, theta).map(Self::Zipfian),
        }
    }

    /// Returns the next key number.
    pub fn next(&self, rng: &mut StdRng) -> u64 {
        match self {
            Self::Uniform { keys } => rng.random_range(0..*keys),
            Self::Zipfian(zipfian) => zipfian.next(rng),
        }
    }
}

/// The zipfian generator of Gray et al., "Quickly generating billion-record
/// synthetic databases" (SIGMOD 1994), as YCSB uses it: rank `r` (0 the
/// most popular) is drawn with probability proportional to `1 / (r+1)^theta`.
///
/// Ranks are then scrambled by a fixed permutation of the keyspace, so the
/// hot keys are spread over the keyspace (and over slots and shards)
/// instead of being the first few numbers.
#[derive(Debug, Clone)]
pub struct Zipfian {
    keys: u64,
    theta: f64,
    alpha: f64,
    zeta_n: f64,
    eta: f64,
    /// The permutation `rank -> (rank * stride + offset) mod keys`; `stride`
    /// is coprime with `keys`, so every key is some rank's image.
    stride: u64,
    offset: u64,
}

impl Zipfian {
    /// Above this many keys the zeta sum (one `powf` per key) would take
    /// seconds; a benchmark keyspace is far smaller.
    pub const KEYS_MAX: u64 = 100_000_000;

    /// Returns the generator for `keys` keys and exponent `theta`.
    ///
    /// # Errors
    /// Fails if `theta` is not in (0, 1) (the method needs `theta != 1`;
    /// YCSB uses 0.99) or `keys` is 0 or above [`Self::KEYS_MAX`].
    pub fn new(keys: u64, theta: f64) -> Result<Self, String> {
        if !(theta > 0.0 && theta < 1.0) {
            return Err(format!(
                "the zipfian exponent must be in (0, 1), not {theta}"
            ));
        }
        if keys == 0 || keys > Self::KEYS_MAX {
            return Err(format!(
                "a zipfian keyspace needs 1 to {} keys, not {keys}",
                Self::KEYS_MAX
            ));
        }
        let zeta_n = zeta(keys, theta);
        let zeta_2 = zeta(2, theta);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / keys as f64).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n);
        // Ends at the latest at `keys - 1`, which is coprime with `keys`.
        let mut stride = (0x9E37_79B9_7F4A_7C15 % keys).max(1);
        while gcd(stride, keys) != 1 {
            stride += 1;
        }
        Ok(Self {
            keys,
            theta,
            alpha,
            zeta_n,
            eta,
            stride,
            offset: 0x2545_F491_4F6C_DD1D % keys,
        })
    }

    /// Returns the rank (0 the most popular) of the next draw.
    pub fn next_rank(&self, rng: &mut StdRng) -> u64 {
        let u: f64 = rng.random();
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.keys - 1);
        }
        let rank = (self.keys as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        rank.min(self.keys - 1)
    }

    /// Returns the key number of rank `rank`.
    pub fn key_of_rank(&self, rank: u64) -> u64 {
        let scrambled = (u128::from(rank) * u128::from(self.stride) + u128::from(self.offset))
            % u128::from(self.keys);
        // Smaller than `keys`, so it fits.
        scrambled as u64
    }

    /// Returns the next key number.
    pub fn next(&self, rng: &mut StdRng) -> u64 {
        self.key_of_rank(self.next_rank(rng))
    }
}

/// The generalized harmonic number `sum_{i=1..n} 1 / i^theta`.
fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn zipfian_hottest_key_is_drawn_far_more_often_than_the_median_key() {
        let keys = 1_000;
        let zipfian = Zipfian::new(keys, 0.99).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = vec![0u64; keys as usize];
        let draws = 200_000;
        for _ in 0..draws {
            counts[zipfian.next(&mut rng) as usize] += 1;
        }
        let mut sorted = counts.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let hottest = sorted[0];
        let median = sorted[sorted.len() / 2];
        // With theta 0.99 over 1000 keys, rank 0 takes about 13 % of the
        // draws and rank 500 about 0.03 %.
        assert!(
            hottest > 100 * median.max(1),
            "hottest {hottest}, median {median}"
        );
        assert!(
            hottest > draws / 12 && hottest < draws / 6,
            "hottest {hottest}"
        );
        // The hottest key is rank 0's image, not key 0.
        let hottest_key = counts.iter().position(|c| *c == hottest).unwrap() as u64;
        assert_eq!(hottest_key, zipfian.key_of_rank(0));
    }

    #[test]
    fn zipfian_ranks_follow_the_power_law() {
        let zipfian = Zipfian::new(10_000, 0.99).unwrap();
        let mut rng = StdRng::seed_from_u64(11);
        let mut rank_counts = [0u64; 4];
        for _ in 0..400_000 {
            let rank = zipfian.next_rank(&mut rng);
            if rank < 4 {
                rank_counts[rank as usize] += 1;
            }
        }
        // P(rank 0) / P(rank 3) = 4^0.99, about 3.94.
        let ratio = rank_counts[0] as f64 / rank_counts[3] as f64;
        assert!((3.5..4.4).contains(&ratio), "ratio {ratio}");
    }

    #[test]
    fn the_scramble_is_a_permutation() {
        for keys in [1, 2, 7, 10, 64, 1000, 1024] {
            let zipfian = Zipfian::new(keys, 0.5).unwrap();
            let mut seen = vec![false; keys as usize];
            for rank in 0..keys {
                seen[zipfian.key_of_rank(rank) as usize] = true;
            }
            assert!(seen.iter().all(|s| *s), "keys {keys}");
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_keys() {
        let chooser = KeyChooser::new(500, Distribution::Zipfian(0.99)).unwrap();
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..100).map(|_| chooser.next(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn uniform_stays_in_range_and_covers_it() {
        let chooser = KeyChooser::new(10, Distribution::Uniform).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[chooser.next(&mut rng) as usize] += 1;
        }
        assert!(seen.iter().all(|c| (800..1200).contains(c)), "{seen:?}");
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(KeyChooser::new(0, Distribution::Uniform).is_err());
        assert!(KeyChooser::new(10, Distribution::Zipfian(1.0)).is_err());
        assert!(KeyChooser::new(10, Distribution::Zipfian(0.0)).is_err());
        assert!(KeyChooser::new(10, Distribution::Zipfian(f64::NAN)).is_err());
    }
}
