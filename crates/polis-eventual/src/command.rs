//! The commands offered on eventual keys, executed on their states.
//!
//! The coordinator gathers the states of a command's keys (its own,
//! merged with what the replicas it asked sent), runs the command here,
//! and, for a write, replicates the states the command changed. Replies
//! are Redis's. Commands whose meaning needs one order of all writes
//! (lists, streams, APPEND, GETSET...) are not offered: [`offered`] says
//! so, and the node answers with what to do instead.

use std::collections::BTreeMap;

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_types::NodeId;

use crate::hlc::Version;
use crate::merge::Register;
use crate::value::{CountError, KeyState, Kind};

/// What a command runs with.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// Who counts and adds: the node and its incarnation (see
    /// [`actor`]).
    pub actor: NodeId,
    /// The version of this command's writes.
    pub version: Version,
    /// The coordinator's wall clock, for deadlines.
    pub now_ms: u64,
}

/// Returns the actor of `node` in `incarnation` and actor `epoch`: the id
/// its counts and adds are made under.
///
/// A counter keeps one running total per actor, and an add-wins set one
/// sequence of adds per actor, merged by taking the larger: an actor must
/// never write from a copy that lacks its own earlier writes, or the
/// merge would hide the new ones. A node takes a new epoch every time it
/// starts (a crash may have lost writes it had not yet made durable but
/// had already shown to a peer) and every time it forgets keys (a purge or
/// a hand-off), and a new incarnation when its data was wiped; each gives
/// a new actor. The three are mixed into 64 bits (a collision between two
/// actors is as likely as one of two random 64-bit numbers).
pub fn actor(node: NodeId, incarnation: u64, epoch: u64) -> NodeId {
    let mut mixed = node.get();
    for part in [incarnation, epoch] {
        mixed = splitmix64(mixed ^ splitmix64(part));
    }
    NodeId(mixed)
}

fn splitmix64(state: u64) -> u64 {
    let mut mixed = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    mixed ^ (mixed >> 31)
}

/// The states of a command's keys, by key (a key never written is the
/// default, empty state).
pub type States = BTreeMap<Bytes, KeyState>;

/// Whether a command is offered on eventual keys, and if so whether it
/// writes.
pub fn offered(name: &str) -> Option<bool> {
    let write = match name {
        "get" | "mget" | "strlen" | "exists" | "type" | "ttl" | "pttl" | "smembers"
        | "sismember" | "smismember" | "scard" | "hget" | "hmget" | "hgetall" | "hlen"
        | "hexists" | "hkeys" | "hvals" => false,
        "set" | "setex" | "psetex" | "mset" | "del" | "unlink" | "incr" | "decr" | "incrby"
        | "decrby" | "sadd" | "srem" | "hset" | "hmset" | "hdel" | "expire" | "pexpire"
        | "persist" => true,
        _ => return None,
    };
    Some(write)
}

/// The refusal of a command that is not offered on eventual keys.
pub fn not_offered(name: &str, prefix: &[u8]) -> ReplyError {
    ReplyError::err(format!(
        "'{name}' is not offered on eventual keys (namespace '{}'): it needs one order of \
         all writes; use a key outside eventual namespaces (strong), or the string, counter, \
         set and hash commands",
        String::from_utf8_lossy(prefix)
    ))
}

fn bulk(bytes: &Bytes) -> Reply {
    Reply::Bulk(bytes.clone())
}

fn integer(arg: &Bytes) -> Result<i64, ReplyError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(ReplyError::NotInteger)
}

/// Runs `args` (name lower-cased first) on `states`, which holds every
/// key the command names.
pub fn execute(args: &[Bytes], ctx: &Ctx, states: &mut States) -> Reply {
    match run(args, ctx, states) {
        Ok(reply) => reply,
        Err(error) => Reply::Error(error),
    }
}

fn state<'a>(states: &'a mut States, key: &Bytes) -> &'a mut KeyState {
    states.entry(key.clone()).or_default()
}

/// Returns whether `state` shows `kind` at `now`: false when it holds
/// nothing; WRONGTYPE when it shows another type.
fn shows(state: &KeyState, kind: Kind, now_ms: u64) -> Result<bool, ReplyError> {
    match state.live_kind(now_ms) {
        None => Ok(false),
        Some(shown) if shown == kind => Ok(true),
        Some(_) => Err(ReplyError::WrongType),
    }
}

