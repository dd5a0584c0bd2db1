//! LCS: the longest common subsequence of two strings, by the classic
//! dynamic-programming table, with Redis's LEN / IDX / MINMATCHLEN /
//! WITHMATCHLEN replies.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::{Db, Value};
use polis_types::limits::STRING_LEN_MAX;

use crate::args::{arg, int_arg, is};
use crate::command::{ReadCommand, ReadContext};

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`
#[derive(Debug, Clone, PartialEq)]
pub struct Lcs {
    pub key_a: Bytes,
    pub key_b: Bytes,
    pub len_only: bool,
    pub idx: bool,
    pub min_match_len: u64,
    pub with_match_len: bool,
}

impl ReadCommand for Lcs {
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError> {
        let mut lcs = Lcs {
            key_a: arg(args, 1)?.clone(),
            key_b: arg(args, 2)?.clone(),
            len_only: false,
            idx: false,
            min_match_len: 0,
            with_match_len: false,
        };
        let mut index = 3;
        // Bounded: index advances every round.
        while let Some(option) = args.get(index) {
            if is(option, "idx") {
                lcs.idx = true;
            } else if is(option, "len") {
                lcs.len_only = true;
            } else if is(option, "withmatchlen") {
                lcs.with_match_len = true;
            } else if is(option, "minmatchlen") && index + 1 < args.len() {
                let value = int_arg(&args[index + 1])?;
                lcs.min_match_len = u64::try_from(value).unwrap_or(0);
                index += 1;
            } else {
                return Err(ReplyError::Syntax);
            }
            index += 1;
        }
        if lcs.len_only && lcs.idx {
            return Err(ReplyError::err(
                "If you want both the length and indexes, please just use IDX.",
            ));
        }
        Ok(lcs)
    }

    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply {
        let read = |key: &[u8]| match db.get(key, ctx.now_ms) {
            None => Ok(Bytes::new()),
            Some(Value::String(bytes)) => Ok(bytes.clone()),
            Some(_) => Err(ReplyError::err(
                "The specified keys must contain string values",
            )),
        };
        let (a, b) = match (read(&self.key_a), read(&self.key_b)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(error), _) | (_, Err(error)) => return Reply::Error(error),
        };
        let cells = (a.len() as u64 + 1).saturating_mul(b.len() as u64 + 1);
        if cells.saturating_mul(4) > STRING_LEN_MAX {
            return Reply::Error(ReplyError::err(
                "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
            ));
        }
        let table = LcsTable::build(&a, &b);
        let total = table.at(a.len(), b.len());
        if self.len_only {
            return Reply::Integer(i64::from(total));
        }
        let (common, matches) = table.walk(&a, &b, self.min_match_len, self.with_match_len);
        if self.idx {
            Reply::Map(vec![
                (Reply::bulk("matches"), Reply::Array(matches)),
                (Reply::bulk("len"), Reply::Integer(i64::from(total))),
            ])
        } else {
            Reply::Bulk(Bytes::from(common))
        }
    }
}

/// `cell(i, j)` = LCS length of `a[..i]` and `b[..j]`.
struct LcsTable {
    width: usize,
    cells: Vec<u32>,
}

impl LcsTable {
    fn build(a: &[u8], b: &[u8]) -> Self {
        let width = b.len() + 1;
        let mut cells = vec![0u32; (a.len() + 1) * width];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                cells[i * width + j] = if a[i - 1] == b[j - 1] {
                    cells[(i - 1) * width + (j - 1)] + 1
                } else {
                    cells[(i - 1) * width + j].max(cells[i * width + (j - 1)])
                };
            }
        }
        Self { width, cells }
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.width + j]
    }

    /// Walks back from the end, returning the common subsequence and the
    /// matched ranges (last first, as Redis emits them).
    fn walk(&self, a: &[u8], b: &[u8], min_len: u64, with_len: bool) -> (Vec<u8>, Vec<Reply>) {
        let mut common = Vec::with_capacity(self.at(a.len(), b.len()) as usize);
        let mut matches = Vec::new();
        // The range being extended backwards: (a_start, a_end, b_start, b_end).
        let mut range: Option<(usize, usize, usize, usize)> = None;
        let (mut i, mut j) = (a.len(), b.len());
        // Bounded: i or j (or both) decrease every round.
        while i > 0 && j > 0 {
            let mut emit = false;
            if a[i - 1] == b[j - 1] {
                common.push(a[i - 1]);
                range = match range {
                    None => Some((i - 1, i - 1, j - 1, j - 1)),
                    Some((a_start, a_end, b_start, b_end)) if a_start == i && b_start == j => {
                        Some((i - 1, a_end, j - 1, b_end))
                    }
                    Some(other) => {
                        emit = true;
                        Some(other)
                    }
                };
                if matches!(range, Some((0, _, _, _)) | Some((_, _, 0, _))) {
                    emit = true;
                }
                i -= 1;
                j -= 1;
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                emit = range.is_some();
            }
            if emit {
                if let Some((a_start, a_end, b_start, b_end)) = range.take() {
                    let len = (a_end - a_start + 1) as u64;
                    if min_len == 0 || len >= min_len {
                        let span = |start: usize, end: usize| {
                            Reply::Array(vec![
                                Reply::Integer(start as i64),
                                Reply::Integer(end as i64),
                            ])
                        };
                        let mut entry = vec![span(a_start, a_end), span(b_start, b_end)];
                        if with_len {
                            entry.push(Reply::Integer(len as i64));
                        }
                        matches.push(Reply::Array(entry));
                    }
                }
            }
        }
        common.reverse();
        (common, matches)
    }
}
