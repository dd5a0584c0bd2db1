//! The nemesis: faults on a schedule drawn from the run's seed. Each
//! fault starts, lasts a while, and is undone; the run ends healed.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use anyhow::bail;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

/// A kind of fault the nemesis can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// The cluster split into two random sides.
    Partition,
    /// The leader cut off from everyone.
    IsolateLeader,
    /// Two sides that cannot talk, joined by one node that talks to both.
    Bridge,
    /// kill -9 of a node (the leader half the time), restarted afterwards.
    Kill,
    /// SIGSTOP of a node (the leader half the time), SIGCONT afterwards.
    Pause,
    /// Every follower paused, then the leader killed and the followers
    /// resumed: what a primary acknowledged alone is put to the test.
    PauseKill,
    /// Every message delayed 50-300 ms with jitter.
    Delay,
    /// 20-40 % of messages lost.
    Loss,
    /// A range of 2,048 slots moved to another shard (a slot migration,
    /// which runs on while other faults come and go).
    MoveSlots,
    /// A node added to the cluster (the replica balancer moves replicas
    /// to it: learners, catch-up, joint changes), or, when one was added,
    /// that node removed (its replicas move off, then it stops). Each
    /// runs on while other faults come and go.
    AddRemoveNode,
    /// A random node's clock (the hybrid clock of eventual keys' versions)
    /// moved ahead or behind by a random offset, within
    /// [`CLOCK_AHEAD_MS_MAX`] half the time and beyond it otherwise;
    /// restored when the fault stops.
    ClockSkew,
    /// A random node cut off from everyone for longer than the hint
    /// window, which the eventual workload (and the fault itself) sets to
    /// [`crate::workload::eventual::HINT_WINDOW_MS`]: the hints for it
    /// expire, and only anti-entropy (or read repair) brings it back.
    HintWindow,
}

/// How far ahead of a replica's clock a sender's may run before the
/// replica refuses its writes (polis's `eventual-max-clock-ahead-ms`
/// default).
pub const CLOCK_AHEAD_MS_MAX: u64 = 500;

/// The largest clock offset the clock-skew fault draws.
pub const CLOCK_SKEW_MS_MAX: u64 = 2_000;

impl FaultKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FaultKind; 12] = [
        FaultKind::Partition,
        FaultKind::IsolateLeader,
        FaultKind::Bridge,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::PauseKill,
        FaultKind::Delay,
        FaultKind::Loss,
        FaultKind::MoveSlots,
        FaultKind::AddRemoveNode,
        FaultKind::ClockSkew,
        FaultKind::HintWindow,
    ];

    /// True for faults that need fault injection in the peer transport.
    pub fn is_network(self) -> bool {
        matches!(
            self,
            FaultKind::Partition
                | FaultKind::IsolateLeader
                | FaultKind::Bridge
                | FaultKind::Delay
                | FaultKind::Loss
                | FaultKind::HintWindow
        )
    }

    /// True for faults aimed at eventual namespaces' replication (in the
    /// `all` group only).
    pub fn is_eventual(self) -> bool {
        matches!(self, FaultKind::ClockSkew | FaultKind::HintWindow)
    }

    /// True for faults that need control of the processes.
    pub fn is_process(self) -> bool {
        matches!(
            self,
            FaultKind::Kill | FaultKind::Pause | FaultKind::PauseKill
        )
    }

    fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::IsolateLeader => "isolate-leader",
            FaultKind::Bridge => "bridge",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::PauseKill => "pause-kill",
            FaultKind::Delay => "delay",
            FaultKind::Loss => "loss",
            FaultKind::MoveSlots => "move-slots",
            FaultKind::AddRemoveNode => "add-remove-node",
            FaultKind::ClockSkew => "clock-skew",
            FaultKind::HintWindow => "hint-window",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        match FaultKind::ALL.iter().find(|kind| kind.name() == text) {
            Some(kind) => Ok(*kind),
            None => bail!(
                "unknown fault {text:?}; known: {}",
                FaultKind::ALL.map(FaultKind::name).join(", ")
            ),
        }
    }
}

/// Parses a comma-separated list of fault kinds; `all`, `network` and
/// `process` name groups (`move-slots`, `add-remove-node`, `clock-skew`
/// and `hint-window` are in `all` only), `none` the empty list.
///
/// # Errors
/// Returns an error naming an unknown kind.
pub fn parse_faults(text: &str) -> anyhow::Result<Vec<FaultKind>> {
    let mut kinds = BTreeSet::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word {
            "none" => {}
            "all" => kinds.extend(FaultKind::ALL),
            "network" => kinds.extend(
                FaultKind::ALL
                    .into_iter()
                    .filter(|k| k.is_network() && !k.is_eventual()),
            ),
            "process" => kinds.extend(FaultKind::ALL.into_iter().filter(|k| k.is_process())),
            other => {
                kinds.insert(other.parse()?);
            }
        }
    }
    Ok(kinds.into_iter().collect())
}

