//! A shard's side of slot migrations, part of its replicated state.
//!
//! On the **source**, from its `Track` entry on, every applied change to
//! a key of the moving slots is recorded with its log index, so the copy
//! can ship what changed since it last looked; from `Freeze` on, commands
//! on those slots are refused at apply (the client is told to try again)
//! until the switch hands the slots over, or `Thaw` lets writes in again.
//! On the **target**, `Stage` entries hold the keys received, out of sight
//! of every command, until the shard's ownership grows to their slots (the
//! map's switch): then they become its keys in the same apply.

use std::collections::BTreeMap;

use bytes::Bytes;
use polis_store::{Db, Entry, Value};
use polis_types::{key_hash_slot, Slot, SlotSet};
use serde::{Deserialize, Serialize};

/// Slots this shard is copying away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    pub migration: u64,
    pub slots: SlotSet,
    /// Each key changed since tracking began, with the log index of its
    /// last change.
    pub changed: BTreeMap<Bytes, u64>,
    pub frozen: bool,
}

/// Keys staged for slots this shard is about to own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incoming {
    pub slots: SlotSet,
    pub keys: BTreeMap<Bytes, Entry>,
    /// The source's log index each staged key (or deletion) was read at:
    /// a chunk read earlier never overwrites what a later one staged, in
    /// whatever order chunks arrive (a chunk whose answer was lost is
    /// sent again, and the first copy may still be applied later).
    pub read_at: BTreeMap<Bytes, u64>,
    /// The source's log index the latest copy from scratch began at: a
    /// chunk read before it (one of an earlier driver's, late) is dropped.
    pub floor: u64,
}

/// The staging of snapshot format 2, without read indexes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct IncomingV2 {
    slots: SlotSet,
    keys: BTreeMap<Bytes, Entry>,
}

/// A shard's migrations as snapshot format 2 holds them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MigrationsV2 {
    outgoing: Option<Outgoing>,
    incoming: BTreeMap<u64, IncomingV2>,
}

impl From<MigrationsV2> for Migrations {
    fn from(old: MigrationsV2) -> Self {
        Self {
            outgoing: old.outgoing,
            incoming: old
                .incoming
                .into_iter()
                .map(|(migration, incoming)| {
                    let incoming = Incoming {
                        slots: incoming.slots,
                        keys: incoming.keys,
                        read_at: BTreeMap::new(),
                        floor: 0,
                    };
                    (migration, incoming)
                })
                .collect(),
        }
    }
}

/// Returns true when `a` and `b` share a slot.
fn overlap(a: &SlotSet, b: &SlotSet) -> bool {
    a.ranges()
        .iter()
        .flat_map(|range| range.slots())
        .any(|slot| b.contains(slot))
}

/// A key as the source ships it: its entry, or `None` once deleted.
pub type ShippedKey = (Bytes, Option<Entry>);

/// A shard's migrations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Migrations {
    pub outgoing: Option<Outgoing>,
    pub incoming: BTreeMap<u64, Incoming>,
}

impl Migrations {
    /// Starts recording changes to `slots` for `migration` (again: a
    /// repeated entry changes nothing).
    pub fn track(&mut self, migration: u64, slots: SlotSet) {
        // The same migration again changes nothing; an older one (a late
        // entry of a driver whose migration ended) must not replace the
        // tracking of a newer one: a shard takes part in one at a time,
        // and ids only grow.
        if self
            .outgoing
            .as_ref()
            .is_some_and(|outgoing| outgoing.migration >= migration)
        {
            return;
        }
        self.outgoing = Some(Outgoing {
            migration,
            slots,
            changed: BTreeMap::new(),
            frozen: false,
        });
    }

    /// Freezes (or thaws) the slots of `migration`.
    pub fn set_frozen(&mut self, migration: u64, frozen: bool) {
        if let Some(outgoing) = self
            .outgoing
            .as_mut()
            .filter(|outgoing| outgoing.migration == migration)
        {
            outgoing.frozen = frozen;
        }
    }

    /// Stops tracking `migration`.
    pub fn untrack(&mut self, migration: u64) {
        if self
            .outgoing
            .as_ref()
            .is_some_and(|outgoing| outgoing.migration == migration)
        {
            self.outgoing = None;
        }
    }

    /// Returns true when commands on `slot` (or keyless writes, for
    /// `None`) are refused: the slot is frozen for its switch.
    pub fn frozen(&self, slot: Option<Slot>) -> bool {
        self.outgoing.as_ref().is_some_and(|outgoing| {
            outgoing.frozen && slot.is_none_or(|slot| outgoing.slots.contains(slot))
        })
    }

