//! Command specs: name, arity, flags and key positions of every command
//! polis knows, as Redis 7.0 declares them.
//!
//! The node routes by the keys a spec finds, checks arity before parsing,
//! and renders COMMAND, COMMAND INFO/COUNT/DOCS/GETKEYS from this table.

use std::collections::HashMap;

use bytes::Bytes;
use polis_resp::ReplyError;

use crate::table::COMMANDS;

/// The command may modify the keyspace (goes through the Raft log).
pub const WRITE: u32 = 1 << 0;
/// The command only reads.
pub const READONLY: u32 = 1 << 1;
/// The command may grow memory use (refused when over maxmemory).
pub const DENYOOM: u32 = 1 << 2;
/// An administrative command.
pub const ADMIN: u32 = 1 << 3;
/// A pub/sub command.
pub const PUBSUB: u32 = 1 << 4;
/// Not allowed from scripts.
pub const NOSCRIPT: u32 = 1 << 5;
/// May block the client.
pub const BLOCKING: u32 = 1 << 6;
/// Allowed while loading.
pub const LOADING: u32 = 1 << 7;
/// Allowed on a stale replica.
pub const STALE: u32 = 1 << 8;
/// Not shown to MONITOR.
pub const SKIP_MONITOR: u32 = 1 << 9;
/// Not logged to SLOWLOG.
pub const SKIP_SLOWLOG: u32 = 1 << 10;
/// O(1) or O(log n).
pub const FAST: u32 = 1 << 11;
/// Allowed before AUTH.
pub const NO_AUTH: u32 = 1 << 12;
/// May replicate even when read-only (Redis internal; hidden in COMMAND).
pub const MAY_REPLICATE: u32 = 1 << 13;
/// May run with no key at all.
pub const NO_MANDATORY_KEYS: u32 = 1 << 14;
/// Disabled by default (Redis internal; hidden in COMMAND).
pub const PROTECTED: u32 = 1 << 15;
/// Refused during asynchronous loading.
pub const NO_ASYNC_LOADING: u32 = 1 << 16;
/// Not allowed inside MULTI.
pub const NO_MULTI: u32 = 1 << 17;
/// Key positions depend on the arguments.
pub const MOVABLE_KEYS: u32 = 1 << 18;
/// Allowed while a script is busy.
pub const ALLOW_BUSY: u32 = 1 << 19;
/// polis only: handled by the node (connection, server and cluster
/// commands), not by this crate's `parse`/`execute`.
pub const NODE: u32 = 1 << 31;

/// The flags COMMAND INFO shows, in Redis's order, with their names.
const FLAG_NAMES: &[(u32, &str)] = &[
    (WRITE, "write"),
    (READONLY, "readonly"),
    (DENYOOM, "denyoom"),
    (ADMIN, "admin"),
    (PUBSUB, "pubsub"),
    (NOSCRIPT, "noscript"),
    (BLOCKING, "blocking"),
    (LOADING, "loading"),
    (STALE, "stale"),
    (SKIP_MONITOR, "skip_monitor"),
    (SKIP_SLOWLOG, "skip_slowlog"),
    (FAST, "fast"),
    (NO_AUTH, "no_auth"),
    (NO_MANDATORY_KEYS, "no_mandatory_keys"),
    (NO_ASYNC_LOADING, "no_async_loading"),
    (NO_MULTI, "no_multi"),
    (MOVABLE_KEYS, "movablekeys"),
    (ALLOW_BUSY, "allow_busy"),
];

/// ACL categories in the order Redis lists them.
const ACL_CATEGORY_ORDER: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
    // polis's own: LOCK and FENCED.
    "lock",
];

/// What Redis 7.0 declares about one command (or one subcommand of a
/// container command such as OBJECT or CONFIG).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// Lowercase name; a subcommand is `container|sub` (`object|encoding`).
    pub name: &'static str,
    /// Redis convention: `n` means exactly n arguments including the name,
    /// `-n` at least n.
    pub arity: i32,
    /// Bit set of the flag constants of this module.
    pub flags: u32,
    /// Position of the first key (0: no keys).
    pub first_key: i32,
    /// Position of the last key; negative counts from the end (-1: last).
    pub last_key: i32,
    /// Distance between keys.
    pub step: i32,
    /// ACL categories declared explicitly (the implicit ones follow from
    /// the flags; see [`acl_categories`]).
    pub acl_categories: &'static [&'static str],
    /// Command tips (`nondeterministic_output`, `request_policy:...`).
    pub tips: &'static [&'static str],
    /// Documentation group (`string`, `generic`, `hash`, `server`, ...).
    pub group: &'static str,
    /// Redis version that introduced the command.
    pub since: &'static str,
    /// Subcommands of a container command, empty otherwise.
    pub subcommands: &'static [CommandSpec],
}

