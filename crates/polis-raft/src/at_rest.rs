//! Encryption at rest: every record a node stores (log entries, Raft
//! metadata, snapshots, eventual keys' states, the node's small files) is
//! sealed with AES-256-GCM under a data key before it reaches fjall or a
//! file, and the data keys are kept wrapped by a master key the operator
//! holds.
//!
//! ```text
//!   master key (--encryption-key-file / POLIS_ENCRYPTION_KEY, never stored)
//!     └─ wraps ─> <data dir>/keyring: data keys 1..=n, n the one writes use
//!                   └─ seal ─> record | 2 | key id u32 LE | nonce (12) | ciphertext | tag (16) |
//!                                      AAD = the record's storage key
//! ```
//!
//! The storage key as associated data keeps the end-to-end check of the
//! plaintext records (a value moved to another key fails) and the tag
//! replaces their checksum. Rotating the master key rewraps every data key
//! and adds a fresh one for new writes: old records stay readable, and no
//! record is rewritten. Nonces are random (96 bits): a data key should seal
//! fewer than 2^32 records, so a node that writes billions of entries
//! rotates well before (each rotation starts a new data key).
//!
//! A directory is encrypted or not from its creation: a keyring with no
//! key given, or a key given for a directory created without one, refuses
//! to start, as does a key that does not unwrap the keyring.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::log_store::record::{self, RecordError};

/// The keyring's file name in a data directory.
pub const KEYRING_FILE: &str = "keyring";
/// The environment variable that may hold the master key (64 hex digits).
pub const KEY_ENV: &str = "POLIS_ENCRYPTION_KEY";
/// Version byte of an encrypted record.
pub const SEALED_VERSION: u8 = 2;
/// Bytes in front of an encrypted record's ciphertext.
pub const SEALED_HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
/// Bytes of the tag behind the ciphertext.
pub const TAG_LEN: usize = 16;
/// Data keys a keyring holds at most (one more each rotation).
pub const KEYRING_KEYS_MAX: usize = 10_000;

const KEY_LEN: usize = 32;

/// The operator's key: wraps the data keys, never written anywhere.
pub struct MasterKey {
    bytes: [u8; KEY_LEN],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.fingerprint())
    }
}

