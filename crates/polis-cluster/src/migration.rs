//! Slot migrations in the cluster map: slots moving from one shard to
//! another. The map holds each migration from its beginning to its end
//! and is the single place where ownership changes: at the switch.
//!
//! ```text
//!   BeginMigration ─> Copying ─ SwitchMigration ─> Switched ─ EndMigration ─> (gone)
//!                        └──────── EndMigration (cancelled) ────────────────> (gone)
//! ```
//!
//! While a migration copies, the source shard owns the slots and streams
//! them to the target, which stages them out of sight; the switch gives
//! the target the slots (it activates what it staged, the source drops
//! its copy); a cancel is possible only before the switch.

use polis_types::{GroupId, Slot, SlotRange, SlotSet, SLOT_COUNT};
use serde::{Deserialize, Serialize};

use crate::change::TxnError;
use crate::map::ClusterMap;

/// The most migrations under way at once (one per shard at a time, and
/// the map stays small).
pub const MIGRATIONS_MAX: usize = 64;

/// Where a migration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MigrationPhase {
    /// The source owns the slots and copies them to the target.
    Copying,
    /// The target owns the slots; the migration ends once it serves them.
    Switched,
}

impl MigrationPhase {
    /// Returns the phase's name, as status and `CLUSTER GETSLOTMIGRATIONS`
    /// show it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Copying => "copying",
            Self::Switched => "switched",
        }
    }
}

/// Slots moving from one shard to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    pub id: u64,
    pub source: GroupId,
    pub target: GroupId,
    pub slots: Vec<SlotRange>,
    pub phase: MigrationPhase,
    /// The map version that began it.
    pub began_at_version: u64,
    /// Grows each time the source lets writes in again after freezing
    /// them: a switch asked for an earlier attempt is refused, so writes
    /// the source accepted after it are never left behind.
    pub attempt: u32,
}

impl Migration {
    /// Returns the slots as a set.
    pub fn slot_set(&self) -> SlotSet {
        SlotSet::from_ranges(&self.slots)
    }

    /// Returns true when the migration moves data of `shard`.
    pub fn involves(&self, shard: GroupId) -> bool {
        self.source == shard || self.target == shard
    }
}

impl ClusterMap {
    /// Returns the migration `shard` takes part in, if any (a shard takes
    /// part in one at a time).
    pub fn migration_of(&self, shard: GroupId) -> Option<&Migration> {
        self.migrations
            .values()
            .find(|migration| migration.involves(shard))
    }

    /// Returns true when migration `id` began and ended (cancelled or
    /// done): its leftovers on a shard can go.
    pub fn migration_ended(&self, id: u64) -> bool {
        id < self.next_migration_id && !self.migrations.contains_key(&id)
    }

    /// Begins moving `slots` to shard `target`: one migration per shard
    /// that owns some of them.
    pub(crate) fn begin_migration(
        &mut self,
        slots: &[SlotRange],
        target: GroupId,
    ) -> Result<(), TxnError> {
        if !self.shards.contains_key(&target) {
            return Err(TxnError::Rejected(format!("no shard {target}")));
        }
        if slots.is_empty() {
            return Err(TxnError::Rejected("no slot to move".into()));
        }
        let mut moving = SlotSet::default();
        for range in slots {
            for slot in range.slots() {
                if moving.contains(slot) {
                    return Err(TxnError::Rejected(format!(
                        "slot {slot} is named twice: the ranges overlap"
                    )));
                }
                moving.insert(slot);
            }
        }
        let mut sources: Vec<(GroupId, SlotSet)> = Vec::new();
        for shard in self.shards.values() {
            let owned = shard.slot_set();
            let mut taken = SlotSet::default();
            for range in moving.ranges() {
                for slot in range.slots().filter(|slot| owned.contains(*slot)) {
                    taken.insert(slot);
                }
            }
            if taken.is_empty() {
                continue;
            }
            if shard.id == target {
                return Err(TxnError::Rejected(format!(
                    "shard {target} owns slots {} already",
                    render(&taken.ranges())
                )));
            }
            sources.push((shard.id, taken));
        }
        for shard in std::iter::once(target).chain(sources.iter().map(|(id, _)| *id)) {
            if let Some(busy) = self.migration_of(shard) {
                return Err(TxnError::Rejected(format!(
                    "shard {shard} takes part in migration {} already (slots {}, shard {} to \
                     shard {}): one at a time per shard; wait for it or cancel it",
                    busy.id,
                    render(&busy.slots),
                    busy.source,
                    busy.target
                )));
            }
        }
        if self.migrations.len() + sources.len() > MIGRATIONS_MAX {
            return Err(TxnError::Rejected(format!(
                "at most {MIGRATIONS_MAX} migrations run at once"
            )));
        }
        let began_at_version = self.version + 1;
        for (source, taken) in sources {
            let id = self.next_migration_id;
            self.next_migration_id += 1;
            self.migrations.insert(
                id,
                Migration {
                    id,
                    source,
                    target,
                    slots: taken.ranges(),
                    phase: MigrationPhase::Copying,
                    began_at_version,
                    attempt: 0,
                },
            );
        }
        Ok(())
    }