/// Builds a [`CommandSpec`] on one line of the table.
macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, [$first:expr, $last:expr, $step:expr],
     $acl:expr, $tips:expr, $group:literal, $since:literal $(, $subs:expr)?) => {
        $crate::spec::CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            step: $step,
            acl_categories: $acl,
            tips: $tips,
            group: $group,
            since: $since,
            subcommands: spec!(@subs $($subs)?),
        }
    };
    (@subs) => { &[] };
    (@subs $subs:expr) => { $subs };
}
pub(crate) use spec;

impl CommandSpec {
    /// Returns true when every flag of `flags` is set.
    pub fn has(&self, flags: u32) -> bool {
        self.flags & flags == flags
    }

    /// Returns the subcommand named `name` (case-insensitive, without the
    /// container prefix).
    pub fn subcommand(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        self.subcommands.iter().find(|sub| {
            let short = sub.name.rsplit('|').next().unwrap_or(sub.name);
            short.as_bytes().eq_ignore_ascii_case(name)
        })
    }

    /// Returns the name as Redis quotes it in errors: the full name of a
    /// subcommand (`object|encoding`).
    pub fn full_name(&self) -> &'static str {
        self.name
    }
}

/// The longest command name of the table, with room to spare: a longer
/// name is no command.
const NAME_LEN_MAX: usize = 64;

/// The table by lowercase name, built on first use: every request looks
/// its command up, several times on its way (routing, logging, stats).
static BY_NAME: std::sync::LazyLock<HashMap<&'static [u8], &'static CommandSpec>> =
    std::sync::LazyLock::new(|| {
        COMMANDS
            .iter()
            .map(|spec| (spec.name.as_bytes(), spec))
            .collect()
    });

/// Returns the spec of the command named `name` (case-insensitive).
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    if name.len() > NAME_LEN_MAX {
        return None;
    }
    let mut lower = [0u8; NAME_LEN_MAX];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    BY_NAME.get(&*lower).copied()
}

/// Returns every top-level command spec.
pub fn all_commands() -> &'static [CommandSpec] {
    COMMANDS
}

/// Returns the spec that governs `args`: the command's, or for a container
/// command with a known subcommand in `args[1]`, the subcommand's.
pub fn resolve(spec: &'static CommandSpec, args: &[Bytes]) -> &'static CommandSpec {
    if spec.subcommands.is_empty() {
        return spec;
    }
    args.get(1)
        .and_then(|name| spec.subcommand(name))
        .unwrap_or(spec)
}

/// Returns true when the command goes through the write path (Raft log).
pub fn is_write(spec: &CommandSpec) -> bool {
    spec.has(WRITE)
}

/// Returns true when the node, not this crate, executes the command.
pub fn is_node(spec: &CommandSpec) -> bool {
    spec.has(NODE)
}

/// Checks `args` (name included) against the arity of `spec` and, for a
/// container command, of its subcommand.
///
/// # Errors
/// `ERR wrong number of arguments for '<name>' command`, or for a container
/// `ERR unknown subcommand '<sub>'. Try <NAME> HELP.`
pub fn check_arity(spec: &'static CommandSpec, args: &[Bytes]) -> Result<(), ReplyError> {
    arity_matches(spec, args.len())?;
    if spec.subcommands.is_empty() {
        return Ok(());
    }
    let Some(sub_name) = args.get(1) else {
        // A container that also runs bare (COMMAND) passed its own arity.
        if spec.arity == -1 {
            return Ok(());
        }
        return Err(ReplyError::WrongArity(spec.name.to_owned()));
    };
    let Some(sub) = spec.subcommand(sub_name) else {
        return Err(ReplyError::err(format!(
            "unknown subcommand '{}'. Try {} HELP.",
            truncate_lossy(sub_name, 128),
            spec.name.to_ascii_uppercase()
        )));
    };
    arity_matches(sub, args.len())
}

fn arity_matches(spec: &CommandSpec, argc: usize) -> Result<(), ReplyError> {
    let argc = i64::try_from(argc).unwrap_or(i64::MAX);
    let arity = i64::from(spec.arity);
    let ok = if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    };
    if ok {
        Ok(())
    } else {
        Err(ReplyError::WrongArity(spec.name.to_owned()))
    }
}