impl MasterKey {
    /// Returns a new random key.
    ///
    /// # Errors
    /// Returns an error if the system has no random source.
    pub fn generate() -> io::Result<Self> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| io::Error::other("the system's random source failed"))?;
        Ok(Self { bytes })
    }

    /// Parses a key written as 64 hexadecimal digits (surrounding white
    /// space ignored).
    ///
    /// # Errors
    /// Returns a message saying what is wrong with `text`.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() != KEY_LEN * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "an encryption key is {} hexadecimal digits (256 bits), got {} characters; \
                 make one with `polis encryption new-key FILE`",
                KEY_LEN * 2,
                text.len()
            ));
        }
        let mut bytes = [0u8; KEY_LEN];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        Ok(Self { bytes })
    }

    /// Reads a key file (64 hexadecimal digits).
    ///
    /// # Errors
    /// Returns an error naming the file if it cannot be read or holds no
    /// key.
    pub fn read_file(path: &Path) -> io::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("encryption key file {}: {error}", path.display()),
            )
        })?;
        Self::from_hex(&text).map_err(|message| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("encryption key file {}: {message}", path.display()),
            )
        })
    }

    /// Returns the key as 64 hexadecimal digits, for a key file.
    pub fn to_hex(&self) -> String {
        self.bytes
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// Returns a short name of the key that reveals nothing of it: the
    /// first 8 bytes of a SHA-256 of the key, in hexadecimal.
    pub fn fingerprint(&self) -> String {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(b"polis master key fingerprint\0");
        context.update(&self.bytes);
        context.finish().as_ref()[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    fn aead(&self) -> LessSafeKey {
        aead_key(&self.bytes)
    }
}

fn aead_key(bytes: &[u8; KEY_LEN]) -> LessSafeKey {
    // AES-256 takes any 32 bytes; the length is fixed by the type.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).unwrap_or_else(|_| unreachable!()))
}

/// Returns a random nonce from the thread's generator: a CSPRNG (ChaCha)
/// seeded and reseeded from the system's source, without a system call
/// per record as the system's source would take.
fn random_nonce() -> [u8; NONCE_LEN] {
    rand::random()
}

/// The keyring file: data keys sealed by the master key.
#[derive(Serialize, Deserialize)]
struct KeyringFile {
    /// Fingerprint of the master key that wraps the keys.
    master: String,
    keys: Vec<WrappedKey>,
}

#[derive(Serialize, Deserialize)]
struct WrappedKey {
    id: u32,
    nonce: [u8; NONCE_LEN],
    /// The data key sealed with the master key (32 bytes and a tag); the
    /// associated data is `data key <id>`.
    sealed: Vec<u8>,
}

fn wrap_aad(id: u32) -> Vec<u8> {
    format!("polis data key {id}").into_bytes()
}

/// The data keys of a directory, unwrapped.
pub struct Keyring {
    keys: Vec<(u32, LessSafeKey)>,
    raw: Vec<(u32, [u8; KEY_LEN])>,
}

impl Keyring {
    fn current(&self) -> &(u32, LessSafeKey) {
        // A keyring is never empty: it is created with one key.
        self.keys.last().unwrap_or_else(|| unreachable!())
    }

    fn key(&self, id: u32) -> Option<&LessSafeKey> {
        self.keys
            .iter()
            .find(|(key_id, _)| *key_id == id)
            .map(|(_, key)| key)
    }

    fn with_new_key(mut self) -> io::Result<Self> {
        let id = self.raw.last().map_or(1, |(id, _)| id + 1);
        let fresh = MasterKey::generate()?.bytes;
        self.keys.push((id, aead_key(&fresh)));
        self.raw.push((id, fresh));
        Ok(self)
    }

    fn to_file(&self, master: &MasterKey) -> KeyringFile {
        let wrapping = master.aead();
        let keys = self
            .raw
            .iter()
            .map(|(id, bytes)| {
                let nonce = random_nonce();
                let mut sealed = bytes.to_vec();
                wrapping
                    .seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(wrap_aad(*id)),
                        &mut sealed,
                    )
                    .unwrap_or_else(|_| unreachable!("32 bytes fit AES-GCM's limits"));
                WrappedKey {
                    id: *id,
                    nonce,
                    sealed,
                }
            })
            .collect();
        KeyringFile {
            master: master.fingerprint(),
            keys,
        }
    }

    fn from_file(file: &KeyringFile, master: &MasterKey, path: &Path) -> io::Result<Self> {
        if file.master != master.fingerprint() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "the encryption key given (fingerprint {}) is not the one the keyring {} \
                     is wrapped with (fingerprint {}): start the node with the key its data \
                     directory was created or last rotated with",
                    master.fingerprint(),
                    path.display(),
                    file.master
                ),
            ));
        }
        let wrapping = master.aead();
        let mut keyring = Self {
            keys: Vec::new(),
            raw: Vec::new(),
        };
        for wrapped in &file.keys {
            let mut sealed = wrapped.sealed.clone();
            let opened = wrapping
                .open_in_place(
                    Nonce::assume_unique_for_key(wrapped.nonce),
                    Aad::from(wrap_aad(wrapped.id)),
                    &mut sealed,
                )
                .ok()
                .and_then(|plain| <[u8; KEY_LEN]>::try_from(&*plain).ok())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "data key {} of the keyring {} does not unwrap with the encryption \
                             key: the keyring is damaged",
                            wrapped.id,
                            path.display()
                        ),
                    )
                })?;
            keyring.keys.push((wrapped.id, aead_key(&opened)));
            keyring.raw.push((wrapped.id, opened));
        }
        if keyring.keys.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the keyring {} holds no data key", path.display()),
            ));
        }
        Ok(keyring)
    }
}

