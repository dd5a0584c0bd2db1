//! `polis encryption`: master keys for encryption at rest, and their
//! rotation, and where `polis server` finds its key.
//!
//! ```text
//!  polis encryption new-key FILE                       a new key, readable by its owner alone
//!  polis encryption rotate --data-dir DIR --key-file OLD --new-key-file NEW
//!                                                      (node stopped) rewraps DIR's data keys
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use polis_server::{at_rest, MasterKey};

/// `polis encryption ...`.
#[derive(Debug, Subcommand)]
pub enum EncryptionCommand {
    /// Writes a new random master key (64 hexadecimal digits) to FILE.
    NewKey(NewKeyArgs),
    /// Rewraps a stopped node's data keys with a new master key; its data
    /// stays readable, and new writes use a new data key.
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
pub struct NewKeyArgs {
    /// Where the key goes (refused if the file exists).
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The node's data directory (the node must be stopped).
    #[arg(long)]
    data_dir: PathBuf,
    /// The key the directory is wrapped with now.
    #[arg(long)]
    key_file: PathBuf,
    /// The key to wrap it with from now on.
    #[arg(long)]
    new_key_file: PathBuf,
}

/// Runs `polis encryption ...`.
pub fn run(command: EncryptionCommand) -> anyhow::Result<()> {
    match command {
        EncryptionCommand::NewKey(args) => {
            if args.file.exists() {
                anyhow::bail!(
                    "{} exists: a key file is never overwritten (data encrypted with it \
                     would be lost); choose another path",
                    args.file.display()
                );
            }
            let key = write_new_key(&args.file)?;
            println!(
                "polis encryption: wrote a new master key (fingerprint {}) to {}; keep a copy \
                 apart from the data: without it the data cannot be read",
                key.fingerprint(),
                args.file.display()
            );
            Ok(())
        }
        EncryptionCommand::Rotate(args) => {
            let old = MasterKey::read_file(&args.key_file)?;
            let new = MasterKey::read_file(&args.new_key_file)?;
            let rotation = at_rest::rotate(&args.data_dir, &old, &new)
                .with_context(|| format!("rotating {}", args.data_dir.display()))?;
            println!(
                "polis encryption: {} now wrapped with key {} (was {}); {} data keys, the \
                 newest for new writes; start the node with --encryption-key-file {}",
                args.data_dir.display(),
                rotation.new_fingerprint,
                rotation.old_fingerprint,
                rotation.data_keys,
                args.new_key_file.display()
            );
            Ok(())
        }
    }
}

/// Writes a new random master key to `file` (64 hexadecimal digits,
/// readable by its owner alone) and returns it.
///
/// # Errors
/// The system has no random source, or the file cannot be written.
pub fn write_new_key(file: &Path) -> anyhow::Result<MasterKey> {
    let key = MasterKey::generate()?;
    crate::tls_certs::write_private(file, &format!("{}\n", key.to_hex()))?;
    Ok(key)
}

/// Returns the master key `polis server` was given: from `file`, or else
/// from the environment variable [`at_rest::KEY_ENV`]; `None` for none.
///
/// # Errors
/// Returns an error if the file or the variable holds no valid key.
pub fn master_key(file: Option<&Path>) -> anyhow::Result<Option<Arc<MasterKey>>> {
    if let Some(file) = file {
        return Ok(Some(Arc::new(MasterKey::read_file(file)?)));
    }
    match std::env::var(at_rest::KEY_ENV) {
        Ok(text) => MasterKey::from_hex(&text)
            .map(|key| Some(Arc::new(key)))
            .map_err(|message| anyhow::anyhow!("{}: {message}", at_rest::KEY_ENV)),
        Err(_) => Ok(None),
    }
}

/// Logs a warning when the key file `file` may be read by others than its
/// owner (called once the log is set up, so that it shows).
pub(crate) fn warn_if_readable_by_others(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(file) {
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %file.display(),
                "the encryption key file is readable by others than its owner; chmod 600 it"
            );
        }
    }
}
