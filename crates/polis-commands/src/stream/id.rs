//! What the stream commands share: Redis's stream id syntax, the reply
//! shapes of ids and entries, the node limits, and the errors.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::stream::NodeLimits;
use polis_store::{Db, StreamId};

use crate::access::bulk;
use crate::args::parse_i64;

/// Longest id text Redis reads (its parse buffer is 128 bytes).
const ID_TEXT_LEN_MAX: usize = 127;

/// Returns Redis's error for a malformed id.
pub fn invalid_id() -> ReplyError {
    ReplyError::err("Invalid stream ID specified as stream command argument")
}

/// Parses an unsigned number as Redis's `string2ull`: `string2ll` when it
/// applies (refusing negatives), else C `strtoull` over the whole text
/// (leading spaces, a sign and leading zeros allowed; overflow refused).
pub fn parse_u64(text: &[u8]) -> Option<u64> {
    if let Some(value) = parse_i64(text) {
        return u64::try_from(value).ok();
    }
    let start = text
        .iter()
        .position(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))?;
    let rest = &text[start..];
    let (negative, digits) = match rest.split_first() {
        Some((b'-', digits)) => (true, digits),
        Some((b'+', digits)) => (false, digits),
        _ => (false, rest),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: u64 = 0;
    for &digit in digits {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// How an id argument was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedId {
    pub id: StreamId,
    /// False for the `<ms>-*` form (only where `allow_auto_seq`).
    pub seq_given: bool,
}

/// Parses an id as Redis's `streamGenericParseIDOrReply`: `-` and `+`
/// (unless `strict`), `<ms>` (sequence `missing_seq`), `<ms>-<seq>`, and
/// `<ms>-*` when `allow_auto_seq`.
pub fn parse_id_full(
    text: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_auto_seq: bool,
) -> Result<ParsedId, ReplyError> {
    if text.len() > ID_TEXT_LEN_MAX {
        return Err(invalid_id());
    }
    let given = |id| ParsedId {
        id,
        seq_given: true,
    };
    match text {
        b"-" | b"+" if strict => return Err(invalid_id()),
        b"-" => return Ok(given(StreamId::MIN)),
        b"+" => return Ok(given(StreamId::MAX)),
        _ => {}
    }
    // Redis reads up to a NUL, as C strings end there.
    let text = text.split(|byte| *byte == 0).next().unwrap_or_default();
    let (ms_text, seq_text) = match text.iter().position(|byte| *byte == b'-') {
        Some(dash) => (&text[..dash], Some(&text[dash + 1..])),
        None => (text, None),
    };
    let ms = parse_u64(ms_text).ok_or_else(invalid_id)?;
    match seq_text {
        Some(b"*") if allow_auto_seq => Ok(ParsedId {
            id: StreamId::new(ms, 0),
            seq_given: false,
        }),
        Some(seq_text) => {
            let seq = parse_u64(seq_text).ok_or_else(invalid_id)?;
            Ok(given(StreamId::new(ms, seq)))
        }
        None => Ok(given(StreamId::new(ms, missing_seq))),
    }
}

/// Parses an id where `-` and `+` are refused (Redis's strict form).
pub fn parse_strict_id(text: &[u8]) -> Result<StreamId, ReplyError> {
    parse_id_full(text, 0, true, false).map(|parsed| parsed.id)
}

/// Parses an id where `-` and `+` are accepted.
pub fn parse_id(text: &[u8], missing_seq: u64) -> Result<StreamId, ReplyError> {
    parse_id_full(text, missing_seq, false, false).map(|parsed| parsed.id)
}

/// Parses the start of a range: `(` excludes the id (then `-`/`+` are
/// refused, and the id after it is returned).
pub fn parse_range_start(text: &[u8]) -> Result<StreamId, ReplyError> {
    match text.strip_prefix(b"(").filter(|_| text.len() > 1) {
        Some(rest) => parse_id_full(rest, 0, true, false)?
            .id
            .next()
            .ok_or_else(|| ReplyError::err("invalid start ID for the interval")),
        None => parse_id(text, 0),
    }
}

/// Parses the end of a range: `(` excludes the id (the one before it is
/// returned); a bare `<ms>` ends at that millisecond's last sequence.
pub fn parse_range_end(text: &[u8]) -> Result<StreamId, ReplyError> {
    match text.strip_prefix(b"(").filter(|_| text.len() > 1) {
        Some(rest) => parse_id_full(rest, u64::MAX, true, false)?
            .id
            .prev()
            .ok_or_else(|| ReplyError::err("invalid end ID for the interval")),
        None => parse_id(text, u64::MAX),
    }
}

/// Returns an id as Redis replies it: a bulk `<ms>-<seq>`.
pub fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(Bytes::from(id.to_string()))
}

/// Returns an entry as Redis replies it: `[id, [field, value, ...]]`.
pub fn entry_reply(id: StreamId, fields: &[Bytes]) -> Reply {
    Reply::Array(vec![
        id_reply(id),
        Reply::Array(fields.iter().map(bulk).collect()),
    ])
}

/// Returns a bulk of static text (map keys of XINFO).
pub fn text(name: &str) -> Reply {
    Reply::bulk(name)
}

/// Returns the node sizes appends use.
///
/// Redis reads `stream-node-max-entries` and `stream-node-max-bytes` from
/// its configuration. polis has no such setting in the keyspace yet, so
/// every replica uses Redis's defaults (100 entries, 4096 bytes); when
/// the node replicates those settings, they are read here, once, and
/// every replica must see the same values at the same log index.
pub fn node_limits(_db: &Db) -> NodeLimits {
    NodeLimits::default()
}

/// Returns `NOGROUP No such key '<key>' or consumer group '<group>'` with
/// Redis's optional tail.
pub fn no_such_key_or_group(key: &[u8], group: &[u8], tail: &str) -> ReplyError {
    ReplyError::Other(format!(
        "NOGROUP No such key '{}' or consumer group '{}'{tail}",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

/// Returns `NOGROUP No such consumer group '<group>' for key name '<key>'`.
pub fn no_such_group(key: &[u8], group: &[u8]) -> ReplyError {
    ReplyError::Other(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(group),
        String::from_utf8_lossy(key)
    ))
}

/// Returns Redis's error for a bad subcommand option or count:
/// `ERR unknown subcommand or wrong number of arguments for '<sub>'. Try
/// <CMD> HELP.`
pub fn subcommand_syntax(args: &[Bytes]) -> ReplyError {
    let command = args
        .first()
        .map(|name| String::from_utf8_lossy(name).to_ascii_uppercase())
        .unwrap_or_default();
    let sub = args
        .get(1)
        .map(|sub| crate::spec::truncate_lossy(sub, 128))
        .unwrap_or_default();
    ReplyError::err(format!(
        "unknown subcommand or wrong number of arguments for '{sub}'. Try {command} HELP."
    ))
}

/// Returns Redis's HELP reply: a header, the lines, and HELP's own.
pub fn help_reply(command: &str, lines: &[&str]) -> Reply {
    let mut replies = vec![Reply::Simple(format!(
        "{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    replies.extend(lines.iter().map(|line| Reply::Simple((*line).to_owned())));
    replies.push(Reply::Simple("HELP".to_owned()));
    replies.push(Reply::Simple("    Print this help.".to_owned()));
    Reply::Array(replies)
}

/// Returns the integer argument, or `ERR <message>` when it is not one.
pub fn int_or(text: &[u8], message: &str) -> Result<i64, ReplyError> {
    parse_i64(text).ok_or_else(|| ReplyError::err(message))
}