    /// Records that `keys` change at `index`, those of tracked slots.
    pub fn note_changed<'a>(&mut self, keys: impl IntoIterator<Item = &'a Bytes>, index: u64) {
        let Some(outgoing) = self.outgoing.as_mut() else {
            return;
        };
        for key in keys {
            if outgoing.slots.contains(key_hash_slot(key)) {
                outgoing.changed.insert(key.clone(), index);
            }
        }
    }

    /// Records that every key of the tracked slots in `db` changes at
    /// `index` (a keyless write such as FLUSHALL).
    pub fn note_all_changed(&mut self, db: &Db, index: u64) {
        let Some(outgoing) = self.outgoing.as_mut() else {
            return;
        };
        for (key, _) in db.iter(0) {
            if outgoing.slots.contains(key_hash_slot(key)) {
                outgoing.changed.insert(key.clone(), index);
            }
        }
    }

    /// Stages `keys`, read from the source at log index `read_at`, for
    /// `migration`; `reset` (a copy from scratch) first drops what was
    /// staged.
    pub fn stage(
        &mut self,
        migration: u64,
        slots: SlotSet,
        reset: bool,
        read_at: u64,
        keys: Vec<ShippedKey>,
    ) {
        // For the same slots, a late chunk of an older migration is
        // dropped, and a newer migration's chunk drops what older ones
        // left, so nothing stale is ever made live beside it. Migrations
        // of other slots into this shard (one range owned by several
        // shards makes several) stage side by side.
        if self
            .incoming
            .iter()
            .any(|(staged, incoming)| *staged > migration && overlap(&incoming.slots, &slots))
        {
            return;
        }
        self.incoming
            .retain(|staged, incoming| *staged >= migration || !overlap(&incoming.slots, &slots));
        let incoming = self.incoming.entry(migration).or_insert_with(|| Incoming {
            slots: slots.clone(),
            keys: BTreeMap::new(),
            read_at: BTreeMap::new(),
            floor: 0,
        });
        if read_at < incoming.floor {
            // Read before the latest copy from scratch began: stale.
            return;
        }
        if reset {
            incoming.keys.clear();
            incoming.read_at.clear();
            incoming.slots = slots;
            incoming.floor = read_at;
        }
        for (key, entry) in keys {
            if incoming
                .read_at
                .get(&key)
                .is_some_and(|staged| *staged > read_at)
            {
                continue;
            }
            incoming.read_at.insert(key.clone(), read_at);
            match entry {
                Some(entry) => incoming.keys.insert(key, entry),
                None => incoming.keys.remove(&key),
            };
        }
    }

    /// Adds later parts of large collections to the keys `migration`
    /// staged from the same read (`read_at`). A part whose key was staged
    /// again since (a later read, or a deletion) is dropped: the newer read
    /// brings its own parts. Parts travel one at a time, each after the
    /// one before committed, and adding one twice changes nothing.
    pub fn stage_parts(&mut self, migration: u64, read_at: u64, parts: Vec<(Bytes, Value)>) {
        let Some(incoming) = self.incoming.get_mut(&migration) else {
            return;
        };
        for (key, part) in parts {
            if incoming.read_at.get(&key) != Some(&read_at) {
                continue;
            }
            if let Some(entry) = incoming.keys.get_mut(&key) {
                entry.value.absorb(part);
            }
        }
    }

    /// Drops what `migration` staged.
    pub fn unstage(&mut self, migration: u64) {
        self.incoming.remove(&migration);
    }

    /// Applies a new ownership: staged keys of slots now owned become
    /// keys of `db`; keys of slots no longer owned leave it (the switch
    /// committed, so their new owner holds them); tracking of slots given
    /// away ends.
    pub fn owned(&mut self, db: &mut Db, before: &SlotSet, now: &SlotSet) {
        let arrived: Vec<u64> = self
            .incoming
            .iter()
            .filter(|(_, incoming)| {
                incoming
                    .slots
                    .ranges()
                    .iter()
                    .flat_map(|range| range.slots())
                    .all(|slot| now.contains(slot))
            })
            .map(|(migration, _)| *migration)
            .collect();
        for migration in arrived {
            if let Some(incoming) = self.incoming.remove(&migration) {
                for (key, entry) in incoming.keys {
                    let deadline = entry.expire_at_ms();
                    db.insert(key, entry.value, deadline, 0);
                }
            }
        }
        let gave_away = before
            .ranges()
            .iter()
            .flat_map(|range| range.slots())
            .any(|slot| !now.contains(slot));
        if !gave_away {
            return;
        }
        db.remove_where(|key| {
            let slot = key_hash_slot(key);
            before.contains(slot) && !now.contains(slot)
        });
        if self.outgoing.as_ref().is_some_and(|outgoing| {
            outgoing
                .slots
                .ranges()
                .iter()
                .flat_map(|range| range.slots())
                .all(|slot| !now.contains(slot))
        }) {
            self.outgoing = None;
        }
    }

    /// Returns one page of the keys of the tracked slots, from `cursor`,
    /// and the next cursor (0 when done).
    pub fn copy_page(&self, db: &Db, cursor: u64, count: usize) -> (Vec<ShippedKey>, u64) {
        let Some(outgoing) = self.outgoing.as_ref() else {
            return (Vec::new(), 0);
        };
        let page = db.scan(cursor, count, 0);
        let keys = page
            .entries
            .into_iter()
            .filter(|(key, _)| outgoing.slots.contains(key_hash_slot(key)))
            .map(|(key, entry)| (key.clone(), Some(entry.clone())))
            .collect();
        (keys, page.next_cursor)
    }

    /// Returns the keys of the tracked slots changed after log index
    /// `after`, as they are now (`None`: deleted).
    pub fn changed_after(&self, db: &Db, after: u64) -> Vec<ShippedKey> {
        let Some(outgoing) = self.outgoing.as_ref() else {
            return Vec::new();
        };
        outgoing
            .changed
            .iter()
            .filter(|(_, index)| **index > after)
            .map(|(key, _)| (key.clone(), db.peek(key, 0).cloned()))
            .collect()
    }
}
