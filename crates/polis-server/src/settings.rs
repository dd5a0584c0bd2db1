//! Parameters clients read and change with CONFIG GET/SET. Each has a
//! kind that validates new values; a few take effect at once (limits),
//! the rest are accepted for compatibility and reported back.

use std::collections::BTreeMap;
use std::sync::RwLock;

use polis_resp::ReplyError;

#[path = "settings_params.rs"]
mod params;

use params::{Kind, Param, PARAMS};

/// The current value of every parameter.
pub struct Settings {
    values: RwLock<BTreeMap<&'static str, String>>,
}

fn find(name: &str) -> Option<&'static Param> {
    PARAMS
        .iter()
        .find(|param| param.name == name || param.aliases.contains(&name))
}

/// Parses an integer with an optional memory unit, as Redis's memtoull.
fn parse_memory(value: &str) -> Option<i64> {
    let lower = value.to_ascii_lowercase();
    let units: [(&str, i64); 8] = [
        ("kb", 1024),
        ("mb", 1024 * 1024),
        ("gb", 1024 * 1024 * 1024),
        ("k", 1000),
        ("m", 1_000_000),
        ("g", 1_000_000_000),
        ("b", 1),
        ("", 1),
    ];
    for (suffix, multiplier) in units {
        if let Some(number) = lower.strip_suffix(suffix) {
            if number.is_empty() {
                continue;
            }
            return number.parse::<i64>().ok()?.checked_mul(multiplier);
        }
    }
    None
}

/// The classes of `client-output-buffer-limit`, in the order Redis
/// prints them (`slave` is Redis's name for the replica class).
const OUTPUT_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// Parses `client-output-buffer-limit` groups: `<class> <hard> <soft>
/// <seconds>`, sizes with memory units.
fn output_limits(value: &str) -> Result<Vec<(String, crate::pubsub::OutputLimit)>, String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut classes = Vec::new();
    for group in words.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "replica" | "slave" => "slave".to_owned(),
            class @ ("normal" | "pubsub") => class.to_owned(),
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let size = |word: &str| parse_memory(word).and_then(|size| u64::try_from(size).ok());
        let (Some(hard_bytes), Some(soft_bytes), Some(soft_seconds)) =
            (size(group[1]), size(group[2]), group[3].parse::<u64>().ok())
        else {
            return Err(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.".into(),
            );
        };
        let limit = crate::pubsub::OutputLimit {
            hard_bytes,
            soft_bytes,
            soft_seconds,
        };
        classes.push((class, limit));
    }
    Ok(classes)
}

/// Returns `current` with the classes `change` names replaced, printed as
/// Redis prints the parameter.
fn merge_output_limits(current: &str, change: &str) -> Result<String, String> {
    let mut classes = output_limits(current)?;
    for (class, limit) in output_limits(change)? {
        match classes.iter_mut().find(|(known, _)| *known == class) {
            Some((_, known)) => *known = limit,
            None => classes.push((class, limit)),
        }
    }
    let printed: Vec<String> = OUTPUT_CLASSES
        .iter()
        .filter_map(|name| classes.iter().find(|(class, _)| class == name))
        .map(|(class, limit)| {
            format!(
                "{class} {} {} {}",
                limit.hard_bytes, limit.soft_bytes, limit.soft_seconds
            )
        })
        .collect();
    Ok(printed.join(" "))
}