/// Returns the keys of `args` (name included) by the positions of `spec`
/// (or of its subcommand): used for slot routing, CROSSSLOT checks and
/// COMMAND GETKEYS. Positions past the end are ignored, so a request with
/// a bad arity yields fewer keys rather than a panic.
pub fn command_keys(spec: &'static CommandSpec, args: &[Bytes]) -> Vec<Bytes> {
    let spec = resolve(spec, args);
    if let Some(keys) = movable_keys(spec.name, args) {
        return keys;
    }
    if spec.first_key <= 0 || spec.step <= 0 {
        return Vec::new();
    }
    let argc = args.len() as i64;
    let first = i64::from(spec.first_key);
    let last = if spec.last_key < 0 {
        argc + i64::from(spec.last_key)
    } else {
        i64::from(spec.last_key)
    };
    let step = i64::from(spec.step);
    let mut keys = Vec::new();
    let mut position = first;
    // Bounded by argc: position grows by step >= 1 each round.
    while position <= last && position < argc {
        if let Some(key) = usize::try_from(position)
            .ok()
            .and_then(|index| args.get(index))
        {
            keys.push(key.clone());
        }
        position += step;
    }
    keys
}

/// Returns true for a command whose keys [`command_keys`] finds from a
/// key count or `STREAMS` rather than fixed positions.
pub fn has_movable_keys(name: &str) -> bool {
    movable_keys(name, &[]).is_some()
}

/// Returns the keys of a command whose keys move with its arguments
/// (Redis's `movablekeys`): a key count before the keys, the keys after
/// `STREAMS`, or FENCED's lock and the keys of the command it guards.
/// None for every other command. A malformed request yields the keys it
/// has; the command's parser then refuses it.
fn movable_keys(name: &str, args: &[Bytes]) -> Option<Vec<Bytes>> {
    // `numkeys` at `at`, the keys right after it.
    let counted = |at: usize| -> Vec<Bytes> {
        let count = args
            .get(at)
            .and_then(|count| std::str::from_utf8(count).ok())
            .and_then(|count| count.parse::<usize>().ok())
            .unwrap_or(0);
        args.iter().skip(at + 1).take(count).cloned().collect()
    };
    let keys = match name {
        "zunion" | "zinter" | "zdiff" | "sintercard" | "zintercard" | "lmpop" | "zmpop" => {
            counted(1)
        }
        "blmpop" | "bzmpop" => counted(2),
        "zunionstore" | "zinterstore" | "zdiffstore" => {
            let mut keys: Vec<Bytes> = args.get(1).cloned().into_iter().collect();
            keys.extend(counted(2));
            keys
        }
        "xread" | "xreadgroup" => {
            match args
                .iter()
                .position(|arg| arg.eq_ignore_ascii_case(b"streams"))
            {
                Some(streams) => {
                    let rest = &args[streams + 1..];
                    rest[..rest.len() / 2].to_vec()
                }
                None => Vec::new(),
            }
        }
        "fenced" => {
            let mut keys: Vec<Bytes> = args.get(1).cloned().into_iter().collect();
            // FENCED's parser refuses a nested FENCED; not looking into
            // one keeps this bounded.
            let inner = args.get(3..).unwrap_or_default();
            if let Some(spec) = inner.first().and_then(|name| lookup(name)) {
                if spec.name != "fenced" {
                    keys.extend(command_keys(spec, inner));
                }
            }
            keys
        }
        _ => return None,
    };
    Some(keys)
}

/// Returns the ACL category names (without `@`), in Redis's order.
pub fn acl_category_names() -> &'static [&'static str] {
    ACL_CATEGORY_ORDER
}

/// Returns the flag names COMMAND INFO shows for `spec`.
pub fn flag_names(spec: &CommandSpec) -> Vec<&'static str> {
    FLAG_NAMES
        .iter()
        .filter(|(flag, _)| spec.flags & flag != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// Returns the ACL categories (with `@`) COMMAND INFO shows for `spec`: the
/// declared ones plus those Redis derives from the flags, in Redis's order.
pub fn acl_categories(spec: &CommandSpec) -> Vec<String> {
    let mut categories: Vec<&str> = spec.acl_categories.to_vec();
    if spec.has(WRITE) {
        categories.push("write");
    }
    if spec.has(READONLY) && !spec.acl_categories.contains(&"scripting") {
        categories.push("read");
    }
    if spec.has(ADMIN) {
        categories.push("admin");
        categories.push("dangerous");
    }
    if spec.has(PUBSUB) {
        categories.push("pubsub");
    }
    if spec.has(FAST) {
        categories.push("fast");
    }
    if spec.has(BLOCKING) {
        categories.push("blocking");
    }
    if !categories.contains(&"fast") {
        categories.push("slow");
    }
    ACL_CATEGORY_ORDER
        .iter()
        .filter(|name| categories.contains(name))
        .map(|name| format!("@{name}"))
        .collect()
}

/// Returns at most `max` bytes of `bytes` as text, for error messages.
pub(crate) fn truncate_lossy(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

#[cfg(test)]
#[path = "spec_test.rs"]
mod tests;