/// One fault as planned: its kind and the choices drawn for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFault {
    pub kind: FaultKind,
    /// Aim at a leader (kill, pause) rather than a random node.
    pub at_leader: bool,
    /// Which group's leader: the meta group's or a shard's, drawn from the
    /// groups the cluster has when the fault starts.
    pub group_pick: u64,
    /// A random node order, for sides and victims.
    pub shuffle: Vec<u64>,
    /// Delay (ms) or loss (%), when the kind needs one.
    pub amount: u64,
    /// How far the clock-skew fault moves its node's clock (ahead when
    /// positive); 0 for the other kinds.
    pub offset_ms: i64,
}

/// Draws the next fault from `kinds`.
pub fn plan(kinds: &[FaultKind], nodes: &[u64], rng: &mut StdRng) -> Option<PlannedFault> {
    let kind = *kinds.choose(rng)?;
    let mut shuffle = nodes.to_vec();
    shuffle.shuffle(rng);
    let amount = match kind {
        FaultKind::Delay => rng.random_range(50..=300),
        FaultKind::Loss => rng.random_range(20..=40),
        FaultKind::MoveSlots => rng.random_range(0..16_384),
        _ => 0,
    };
    let at_leader = rng.random_bool(0.5);
    let group_pick = rng.random();
    // Drawn last, and only for this kind, so that schedules without it
    // stay as they were.
    let offset_ms = match kind {
        FaultKind::ClockSkew => {
            let magnitude = if rng.random_bool(0.5) {
                rng.random_range(50..CLOCK_AHEAD_MS_MAX)
            } else {
                rng.random_range(CLOCK_AHEAD_MS_MAX + 100..=CLOCK_SKEW_MS_MAX)
            };
            let magnitude = i64::try_from(magnitude).unwrap_or(i64::MAX);
            if rng.random_bool(0.5) {
                magnitude
            } else {
                -magnitude
            }
        }
        _ => 0,
    };
    Some(PlannedFault {
        kind,
        at_leader,
        group_pick,
        shuffle,
        amount,
        offset_ms,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn fault_lists_parse_and_reject_unknown_names() {
        assert_eq!(
            parse_faults("kill,pause").unwrap(),
            vec![FaultKind::Kill, FaultKind::Pause]
        );
        assert_eq!(parse_faults("all").unwrap().len(), FaultKind::ALL.len());
        assert!(parse_faults("network")
            .unwrap()
            .iter()
            .all(|kind| kind.is_network()));
        assert!(parse_faults("none").unwrap().is_empty());
        assert!(parse_faults("kill,explode").is_err());
        assert_eq!(
            parse_faults("clock-skew,hint-window").unwrap(),
            vec![FaultKind::ClockSkew, FaultKind::HintWindow]
        );
        assert!(!parse_faults("network")
            .unwrap()
            .contains(&FaultKind::HintWindow));
    }

    #[test]
    fn clock_skews_fall_within_the_bound_and_beyond_it() {
        let mut rng = StdRng::seed_from_u64(3);
        let offsets: Vec<i64> = (0..200)
            .filter_map(|_| plan(&[FaultKind::ClockSkew], &[1, 2, 3], &mut rng))
            .map(|fault| fault.offset_ms)
            .collect();
        let bound = CLOCK_AHEAD_MS_MAX as i64;
        let skew_max = CLOCK_SKEW_MS_MAX as i64;
        assert!(offsets.iter().all(|offset| *offset != 0));
        assert!(offsets.iter().all(|offset| offset.abs() <= skew_max));
        assert!(offsets.iter().any(|offset| offset.abs() < bound));
        assert!(offsets.iter().any(|offset| *offset > bound));
        assert!(offsets.iter().any(|offset| *offset < -bound));
        let kill = plan(&[FaultKind::Kill], &[1, 2, 3], &mut rng).unwrap();
        assert_eq!(kill.offset_ms, 0);
    }

    #[test]
    fn the_same_seed_plans_the_same_faults() {
        let plans = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20)
                .map(|_| plan(&FaultKind::ALL, &[1, 2, 3], &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(plans(7), plans(7));
        assert_ne!(plans(7), plans(8));
        assert!(plan(&[], &[1, 2, 3], &mut StdRng::seed_from_u64(1)).is_none());
    }
}
