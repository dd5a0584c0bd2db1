//! RESP2/RESP3 for polis: the reply model ([`Reply`], [`ReplyError`]),
//! request decoding (multibulk and inline, with limits) and reply encoding
//! for either protocol version.
//!
//! ```text
//!  socket bytes --RequestDecoder::decode--> Request { args }  (one per call)
//!                                               |
//!                                    command layer (not here)
//!                                               |
//!  socket bytes <------encode_reply--------- Reply  (RESP2 or RESP3)
//! ```
//!
//! - [`decode`]: [`decode_request`] (stateless) and [`RequestDecoder`] (one
//!   per connection, resumes an unfinished request) frame one request at a
//!   time, check every declared length against [`DecodeLimits`] before
//!   buffering, and fail with Redis 7.0's protocol error texts
//!   ([`ProtocolError`]). Multibulk frames are pre-checked here and decoded
//!   by `redis-protocol`.
//! - `inline` (private): inline commands split like Redis's
//!   `sdssplitargs`.
//! - [`encode`]: [`encode_reply`] writes a [`Reply`] for a
//!   [`ProtocolVersion`], degrading RESP3-only shapes for RESP2 clients.
//! - [`reply`]: the reply model shared by commands, gateway and tests.
//!
//! Must not depend on the command layer, storage or networking: it turns
//! bytes into requests and replies into bytes, nothing more.
//!
//! ```
//! use bytes::BytesMut;
//! use polis_resp::{decode_request, encode_reply, DecodeLimits, ProtocolVersion, Reply};
//!
//! let mut input = BytesMut::from(&b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n"[..]);
//! let limits = DecodeLimits::default();
//! let echo = decode_request(&mut input, &limits)?.expect("a complete request");
//! assert_eq!(echo.args, ["ECHO", "hi"]);
//! let ping = decode_request(&mut input, &limits)?.expect("a complete request");
//! assert_eq!(ping.args, ["PING"]);
//! assert_eq!(decode_request(&mut input, &limits)?, None);
//!
//! let mut output = BytesMut::new();
//! encode_reply(&Reply::Double(1.5), ProtocolVersion::Resp2, &mut output);
//! assert_eq!(&output[..], b"$3\r\n1.5\r\n");
//! # Ok::<(), polis_resp::ProtocolError>(())
//! ```

pub mod decode;
pub mod encode;
mod inline;
pub mod reply;

pub use decode::{decode_request, DecodeLimits, ProtocolError, Request, RequestDecoder};
pub use encode::{encode_reply, format_double, ProtocolVersion};
pub use reply::{Reply, ReplyError};
