//! Request decoding for a server: bytes from a client's socket in, one
//! [`Request`] (a command name and its arguments) out.
//!
//! Two request forms exist, told apart by the first byte, as in Redis:
//! - a multibulk request (`*<count>\r\n` then `count` bulk strings
//!   `$<len>\r\n<bytes>\r\n`), what every client library sends;
//! - an inline command, one line of space-separated words (what a human
//!   types into `telnet`), split into words as Redis's `sdssplitargs` does.
//!
//! Every declared length is checked against [`DecodeLimits`] as soon as its
//! header line is in the buffer, before a single byte of the payload is
//! waited for: `*99999999999\r\n` and `$600000000\r\n` fail at once. The
//! error texts are Redis 7.0's (`processMultibulkBuffer` and
//! `processInlineBuffer` in `networking.c`), because clients and the Redis
//! test suite match on them.
//!
//! [`decode_request`] keeps no state between calls: an incomplete frame is
//! scanned again from its start when more bytes arrive. A connection uses a
//! [`RequestDecoder`] instead, which resumes after the last argument it
//! checked, so a request's headers are scanned once however many reads it
//! takes. Payloads are skipped by length, never scanned.
//!
//! Where polis is stricter than Redis (on input no client sends):
//! - a header line must end in `\r\n`; Redis skips whatever byte follows the
//!   `\r`. A `\r` followed by anything else makes the count or length
//!   invalid.
//! - a bulk string must be followed by `\r\n`; Redis skips two bytes
//!   unchecked, silently truncating a mis-sized argument.
//! - an inline line longer than the limit is rejected even when its newline
//!   arrived in the same read (Redis only notices while the line is still
//!   unterminated), so the outcome never depends on how the bytes were split
//!   into reads.
//! - NUL is an ordinary byte; Redis's C string functions stop at it.

use bytes::{Buf, Bytes, BytesMut};
use polis_types::limits;
use redis_protocol::resp2::types::{BytesFrame, Resp2Frame};

use crate::inline;
use crate::reply::ReplyError;

/// Caps on what one request may declare or occupy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest bulk string (`proto-max-bulk-len`).
    pub bulk_len_max: u64,
    /// Largest number of arguments in one multibulk request.
    pub multibulk_len_max: u64,
    /// Longest inline command line, and longest `*<count>` / `$<len>`
    /// header line (Redis's `PROTO_INLINE_MAX_SIZE`).
    pub inline_len_max: usize,
    /// Most bytes a client may have buffered for one unfinished request
    /// (`client-query-buffer-limit`).
    pub query_buffer_len_max: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            bulk_len_max: limits::PROTO_MAX_BULK_LEN_DEFAULT,
            multibulk_len_max: limits::MULTIBULK_LEN_MAX,
            inline_len_max: limits::INLINE_LEN_MAX,
            query_buffer_len_max: limits::QUERY_BUFFER_LEN_MAX_DEFAULT,
        }
    }
}

/// One decoded request: the command name followed by its arguments.
///
/// `args` is empty for the requests Redis skips without a reply
/// (`*0\r\n`, `*-1\r\n`, a blank inline line); the caller ignores those.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The command name and its arguments, each a slice of the read buffer
    /// where no unescaping was needed.
    pub args: Vec<Bytes>,
}

impl Request {
    /// Returns true for a request with no words at all, which the caller
    /// skips without replying, as Redis does.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
}