    /// The switch: the target owns the migration's slots from the next
    /// version on. Refused unless the migration copies at `attempt`.
    pub(crate) fn switch_migration(&mut self, id: u64, attempt: u32) -> Result<(), TxnError> {
        let migration = self.copying(id, attempt)?.clone();
        self.assign_slots(migration.target, &migration.slots)?;
        if let Some(record) = self.migrations.get_mut(&id) {
            record.phase = MigrationPhase::Switched;
        }
        Ok(())
    }

    /// Makes every switch of `attempt` impossible: the source may let
    /// writes in again.
    pub(crate) fn retry_migration(&mut self, id: u64, attempt: u32) -> Result<(), TxnError> {
        self.copying(id, attempt)?;
        if let Some(record) = self.migrations.get_mut(&id) {
            record.attempt += 1;
        }
        Ok(())
    }

    /// Returns migration `id` if it copies at `attempt`.
    fn copying(&self, id: u64, attempt: u32) -> Result<&Migration, TxnError> {
        let migration = self.migration(id)?;
        if migration.phase != MigrationPhase::Copying {
            return Err(TxnError::Rejected(format!(
                "migration {id} switched already"
            )));
        }
        if migration.attempt != attempt {
            return Err(TxnError::Rejected(format!(
                "migration {id} is at attempt {}, not {attempt}",
                migration.attempt
            )));
        }
        Ok(migration)
    }

    /// Ends migration `id`: done (after the switch) or cancelled (only
    /// before it).
    pub(crate) fn end_migration(&mut self, id: u64, cancelled: bool) -> Result<(), TxnError> {
        let migration = self.migration(id)?;
        match (migration.phase, cancelled) {
            (MigrationPhase::Copying, false) => {
                return Err(TxnError::Rejected(format!(
                    "migration {id} has not switched yet"
                )))
            }
            (MigrationPhase::Switched, true) => {
                return Err(TxnError::Rejected(format!(
                    "migration {id} switched already: it can only finish"
                )))
            }
            _ => {}
        }
        self.migrations.remove(&id);
        Ok(())
    }

    fn migration(&self, id: u64) -> Result<&Migration, TxnError> {
        self.migrations.get(&id).ok_or_else(|| {
            TxnError::Rejected(format!("no migration {id} under way (it may have ended)"))
        })
    }
}

/// Reads slot ranges written as `0-99,200,300-310`.
///
/// # Errors
/// Says which part is not a slot (0 to 16383) or a range of them.
pub fn parse_ranges(text: &str) -> Result<Vec<SlotRange>, String> {
    let slot = |part: &str| -> Result<Slot, String> {
        part.trim()
            .parse::<u16>()
            .ok()
            .and_then(Slot::new)
            .ok_or_else(|| format!("{part:?} is not a slot (0 to {})", SLOT_COUNT - 1))
    };
    let mut ranges = Vec::new();
    for part in text.split(',').filter(|part| !part.trim().is_empty()) {
        let (start, end) = match part.split_once('-') {
            Some((start, end)) => (slot(start)?, slot(end)?),
            None => (slot(part)?, slot(part)?),
        };
        let range = SlotRange::new(start, end)
            .ok_or_else(|| format!("{part:?}: a range starts at or below its end"))?;
        ranges.push(range);
    }
    if ranges.is_empty() {
        return Err("no slot named: give ranges such as 0-99,200".into());
    }
    Ok(ranges)
}

/// Returns `ranges` as `0-99,200`.
pub fn render(ranges: &[SlotRange]) -> String {
    ranges
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
#[path = "migration_test.rs"]
mod tests;
