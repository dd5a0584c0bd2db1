//! Stream commands (Redis's `t_stream.c`): the message queue of polis,
//! with the queue options it adds to consumer groups (`queue`).
//!
//! Every write here is applied on every replica, so everything it
//! derives comes from the log entry: ids of `XADD *` and `<ms>-*` from
//! `now_ms` and the stream's last id, delivery, idle and seen times from
//! `now_ms`, and approximate trims from the node boundaries recorded in
//! the stream value. Blocking reads (XREAD/XREADGROUP BLOCK) parse their
//! timeout but run here as non-blocking reads; the node waits when
//! nothing was served.

mod add;
mod claim;
mod group;
mod id;
mod info;
mod queue;
mod read;
mod read_group;

pub use add::{TrimArgs, XAdd, XDel, XLen, XSetId, XTrim};
pub use claim::{ClaimOptions, Delivery, PendingRange, XAutoClaim, XClaim, XPending};
pub use group::{XAck, XGroup, XGroupAction};
pub use info::{XInfo, XInfoAction};
pub use queue::{dead_letter_keys, uses_queue_extensions, OptionChanges, XNack};
pub use read::{parse_read_args, streams_reply_resp3, ReadArgs, XRange, XRead};
pub use read_group::XReadGroup;

#[cfg(test)]
mod queue_test;
#[cfg(test)]
mod stream_test;
