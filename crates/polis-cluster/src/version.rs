//! Log entry formats, and the cluster version that gates them.
//!
//! Every log entry (meta and data) starts with one byte naming its format.
//! A binary knows the formats up to [`ENTRY_FORMAT_MAX`]; a replica that
//! meets a newer one stops rather than skip the entry (skipping would let
//! its state differ from the replicas that applied it).
//!
//! A new kind of entry comes with a new format, and is proposed only once
//! the cluster map's `cluster_version` reaches that format: the map raises
//! it only when every started node registered a binary that understands
//! it, so a rolling upgrade never feeds an old node an entry it cannot
//! apply.
//!
//! ```text
//!   node binaries: v1 v1 v2      cluster_version 1: v2 entries refused
//!   node binaries: v2 v2 v2  ->  meta leader raises cluster_version to 2
//! ```

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A format of log entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryFormat {
    /// The first format: the meta group's map commands; a shard's client
    /// commands, pipelined batches, expiry and slot ownership.
    V1,
    /// Nodes join a running cluster (`MapChange::Join`).
    V2,
    /// A migration ships a large collection in parts (`StageParts`).
    V3,
    /// Lists, sets, sorted sets, streams, the newer bitmap commands, and
    /// transactions (`Exec`).
    V4,
    /// Locks and fenced commands, eviction, and the change feed.
    V5,
    /// Namespaces in the cluster map (`SetNamespace`, `RemoveNamespace`).
    V6,
    /// Cache limits of namespaces (`SetNamespaceCache`).
    V7,
    /// ACL users in the cluster map (`SetUser`, `DeleteUsers`).
    V8,
    /// Nodes' addresses for TLS clients in the cluster map (`SetTlsAddr`).
    V9,
    /// Keys restored from a backup (`Restore`, `RestoreParts`).
    V10,
}

impl EntryFormat {
    /// Returns the format's number on the wire.
    pub const fn number(self) -> u32 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
            Self::V3 => 3,
            Self::V4 => 4,
            Self::V5 => 5,
            Self::V6 => 6,
            Self::V7 => 7,
            Self::V8 => 8,
            Self::V9 => 9,
            Self::V10 => 10,
        }
    }
}

/// The newest entry format this binary writes and reads.
pub const ENTRY_FORMAT_MAX: u32 = EntryFormat::V10.number();

/// Why an entry may not be proposed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this needs log entry format {needed}, but the cluster runs format {cluster_version}: \
     upgrade every node, then try again"
)]
pub struct FormatNotEnabled {
    pub needed: u32,
    pub cluster_version: u32,
}

/// Returns whether an entry of `format` may be proposed in a cluster at
/// `cluster_version`.
///
/// # Errors
/// [`FormatNotEnabled`] when some node may not understand it.
pub fn check_enabled(format: EntryFormat, cluster_version: u32) -> Result<(), FormatNotEnabled> {
    if format.number() <= cluster_version {
        Ok(())
    } else {
        Err(FormatNotEnabled {
            needed: format.number(),
            cluster_version,
        })
    }
}

/// Returns the stored form of an entry: the format byte, then `value`.
///
/// # Errors
/// Returns an error if encoding fails.
pub fn encode_entry<T: Serialize>(
    format: EntryFormat,
    value: &T,
) -> Result<Bytes, postcard::Error> {
    let mut bytes = vec![format.number() as u8];
    let bytes = postcard::to_extend(value, std::mem::take(&mut bytes))?;
    Ok(Bytes::from(bytes))
}

/// Decodes what [`encode_entry`] stored.
///
/// # Errors
/// A message naming the format or the decoding error, for the crash-stop.
pub fn decode_entry<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let Some((&format, body)) = bytes.split_first() else {
        return Err("an empty entry".into());
    };
    if format == 0 || u32::from(format) > ENTRY_FORMAT_MAX {
        return Err(format!(
            "entry format {format}; this binary reads formats 1 to {ENTRY_FORMAT_MAX}"
        ));
    }
    postcard::from_bytes(body).map_err(|error| format!("format {format} entry: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_unknown_formats_are_refused() {
        let bytes = encode_entry(EntryFormat::V1, &("set", 5u32)).unwrap();
        assert_eq!(bytes[0], 1);
        assert_eq!(
            decode_entry::<(String, u32)>(&bytes).unwrap(),
            ("set".into(), 5)
        );
        let mut newer = bytes.to_vec();
        newer[0] = (ENTRY_FORMAT_MAX + 1) as u8;
        let error = decode_entry::<(String, u32)>(&newer).unwrap_err();
        assert!(
            error.contains(&format!("entry format {}", ENTRY_FORMAT_MAX + 1)),
            "{error}"
        );
        assert!(decode_entry::<(String, u32)>(&[]).is_err());
        assert!(decode_entry::<(String, u32)>(&[1, 0xff, 0xff]).is_err());
    }

    #[test]
    fn a_format_is_enabled_only_up_to_the_cluster_version() {
        assert!(check_enabled(EntryFormat::V1, 1).is_ok());
        assert_eq!(
            check_enabled(EntryFormat::V1, 0),
            Err(FormatNotEnabled {
                needed: 1,
                cluster_version: 0
            })
        );
    }
}
