//! Reply encoding: a [`Reply`] in, RESP2 or RESP3 bytes out, with the
//! RESP2 degradations Redis 7.0 applies to RESP3-only shapes.
//!
//! The framing is written here rather than through `redis-protocol`'s
//! encoder, because its frame model does not fit the reply model:
//! - its RESP3 map is a `HashMap` (the `index-map` feature is off in the
//!   workspace), which loses the order of `HGETALL`/`HELLO`/`CONFIG GET`
//!   replies and requires hashable keys (a double key is not);
//! - its RESP2 frame has one null, so `*-1` cannot be expressed;
//! - it formats doubles its own way, not with Redis 7.0's `%.17g`;
//! - it writes simple strings and errors as given, `\r\n` included;
//! - it needs a whole intermediate frame tree per reply, where writing the
//!   prefixes directly into `out` needs none.
//!
//! The tests decode every encoding back with `redis-protocol`'s decoders,
//! so the library still checks the framing.

use bytes::{BufMut, BytesMut};

use crate::reply::Reply;

/// The protocol a connection speaks, chosen with `HELLO 2|3`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// RESP2, the default of every new connection.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

/// Appends `reply`, encoded for `version`, to `out`.
///
/// RESP2 receives RESP3-only shapes degraded as Redis 7.0 degrades them: a
/// map becomes a flat array of keys and values, a set an array, a double a
/// bulk string, a boolean the integer 1 or 0, a verbatim string a bulk
/// string of its text, a push a plain array, null `$-1` and the null array
/// `*-1` (RESP3 sends `_` for both). `\r` and `\n` in simple strings and errors become spaces, so
/// a message can never break the framing.
pub fn encode_reply(reply: &Reply, version: ProtocolVersion, out: &mut BytesMut) {
    let resp3 = version == ProtocolVersion::Resp3;
    match reply {
        Reply::Simple(text) => put_line(out, b'+', text.as_bytes()),
        Reply::Error(error) => put_line(out, b'-', error.render().as_bytes()),
        Reply::Integer(value) => put_header(out, b':', *value),
        Reply::Bulk(data) => put_bulk(out, data),
        Reply::Null if resp3 => out.put_slice(b"_\r\n"),
        Reply::Null => out.put_slice(b"$-1\r\n"),
        Reply::NullArray if resp3 => out.put_slice(b"_\r\n"),
        Reply::NullArray => out.put_slice(b"*-1\r\n"),
        Reply::Array(items) => {
            put_len_header(out, b'*', items.len());
            for item in items {
                encode_reply(item, version, out);
            }
        }
        Reply::Map(pairs) => {
            if resp3 {
                put_len_header(out, b'%', pairs.len());
            } else {
                put_len_header(out, b'*', pairs.len().saturating_mul(2));
            }
            for (key, value) in pairs {
                encode_reply(key, version, out);
                encode_reply(value, version, out);
            }
        }
        Reply::Push(items) => {
            put_len_header(out, if resp3 { b'>' } else { b'*' }, items.len());
            for item in items {
                encode_reply(item, version, out);
            }
        }
        Reply::Frames(frames) => {
            for frame in frames {
                encode_reply(frame, version, out);
            }
        }
        Reply::Set(items) => {
            put_len_header(out, if resp3 { b'~' } else { b'*' }, items.len());
            for item in items {
                encode_reply(item, version, out);
            }
        }
        Reply::Double(value) if resp3 => put_line(out, b',', format_double(*value).as_bytes()),
        Reply::Double(value) => put_bulk(out, format_double(*value).as_bytes()),
        Reply::Boolean(value) if resp3 => out.put_slice(if *value { b"#t\r\n" } else { b"#f\r\n" }),
        Reply::Boolean(value) => out.put_slice(if *value { b":1\r\n" } else { b":0\r\n" }),
        Reply::Verbatim { format, text } if resp3 => {
            // The format is exactly three bytes on the wire; any other
            // length is sent as plain text rather than as a malformed frame.
            let format = match format.as_bytes() {
                bytes @ [_, _, _] => bytes,
                _ => b"txt",
            };
            put_len_header(out, b'=', text.len().saturating_add(4));
            out.put_slice(format);
            out.put_u8(b':');
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
        Reply::Verbatim { text, .. } => put_bulk(out, text),
        Reply::Pairs(pairs) => {
            let flat = if resp3 {
                pairs.len()
            } else {
                pairs.len().saturating_mul(2)
            };
            put_len_header(out, b'*', flat);
            for (first, second) in pairs {
                if resp3 {
                    put_len_header(out, b'*', 2);
                }
                encode_reply(first, version, out);
                encode_reply(second, version, out);
            }
        }
    }
}

/// Formats a double as Redis 7.0's `addReplyDouble` does: C's `%.17g`
/// (17 significant digits, trailing zeros dropped, exponent form below
/// 1e-4 and from 1e17), with `inf`/`-inf` spelled out. NaN, which Redis
/// never replies with, is `nan`.
pub fn format_double(value: f64) -> String {
    const PRECISION: i32 = 17;
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // `{:.16e}` rounds the exact binary value to 17 significant digits,
    // as glibc's printf does: "-1.2345678901234568e17".
    let scientific = format!("{value:.16e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if mantissa.starts_with('-') { "-" } else { "" };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut text = String::with_capacity(32);
    text.push_str(sign);
    if !(-4..PRECISION).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        text.push_str(first);
        push_fraction(&mut text, rest);
        text.push('e');
        text.push(if exponent < 0 { '-' } else { '+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            text.push('0');
        }
        text.push_str(&magnitude.to_string());
    } else if exponent >= 0 {
        let split = usize::try_from(exponent + 1).unwrap_or(1).min(digits.len());
        let (integer, fraction) = digits.split_at(split);
        text.push_str(integer);
        push_fraction(&mut text, fraction);
    } else {
        let zeros = usize::try_from(-exponent - 1).unwrap_or(0);
        text.push('0');
        push_fraction(&mut text, &format!("{}{digits}", "0".repeat(zeros)));
    }
    text
}

/// Appends `.digits` without trailing zeros, or nothing when no nonzero
/// digit remains.
fn push_fraction(text: &mut String, digits: &str) {
    let digits = digits.trim_end_matches('0');
    if !digits.is_empty() {
        text.push('.');
        text.push_str(digits);
    }
}

/// Appends `<prefix><text>\r\n`, with `\r` and `\n` in `text` replaced by
/// spaces as Redis does for error and status lines.
fn put_line(out: &mut BytesMut, prefix: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(prefix);
    if text.iter().any(|&byte| byte == b'\r' || byte == b'\n') {
        for &byte in text {
            out.put_u8(if byte == b'\r' || byte == b'\n' {
                b' '
            } else {
                byte
            });
        }
    } else {
        out.put_slice(text);
    }
    out.put_slice(b"\r\n");
}

/// Appends `$<len>\r\n<data>\r\n`.
fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    put_len_header(out, b'$', data.len());
    out.reserve(data.len() + 2);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Appends `<prefix><len>\r\n` for a length.
fn put_len_header(out: &mut BytesMut, prefix: u8, len: usize) {
    put_header(out, prefix, i64::try_from(len).unwrap_or(i64::MAX));
}

/// Appends `<prefix><value>\r\n` in decimal.
fn put_header(out: &mut BytesMut, prefix: u8, value: i64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut magnitude = value.unsigned_abs();
    loop {
        start -= 1;
        // The remainder is below 10, so the cast cannot truncate.
        digits[start] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    out.reserve(24);
    out.put_u8(prefix);
    if value < 0 {
        out.put_u8(b'-');
    }
    out.put_slice(&digits[start..]);
    out.put_slice(b"\r\n");
}

#[cfg(test)]
#[path = "encode_test.rs"]
mod tests;
