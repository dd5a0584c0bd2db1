//! Start-up audit of fjall's journal: tells a torn tail (writes a crash cut
//! short before their fsync, so never acknowledged) from damage to data
//! that was made durable (acknowledged, so never to be dropped).
//!
//! Why our own pass over fjall's files: fjall 3.1 recovers its journal in
//! one mode (`TolerateCorruptTail`; the setting is not exposed). Its reader
//! treats the first entry it cannot decode as the end of the journal and
//! truncates the file there without an error, wherever that entry is: a
//! flipped tag byte in the middle silently drops every batch after it. It
//! reports an error only for a complete batch whose checksum or item count
//! is wrong, and the sequence number in a batch header is not covered by
//! the batch checksum at all.
//!
//! fjall's journal (format 3, uncompressed), all integers little-endian:
//!
//! ```text
//! batch = start item{count} end
//! start = 1u8 count:u32 seqno:u64
//! item  = 2u8 value_type:u8 compression:u8(0) keyspace:u64
//!         key_len:u16 value_len:u32 stored_len:u32 key value
//!       | 4u8 keyspace:u64                         (clear)
//! end   = 3u8 xxh3_64(items):u64 "FJL\x03"
//! ```
//!
//! Batches are written through an 8 KiB buffer into a file preallocated
//! with zeros (after a restart, appended to the truncated file), and
//! `persist` fsyncs them. Sealed journals (all but the newest) were fsynced
//! as a whole when fjall rotated away from them. So after a crash:
//!
//! - a process crash leaves a prefix of what was written: the newest
//!   journal's data stops somewhere in a batch, then zeros or end of file;
//! - a power loss may also lose unsynced sectors: zeroed 512-byte sectors
//!   inside the newest journal's last batches.
//!
//! Torn tail: damage in the newest journal past which nothing but zeros
//! was written, or damage with a zeroed sector that no intact batch
//! follows. It is cut off (the node catches up from its leader).
//! Everything else is corruption of durable data and the node refuses to
//! start: damage in a sealed journal; a complete batch with a wrong
//! checksum, trailer or item count and no zeroed sector; damage followed
//! by written data; a sequence number that does not increase.
//!
//! What this cannot tell apart: durable bytes at the very end of the newest
//! journal that the disk lost the way a crash loses unsynced ones (the end
//! cut off, or zeroed). Those entries were acknowledged; the node drops
//! them and catches up, which is safe unless the same entries are lost on
//! a majority of the group.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use super::corruption::Corruption;

const TAG_START: u8 = 1;
const TAG_ITEM: u8 = 2;
const TAG_END: u8 = 3;
const TAG_CLEAR: u8 = 4;
const TRAILER: &[u8; 4] = b"FJL\x03";
/// Value types fjall journals: value, tombstone, weak tombstone.
const VALUE_TYPE_MAX: u8 = 2;
const SECTOR_LEN: usize = 512;

/// What stopped a journal from parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    #[error("the file ends inside a batch")]
    Cut,
    #[error("tag {found} where a {expected} belongs")]
    Tag { found: u8, expected: &'static str },
    #[error("unknown value type {0}")]
    ValueType(u8),
    #[error("compression {0}, which polis never writes")]
    Compression(u8),
    #[error("value length {value_len} differs from its stored length {stored_len}")]
    Length { value_len: u32, stored_len: u32 },
    #[error("the batch trailer is not fjall's")]
    Trailer,
    #[error("batch checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")]
    Checksum { stored: u64, computed: u64 },
    #[error("sequence number {seqno} does not follow {previous}")]
    Seqno { previous: u64, seqno: u64 },
}

/// Where and why a batch failed: the field at `at..end` of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    at: usize,
    end: usize,
    damage: Damage,
}