/// A malformed or oversized request. The connection cannot be resynchronized
/// after one: the server replies with [`ReplyError::Protocol`] (see the
/// `From` impl) and closes it.
///
/// `Display` is the text Redis 7.0 puts after `ERR Protocol error: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// `*<count>` is not an integer or exceeds the multibulk limit.
    #[error("invalid multibulk length")]
    InvalidMultibulkLength,
    /// `$<len>` is not an integer, is negative or exceeds the bulk limit.
    #[error("invalid bulk length")]
    InvalidBulkLength,
    /// An element of a multibulk request is not a bulk string.
    #[error("expected '$', got '{}'", char::from(*.got))]
    ExpectedBulk {
        /// The byte found where `$` was expected.
        got: u8,
    },
    /// An inline line longer than the inline limit.
    #[error("too big inline request")]
    TooBigInlineRequest,
    /// A `*<count>` line longer than the inline limit.
    #[error("too big mbulk count string")]
    TooBigMultibulkCount,
    /// A `$<len>` line longer than the inline limit.
    #[error("too big bulk count string")]
    TooBigBulkCount,
    /// An inline line with an unterminated quote, or a closing quote not
    /// followed by a space.
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A bulk string not followed by `\r\n` (polis only; see the module
    /// docs).
    #[error("expected CRLF after bulk string")]
    BulkNotTerminated,
    /// The request being received needs more buffered bytes than the query
    /// buffer limit. Redis closes such a client without a reply (and logs
    /// "closing client that reached max query buffer length"); polis's
    /// server may do the same.
    #[error("query buffer limit reached ({len_required} bytes needed, {len_max} allowed)")]
    QueryBufferOverflow {
        /// Bytes the request needs buffered, as far as known.
        len_required: u64,
        /// The configured limit.
        len_max: u64,
    },
    /// The RESP codec disagreed with the header scan on a frame the scan
    /// accepted. Not reachable for any input unless one of the two has a
    /// bug; the fuzz target asserts it never happens.
    #[error("malformed multibulk request: {0}")]
    Codec(String),
}

impl From<ProtocolError> for ReplyError {
    fn from(error: ProtocolError) -> Self {
        ReplyError::Protocol(error.to_string())
    }
}

/// Decodes the first request in `buf` and removes its bytes from `buf`.
///
/// Returns `Ok(None)` when `buf` holds only part of a request; then nothing
/// is consumed and the caller reads more bytes and calls again. A request
/// with no words (see [`Request`]) is consumed and returned as an empty
/// [`Request`], so that `Ok(None)` always means "nothing consumed".
///
/// Bulk strings come out as zero-copy slices of `buf`'s storage.
///
/// This function remembers nothing between calls, so an unfinished request
/// is scanned from its start on every call; a connection should use a
/// [`RequestDecoder`], which resumes where the last call stopped.
///
/// # Errors
/// Returns a [`ProtocolError`] when the request is malformed or exceeds
/// `limits`; the connection must then be closed, since what follows in
/// `buf` cannot be framed. Errors are reported as soon as the offending
/// header line is complete, however the bytes were split into reads.
pub fn decode_request(
    buf: &mut BytesMut,
    limits: &DecodeLimits,
) -> Result<Option<Request>, ProtocolError> {
    RequestDecoder::new(*limits).decode(buf)
}

/// The request decoder of one connection: [`decode_request`] plus a memory
/// of how much of the unfinished multibulk request at the front of the
/// buffer has already been checked.
///
/// Without it, a request of a million small arguments arriving in a
/// thousand reads would have its headers scanned a thousand times (work
/// quadratic in the request size, which a client controls); with it every
/// header is scanned once. Header lines themselves (at most
/// [`DecodeLimits::inline_len_max`] bytes) are rescanned while incomplete,
/// as Redis does.
#[derive(Debug, Clone)]
pub struct RequestDecoder {
    limits: DecodeLimits,
    progress: Option<Progress>,
}

impl RequestDecoder {
    /// Returns a decoder enforcing `limits`.
    pub fn new(limits: DecodeLimits) -> Self {
        RequestDecoder {
            limits,
            progress: None,
        }
    }

    /// Returns the limits this decoder enforces.
    pub fn limits(&self) -> &DecodeLimits {
        &self.limits
    }

    /// Decodes the first request in `buf`, exactly as [`decode_request`]
    /// does, resuming the scan of an unfinished request where the previous
    /// call stopped.
    ///
    /// `buf` must be the same buffer on every call, consumed only by this
    /// decoder and otherwise only appended to, as a connection's read buffer
    /// is. (Breaking that cannot panic, but may decode garbage.)
    ///
    /// # Errors
    /// As [`decode_request`].
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        let progress = self.progress.take();
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let scan = if first == b'*' {
            scan_multibulk(buf, &self.limits, progress)?
        } else {
            inline::scan_inline(buf, self.limits.inline_len_max)?
        };
        match scan {
            Scan::Incomplete { progress } => {
                let len_buffered = len_u64(buf.len());
                if len_buffered > self.limits.query_buffer_len_max {
                    return Err(ProtocolError::QueryBufferOverflow {
                        len_required: len_buffered,
                        len_max: self.limits.query_buffer_len_max,
                    });
                }
                self.progress = progress;
                Ok(None)
            }
            Scan::Empty { len } => {
                buf.advance(len);
                Ok(Some(Request::default()))
            }
            Scan::Multibulk { len, count } => decode_multibulk(buf, len, count).map(Some),
            Scan::Inline { line_len, len } => inline::decode_inline(buf, line_len, len).map(Some),
        }
    }
}

