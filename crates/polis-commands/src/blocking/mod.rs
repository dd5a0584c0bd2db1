//! The blocking commands as the command layer runs them: once, at once,
//! from what is there (null when nothing is), as Redis runs them inside
//! MULTI. Waiting is the node's (`polis_server::blocking`): it proposes
//! the same command again when its keys may have data, so each entry
//! that serves a waiter is the waiter's own command.

mod list;
mod zset;

pub use list::{BLMPop, BLMove, BPop};
pub use zset::BZPop;

use polis_resp::ReplyError;

/// Checks a blocking command's timeout in seconds (a float) as Redis
/// does; the node reads the value again when it waits.
///
/// # Errors
/// Redis's errors for a timeout that is not a float, is negative, or is
/// out of range.
pub fn check_timeout(text: &[u8]) -> Result<(), ReplyError> {
    let seconds = std::str::from_utf8(text)
        .ok()
        .and_then(|text| crate::args::parse_f64(text.as_bytes()))
        .filter(|seconds| seconds.is_finite())
        .ok_or_else(|| ReplyError::err("timeout is not a float or out of range"))?;
    if seconds < 0.0 {
        return Err(ReplyError::err("timeout is negative"));
    }
    // Redis refuses a deadline past what its millisecond clock holds.
    if seconds * 1000.0 > i64::MAX as f64 / 2.0 {
        return Err(ReplyError::err("timeout is out of range"));
    }
    Ok(())
}

#[cfg(test)]
mod blocking_test;