struct Batch {
    end: usize,
    seqno: u64,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], Failure> {
        let end = self.pos.saturating_add(len);
        match self.bytes.get(self.pos..end) {
            Some(slice) => {
                self.pos = end;
                Ok(slice)
            }
            None => Err(Failure {
                at: self.pos,
                end,
                damage: Damage::Cut,
            }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Failure> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, Failure> {
        Ok(self.array::<1>()?[0])
    }

    fn fail(&self, at: usize, damage: Damage) -> Failure {
        Failure {
            at,
            end: self.pos,
            damage,
        }
    }
}

/// Parses the batch at `start`, noting the first key it holds.
fn parse_batch<'a>(
    bytes: &'a [u8],
    start: usize,
    first_key: &mut Option<&'a [u8]>,
) -> Result<Batch, Failure> {
    let mut cursor = Cursor { bytes, pos: start };
    let found = cursor.u8()?;
    if found != TAG_START {
        let expected = "batch start";
        return Err(cursor.fail(start, Damage::Tag { found, expected }));
    }
    let item_count = u32::from_le_bytes(cursor.array()?);
    let seqno = u64::from_le_bytes(cursor.array()?);
    let items_start = cursor.pos;
    for _ in 0..item_count {
        let at = cursor.pos;
        match cursor.u8()? {
            TAG_ITEM => {
                let value_type = cursor.u8()?;
                if value_type > VALUE_TYPE_MAX {
                    return Err(cursor.fail(at, Damage::ValueType(value_type)));
                }
                let compression = cursor.u8()?;
                if compression != 0 {
                    return Err(cursor.fail(at, Damage::Compression(compression)));
                }
                cursor.take(8)?;
                let key_len = u16::from_le_bytes(cursor.array()?);
                let value_len = u32::from_le_bytes(cursor.array()?);
                let stored_len = u32::from_le_bytes(cursor.array()?);
                if value_len != stored_len {
                    let damage = Damage::Length {
                        value_len,
                        stored_len,
                    };
                    return Err(cursor.fail(at, damage));
                }
                let key = cursor.take(usize::from(key_len))?;
                first_key.get_or_insert(key);
                cursor.take(value_len as usize)?;
            }
            TAG_CLEAR => {
                cursor.take(8)?;
            }
            found => {
                let expected = "batch item";
                return Err(cursor.fail(at, Damage::Tag { found, expected }));
            }
        }
    }
    let items_end = cursor.pos;
    let found = cursor.u8()?;
    if found != TAG_END {
        let expected = "batch end";
        return Err(cursor.fail(items_end, Damage::Tag { found, expected }));
    }
    let stored = u64::from_le_bytes(cursor.array()?);
    let trailer_at = cursor.pos;
    if cursor.take(TRAILER.len())? != TRAILER {
        return Err(cursor.fail(trailer_at, Damage::Trailer));
    }
    let computed = xxh3_64(&bytes[items_start..items_end]);
    if computed != stored {
        return Err(cursor.fail(start, Damage::Checksum { stored, computed }));
    }
    Ok(Batch {
        end: cursor.pos,
        seqno,
    })
}

/// Returns whether a whole, aligned sector in `start..end` is zero: one
/// that never reached the disk.
fn has_zeroed_sector(bytes: &[u8], start: usize, end: usize) -> bool {
    let end = end.min(bytes.len());
    let mut sector = start.div_ceil(SECTOR_LEN) * SECTOR_LEN;
    while sector + SECTOR_LEN <= end {
        if bytes[sector..sector + SECTOR_LEN]
            .iter()
            .all(|byte| *byte == 0)
        {
            return true;
        }
        sector += SECTOR_LEN;
    }
    false
}

/// Returns the offset of the first intact batch starting after `from`.
fn next_intact_batch(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len())
        .filter(|at| bytes[*at] == TAG_START)
        .find(|at| parse_batch(bytes, *at, &mut None).is_ok())
}

/// Describes a key of the log engine: `group | index` for a log entry,
/// `group | name` for a metadata value.
fn describe_key(key: &[u8]) -> String {
    let group = key.get(..8).map(|bytes| {
        let mut group = [0u8; 8];
        group.copy_from_slice(bytes);
        u64::from_be_bytes(group)
    });
    match (group, key.get(8..)) {
        (Some(group), Some(rest)) if rest.len() == 8 => {
            let mut index = [0u8; 8];
            index.copy_from_slice(rest);
            let index = u64::from_be_bytes(index);
            format!("log entry at index {index} of group {group}")
        }
        (Some(group), Some(name)) => {
            let name = String::from_utf8_lossy(name);
            format!("metadata value {name:?} of group {group}")
        }
        _ => format!("key {key:02x?}"),
    }
}

/// The audit of one journal file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalFile {
    pub path: PathBuf,
    /// Bytes of intact batches; what fjall must keep.
    pub intact_len: u64,
    pub batches: u64,
    /// Written bytes past the intact ones, cut off as a torn tail.
    pub torn_bytes: u64,
}

