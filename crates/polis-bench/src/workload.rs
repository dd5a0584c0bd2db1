//! The operations of each workload and the proportions they are drawn in.

use rand::rngs::StdRng;
use rand::Rng;

use crate::spec::Workload;

/// One kind of operation. On etcd, INCR and HSET are Puts and HGET a Range
/// of their keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// GET of a string key.
    Get,
    /// SET of a string key to a value of the spec's size.
    Set,
    /// INCR of a counter.
    Incr,
    /// HSET of the field of a hash.
    Hset,
    /// HGET of the field of a hash.
    Hget,
    /// LPUSH of the value onto one of [`crate::keys::CONTAINERS`] lists.
    Lpush,
    /// SADD of a member named after the key number to a set.
    Sadd,
    /// ZADD of a member named after the key number (scored by it) to a
    /// sorted set.
    Zadd,
    /// XADD of an entry holding the value to a stream.
    Xadd,
}

impl Op {
    pub const ALL: [Op; 9] = [
        Op::Get,
        Op::Set,
        Op::Incr,
        Op::Hset,
        Op::Hget,
        Op::Lpush,
        Op::Sadd,
        Op::Zadd,
        Op::Xadd,
    ];

    /// Returns the name used in results (`get`, `set`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::Incr => "incr",
            Op::Hset => "hset",
            Op::Hget => "hget",
            Op::Lpush => "lpush",
            Op::Sadd => "sadd",
            Op::Zadd => "zadd",
            Op::Xadd => "xadd",
        }
    }

    /// Returns whether the operation changes data (and so goes to a leader
    /// and waits for replicas when asked to).
    pub fn is_write(self) -> bool {
        !matches!(self, Op::Get | Op::Hget)
    }

    /// Returns the position of the operation in [`Op::ALL`].
    pub fn index(self) -> usize {
        match self {
            Op::Get => 0,
            Op::Set => 1,
            Op::Incr => 2,
            Op::Hset => 3,
            Op::Hget => 4,
            Op::Lpush => 5,
            Op::Sadd => 6,
            Op::Zadd => 7,
            Op::Xadd => 8,
        }
    }
}

/// Draws operations in a workload's proportions.
#[derive(Debug, Clone)]
pub struct OpMix {
    /// Cumulative weights in per mille, in the order of [`Op::ALL`].
    cumulative: [u32; Op::ALL.len()],
}

impl OpMix {
    const TOTAL: u32 = 1000;

    /// Returns the mix of `workload`.
    pub fn new(workload: Workload) -> Self {
        let weights = Self::weights(workload);
        let mut cumulative = [0; Op::ALL.len()];
        let mut sum = 0;
        for (slot, weight) in cumulative.iter_mut().zip(weights) {
            sum += weight;
            *slot = sum;
        }
        debug_assert_eq!(sum, Self::TOTAL);
        Self { cumulative }
    }

    /// Returns the weights, in per mille, of the operations in the
    /// order of [`Op::ALL`].
    pub fn weights(workload: Workload) -> [u32; Op::ALL.len()] {
        let only = |op: Op| {
            let mut weights = [0; Op::ALL.len()];
            weights[op.index()] = Self::TOTAL;
            weights
        };
        match workload {
            Workload::A => [500, 500, 0, 0, 0, 0, 0, 0, 0],
            Workload::B => [950, 50, 0, 0, 0, 0, 0, 0, 0],
            Workload::C => [1000, 0, 0, 0, 0, 0, 0, 0, 0],
            Workload::WriteOnly => only(Op::Set),
            Workload::Mixed => [400, 200, 200, 100, 100, 0, 0, 0, 0],
            Workload::Lpush => only(Op::Lpush),
            Workload::Sadd => only(Op::Sadd),
            Workload::Zadd => only(Op::Zadd),
            Workload::Xadd => only(Op::Xadd),
            Workload::Hset => only(Op::Hset),
        }
    }

    /// Returns whether the workload uses counters and hashes (which then
    /// have to be loaded).
    pub fn uses_counters_and_hashes(workload: Workload) -> bool {
        let weights = Self::weights(workload);
        weights[Op::Incr.index()] + weights[Op::Hset.index()] + weights[Op::Hget.index()] > 0
    }

    /// Returns the next operation.
    pub fn next(&self, rng: &mut StdRng) -> Op {
        let draw = rng.random_range(0..Self::TOTAL);
        let position = self
            .cumulative
            .iter()
            .position(|bound| draw < *bound)
            .unwrap_or(0);
        Op::ALL[position]
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn proportions(workload: Workload) -> [f64; Op::ALL.len()] {
        let mix = OpMix::new(workload);
        let mut rng = StdRng::seed_from_u64(5);
        let mut counts = [0u32; Op::ALL.len()];
        let draws = 100_000;
        for _ in 0..draws {
            counts[mix.next(&mut rng).index()] += 1;
        }
        counts.map(|c| f64::from(c) / f64::from(draws))
    }

    #[test]
    fn every_workload_is_drawn_in_its_proportions() {
        for workload in [
            Workload::A,
            Workload::B,
            Workload::C,
            Workload::WriteOnly,
            Workload::Mixed,
            Workload::Lpush,
            Workload::Sadd,
            Workload::Zadd,
            Workload::Xadd,
            Workload::Hset,
        ] {
            let expected = OpMix::weights(workload).map(|w| f64::from(w) / 1000.0);
            let seen = proportions(workload);
            for (op, (e, s)) in Op::ALL.iter().zip(expected.iter().zip(seen)) {
                assert!(
                    (e - s).abs() < 0.01,
                    "{workload:?} {}: expected {e}, saw {s}",
                    op.name()
                );
                // An operation with no weight never appears.
                assert!(*e > 0.0 || s == 0.0);
            }
        }
    }

    #[test]
    fn only_the_mixed_workload_needs_counters_and_hashes() {
        assert!(OpMix::uses_counters_and_hashes(Workload::Mixed));
        assert!(!OpMix::uses_counters_and_hashes(Workload::A));
        assert!(!OpMix::uses_counters_and_hashes(Workload::WriteOnly));
    }

    #[test]
    fn indexes_match_the_order_of_all() {
        for (position, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.index(), position);
        }
        assert!(Op::Set.is_write() && Op::Incr.is_write() && Op::Hset.is_write());
        assert!(!Op::Get.is_write() && !Op::Hget.is_write());
        assert!([Op::Lpush, Op::Sadd, Op::Zadd, Op::Xadd]
            .iter()
            .all(|op| op.is_write()));
    }
}