/// How far the multibulk request at the front of the buffer has been
/// checked: its header and its first `scanned` arguments, up to `pos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    count: usize,
    scanned: usize,
    pos: usize,
}

/// What a scan of the front of the buffer found, without consuming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// More bytes are needed; a multibulk scan says how far it got.
    Incomplete { progress: Option<Progress> },
    /// A request with no words, `len` bytes long.
    Empty { len: usize },
    /// A complete multibulk request of `count` bulk strings, `len` bytes.
    Multibulk { len: usize, count: usize },
    /// A complete inline line: `line_len` bytes of words, `len` bytes with
    /// its line terminator.
    Inline { line_len: usize, len: usize },
}

/// Where a header line ends, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineEnd {
    /// The terminator byte is at this index.
    At(usize),
    /// No terminator yet, and the line is still within its limit.
    Incomplete,
    /// No terminator within `len_max` bytes: the line is too long.
    TooLong,
}

/// Finds `terminator` in `buf[start..]`, looking at most `len_max + 1`
/// bytes ahead, so a line of exactly `len_max` bytes is accepted and the
/// verdict is the same however the bytes were split into reads.
pub(crate) fn find_line_end(buf: &[u8], start: usize, terminator: u8, len_max: usize) -> LineEnd {
    let rest = buf.get(start..).unwrap_or_default();
    let window = &rest[..rest.len().min(len_max.saturating_add(1))];
    match window.iter().position(|&byte| byte == terminator) {
        Some(offset) => LineEnd::At(start + offset),
        None if rest.len() > len_max => LineEnd::TooLong,
        None => LineEnd::Incomplete,
    }
}

/// Parses a decimal integer as Redis's `string2ll` does: an optional `-`,
/// no `+`, no leading zeros, no spaces, no overflow.
pub(crate) fn parse_integer(digits: &[u8]) -> Option<i64> {
    let (negative, magnitude) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    match magnitude {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &byte in magnitude {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
    }
    if negative {
        // i64::MIN's magnitude is one more than i64::MAX.
        0i64.checked_sub_unsigned(value)
    } else {
        i64::try_from(value).ok()
    }
}

/// The two header lines of a multibulk request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    /// `*<count>\r\n`, once per request.
    Count,
    /// `$<len>\r\n`, once per argument.
    Bulk,
}

impl Header {
    fn too_long(self) -> ProtocolError {
        match self {
            Header::Count => ProtocolError::TooBigMultibulkCount,
            Header::Bulk => ProtocolError::TooBigBulkCount,
        }
    }

    fn invalid(self) -> ProtocolError {
        match self {
            Header::Count => ProtocolError::InvalidMultibulkLength,
            Header::Bulk => ProtocolError::InvalidBulkLength,
        }
    }
}

/// Reads the header line starting at `start` and returns its integer and
/// the index just past its `\r\n`, or `None` when the line is not complete.
///
/// Like Redis, the whole line is awaited before its type byte is judged,
/// so a too-long line is reported as such whatever its first byte.
fn read_header(
    buf: &[u8],
    start: usize,
    header: Header,
    len_max: usize,
) -> Result<Option<(i64, usize)>, ProtocolError> {
    let cr = match find_line_end(buf, start, b'\r', len_max) {
        LineEnd::At(index) => index,
        LineEnd::Incomplete => return Ok(None),
        LineEnd::TooLong => return Err(header.too_long()),
    };
    let Some(&after_cr) = buf.get(cr + 1) else {
        return Ok(None);
    };
    let type_byte = buf.get(start).copied().unwrap_or_default();
    if header == Header::Bulk && type_byte != b'$' {
        return Err(ProtocolError::ExpectedBulk { got: type_byte });
    }
    if after_cr != b'\n' {
        return Err(header.invalid());
    }
    let digits = buf.get(start + 1..cr).unwrap_or_default();
    let value = parse_integer(digits).ok_or(header.invalid())?;
    Ok(Some((value, cr + 2)))
}