fn write_keyring(path: &Path, file: &KeyringFile) -> io::Result<()> {
    let mut bytes = postcard::to_extend(file, record::start(256))
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
    record::seal(KEYRING_FILE.as_bytes(), &mut bytes);
    crate::storage::write_durably(path, &bytes)
}

fn read_keyring(path: &Path) -> io::Result<Option<KeyringFile>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let damaged = |problem: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the keyring {} is damaged: {problem}", path.display()),
        )
    };
    let payload = record::verify(KEYRING_FILE.as_bytes(), &bytes)
        .map_err(|error| damaged(error.to_string()))?;
    postcard::from_bytes(payload)
        .map(Some)
        .map_err(|error| damaged(error.to_string()))
}

/// Returns how records of the data directory `dir` are sealed, creating
/// its keyring when `master` is given and the directory is new (`fresh`:
/// no log stored yet).
///
/// # Errors
/// Returns an error that says what to do when the key and the directory
/// do not match (see the module's documentation).
pub fn open(dir: &Path, master: Option<&MasterKey>, fresh: bool) -> io::Result<Cipher> {
    let path = dir.join(KEYRING_FILE);
    let refuse = |message: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, message));
    match (read_keyring(&path)?, master) {
        (None, None) => Ok(Cipher::Plain),
        (Some(_), None) => refuse(format!(
            "the data directory {} is encrypted (it has a keyring): start the node with \
             --encryption-key-file FILE or {KEY_ENV}",
            dir.display()
        )),
        (None, Some(_)) if !fresh => refuse(format!(
            "the data directory {} was created without encryption at rest and cannot be \
             encrypted in place: start the node without an encryption key, or give it a new \
             data directory with the key and let it catch up from its replicas",
            dir.display()
        )),
        (None, Some(master)) => {
            let keyring = Keyring {
                keys: Vec::new(),
                raw: Vec::new(),
            }
            .with_new_key()?;
            write_keyring(&path, &keyring.to_file(master))?;
            tracing::info!(
                dir = %dir.display(),
                master = %master.fingerprint(),
                "encryption at rest: new keyring"
            );
            Ok(Cipher::Sealed(Arc::new(keyring)))
        }
        (Some(file), Some(master)) => {
            let keyring = Keyring::from_file(&file, master, &path)?;
            tracing::info!(
                dir = %dir.display(),
                master = %master.fingerprint(),
                data_keys = keyring.keys.len(),
                "encryption at rest: keyring unwrapped"
            );
            Ok(Cipher::Sealed(Arc::new(keyring)))
        }
    }
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotation {
    /// Data keys now in the keyring (the newest seals new writes).
    pub data_keys: usize,
    pub old_fingerprint: String,
    pub new_fingerprint: String,
}

/// Rotates the master key of the data directory `dir` (its node
/// stopped): every data key is rewrapped with `new`, and a new data key
/// seals the writes from now on. Nothing else is rewritten.
///
/// # Errors
/// Returns an error if `dir` has no keyring, `old` does not unwrap it, or
/// it cannot be written.
pub fn rotate(dir: &Path, old: &MasterKey, new: &MasterKey) -> io::Result<Rotation> {
    let path = dir.join(KEYRING_FILE);
    let Some(file) = read_keyring(&path)? else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} has no keyring: it is not an encrypted data directory",
                dir.display()
            ),
        ));
    };
    let keyring = Keyring::from_file(&file, old, &path)?;
    if keyring.raw.len() >= KEYRING_KEYS_MAX {
        return Err(io::Error::other(format!(
            "the keyring {} holds {KEYRING_KEYS_MAX} data keys, its limit",
            path.display()
        )));
    }
    let keyring = keyring.with_new_key()?;
    write_keyring(&path, &keyring.to_file(new))?;
    Ok(Rotation {
        data_keys: keyring.raw.len(),
        old_fingerprint: old.fingerprint(),
        new_fingerprint: new.fingerprint(),
    })
}