/// Returns the state of `key` when it shows `kind` at `now`; None when
/// it holds nothing; WRONGTYPE when it shows another type.
fn shown<'a>(
    states: &'a States,
    key: &Bytes,
    kind: Kind,
    now_ms: u64,
) -> Result<Option<&'a KeyState>, ReplyError> {
    match states.get(key) {
        Some(state) if shows(state, kind, now_ms)? => Ok(Some(state)),
        _ => Ok(None),
    }
}

fn run(args: &[Bytes], ctx: &Ctx, states: &mut States) -> Result<Reply, ReplyError> {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let now = ctx.now_ms;
    let rest = &args[1..];
    match name.as_str() {
        "get" => Ok(match shown(states, &rest[0], Kind::String, now)? {
            Some(state) => state.string.state.value().map_or(Reply::Null, Reply::Bulk),
            None => Reply::Null,
        }),
        "mget" => Ok(Reply::Array(
            rest.iter()
                .map(|key| match shown(states, key, Kind::String, now) {
                    Ok(Some(state)) => state.string.state.value().map_or(Reply::Null, Reply::Bulk),
                    _ => Reply::Null,
                })
                .collect(),
        )),
        "strlen" => Ok(Reply::Integer(
            shown(states, &rest[0], Kind::String, now)?
                .and_then(|state| state.string.state.value())
                .map_or(0, |value| value.len() as i64),
        )),
        "exists" => Ok(Reply::Integer(
            rest.iter()
                .filter(|key| {
                    states
                        .get(*key)
                        .is_some_and(|state| state.live_kind(now).is_some())
                })
                .count() as i64,
        )),
        "type" => Ok(Reply::Simple(
            states
                .get(&rest[0])
                .and_then(|state| state.live_kind(now))
                .map_or("none", Kind::name)
                .to_owned(),
        )),
        "ttl" | "pttl" => Ok(Reply::Integer(ttl(states, &rest[0], now, name == "ttl"))),
        "set" => set(rest, ctx, states),
        "setex" | "psetex" => {
            let amount = integer(&rest[1])?;
            let unit = if name == "setex" { 1000 } else { 1 };
            let deadline = deadline(amount, unit, now, &name)?;
            write_string(states, &rest[0], rest[2].clone(), Some(deadline), ctx);
            Ok(Reply::ok())
        }
        "mset" => {
            if !rest.len().is_multiple_of(2) {
                return Err(ReplyError::WrongArity(name));
            }
            for pair in rest.chunks(2) {
                write_string(states, &pair[0], pair[1].clone(), None, ctx);
            }
            Ok(Reply::ok())
        }
        "del" | "unlink" => {
            let mut removed = 0;
            for key in rest {
                let state = state(states, key);
                if state.live_kind(now).is_some() {
                    removed += 1;
                }
                if !state.is_empty() {
                    state.clear(ctx.version);
                }
            }
            Ok(Reply::Integer(removed))
        }
        "incr" | "decr" | "incrby" | "decrby" => {
            let by = match name.as_str() {
                "incr" => 1,
                "decr" => -1,
                "incrby" => integer(&rest[1])?,
                _ => integer(&rest[1])?
                    .checked_neg()
                    .ok_or(ReplyError::Overflow)?,
            };
            let state = state(states, &rest[0]);
            let mut next = state.clone();
            if !next.prepare(Kind::String, ctx.version, now, ctx.actor, false) {
                return Err(ReplyError::WrongType);
            }
            let value = next
                .string
                .state
                .add(ctx.actor, by)
                .map_err(|error| match error {
                    CountError::NotAnInteger => ReplyError::NotInteger,
                    CountError::Overflow => ReplyError::Overflow,
                })?;
            *state = next;
            Ok(Reply::Integer(value))
        }
        "expire" | "pexpire" => {
            let amount = integer(&rest[1])?;
            if rest.len() > 2 {
                return Err(ReplyError::err(format!(
                    "the {} options NX, XX, GT and LT are not offered on eventual keys",
                    name.to_ascii_uppercase()
                )));
            }
            let unit = if name == "expire" { 1000 } else { 1 };
            let state = state(states, &rest[0]);
            if state.live_kind(now).is_none() {
                return Ok(Reply::Integer(0));
            }
            let deadline = amount
                .checked_mul(unit)
                .and_then(|ms| i64::try_from(now).ok()?.checked_add(ms))
                .ok_or_else(|| {
                    ReplyError::err(format!("invalid expire time in '{name}' command"))
                })?;
            if deadline <= now as i64 {
                state.clear(ctx.version);
            } else {
                state.expiry.set(ctx.actor, Some(deadline as u64));
            }
            Ok(Reply::Integer(1))
        }
        "persist" => {
            let state = state(states, &rest[0]);
            if state.live_kind(now).is_none() || state.expiry.deadline().is_none() {
                return Ok(Reply::Integer(0));
            }
            state.expiry.set(ctx.actor, None);
            Ok(Reply::Integer(1))
        }
        "srem" => {
            let state = state(states, &rest[0]);
            if !shows(state, Kind::Set, now)? {
                return Ok(Reply::Integer(0));
            }
            let removed = rest[1..]
                .iter()
                .filter(|member| state.set.state.remove(member))
                .count();
            Ok(Reply::Integer(removed as i64))
        }
        "sadd" => {
            let state = state(states, &rest[0]);
            let mut next = state.clone();
            if !next.prepare(Kind::Set, ctx.version, now, ctx.actor, false) {
                return Err(ReplyError::WrongType);
            }
            let mut added = 0;
            for member in &rest[1..] {
                if next.set.state.get(member).is_none() {
                    added += 1;
                }
                next.set.state.add(ctx.actor, member.clone(), ());
            }
            *state = next;
            Ok(Reply::Integer(added))
        }
        "smembers" => Ok(Reply::Set(
            shown(states, &rest[0], Kind::Set, now)?
                .map(|state| state.set.state.keys().map(bulk).collect())
                .unwrap_or_default(),
        )),
        "sismember" => Ok(Reply::Integer(i64::from(
            shown(states, &rest[0], Kind::Set, now)?
                .is_some_and(|state| state.set.state.get(&rest[1]).is_some()),
        ))),
        "smismember" => {
            let set = shown(states, &rest[0], Kind::Set, now)?;
            Ok(Reply::Array(
                rest[1..]
                    .iter()
                    .map(|member| {
                        Reply::Integer(i64::from(
                            set.is_some_and(|state| state.set.state.get(member).is_some()),
                        ))
                    })
                    .collect(),
            ))
        }
        "scard" => Ok(Reply::Integer(
            shown(states, &rest[0], Kind::Set, now)?
                .map_or(0, |state| state.set.state.len() as i64),
        )),
        "hset" | "hmset" => {
            if rest.len() < 3 || rest.len().is_multiple_of(2) {
                return Err(ReplyError::WrongArity(name));
            }
            let state = state(states, &rest[0]);
            let mut next = state.clone();
            if !next.prepare(Kind::Hash, ctx.version, now, ctx.actor, false) {
                return Err(ReplyError::WrongType);
            }
            let mut added = 0;
            for pair in rest[1..].chunks(2) {
                if next.hash.state.get(&pair[0]).is_none() {
                    added += 1;
                }
                let value = Register {
                    version: ctx.version,
                    value: Some(pair[1].clone()),
                };
                next.hash.state.add(ctx.actor, pair[0].clone(), value);
            }
            *state = next;
            Ok(if name == "hset" {
                Reply::Integer(added)
            } else {
                Reply::ok()
            })
        }
        "hdel" => {
            let state = state(states, &rest[0]);
            if !shows(state, Kind::Hash, now)? {
                return Ok(Reply::Integer(0));
            }
            let removed = rest[1..]
                .iter()
                .filter(|field| state.hash.state.remove(field))
                .count();
            Ok(Reply::Integer(removed as i64))
        }
        "hget" => Ok(shown(states, &rest[0], Kind::Hash, now)?
            .and_then(|state| field(state, &rest[1]))
            .map_or(Reply::Null, Reply::Bulk)),
        "hmget" => {
            let hash = shown(states, &rest[0], Kind::Hash, now)?;
            Ok(Reply::Array(
                rest[1..]
                    .iter()
                    .map(|name| {
                        hash.and_then(|state| field(state, name))
                            .map_or(Reply::Null, Reply::Bulk)
                    })
                    .collect(),
            ))
        }
        "hexists" => Ok(Reply::Integer(i64::from(
            shown(states, &rest[0], Kind::Hash, now)?
                .is_some_and(|state| field(state, &rest[1]).is_some()),
        ))),
        "hlen" => Ok(Reply::Integer(
            shown(states, &rest[0], Kind::Hash, now)?
                .map_or(0, |state| state.hash.state.len() as i64),
        )),
        "hgetall" | "hkeys" | "hvals" => {
            let fields: Vec<(Bytes, Bytes)> = shown(states, &rest[0], Kind::Hash, now)?
                .map(|state| {
                    state
                        .hash
                        .state
                        .keys()
                        .filter_map(|name| Some((name.clone(), field(state, name)?)))
                        .collect()
                })
                .unwrap_or_default();
            Ok(match name.as_str() {
                "hgetall" => Reply::Map(
                    fields
                        .iter()
                        .map(|(name, value)| (bulk(name), bulk(value)))
                        .collect(),
                ),
                "hkeys" => Reply::Array(fields.iter().map(|(name, _)| bulk(name)).collect()),
                _ => Reply::Array(fields.iter().map(|(_, value)| bulk(value)).collect()),
            })
        }
        _ => Err(ReplyError::err(format!(
            "'{name}' is not offered on eventual keys"
        ))),
    }
}

