//! Network fault injection in the peer transport: drop messages to or
//! from chosen peers (partitions, isolation, one-way drops), add delay and
//! jitter, lose a share of messages at random. Off unless the node was
//! started with fault injection enabled; every random choice comes from a
//! seed the node logs.

use std::collections::BTreeSet;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use polis_types::NodeId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The faults in force on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkFaults {
    /// Messages to these peers are dropped.
    #[serde(default)]
    pub drop_to: BTreeSet<NodeId>,
    /// Messages from these peers are dropped.
    #[serde(default)]
    pub drop_from: BTreeSet<NodeId>,
    /// Added to every outgoing message.
    #[serde(default)]
    pub delay_ms: u64,
    /// Up to this much more, drawn per message.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Share of outgoing messages lost at random, in percent (0..=100).
    #[serde(default)]
    pub loss_percent: u8,
    /// How far this node's clock is moved from the machine's, in
    /// milliseconds (ahead when positive): clock skew for the hybrid
    /// clocks of eventual keys.
    #[serde(default)]
    pub clock_offset_ms: i64,
}

impl NetworkFaults {
    /// Returns faults that cut this node off from `peers` both ways.
    pub fn isolated_from(peers: impl IntoIterator<Item = NodeId>) -> Self {
        let peers: BTreeSet<NodeId> = peers.into_iter().collect();
        Self {
            drop_to: peers.clone(),
            drop_from: peers,
            ..Self::default()
        }
    }

    /// Returns true when no fault is in force.
    pub fn is_healthy(&self) -> bool {
        *self == Self::default()
    }
}

/// What happens to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it after this delay.
    Deliver(Duration),
    Drop,
}

/// The fault injector of one node.
pub struct FaultInjector {
    enabled: bool,
    faults: RwLock<NetworkFaults>,
    rng: Mutex<StdRng>,
}

impl FaultInjector {
    /// Returns an injector; a disabled one never changes a message.
    pub fn new(enabled: bool, seed: u64) -> Self {
        Self {
            enabled,
            faults: RwLock::new(NetworkFaults::default()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    /// Returns true when faults may be injected.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Returns the faults in force.
    pub fn faults(&self) -> NetworkFaults {
        self.faults
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Replaces the faults in force.
    ///
    /// # Errors
    /// Returns a message when injection is disabled or `faults` is invalid.
    pub fn set(&self, faults: NetworkFaults) -> Result<(), String> {
        if !self.enabled {
            return Err("fault injection is disabled on this node".into());
        }
        if faults.loss_percent > 100 {
            return Err("loss_percent must be at most 100".into());
        }
        tracing::warn!(?faults, "fault injection: network faults set");
        *self
            .faults
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = faults;
        Ok(())
    }

    /// Decides the fate of a message to `peer`.
    pub fn outgoing(&self, peer: NodeId) -> Verdict {
        if !self.enabled {
            return Verdict::Deliver(Duration::ZERO);
        }
        let faults = self.faults();
        if faults.drop_to.contains(&peer) {
            return Verdict::Drop;
        }
        let mut rng = self
            .rng
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if faults.loss_percent > 0 && rng.random_range(0..100u8) < faults.loss_percent {
            return Verdict::Drop;
        }
        let jitter = if faults.jitter_ms > 0 {
            rng.random_range(0..=faults.jitter_ms)
        } else {
            0
        };
        Verdict::Deliver(Duration::from_millis(faults.delay_ms + jitter))
    }

    /// Decides the fate of a message from `peer`.
    pub fn incoming(&self, peer: NodeId) -> Verdict {
        if self.enabled && self.faults().drop_from.contains(&peer) {
            Verdict::Drop
        } else {
            Verdict::Deliver(Duration::ZERO)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_injector_changes_nothing() {
        let injector = FaultInjector::new(false, 1);
        assert!(injector
            .set(NetworkFaults::isolated_from([NodeId(2)]))
            .is_err());
        assert_eq!(
            injector.outgoing(NodeId(2)),
            Verdict::Deliver(Duration::ZERO)
        );
        assert_eq!(
            injector.incoming(NodeId(2)),
            Verdict::Deliver(Duration::ZERO)
        );
    }

    #[test]
    fn isolation_drops_both_ways_and_only_for_the_named_peers() {
        let injector = FaultInjector::new(true, 1);
        injector
            .set(NetworkFaults::isolated_from([NodeId(2), NodeId(3)]))
            .unwrap();
        assert_eq!(injector.outgoing(NodeId(2)), Verdict::Drop);
        assert_eq!(injector.incoming(NodeId(3)), Verdict::Drop);
        assert_eq!(
            injector.outgoing(NodeId(4)),
            Verdict::Deliver(Duration::ZERO)
        );
        injector.set(NetworkFaults::default()).unwrap();
        assert_eq!(
            injector.outgoing(NodeId(2)),
            Verdict::Deliver(Duration::ZERO)
        );
    }

    #[test]
    fn loss_and_jitter_follow_the_seed() {
        let faults = NetworkFaults {
            loss_percent: 30,
            delay_ms: 5,
            jitter_ms: 10,
            ..NetworkFaults::default()
        };
        let run = |seed| {
            let injector = FaultInjector::new(true, seed);
            injector.set(faults.clone()).unwrap();
            (0..1000)
                .map(|_| injector.outgoing(NodeId(2)))
                .collect::<Vec<_>>()
        };
        let first = run(7);
        assert_eq!(first, run(7), "same seed, same faults");
        let dropped = first
            .iter()
            .filter(|verdict| **verdict == Verdict::Drop)
            .count();
        assert!(
            (200..400).contains(&dropped),
            "about 30% lost, got {dropped}"
        );
        for verdict in first {
            if let Verdict::Deliver(delay) = verdict {
                assert!(delay >= Duration::from_millis(5) && delay <= Duration::from_millis(15));
            }
        }
        assert!(FaultInjector::new(true, 1)
            .set(NetworkFaults {
                loss_percent: 101,
                ..NetworkFaults::default()
            })
            .is_err());
    }
}
