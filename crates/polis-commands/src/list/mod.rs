//! List commands (Redis's `t_list.c`).
//!
//! The blocking forms (BLPOP, BRPOP, BLMPOP, BLMOVE, BRPOPLPUSH) are
//! served by the node, which runs the non-blocking form once a key may
//! have data: [`pop_first`] pops from the first non-empty of several
//! lists (BLPOP, BRPOP, BLMPOP) and [`LMove`]'s `execute` moves one
//! element (BLMOVE, BRPOPLPUSH); both reply null when there is nothing
//! to take, which is the node's cue to keep waiting.

mod edit;
mod pop;
mod push;
mod read;

pub use edit::{LInsert, LRem, LSet, LTrim};
pub use pop::{pop_first, LMPop, LMove, Pop};
pub use push::Push;
pub use read::{LIndex, LLen, LPos, LRange};

use polis_resp::ReplyError;

use crate::args::is;

#[cfg(test)]
mod list_test;

/// An end of a list: `LEFT` is the head, `RIGHT` the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

impl End {
    /// Parses `LEFT` or `RIGHT` (any case), or a syntax error.
    ///
    /// # Errors
    /// `ERR syntax error` for any other word.
    pub fn parse(word: &[u8]) -> Result<Self, ReplyError> {
        if is(word, "left") {
            Ok(End::Left)
        } else if is(word, "right") {
            Ok(End::Right)
        } else {
            Err(ReplyError::Syntax)
        }
    }

    /// Returns Redis's key event for a push at this end.
    pub(crate) fn push_event(self) -> &'static str {
        match self {
            End::Left => "lpush",
            End::Right => "rpush",
        }
    }

    /// Returns Redis's key event for a pop from this end.
    pub(crate) fn pop_event(self) -> &'static str {
        match self {
            End::Left => "lpop",
            End::Right => "rpop",
        }
    }
}

/// Returns the position `index` names in a list of `len` elements
/// (negative counts from the tail), or None when it is out of range.
fn position(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let index = if index < 0 { len + index } else { index };
    if (0..len).contains(&index) {
        usize::try_from(index).ok()
    } else {
        None
    }
}

/// Returns the positions `start..=end` of a list of `len` elements after
/// Redis's conversion of negative indexes and clamping, or None when the
/// range is empty (LRANGE, LTRIM).
fn span(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).ok()?;
    let start = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    }
    .max(0);
    let end = if end < 0 {
        len.saturating_add(end)
    } else {
        end
    };
    if start > end || start >= len {
        return None;
    }
    let end = end.min(len - 1);
    Some((usize::try_from(start).ok()?, usize::try_from(end).ok()?))
}
