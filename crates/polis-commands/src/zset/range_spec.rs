//! What the sorted set commands share: score and lexicographic ranges as
//! Redis parses them (`zslParseRange`, `zslParseLexRange`), the walk over
//! the members such a range selects, and score replies.

use std::cmp::Ordering;
use std::ops::Bound;

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::ZSetValue;

/// A member and its score, borrowed from a sorted set.
pub type Scored<'a> = (&'a Bytes, f64);

/// Returns the reply for a score: a double (a bulk string of `%.17g` for
/// RESP2, as Redis's `addReplyDouble`).
pub fn score_reply(score: f64) -> Reply {
    Reply::Double(score)
}

/// Parses a float as C's `strtod` does over a whole argument: leading
/// white space allowed, nothing after the number, `inf` accepted, an
/// overflow is infinity; an empty text is 0 (strtod converts nothing and
/// stops at the end). NaN is refused.
pub fn parse_strtod(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    if text.is_empty() {
        return Some(0.0);
    }
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\u{b}', '\u{c}', '\r']);
    let value: f64 = trimmed.parse().ok()?;
    (!value.is_nan()).then_some(value)
}

/// A score interval: `min` and `max`, each inclusive or exclusive (`(`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub min_exclusive: bool,
    pub max_exclusive: bool,
}

impl ScoreRange {
    /// Parses `min` and `max`, or `ERR min or max is not a float`.
    pub fn parse(min: &[u8], max: &[u8]) -> Result<Self, ReplyError> {
        let bound = |text: &[u8]| -> Option<(f64, bool)> {
            match text.strip_prefix(b"(") {
                Some(rest) => parse_strtod(rest).map(|value| (value, true)),
                None => parse_strtod(text).map(|value| (value, false)),
            }
        };
        let error = || ReplyError::err("min or max is not a float");
        let (min, min_exclusive) = bound(min).ok_or_else(error)?;
        let (max, max_exclusive) = bound(max).ok_or_else(error)?;
        Ok(Self {
            min,
            max,
            min_exclusive,
            max_exclusive,
        })
    }

    /// Returns true when `score` is not below the minimum.
    pub fn above_min(&self, score: f64) -> bool {
        if self.min_exclusive {
            score > self.min
        } else {
            score >= self.min
        }
    }

    /// Returns true when `score` is not above the maximum.
    pub fn below_max(&self, score: f64) -> bool {
        if self.max_exclusive {
            score < self.max
        } else {
            score <= self.max
        }
    }

    /// Returns the members in the range, ascending (or descending when
    /// `reverse`).
    pub fn members<'a>(
        &self,
        zset: &'a ZSetValue,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Scored<'a>> + 'a> {
        let bound = |value: f64, exclusive: bool| {
            if exclusive {
                Bound::Excluded(value)
            } else {
                Bound::Included(value)
            }
        };
        let items = zset.range_by_score(
            bound(self.min, self.min_exclusive),
            bound(self.max, self.max_exclusive),
        );
        if reverse {
            Box::new(items.rev())
        } else {
            Box::new(items)
        }
    }
}

/// One end of a lexicographic range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below every member.
    Lowest,
    /// `+`: above every member.
    Highest,
    /// `[member`.
    Included(Bytes),
    /// `(member`.
    Excluded(Bytes),
}

impl LexBound {
    fn parse(text: &Bytes) -> Option<Self> {
        match text.first() {
            Some(b'+') if text.len() == 1 => Some(Self::Highest),
            Some(b'-') if text.len() == 1 => Some(Self::Lowest),
            Some(b'[') => Some(Self::Included(text.slice(1..))),
            Some(b'(') => Some(Self::Excluded(text.slice(1..))),
            _ => None,
        }
    }

    /// Compares `member` with this bound's value (`-` and `+` below and
    /// above everything).
    fn compare(&self, member: &[u8]) -> Ordering {
        match self {
            Self::Lowest => Ordering::Greater,
            Self::Highest => Ordering::Less,
            Self::Included(value) | Self::Excluded(value) => member.cmp(value),
        }
    }

    fn is_exclusive(&self) -> bool {
        !matches!(self, Self::Included(_))
    }

    /// Returns this bound as a `(score, member)` key bound among members
    /// of `score`; None when it excludes every member (`+` as a minimum,
    /// `-` as a maximum).
    fn key_bound(&self, score: f64, as_min: bool) -> Option<Bound<(f64, &[u8])>> {
        match self {
            Self::Lowest if as_min => Some(Bound::Unbounded),
            Self::Highest if !as_min => Some(Bound::Unbounded),
            Self::Lowest | Self::Highest => None,
            Self::Included(value) => Some(Bound::Included((score, value.as_ref()))),
            Self::Excluded(value) => Some(Bound::Excluded((score, value.as_ref()))),
        }
    }
}

