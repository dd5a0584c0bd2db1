//! Keyspace notifications: the key events of writes (see
//! [`polis_store::events`]), published as Redis publishes them.
//!
//! Every replica's keyspace records the events of the classes
//! `notify-keyspace-events` selects as it applies the log; only the shard's
//! leader publishes them, and only for the entries of its own term, so
//! each event goes out once at most, in log order, on the
//! `__keyspace@0__:<key>` channel (message: the event) and the
//! `__keyevent@0__:<event>` channel (message: the key), to the subscribers
//! of every node, as PUBLISH does.
//!
//! ```text
//!  apply (every replica) ──> Db records events ──> EventSink::emit
//!                                                    │ leader only
//!                                                    └──> publish_cluster(channel, message)
//! ```
//!
//! Delivery is at most once, as for PUBLISH: around a leader change the
//! entries the old leader applied after it stopped leading publish
//! nothing, and neither do the entries of earlier terms a new leader
//! applies (the old leader may have published them already: a follower
//! learns that an entry committed only after its leader applied it).

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use polis_store::{event_class as class, KeyEvent};
use polis_types::GroupId;

use crate::node::Node;

/// `K`: publish on `__keyspace@0__:<key>`.
pub const KEYSPACE: u16 = 1 << 14;
/// `E`: publish on `__keyevent@0__:<event>`.
pub const KEYEVENT: u16 = 1 << 15;

/// The letters of `notify-keyspace-events`, in the order Redis prints
/// them, with their classes.
const LETTERS: [(char, u16); 11] = [
    ('g', class::GENERIC),
    ('$', class::STRING),
    ('l', class::LIST),
    ('s', class::SET),
    ('h', class::HASH),
    ('z', class::ZSET),
    ('x', class::EXPIRED),
    ('e', class::EVICTED),
    ('t', class::STREAM),
    ('d', class::MODULE),
    ('n', class::NEW),
];

/// Parses `notify-keyspace-events` (case matters, as in Redis); None for
/// a letter that names no class.
pub fn parse_flags(text: &str) -> Option<u16> {
    text.chars().try_fold(0u16, |flags, letter| {
        let flag = match letter {
            'A' => class::ALL,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            'm' => class::KEY_MISS,
            _ => LETTERS.iter().find(|(known, _)| *known == letter)?.1,
        };
        Some(flags | flag)
    })
}

/// Prints flags as Redis does: `A` for every class it covers, then `n`,
/// `K`, `E` and `m`.
pub fn flags_to_string(flags: u16) -> String {
    let mut text = String::new();
    if flags & class::ALL == class::ALL {
        text.push('A');
        if flags & class::NEW != 0 {
            text.push('n');
        }
    } else {
        text.extend(
            LETTERS
                .iter()
                .filter(|(_, flag)| flags & flag != 0)
                .map(|(letter, _)| letter),
        );
    }
    for (letter, flag) in [('K', KEYSPACE), ('E', KEYEVENT), ('m', class::KEY_MISS)] {
        if flags & flag != 0 {
            text.push(letter);
        }
    }
    text
}

/// Returns the classes a keyspace should record under `flags`: none
/// unless events go to a keyspace or keyevent channel.
pub fn record_mask(flags: u16) -> u16 {
    if flags & (KEYSPACE | KEYEVENT) == 0 {
        0
    } else {
        flags & !(KEYSPACE | KEYEVENT)
    }
}

/// The node's `notify-keyspace-events`, read at every publish.
#[derive(Default)]
pub struct KeyEvents {
    flags: AtomicU16,
}

impl KeyEvents {
    /// Returns the node's setting at start.
    pub fn new(flags: u16) -> Self {
        Self {
            flags: AtomicU16::new(flags),
        }
    }

    pub fn flags(&self) -> u16 {
        self.flags.load(Ordering::Relaxed)
    }

    /// Takes new flags, and gives the node's shard replicas the classes
    /// they record from now on.
    pub fn set_flags(&self, node: &Node, flags: u16) {
        self.flags.store(flags, Ordering::Relaxed);
        let mask = record_mask(flags);
        for group in node.shards().into_values() {
            group
                .state()
                .configure(|machine| machine.set_notify_mask(mask));
        }
    }
}

/// Where a shard's state machine hands the events of each entry it
/// applied.
pub trait EventSink: Send + Sync {
    /// `term`: the term of the leader that appended the entry.
    fn emit(&self, group: GroupId, term: u64, events: Vec<KeyEvent>);
}

/// Publishes the events of shards this node leads, for the entries
/// appended in its term.
pub struct Publisher {
    pub node: Weak<Node>,
}

impl EventSink for Publisher {
    fn emit(&self, group: GroupId, term: u64, events: Vec<KeyEvent>) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        let flags = node.key_events.flags();
        let leads_this_term =
            |group: &crate::node::ShardGroup| group.is_leader() && group.term() == term;
        if flags & (KEYSPACE | KEYEVENT) == 0
            || !node
                .shard(group)
                .is_some_and(|group| leads_this_term(&group))
        {
            return;
        }
        for event in events {
            if flags & event.class == 0 {
                continue;
            }
            if flags & KEYSPACE != 0 {
                let channel = [b"__keyspace@0__:".as_slice(), &event.key].concat();
                crate::fanout::publish_cluster(
                    &node,
                    &Bytes::from(channel),
                    &Bytes::from_static(event.event.as_bytes()),
                );
            }
            if flags & KEYEVENT != 0 {
                let channel = format!("__keyevent@0__:{}", event.event);
                crate::fanout::publish_cluster(&node, &Bytes::from(channel), &event.key);
            }
        }
    }
}

/// Returns the sink the shard replicas of `node` publish through.
pub fn publisher(node: &Arc<Node>) -> Arc<dyn EventSink> {
    Arc::new(Publisher {
        node: Arc::downgrade(node),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_print_back_as_redis_prints_them() {
        for (given, printed) in [
            ("gKE", "gKE"),
            ("$lshzxeKE", "$lshzxeKE"),
            ("KA", "AK"),
            ("EA", "AE"),
            ("", ""),
            ("Ex", "xE"),
            ("KEA", "AKE"),
            ("En", "nE"),
            ("AKEnm", "AnKEm"),
        ] {
            let flags = parse_flags(given).unwrap();
            assert_eq!(flags_to_string(flags), printed, "{given}");
        }
        for bad in ["q", "k", "gKa", "1"] {
            assert_eq!(parse_flags(bad), None, "{bad}");
        }
    }

    #[test]
    fn nothing_is_recorded_without_a_channel_kind() {
        assert_eq!(record_mask(parse_flags("A").unwrap()), 0);
        assert_eq!(record_mask(parse_flags("Kl").unwrap()), class::LIST);
        assert_eq!(record_mask(parse_flags("E").unwrap()), 0);
    }
}