impl Settings {
    /// Returns every parameter at its default, with the limits the node
    /// was started with.
    pub fn new(proto_max_bulk_len: u64, query_buffer_limit: u64, maxclients: usize) -> Self {
        let mut values: BTreeMap<&'static str, String> = PARAMS
            .iter()
            .map(|param| (param.name, param.default.to_owned()))
            .collect();
        values.insert("proto-max-bulk-len", proto_max_bulk_len.to_string());
        values.insert("client-query-buffer-limit", query_buffer_limit.to_string());
        values.insert("maxclients", maxclients.to_string());
        Self {
            values: RwLock::new(values),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<&'static str, String>> {
        self.values
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns the parameters whose name matches `matches`, with values.
    pub fn get_matching(&self, matches: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        let values = self.read();
        let mut found = Vec::new();
        for param in PARAMS {
            let names = std::iter::once(param.name).chain(param.aliases.iter().copied());
            for name in names.filter(|name| matches(name)) {
                found.push((
                    name.to_owned(),
                    values.get(param.name).cloned().unwrap_or_default(),
                ));
            }
        }
        found
    }

    /// Returns an integer parameter's value.
    pub fn integer(&self, name: &str) -> i64 {
        self.read()
            .get(name)
            .and_then(|value| parse_memory(value))
            .unwrap_or(0)
    }

    /// Returns a yes/no parameter's value.
    pub fn flag(&self, name: &str) -> bool {
        self.read().get(name).is_some_and(|value| value == "yes")
    }

    /// Returns `client-output-buffer-limit`'s pubsub class.
    pub fn pubsub_output_limit(&self) -> crate::pubsub::OutputLimit {
        let value = self
            .read()
            .get("client-output-buffer-limit")
            .cloned()
            .unwrap_or_default();
        output_limits(&value)
            .ok()
            .and_then(|classes| classes.into_iter().find(|(class, _)| class == "pubsub"))
            .map_or_else(crate::pubsub::OutputLimit::default, |(_, limit)| limit)
    }

    /// Returns `notify-keyspace-events` as flags (see [`crate::notify`]).
    pub fn key_event_flags(&self) -> u16 {
        let value = self
            .read()
            .get("notify-keyspace-events")
            .cloned()
            .unwrap_or_default();
        crate::notify::parse_flags(&value).unwrap_or(0)
    }

    /// Returns the thresholds OBJECT ENCODING reports against.
    pub fn encoding_limits(&self) -> polis_store::EncodingLimits {
        let size = |name| usize::try_from(self.integer(name)).unwrap_or(0);
        polis_store::EncodingLimits {
            hash_max_listpack_entries: size("hash-max-listpack-entries"),
            hash_max_listpack_value: size("hash-max-listpack-value"),
            set_max_intset_entries: size("set-max-intset-entries"),
            zset_max_listpack_entries: size("zset-max-listpack-entries"),
            zset_max_listpack_value: size("zset-max-listpack-value"),
        }
    }

    /// Returns what eviction works with: `maxmemory` and its policy,
    /// samples and LFU parameters.
    pub fn eviction(&self) -> crate::eviction::EvictionConfig {
        let policy = self
            .read()
            .get("maxmemory-policy")
            .and_then(|name| polis_store::EvictionPolicy::parse(name))
            .unwrap_or_default();
        let number = |name| u32::try_from(self.integer(name)).unwrap_or(u32::MAX);
        crate::eviction::EvictionConfig {
            maxmemory_bytes: u64::try_from(self.integer("maxmemory")).unwrap_or(0),
            policy,
            samples: usize::try_from(self.integer("maxmemory-samples")).unwrap_or(1),
            lfu_log_factor: number("lfu-log-factor"),
            lfu_decay_minutes: number("lfu-decay-time"),
        }
    }

    /// Sets several parameters at once: all or none (as CONFIG SET does).
    ///
    /// # Errors
    /// Returns Redis's error naming the first bad parameter.
    pub fn set_all(&self, pairs: &[(String, String)]) -> Result<(), ReplyError> {
        let mut validated = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let lower = name.to_ascii_lowercase();
            let Some(param) = find(&lower) else {
                return Err(ReplyError::err(format!(
                    "Unknown option or number of arguments for CONFIG SET - '{name}'"
                )));
            };
            let normalized = match param.kind {
                Kind::Integer { min, max } => match parse_memory(value) {
                    Some(number) if (min..=max).contains(&number) => number.to_string(),
                    Some(_) => {
                        return Err(ReplyError::err(format!(
                            "CONFIG SET failed (possibly related to argument '{name}') - argument must be between {min} and {max} inclusive"
                        )))
                    }
                    None => {
                        return Err(ReplyError::err(format!(
                            "CONFIG SET failed (possibly related to argument '{name}') - argument couldn't be parsed into an integer"
                        )))
                    }
                },
                Kind::Bool => match value.to_ascii_lowercase().as_str() {
                    "yes" | "no" => value.to_ascii_lowercase(),
                    _ => {
                        return Err(ReplyError::err(format!(
                            "CONFIG SET failed (possibly related to argument '{name}') - argument must be 'yes' or 'no'"
                        )))
                    }
                },
                Kind::Choice(choices) => {
                    let lower_value = value.to_ascii_lowercase();
                    if !choices.contains(&lower_value.as_str()) {
                        return Err(ReplyError::err(format!(
                            "CONFIG SET failed (possibly related to argument '{name}') - argument(s) must be one of the following: {}",
                            choices.join(", ")
                        )));
                    }
                    lower_value
                }
                Kind::Text => value.clone(),
                Kind::KeyEvents => match crate::notify::parse_flags(value) {
                    Some(flags) => crate::notify::flags_to_string(flags),
                    None => {
                        return Err(ReplyError::err(format!(
                            "CONFIG SET failed (possibly related to argument '{name}') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
                        )))
                    }
                },
                Kind::OutputBufferLimit => {
                    let current = self.read().get(param.name).cloned().unwrap_or_default();
                    merge_output_limits(&current, value).map_err(|reason| {
                        ReplyError::err(format!(
                            "CONFIG SET failed (possibly related to argument '{name}') - {reason}"
                        ))
                    })?
                }
            };
            validated.push((param.name, normalized));
        }
        let mut values = self
            .values
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (name, value) in validated {
            values.insert(name, value);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "settings_test.rs"]
mod tests;
