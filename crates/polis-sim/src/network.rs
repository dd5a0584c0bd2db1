//! The simulated network: every message's delay or loss, drawn from the
//! run's seed, and the partitions and slowdowns the nemesis puts in force.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use polis_raft::sim_network::LinkModel;
use polis_raft::transport::MessageKind;
use polis_types::NodeId;
use rand::rngs::StdRng;
use rand::Rng;

use crate::config::{stream, SimConfig};

/// How much longer a slow message takes, at most.
const SLOW_EXTRA_US_MAX: u64 = 400_000;

struct LinkState {
    rng: StdRng,
    latency_min_us: u64,
    latency_jitter_us: u64,
    loss_percent: u8,
    slow_permille: u16,
    /// Directed links cut, with how many faults cut each (faults overlap).
    cut: BTreeMap<(NodeId, NodeId), u32>,
    extra_loss_percent: u8,
    extra_latency_us: u64,
}

/// The links between every pair of nodes.
pub struct Links {
    state: Mutex<LinkState>,
}

impl Links {
    /// Returns healthy links with the timing `config` drew.
    pub fn new(config: &SimConfig) -> Self {
        Self {
            state: Mutex::new(LinkState {
                rng: stream(config.seed, "network"),
                latency_min_us: config.latency_min_us,
                latency_jitter_us: config.latency_jitter_us,
                loss_percent: config.loss_percent,
                slow_permille: config.slow_permille,
                cut: BTreeMap::new(),
                extra_loss_percent: 0,
                extra_latency_us: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Cuts the directed links `pairs` (one more fault holding each).
    pub fn cut(&self, pairs: &[(NodeId, NodeId)]) {
        let mut state = self.lock();
        for pair in pairs {
            *state.cut.entry(*pair).or_default() += 1;
        }
    }

    /// Releases one fault's hold on the directed links `pairs`.
    pub fn restore(&self, pairs: &[(NodeId, NodeId)]) {
        let mut state = self.lock();
        for pair in pairs {
            if let Some(count) = state.cut.get_mut(pair) {
                *count -= 1;
                if *count == 0 {
                    state.cut.remove(pair);
                }
            }
        }
    }

    /// Sets the loss added to every link, in percent.
    pub fn set_extra_loss(&self, percent: u8) {
        self.lock().extra_loss_percent = percent.min(100);
    }

    /// Sets the delay added to every message.
    pub fn set_extra_latency(&self, extra: Duration) {
        self.lock().extra_latency_us = extra.as_micros() as u64;
    }

    /// Ends every fault: all links up, no extra loss or delay.
    pub fn heal(&self) {
        let mut state = self.lock();
        state.cut.clear();
        state.extra_loss_percent = 0;
        state.extra_latency_us = 0;
    }
}

/// Returns the directed links between the two sides of a partition.
pub fn between(side_a: &[NodeId], side_b: &[NodeId]) -> Vec<(NodeId, NodeId)> {
    let mut pairs = Vec::new();
    for a in side_a {
        for b in side_b {
            pairs.push((*a, *b));
            pairs.push((*b, *a));
        }
    }
    pairs
}

impl LinkModel for Links {
    fn transit(
        &self,
        from: NodeId,
        to: NodeId,
        _kind: MessageKind,
        _reply: bool,
    ) -> Option<Duration> {
        let mut state = self.lock();
        let state = &mut *state;
        if state.cut.contains_key(&(from, to)) {
            return None;
        }
        let loss = state.loss_percent.saturating_add(state.extra_loss_percent);
        if state.rng.random_range(0..100u8) < loss {
            return None;
        }
        let mut delay_us = state.latency_min_us
            + state.rng.random_range(0..=state.latency_jitter_us)
            + state.extra_latency_us;
        if state.rng.random_range(0..1000u16) < state.slow_permille {
            delay_us += state.rng.random_range(0..=SLOW_EXTRA_US_MAX);
        }
        Some(Duration::from_micros(delay_us))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.
mod tests {
    use super::*;
    use crate::config::SimOptions;

    #[test]
    fn overlapping_cuts_hold_until_both_are_restored() {
        let links = Links::new(&SimConfig::from_seed(1, &SimOptions::default()));
        let [one, two, three] = [NodeId(1), NodeId(2), NodeId(3)];
        let pairs = between(&[one], &[two, three]);
        links.cut(&pairs);
        links.cut(&[(one, two)]);
        assert_eq!(links.transit(one, two, MessageKind::Vote, false), None);
        assert_eq!(links.transit(three, one, MessageKind::Vote, false), None);
        links.restore(&pairs);
        assert_eq!(links.transit(one, two, MessageKind::Vote, false), None);
        links.restore(&[(one, two)]);
        let delivered = (0..50)
            .filter(|_| {
                links
                    .transit(one, two, MessageKind::Append, false)
                    .is_some()
            })
            .count();
        assert!(delivered > 40, "baseline loss is at most 3%: {delivered}");
    }
}
