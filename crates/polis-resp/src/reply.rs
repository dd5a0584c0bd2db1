//! The reply model. Commands return a [`Reply`]; the connection encodes it
//! for the protocol version the client chose (`HELLO 2|3`).

use bytes::Bytes;
use polis_types::Slot;
use serde::{Deserialize, Serialize};

/// A reply value, independent of the protocol version.
///
/// RESP3-only shapes degrade for RESP2 clients the way Redis degrades them:
/// a map becomes a flat array, a set an array, a double a bulk string, a
/// boolean an integer, a push an array, null a null bulk string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// `+OK`-style status line.
    Simple(String),
    /// An error reply; the connection stays open.
    Error(ReplyError),
    Integer(i64),
    Bulk(Bytes),
    /// RESP2 `$-1`, RESP3 `_`.
    Null,
    /// RESP2 `*-1`, RESP3 `_`.
    NullArray,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Double(f64),
    Boolean(bool),
    /// RESP3 verbatim string (`=`), a bulk string for RESP2.
    Verbatim {
        format: String,
        text: Bytes,
    },
    /// Ordered pairs: two-element arrays for RESP3, one flat array for
    /// RESP2. For replies whose shape follows the protocol but that a
    /// write computes without knowing it (ZPOPMIN/ZPOPMAX with a count).
    /// Last in the enum so the serialized tags of the others stay put.
    Pairs(Vec<(Reply, Reply)>),
    /// Out-of-band data the server sends unasked (pub/sub messages and
    /// the (un)subscribe confirmations): RESP3 `>`, a plain array for
    /// RESP2. After `Pairs` so the serialized tags of the others stay put.
    Push(Vec<Reply>),
    /// Several whole replies to one request, written back to back with no
    /// header of their own: SUBSCRIBE with three channels answers three
    /// pushes. Meaningful only as a request's whole reply, never inside
    /// another reply. Last so the serialized tags of the others stay put.
    Frames(Vec<Reply>),
}

impl Reply {
    /// Returns `+OK`.
    pub fn ok() -> Self {
        Reply::Simple("OK".to_owned())
    }

    /// Returns a bulk string reply copied from `data`.
    pub fn bulk(data: impl AsRef<[u8]>) -> Self {
        Reply::Bulk(Bytes::copy_from_slice(data.as_ref()))
    }

    /// Returns true when this reply is an error.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Returns true when this reply is out-of-band data: a push, or frames
    /// that are all pushes. CLIENT REPLY OFF silences every other reply.
    pub fn is_push(&self) -> bool {
        match self {
            Reply::Push(_) => true,
            Reply::Frames(frames) => frames.iter().all(Reply::is_push),
            _ => false,
        }
    }
}

impl From<ReplyError> for Reply {
    fn from(error: ReplyError) -> Self {
        Reply::Error(error)
    }
}

/// Every client-visible error. [`ReplyError::render`] produces the exact
/// line Redis sends (without the leading `-` and trailing CRLF), because
/// clients parse these prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ReplyError {
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand { name: String, args: String },
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("MOVED {slot} {addr}")]
    Moved { slot: Slot, addr: String },
    #[error("ASK {slot} {addr}")]
    Ask { slot: Slot, addr: String },
    #[error("CROSSSLOT Keys in request don't hash to the same slot")]
    CrossSlot,
    #[error("CLUSTERDOWN {0}")]
    ClusterDown(String),
    #[error("TRYAGAIN {0}")]
    TryAgain(String),
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("NOPROTO unsupported protocol version")]
    NoProto,
    #[error("ERR Protocol error: {0}")]
    Protocol(String),
    /// Any other error: the full line, prefix included (`ERR ...`,
    /// `OOM ...`).
    #[error("{0}")]
    Other(String),
    /// A fencing token that no longer holds its lock: nothing was
    /// applied. Last so the serialized tags of the others stay put.
    #[error("FENCED {0}")]
    Fenced(String),
}

impl ReplyError {
    /// Returns the error line as Redis sends it, without `-` and CRLF.
    pub fn render(&self) -> String {
        self.to_string()
    }

    /// Returns an `ERR <message>` error.
    pub fn err(message: impl std::fmt::Display) -> Self {
        ReplyError::Other(format!("ERR {message}"))
    }

    /// Returns the error's code: the first word of its line (`ERR`,
    /// `WRONGTYPE`, `MOVED`...), as counted in INFO `errorstats`.
    pub fn code(&self) -> String {
        let line = self.render();
        line.split(' ').next().unwrap_or("ERR").to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_as_redis_does() {
        let table = [
            (
                ReplyError::WrongArity("get".into()),
                "ERR wrong number of arguments for 'get' command",
            ),
            (
                ReplyError::WrongType,
                "WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
            (
                ReplyError::Moved {
                    slot: Slot::new(3999).unwrap(),
                    addr: "127.0.0.1:6381".into(),
                },
                "MOVED 3999 127.0.0.1:6381",
            ),
            (
                ReplyError::CrossSlot,
                "CROSSSLOT Keys in request don't hash to the same slot",
            ),
            (ReplyError::err("boom"), "ERR boom"),
            (
                ReplyError::Fenced("token 3 is not the current token of lock 'x'".into()),
                "FENCED token 3 is not the current token of lock 'x'",
            ),
        ];
        for (error, line) in table {
            assert_eq!(error.render(), line);
        }
        assert_eq!(ReplyError::WrongType.code(), "WRONGTYPE");
        assert_eq!(ReplyError::Fenced(String::new()).code(), "FENCED");
    }
}
