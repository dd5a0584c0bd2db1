//! The rule language of `ACL SETUSER`, applied to a [`User`] in order, as
//! Redis 7.0 applies it (selectors excepted).

use bytes::Bytes;

use super::user::{hash, KeyPattern, User};
use crate::spec::{acl_categories, acl_category_names, all_commands, lookup, CommandSpec};

/// A rule `ACL SETUSER` refuses, worded as Redis 7.0 words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ERR Error in ACL SETUSER modifier '{rule}': {reason}")]
pub struct AclError {
    pub rule: String,
    pub reason: &'static str,
}

const SYNTAX: &str = "Syntax error";
const UNKNOWN: &str = "Unknown command or category name in ACL";
const AFTER_ALLKEYS: &str = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns";
const AFTER_ALLCHANNELS: &str = "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels";
const NO_SUCH_PASSWORD: &str = "The password you are trying to remove from the user does not exist";
const BAD_HASH: &str =
    "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters";

/// Every command and subcommand spec.
fn every_spec() -> impl Iterator<Item = &'static CommandSpec> {
    all_commands()
        .iter()
        .flat_map(|spec| std::iter::once(spec).chain(spec.subcommands.iter()))
}

/// Parses 64 lowercase hexadecimal characters.
fn parse_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64
        || !text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    {
        return None;
    }
    let mut out = [0u8; 32];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16).ok()?;
    }
    Some(out)
}

impl User {
    /// Applies `rules` in order, all or none: a rule that fails leaves
    /// the user as it was.
    ///
    /// # Errors
    /// The first rule refused.
    pub fn apply_all(&mut self, rules: &[Bytes]) -> Result<(), AclError> {
        let mut changed = self.clone();
        for rule in rules {
            changed.apply(&String::from_utf8_lossy(rule))?;
        }
        *self = changed;
        Ok(())
    }

    /// Applies one rule.
    ///
    /// # Errors
    /// The rule is not of the language, names no command or category, or
    /// contradicts the user (a pattern after `allkeys`, removing a
    /// password the user does not have).
    pub fn apply(&mut self, rule: &str) -> Result<(), AclError> {
        let refuse = |reason| AclError {
            rule: rule.to_owned(),
            reason,
        };
        match rule.to_ascii_lowercase().as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "sanitize-payload" | "skip-sanitize-payload" => {}
            "nopass" => {
                self.passwords.clear();
                self.nopass = true;
            }
            "resetpass" => {
                self.passwords.clear();
                self.nopass = false;
            }
            "allkeys" => return self.apply("~*"),
            "resetkeys" => self.keys.clear(),
            "allchannels" => return self.apply("&*"),
            "resetchannels" => self.channels.clear(),
            "allcommands" => return self.apply("+@all"),
            "nocommands" => return self.apply("-@all"),
            "reset" => {
                *self = User::new(&self.name);
            }
            _ => return self.apply_pattern_or_command(rule).map_err(refuse),
        }
        Ok(())
    }

    fn apply_pattern_or_command(&mut self, rule: &str) -> Result<(), &'static str> {
        let Some(first) = rule.chars().next() else {
            return Err(SYNTAX);
        };
        let rest = &rule[first.len_utf8()..];
        match first {
            '>' => {
                self.passwords.insert(hash(rest.as_bytes()));
                self.nopass = false;
            }
            '<' => {
                if !self.passwords.remove(&hash(rest.as_bytes())) {
                    return Err(NO_SUCH_PASSWORD);
                }
            }
            '#' => {
                self.passwords.insert(parse_hash(rest).ok_or(BAD_HASH)?);
                self.nopass = false;
            }
            '!' => {
                if !self.passwords.remove(&parse_hash(rest).ok_or(BAD_HASH)?) {
                    return Err(NO_SUCH_PASSWORD);
                }
            }
            '~' => self.add_keys(rest, true, true)?,
            '%' => {
                let (flags, pattern) = rest.split_once('~').ok_or(SYNTAX)?;
                let flags = flags.to_ascii_uppercase();
                if flags.is_empty() || !flags.chars().all(|flag| flag == 'R' || flag == 'W') {
                    return Err(SYNTAX);
                }
                self.add_keys(pattern, flags.contains('R'), flags.contains('W'))?;
            }
            '&' => {
                if self.channels.iter().any(|channel| &channel[..] == b"*") {
                    return Err(AFTER_ALLCHANNELS);
                }
                if rest == "*" {
                    self.channels.clear();
                }
                self.channels.push(Bytes::copy_from_slice(rest.as_bytes()));
            }
            '+' | '-' => self.apply_command_rule(first == '+', rest)?,
            _ => return Err(SYNTAX),
        }
        Ok(())
    }

    fn add_keys(&mut self, pattern: &str, read: bool, write: bool) -> Result<(), &'static str> {
        let all = |key: &KeyPattern| &key.pattern[..] == b"*" && key.read && key.write;
        if self.keys.iter().any(all) {
            return Err(AFTER_ALLKEYS);
        }
        if pattern == "*" && read && write {
            self.keys.clear();
        }
        self.keys.push(KeyPattern {
            pattern: Bytes::copy_from_slice(pattern.as_bytes()),
            read,
            write,
        });
        Ok(())
    }

    /// Returns true when the user is on and may run every command of
    /// `@category` (`admin`, say).
    pub fn allows_category(&self, category: &str) -> bool {
        let tagged = format!("@{category}");
        self.enabled
            && every_spec()
                .filter(|spec| acl_categories(spec).contains(&tagged))
                .all(|spec| self.commands.contains(spec.name))
    }

    /// `+name`, `-name`, `+name|sub`, `+@category`, `-@category`.
    fn apply_command_rule(&mut self, allow: bool, name: &str) -> Result<(), &'static str> {
        let name = name.to_ascii_lowercase();
        let sign = if allow { '+' } else { '-' };
        if name == "@all" {
            self.command_rules.clear();
            if allow {
                self.commands = every_spec().map(|spec| spec.name).collect();
                self.command_rules.push("+@all".to_owned());
            } else {
                self.commands.clear();
            }
            return Ok(());
        }
        let names: Vec<&'static str> = if let Some(category) = name.strip_prefix('@') {
            if !acl_category_names().contains(&category) {
                return Err(UNKNOWN);
            }
            let tagged = format!("@{category}");
            every_spec()
                .filter(|spec| acl_categories(spec).contains(&tagged))
                .map(|spec| spec.name)
                .collect()
        } else if let Some((container, sub)) = name.split_once('|') {
            let spec = lookup(container.as_bytes()).ok_or(UNKNOWN)?;
            let sub = spec.subcommand(sub.as_bytes()).ok_or(UNKNOWN)?;
            vec![sub.name]
        } else {
            let spec = lookup(name.as_bytes()).ok_or(UNKNOWN)?;
            std::iter::once(spec.name)
                .chain(spec.subcommands.iter().map(|sub| sub.name))
                .collect()
        };
        for command in names {
            if allow {
                self.commands.insert(command);
            } else {
                self.commands.remove(command);
            }
        }
        self.command_rules.push(format!("{sign}{name}"));
        Ok(())
    }
}