fn audit_file(
    path: &Path,
    bytes: &[u8],
    newest: bool,
    previous_seqno: &mut Option<u64>,
) -> Result<JournalFile, Corruption> {
    // Past the last non-zero byte lies only preallocated, unwritten space.
    let written = bytes
        .iter()
        .rposition(|byte| *byte != 0)
        .map_or(0, |at| at + 1);
    let mut pos = 0;
    let mut batches = 0;
    while pos < written {
        let mut first_key = None;
        let failure = match parse_batch(bytes, pos, &mut first_key) {
            Ok(batch) => match *previous_seqno {
                Some(previous) if batch.seqno <= previous => Failure {
                    at: pos,
                    end: pos + 13,
                    damage: Damage::Seqno {
                        previous,
                        seqno: batch.seqno,
                    },
                },
                _ => {
                    *previous_seqno = Some(batch.seqno);
                    pos = batch.end;
                    batches += 1;
                    continue;
                }
            },
            Err(failure) => failure,
        };
        // The written data stops inside the field that failed: the batch
        // was cut short, not damaged.
        let cut_short = written < failure.end;
        let torn_sector = has_zeroed_sector(bytes, pos, failure.end)
            && !matches!(failure.damage, Damage::Seqno { .. });
        let why = if !newest {
            "the file is a sealed journal, which fjall fsynced as a whole"
        } else if cut_short || torn_sector {
            match next_intact_batch(bytes, pos + 1) {
                None => {
                    return Ok(JournalFile {
                        path: path.to_owned(),
                        intact_len: pos as u64,
                        batches,
                        torn_bytes: (written - pos) as u64,
                    })
                }
                Some(_) => "an intact batch follows it, so it is not a torn tail",
            }
        } else {
            "it is not the shape a crash leaves (data written after it, no zeroed sector), \
             so it damages data that was made durable"
        };
        let holding = first_key
            .map(|key| format!(", in a batch holding the {}", describe_key(key)))
            .unwrap_or_default();
        return Err(Corruption::Journal {
            file: path.to_owned(),
            offset: failure.at as u64,
            damage: failure.damage.to_string(),
            holding,
            why,
        });
    }
    Ok(JournalFile {
        path: path.to_owned(),
        intact_len: pos as u64,
        batches,
        torn_bytes: 0,
    })
}

/// Why the audit did not complete.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Corrupt(#[from] Corruption),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The audit of every journal file of a log directory.
#[derive(Debug, Default)]
pub struct Audit {
    pub files: Vec<JournalFile>,
}

impl Audit {
    /// Returns the journal whose torn tail was cut off, if any.
    pub fn torn(&self) -> Option<&JournalFile> {
        self.files.iter().find(|file| file.torn_bytes > 0)
    }

    /// Checks that fjall, having opened the journals, kept every batch
    /// the audit found intact.
    ///
    /// # Errors
    /// Returns the first journal fjall cut shorter.
    pub fn check_kept(&self) -> Result<(), Corruption> {
        for file in &self.files {
            // fjall deletes a sealed journal once its data is in tables.
            let Ok(metadata) = fs::metadata(&file.path) else {
                continue;
            };
            if metadata.len() < file.intact_len {
                return Err(Corruption::Journal {
                    file: file.path.clone(),
                    offset: metadata.len(),
                    damage: format!(
                        "fjall cut it there, short of the intact batches that run to byte {}",
                        file.intact_len
                    ),
                    holding: String::new(),
                    why: "fjall dropped data the audit found intact",
                });
            }
        }
        Ok(())
    }
}

/// Audits every journal of the fjall database in `dir` and cuts off a
/// torn tail, holding fjall's lock meanwhile.
///
/// # Errors
/// Returns the corruption found, or the I/O error that stopped the audit.
pub fn audit(dir: &Path) -> Result<Audit, AuditError> {
    if !dir.exists() {
        return Ok(Audit::default());
    }
    let _lock = lock(dir)?;
    let mut journals = Vec::new();
    for dirent in fs::read_dir(dir)? {
        let path = dirent?.path();
        let id = path
            .extension()
            .filter(|extension| *extension == "jnl")
            .and_then(|_| path.file_stem()?.to_str()?.parse::<u64>().ok());
        if let Some(id) = id {
            journals.push((id, path));
        }
    }
    journals.sort();
    let mut audit = Audit::default();
    let mut previous_seqno = None;
    let newest = journals.len().saturating_sub(1);
    for (position, (_, path)) in journals.iter().enumerate() {
        // A whole file at a time: a journal holds at most a memtable's
        // worth of writes (plus preallocated zeros), which fjall replays
        // into memory right after anyway.
        let bytes = fs::read(path)?;
        let file = audit_file(path, &bytes, position == newest, &mut previous_seqno)?;
        if file.torn_bytes > 0 {
            let journal = OpenOptions::new().write(true).open(path)?;
            journal.set_len(file.intact_len)?;
            journal.sync_all()?;
            tracing::warn!(
                journal = %path.display(),
                intact_bytes = file.intact_len,
                torn_bytes = file.torn_bytes,
                "cut off a torn journal tail: writes a crash interrupted before their fsync, \
                 never acknowledged; the node catches up from its leader"
            );
        }
        audit.files.push(file);
    }
    Ok(audit)
}

/// Takes fjall's lock on `dir`, so no running process's journal is
/// audited (or cut) under its feet. A database without a lock file yet is
/// new and has no journal to audit.
fn lock(dir: &Path) -> io::Result<Option<fs::File>> {
    let path = dir.join("lock");
    if !path.exists() {
        return Ok(None);
    }
    let file = OpenOptions::new().read(true).write(true).open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("{} is in use by another process", dir.display()),
        )),
        Err(fs::TryLockError::Error(error)) => Err(error),
    }
}

#[cfg(test)]
#[path = "journal_audit_test.rs"]
mod tests;
