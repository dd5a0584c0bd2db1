//! The stored forms of the log engine's keys and values: keys addressed
//! by group (and index), values as records sealed by the engine's
//! [`Cipher`] (see [`super::record`] and [`crate::at_rest`]).

use std::io;

use openraft::entry::RaftEntry;
use polis_types::GroupId;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::corruption::RecordProblem;
use crate::at_rest::Cipher;
use crate::types::Entry;

/// Returns the key of `group`'s entry at `index`.
pub(super) fn log_key(group: GroupId, index: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&group.get().to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

/// Splits a log key into its group and index.
pub(super) fn split_log_key(key: &[u8]) -> Option<(GroupId, u64)> {
    let key: &[u8; 16] = key.try_into().ok()?;
    let (group, index) = key.split_at(8);
    let group = u64::from_be_bytes(group.try_into().ok()?);
    let index = u64::from_be_bytes(index.try_into().ok()?);
    Some((GroupId(group), index))
}

/// Returns the key of `group`'s metadata value `name`.
pub(super) fn meta_key(group: GroupId, name: &[u8]) -> Vec<u8> {
    let mut key = group.get().to_be_bytes().to_vec();
    key.extend_from_slice(name);
    key
}

/// Returns an error of data that does not encode or decode.
pub(super) fn invalid(message: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

/// Returns the record of `value` to store under `key`.
pub(super) fn encode_record<T: Serialize>(
    cipher: &Cipher,
    key: &[u8],
    value: &T,
) -> io::Result<Vec<u8>> {
    let mut bytes = postcard::to_extend(value, cipher.start(64)).map_err(invalid)?;
    cipher.seal(key, &mut bytes);
    // Both sides of the boundary: what goes to fjall verifies now, and
    // every read verifies it again (a checksum costs nanoseconds; a
    // decryption, here only in debug builds, about as much as the seal).
    if !cipher.is_encrypted() || cfg!(debug_assertions) {
        assert!(
            cipher.open(key, &bytes).is_ok(),
            "a record fails verification as it is written"
        );
    }
    Ok(bytes)
}

/// Returns the value of the record `bytes` read from under `key`.
pub(super) fn decode_record<T: DeserializeOwned>(
    cipher: &Cipher,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, RecordProblem> {
    let payload = cipher.open(key, bytes)?;
    postcard::from_bytes(&payload).map_err(|error| RecordProblem::Decode(error.to_string()))
}

/// Returns the entry of the record `bytes` read from under the log key
/// `key`, which must hold the entry of that index.
pub(super) fn decode_entry(
    cipher: &Cipher,
    key: &[u8],
    bytes: &[u8],
) -> Result<Entry, RecordProblem> {
    let entry: Entry = decode_record(cipher, key, bytes)?;
    let key_index = split_log_key(key).map_or(u64::MAX, |(_, index)| index);
    if entry.index() != key_index {
        return Err(RecordProblem::MisplacedEntry {
            key_index,
            entry_index: entry.index(),
        });
    }
    Ok(entry)
}
