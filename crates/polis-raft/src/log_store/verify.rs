//! Start-up verification of every record the log engine stores, before
//! Raft reads any of it.
//!
//! Each record's checksum, decoding and key are checked, and each group's
//! log must be one run of consecutive indexes: appends extend it, purges
//! cut a prefix and conflict truncation a suffix, each in one atomic
//! batch, so a hole means lost data. Reading every record also makes
//! lsm-tree check the checksum of every table block holding one, so
//! damage in a table is found now rather than when a follower needs it.
//! The log is bounded by compaction (`--snapshot-every-entries`), so this
//! costs well under a second.

use std::path::Path;

use fjall::Keyspace;
use polis_types::GroupId;

use super::corruption::{Corruption, RecordProblem, Stored};
use super::{
    decode_entry, decode_record, engine_damage, split_log_key, META_COMMITTED, META_PURGED,
    META_REPLICA, META_VOTE,
};
use crate::at_rest::Cipher;
use crate::types::{LogId, Vote};
use polis_types::ReplicaId;

/// What the verification read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub meta_values: u64,
}

/// Verifies every record of `logs` and `meta`, stored in `dir`.
///
/// # Errors
/// Returns the first corruption found.
pub fn verify(
    dir: &Path,
    logs: &Keyspace,
    meta: &Keyspace,
    cipher: &Cipher,
) -> Result<Verified, Corruption> {
    let mut verified = Verified::default();
    for guard in meta.iter() {
        let (key, value) = guard
            .into_inner()
            .map_err(|error| engine_damage(dir, error))?;
        let (group, name) = split_meta_key(&key).ok_or_else(|| Corruption::Key {
            dir: dir.to_owned(),
            keyspace: "meta",
            key: key.to_vec(),
        })?;
        let record_corruption = |problem| Corruption::Record {
            dir: dir.to_owned(),
            group,
            stored: Stored::Meta(String::from_utf8_lossy(name).into_owned()),
            problem,
        };
        match name {
            META_VOTE => decode_record::<Vote>(cipher, &key, &value).map(drop),
            META_COMMITTED => decode_record::<Option<LogId>>(cipher, &key, &value).map(drop),
            META_PURGED => decode_record::<LogId>(cipher, &key, &value).map(drop),
            META_REPLICA => decode_record::<ReplicaId>(cipher, &key, &value).map(drop),
            // A value a later version added: its checksum or tag still holds.
            _ => cipher
                .open(&key, &value)
                .map(drop)
                .map_err(RecordProblem::from),
        }
        .map_err(record_corruption)?;
        verified.meta_values += 1;
    }

    let mut previous: Option<(GroupId, u64)> = None;
    for guard in logs.iter() {
        let (key, value) = guard
            .into_inner()
            .map_err(|error| engine_damage(dir, error))?;
        let (group, index) = split_log_key(&key).ok_or_else(|| Corruption::Key {
            dir: dir.to_owned(),
            keyspace: "logs",
            key: key.to_vec(),
        })?;
        decode_entry(cipher, &key, &value).map_err(|problem| Corruption::Record {
            dir: dir.to_owned(),
            group,
            stored: Stored::Entry(index),
            problem,
        })?;
        if let Some((previous_group, previous_index)) = previous {
            if previous_group == group && previous_index.checked_add(1) != Some(index) {
                return Err(Corruption::Gap {
                    dir: dir.to_owned(),
                    group,
                    previous: previous_index,
                    next: index,
                });
            }
        }
        previous = Some((group, index));
        verified.entries += 1;
    }
    Ok(verified)
}

/// Splits a metadata key into its group and name.
pub(super) fn split_meta_key(key: &[u8]) -> Option<(GroupId, &[u8])> {
    let (group, name) = key.split_first_chunk::<8>()?;
    Some((GroupId(u64::from_be_bytes(*group)), name))
}