fn field(state: &KeyState, name: &Bytes) -> Option<Bytes> {
    state
        .hash
        .state
        .get(name)
        .and_then(|register| register.value)
}

fn ttl(states: &States, key: &Bytes, now: u64, seconds: bool) -> i64 {
    let Some(state) = states
        .get(key)
        .filter(|state| state.live_kind(now).is_some())
    else {
        return -2;
    };
    match state.expiry.deadline() {
        None => -1,
        Some(deadline) => {
            let ms = deadline.saturating_sub(now) as i64;
            if seconds {
                (ms + 500) / 1000
            } else {
                ms
            }
        }
    }
}

fn deadline(amount: i64, unit: i64, now: u64, name: &str) -> Result<u64, ReplyError> {
    if amount <= 0 {
        return Err(ReplyError::err(format!(
            "invalid expire time in '{name}' command"
        )));
    }
    amount
        .checked_mul(unit)
        .and_then(|ms| u64::try_from(ms).ok())
        .and_then(|ms| now.checked_add(ms))
        .ok_or_else(|| ReplyError::err(format!("invalid expire time in '{name}' command")))
}

fn write_string(states: &mut States, key: &Bytes, value: Bytes, deadline: Option<u64>, ctx: &Ctx) {
    let state = state(states, key);
    state.prepare(Kind::String, ctx.version, ctx.now_ms, ctx.actor, true);
    state.string.state.set(ctx.version, Some(value));
    state.expiry.set(ctx.actor, deadline);
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | KEEPTTL]
fn set(rest: &[Bytes], ctx: &Ctx, states: &mut States) -> Result<Reply, ReplyError> {
    let (key, value) = (&rest[0], rest[1].clone());
    let mut condition = None;
    let mut get = false;
    let mut expiry: Option<Option<u64>> = Some(None);
    let mut options = rest[2..].iter();
    while let Some(option) = options.next() {
        let option = String::from_utf8_lossy(option).to_ascii_lowercase();
        match option.as_str() {
            "nx" | "xx" if condition.is_none() => condition = Some(option),
            "get" => get = true,
            "keepttl" if expiry == Some(None) => expiry = None,
            "ex" | "px" if expiry == Some(None) => {
                let amount = integer(options.next().ok_or(ReplyError::Syntax)?)?;
                let unit = if option == "ex" { 1000 } else { 1 };
                expiry = Some(Some(deadline(amount, unit, ctx.now_ms, "set")?));
            }
            _ => return Err(ReplyError::Syntax),
        }
    }
    let previous = match shown(states, key, Kind::String, ctx.now_ms) {
        Ok(state) => state.and_then(|state| state.string.state.value()),
        Err(error) if get => return Err(error),
        Err(_) => None,
    };
    let exists = states
        .get(key)
        .is_some_and(|state| state.live_kind(ctx.now_ms).is_some());
    let allowed = match condition.as_deref() {
        Some("nx") => !exists,
        Some("xx") => exists,
        _ => true,
    };
    if allowed {
        let state = state(states, key);
        state.prepare(Kind::String, ctx.version, ctx.now_ms, ctx.actor, true);
        state.string.state.set(ctx.version, Some(value));
        // KEEPTTL leaves the deadline as it is (an expired key's was
        // dropped by `prepare`).
        if let Some(deadline) = expiry {
            state.expiry.set(ctx.actor, deadline);
        }
    }
    Ok(match (get, allowed) {
        (true, _) => previous.map_or(Reply::Null, Reply::Bulk),
        (false, true) => Reply::ok(),
        (false, false) => Reply::Null,
    })
}

#[cfg(test)]
#[path = "command_test.rs"]
mod tests;