/// How a node's records are stored: in the clear (checksummed) or sealed
/// with the current data key of its keyring.
#[derive(Clone, Default)]
pub enum Cipher {
    #[default]
    Plain,
    Sealed(Arc<Keyring>),
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain => write!(f, "Plain"),
            Self::Sealed(keyring) => write!(f, "Sealed({} data keys)", keyring.keys.len()),
        }
    }
}

impl Cipher {
    /// Returns an empty record with room for `payload_capacity` bytes:
    /// append the payload, then [`Cipher::seal`] it.
    pub fn start(&self, payload_capacity: usize) -> Vec<u8> {
        match self {
            Self::Plain => record::start(payload_capacity),
            Self::Sealed(_) => {
                let mut bytes = Vec::with_capacity(SEALED_HEADER_LEN + payload_capacity + TAG_LEN);
                bytes.resize(SEALED_HEADER_LEN, 0);
                bytes
            }
        }
    }

    /// Seals `record` (from [`Cipher::start`], payload appended) for
    /// storage under `key`.
    pub fn seal(&self, key: &[u8], record: &mut Vec<u8>) {
        let Self::Sealed(keyring) = self else {
            return record::seal(key, record);
        };
        let (id, data_key) = keyring.current();
        let nonce = random_nonce();
        let tag = data_key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key),
                &mut record[SEALED_HEADER_LEN..],
            )
            .unwrap_or_else(|_| panic!("a record over AES-GCM's 64 GiB limit"));
        record[0] = SEALED_VERSION;
        record[1..5].copy_from_slice(&id.to_le_bytes());
        record[5..SEALED_HEADER_LEN].copy_from_slice(&nonce);
        record.extend_from_slice(tag.as_ref());
    }

    /// Returns the record of `payload` to store under `key`.
    pub fn sealed(&self, key: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut record = self.start(payload.len());
        record.extend_from_slice(payload);
        self.seal(key, &mut record);
        record
    }

    /// Returns the payload of `record`, read from under `key`, once it
    /// checks out (checksum, or tag and key).
    ///
    /// # Errors
    /// Returns the first check the record fails.
    pub fn open<'a>(&self, key: &[u8], record: &'a [u8]) -> Result<Cow<'a, [u8]>, RecordError> {
        let version = record.first().copied();
        match self {
            Self::Plain if version == Some(SEALED_VERSION) => Err(RecordError::Encrypted),
            Self::Plain => record::verify(key, record).map(Cow::Borrowed),
            Self::Sealed(_) if version == Some(record::FORMAT_VERSION) => {
                Err(RecordError::Unencrypted)
            }
            Self::Sealed(keyring) => {
                if record.len() < SEALED_HEADER_LEN + TAG_LEN {
                    return Err(RecordError::TooShort { len: record.len() });
                }
                if record[0] != SEALED_VERSION {
                    return Err(RecordError::UnknownVersion { version: record[0] });
                }
                let mut id = [0u8; 4];
                id.copy_from_slice(&record[1..5]);
                let id = u32::from_le_bytes(id);
                let data_key = keyring.key(id).ok_or(RecordError::UnknownDataKey { id })?;
                let mut nonce = [0u8; NONCE_LEN];
                nonce.copy_from_slice(&record[5..SEALED_HEADER_LEN]);
                let mut payload = record[SEALED_HEADER_LEN..].to_vec();
                let len = data_key
                    .open_in_place(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(key),
                        &mut payload,
                    )
                    .map_err(|_| RecordError::Forged)?
                    .len();
                payload.truncate(len);
                Ok(Cow::Owned(payload))
            }
        }
    }

    /// Whether records are encrypted.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, Self::Sealed(_))
    }
}

#[cfg(test)]
#[path = "at_rest_test.rs"]
mod tests;