/// Walks a multibulk frame's headers, checking every declared length
/// against `limits` as soon as its line is complete.
///
/// This pre-check exists because `redis-protocol`'s decoder enforces no
/// limits (it waits for any declared length, scans header lines to any
/// length), accepts a wider grammar than a request (nested arrays, simple
/// strings, integers, `+3`-style numbers) and reports none of Redis's
/// messages. Once this scan has found a complete, valid frame, the library
/// decodes it ([`decode_multibulk`]).
pub(crate) fn scan_multibulk(
    buf: &[u8],
    limits: &DecodeLimits,
    progress: Option<Progress>,
) -> Result<Scan, ProtocolError> {
    let mut state = match progress {
        Some(state) if state.pos <= buf.len() && state.scanned < state.count => state,
        _ => {
            let Some((count, pos)) = read_header(buf, 0, Header::Count, limits.inline_len_max)?
            else {
                return Ok(Scan::Incomplete { progress: None });
            };
            // Redis skips `*0` and any negative count, not only `*-1`.
            if count <= 0 {
                return Ok(Scan::Empty { len: pos });
            }
            let count = u64::try_from(count).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
            if count > limits.multibulk_len_max {
                return Err(ProtocolError::InvalidMultibulkLength);
            }
            let count =
                usize::try_from(count).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
            Progress {
                count,
                scanned: 0,
                pos,
            }
        }
    };
    // Every iteration moves `pos` forward or returns, so the loop is bounded
    // by the buffer, not by the declared count.
    let incomplete = |state| {
        Ok(Scan::Incomplete {
            progress: Some(state),
        })
    };
    while state.scanned < state.count {
        let Some((len, payload_start)) =
            read_header(buf, state.pos, Header::Bulk, limits.inline_len_max)?
        else {
            return incomplete(state);
        };
        let len = u64::try_from(len).map_err(|_| ProtocolError::InvalidBulkLength)?;
        if len > limits.bulk_len_max {
            return Err(ProtocolError::InvalidBulkLength);
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| payload_start.checked_add(len)?.checked_add(2))
            .ok_or(ProtocolError::InvalidBulkLength)?;
        // Fail now rather than after buffering a request that cannot fit.
        if len_u64(end) > limits.query_buffer_len_max {
            return Err(ProtocolError::QueryBufferOverflow {
                len_required: len_u64(end),
                len_max: limits.query_buffer_len_max,
            });
        }
        match buf.get(end - 2..end) {
            None => return incomplete(state),
            Some(b"\r\n") => {
                state.pos = end;
                state.scanned += 1;
            }
            Some(_) => return Err(ProtocolError::BulkNotTerminated),
        }
    }
    Ok(Scan::Multibulk {
        len: state.pos,
        count: state.count,
    })
}

/// Decodes the complete multibulk frame of `len` bytes at the front of
/// `buf` (validated by [`scan_multibulk`]) with `redis-protocol`, which
/// splits it off `buf` and hands out zero-copy slices.
fn decode_multibulk(
    buf: &mut BytesMut,
    len: usize,
    count: usize,
) -> Result<Request, ProtocolError> {
    let decoded = redis_protocol::resp2::decode::decode_bytes_mut(buf)
        .map_err(|error| ProtocolError::Codec(error.to_string()))?;
    let Some((frame, len_decoded, _frame_bytes)) = decoded else {
        return Err(ProtocolError::Codec(
            "complete frame reported incomplete".to_owned(),
        ));
    };
    if len_decoded != len {
        return Err(ProtocolError::Codec(format!(
            "frame length {len_decoded}, scanned {len}"
        )));
    }
    let BytesFrame::Array(elements) = frame else {
        return Err(ProtocolError::Codec("not an array".to_owned()));
    };
    if elements.len() != count {
        return Err(ProtocolError::Codec(format!(
            "{} elements, scanned {count}",
            elements.len()
        )));
    }
    let mut args = Vec::with_capacity(elements.len());
    for element in elements {
        match element {
            BytesFrame::BulkString(bytes) => args.push(bytes),
            other => {
                return Err(ProtocolError::Codec(format!(
                    "element of kind {:?}",
                    other.kind()
                )))
            }
        }
    }
    Ok(Request { args })
}

/// Converts a buffer length for comparison with a `u64` limit.
fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "decode_test.rs"]
mod tests;

#[cfg(test)]
#[path = "decode_random_test.rs"]
mod random_tests;
