//! RESP2/RESP3 for polis: the reply model ([`Reply`], [`ReplyError`]),
//! request decoding (multibulk and inline, with limits) and reply encoding
//! for either protocol version.
//!
//! Must not depend on the command layer, storage or networking: it turns
//! bytes into requests and replies into bytes, nothing more.

pub mod reply;

pub use reply::{Reply, ReplyError};
