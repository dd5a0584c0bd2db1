//! One ACL user: whether it is on, how it authenticates, and what it may
//! run, read, write and subscribe to.

use std::collections::BTreeSet;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::glob::glob_match;
use crate::spec::{CommandSpec, PUBSUB, WRITE};

/// A key pattern and what it allows (`~p` both, `%R~p` reads, `%W~p`
/// writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyPattern {
    pub pattern: Bytes,
    pub read: bool,
    pub write: bool,
}

/// An ACL user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    /// Any password, or none, authenticates.
    pub nopass: bool,
    /// SHA-256 of each password.
    pub(crate) passwords: BTreeSet<[u8; 32]>,
    pub(crate) keys: Vec<KeyPattern>,
    pub(crate) channels: Vec<Bytes>,
    /// Full names of the commands allowed (`get`, `config|get`).
    pub(crate) commands: BTreeSet<&'static str>,
    /// The command rules that made `commands`, since the last that
    /// reset them (`+@all`, `-@all`), for ACL LIST and GETUSER.
    pub(crate) command_rules: Vec<String>,
}

/// Why a command is refused, worded as Redis 7.0 refuses it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("NOPERM this user has no permissions to run the '{0}' command")]
    Command(String),
    #[error("NOPERM this user has no permissions to access one of the keys used as arguments")]
    Key,
    #[error("NOPERM this user has no permissions to access one of the channels used as arguments")]
    Channel,
}

/// Returns the SHA-256 of `password`.
pub(crate) fn hash(password: &[u8]) -> [u8; 32] {
    Sha256::digest(password).into()
}

/// Returns `bytes` as lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

impl User {
    /// Returns a user as `ACL SETUSER name` creates it: off, without
    /// passwords, keys, channels or commands.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            enabled: false,
            nopass: false,
            passwords: BTreeSet::new(),
            keys: Vec::new(),
            channels: Vec::new(),
            commands: BTreeSet::new(),
            command_rules: Vec::new(),
        }
    }

    /// Returns the default user as Redis starts it: `on nopass ~* &* +@all`.
    pub fn default_user() -> Self {
        let mut user = Self::new(super::DEFAULT_USER);
        for rule in ["on", "nopass", "~*", "&*", "+@all"] {
            // The rules are constants of this function.
            let _ = user.apply(rule);
        }
        user
    }

    /// Returns true when `password` authenticates this user.
    pub fn accepts(&self, password: &[u8]) -> bool {
        self.enabled && (self.nopass || self.passwords.contains(&hash(password)))
    }

    /// Checks that this user may run the command of `spec` (the governing
    /// spec: a subcommand's for a container) on `keys` and `channels`.
    /// `pattern_channels` are PSUBSCRIBE patterns, allowed only when
    /// named as such.
    ///
    /// # Errors
    /// What Redis answers: the command, a key or a channel is denied.
    pub fn check(
        &self,
        spec: &CommandSpec,
        keys: &[Bytes],
        channels: &[Bytes],
        pattern_channels: &[Bytes],
    ) -> Result<(), Denied> {
        if !self.commands.contains(spec.name) {
            return Err(Denied::Command(spec.name.to_owned()));
        }
        let write = spec.has(WRITE);
        for key in keys {
            let allowed = self.keys.iter().any(|pattern| {
                (if write { pattern.write } else { pattern.read })
                    && glob_match(&pattern.pattern, key)
            });
            if !allowed {
                return Err(Denied::Key);
            }
        }
        if spec.has(PUBSUB) {
            for channel in channels {
                if !self
                    .channels
                    .iter()
                    .any(|pattern| glob_match(pattern, channel))
                {
                    return Err(Denied::Channel);
                }
            }
            for pattern in pattern_channels {
                let literal = self
                    .channels
                    .iter()
                    .any(|allowed| allowed == pattern || &allowed[..] == b"*");
                if !literal {
                    return Err(Denied::Channel);
                }
            }
        }
        Ok(())
    }

    /// Returns the user's rules as ACL LIST shows them
    /// (`on nopass ~* &* +@all`), without the leading `user <name>`.
    pub fn describe(&self) -> String {
        self.rules().join(" ")
    }

    /// Returns the rules that make this user from [`User::new`], one per
    /// item (passwords as their hashes): what the cluster map keeps, and
    /// [`User::from_rules`] reads back.
    pub fn rules(&self) -> Vec<String> {
        let mut parts = vec![if self.enabled { "on" } else { "off" }.to_owned()];
        if self.nopass {
            parts.push("nopass".to_owned());
        }
        parts.extend(self.passwords.iter().map(|hash| format!("#{}", hex(hash))));
        parts.extend(self.key_patterns());
        if self.channels.is_empty() {
            parts.push("resetchannels".to_owned());
        }
        parts.extend(self.channel_patterns());
        parts.extend(self.command_rule_list());
        parts
    }

    /// Returns user `name` made by `rules` (as [`User::rules`] gave them).
    ///
    /// # Errors
    /// The first rule refused.
    pub fn from_rules(name: &str, rules: &[String]) -> Result<Self, super::AclError> {
        let mut user = Self::new(name);
        for rule in rules {
            user.apply(rule)?;
        }
        Ok(user)
    }

    /// Returns true when this user may run every command on every key and
    /// channel: checking its commands would refuse nothing.
    pub fn is_unrestricted(&self) -> bool {
        self.command_rules.len() == 1
            && self.command_rules[0] == "+@all"
            && self
                .keys
                .iter()
                .any(|key| &key.pattern[..] == b"*" && key.read && key.write)
            && self.channels.iter().any(|channel| &channel[..] == b"*")
    }

    /// Returns the hex SHA-256 of each password (ACL GETUSER `passwords`).
    pub fn password_hashes(&self) -> Vec<String> {
        self.passwords.iter().map(|hash| hex(hash)).collect()
    }

    /// Returns the key patterns as ACL GETUSER shows them (`~*`, `%R~p`).
    pub fn key_patterns(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|key| {
                let pattern = String::from_utf8_lossy(&key.pattern);
                match (key.read, key.write) {
                    (true, true) => format!("~{pattern}"),
                    (true, false) => format!("%R~{pattern}"),
                    _ => format!("%W~{pattern}"),
                }
            })
            .collect()
    }

    /// Returns the channel patterns (`&news*`).
    pub fn channel_patterns(&self) -> Vec<String> {
        self.channels
            .iter()
            .map(|channel| format!("&{}", String::from_utf8_lossy(channel)))
            .collect()
    }

    /// Returns the command rules (`+@all -keys`).
    pub fn command_rules(&self) -> String {
        self.command_rule_list().join(" ")
    }

    /// Returns the command rules one by one, from `-@all` unless they
    /// start from `+@all`.
    fn command_rule_list(&self) -> Vec<String> {
        let mut rules = Vec::with_capacity(self.command_rules.len() + 1);
        if self
            .command_rules
            .first()
            .is_none_or(|first| first != "+@all")
        {
            rules.push("-@all".to_owned());
        }
        rules.extend(self.command_rules.iter().cloned());
        rules
    }
}