/// A lexicographic interval of members (`ZRANGEBYLEX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    /// Parses `min` and `max`, or `ERR min or max not valid string range
    /// item`.
    pub fn parse(min: &Bytes, max: &Bytes) -> Result<Self, ReplyError> {
        let error = || ReplyError::err("min or max not valid string range item");
        Ok(Self {
            min: LexBound::parse(min).ok_or_else(error)?,
            max: LexBound::parse(max).ok_or_else(error)?,
        })
    }

    /// Returns true when `member` is not below the minimum.
    pub fn above_min(&self, member: &[u8]) -> bool {
        match self.min.compare(member) {
            Ordering::Greater => true,
            Ordering::Equal => !self.min.is_exclusive(),
            Ordering::Less => false,
        }
    }

    /// Returns true when `member` is not above the maximum.
    pub fn below_max(&self, member: &[u8]) -> bool {
        match self.max.compare(member) {
            Ordering::Less => true,
            Ordering::Equal => !self.max.is_exclusive(),
            Ordering::Greater => false,
        }
    }

    /// Returns the members in the range, ascending (or descending when
    /// `reverse`). Redis defines lexicographic ranges for members of one
    /// score; then the range is found in O(log n). With mixed scores the
    /// walk follows Redis's: from the first member (in score order) past
    /// the start bound while members stay within the other bound.
    pub fn members<'a>(
        &'a self,
        zset: &'a ZSetValue,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Scored<'a>> + 'a> {
        let first = zset.iter().next().map(|(_, score)| score);
        let last = zset.iter().next_back().map(|(_, score)| score);
        if let (Some(first), Some(last)) = (first, last) {
            if first == last {
                let (Some(low), Some(high)) = (
                    self.min.key_bound(first, true),
                    self.max.key_bound(first, false),
                ) else {
                    return Box::new(std::iter::empty());
                };
                let items = zset.range_by_key(low, high);
                return if reverse {
                    Box::new(items.rev())
                } else {
                    Box::new(items)
                };
            }
        }
        if reverse {
            Box::new(
                zset.iter()
                    .rev()
                    .skip_while(|(member, _)| !self.below_max(member))
                    .take_while(|(member, _)| self.above_min(member)),
            )
        } else {
            Box::new(
                zset.iter()
                    .skip_while(|(member, _)| !self.above_min(member))
                    .take_while(|(member, _)| self.below_max(member)),
            )
        }
    }
}

/// Formats a score as Redis's `d2string` (ZSCAN, listpack entries): an
/// integral value in the `long long` range as an integer, otherwise
/// `%.17g`.
pub fn score_text(score: f64) -> String {
    // Below 2^53 every integral double converts exactly.
    const EXACT_INTEGER_MAX: f64 = 9_007_199_254_740_992.0;
    if score == 0.0 {
        return "0".to_owned();
    }
    if score.fract() == 0.0 && score.abs() < EXACT_INTEGER_MAX {
        return format!("{}", score as i64);
    }
    polis_resp::format_double(score)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_accepts_what_c_accepts() {
        let table: &[(&[u8], Option<f64>)] = &[
            (b"1.5", Some(1.5)),
            (b"", Some(0.0)),
            (b" 2", Some(2.0)),
            (b"2 ", None),
            (b"-inf", Some(f64::NEG_INFINITY)),
            (b"+inf", Some(f64::INFINITY)),
            (b"1e400", Some(f64::INFINITY)),
            (b"nan", None),
            (b"abc", None),
        ];
        for (text, expected) in table {
            assert_eq!(parse_strtod(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn ranges_parse_like_redis() {
        let range = ScoreRange::parse(b"(1", b"+inf").unwrap();
        assert!(range.min_exclusive && !range.max_exclusive);
        assert!(!range.above_min(1.0) && range.above_min(1.5));
        assert!(ScoreRange::parse(b"a", b"1").is_err());
        assert!(ScoreRange::parse(b"(", b"1").is_ok());
        let lex = LexRange::parse(&Bytes::from("[a"), &Bytes::from("(c")).unwrap();
        assert!(lex.above_min(b"a") && lex.below_max(b"b") && !lex.below_max(b"c"));
        assert!(LexRange::parse(&Bytes::from("a"), &Bytes::from("+")).is_err());
        assert!(LexRange::parse(&Bytes::from("-x"), &Bytes::from("+")).is_err());
    }

    #[test]
    fn score_text_is_d2string() {
        assert_eq!(score_text(1.0), "1");
        assert_eq!(score_text(-0.0), "0");
        assert_eq!(score_text(1.5), "1.5");
        assert_eq!(score_text(f64::INFINITY), "inf");
        assert_eq!(score_text(0.1), "0.10000000000000001");
    }
}
