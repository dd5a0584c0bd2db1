//! Argument helpers: Redis's number syntax (`string2ll`, `strtold`), its
//! human float format, and option matching.

use bytes::Bytes;
use polis_resp::ReplyError;

/// Longest text `parse_i64` accepts (Redis's `LONG_STR_SIZE` minus one).
const I64_TEXT_LEN_MAX: usize = 20;
/// Longest text `parse_f64` accepts (Redis's `MAX_LONG_DOUBLE_CHARS`).
const FLOAT_TEXT_LEN_MAX: usize = 5 * 1024 - 1;
/// Digits after the point in the human float format (`%.17Lf`).
const FLOAT_FRACTION_DIGITS_MAX: usize = 17;

/// Parses a 64-bit integer exactly as Redis's `string2ll`: an optional
/// `-`, then digits with no leading zero (except `0` itself), no `+`, no
/// spaces, no overflow.
pub fn parse_i64(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > I64_TEXT_LEN_MAX {
        return None;
    }
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (&first, _) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(byte - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Parses a float as Redis's `string2ld` does (C `strtold` on the whole
/// text): no surrounding spaces, no trailing bytes, no NaN; `inf` is
/// accepted, an overflow is not.
///
/// polis computes in `f64` where Redis uses `long double`, so values
/// beyond ~1.8e308 are rejected here but accepted by Redis, and hex floats
/// are not accepted.
pub fn parse_f64(text: &[u8]) -> Option<f64> {
    if text.is_empty() || text.len() > FLOAT_TEXT_LEN_MAX {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    let value: f64 = text.parse().ok()?;
    if value.is_nan() {
        return None;
    }
    if value.is_infinite() && !text.to_ascii_lowercase().contains("inf") {
        return None;
    }
    Some(value)
}

/// Formats a float as Redis's human format (`%.17Lf` with trailing zeros
/// and point removed, never `-0`): the shortest text that reads back as
/// the same `f64`, with at most 17 digits after the point and never an
/// exponent.
pub fn format_float_human(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let shortest = format!("{value}");
    let fraction_digits = shortest
        .split_once('.')
        .map_or(0, |(_, fraction)| fraction.len());
    let text = if fraction_digits > FLOAT_FRACTION_DIGITS_MAX {
        let fixed = format!("{value:.FLOAT_FRACTION_DIGITS_MAX$}");
        fixed.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        shortest
    };
    if text == "-0" {
        "0".to_owned()
    } else {
        text
    }
}

/// Returns the integer argument or `ERR value is not an integer or out of
/// range`.
pub fn int_arg(text: &[u8]) -> Result<i64, ReplyError> {
    parse_i64(text).ok_or(ReplyError::NotInteger)
}

/// Returns the float argument or `ERR value is not a valid float`.
pub fn float_arg(text: &[u8]) -> Result<f64, ReplyError> {
    parse_f64(text).ok_or(ReplyError::NotFloat)
}

/// Parses an unsigned cursor as Redis does (`strtoull` over the whole
/// text), or returns `ERR invalid cursor`.
pub fn cursor_arg(text: &[u8]) -> Result<u64, ReplyError> {
    std::str::from_utf8(text)
        .ok()
        .filter(|text| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| ReplyError::err("invalid cursor"))
}

/// Returns true when `arg` equals `word`, ignoring ASCII case.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Returns argument `index` of `args`, or a wrong-arity error for the
/// command named in `args[0]` when it is missing.
pub fn arg(args: &[Bytes], index: usize) -> Result<&Bytes, ReplyError> {
    args.get(index).ok_or_else(|| wrong_arity(args))
}

/// Returns the wrong-arity error for the command named in `args[0]`.
pub fn wrong_arity(args: &[Bytes]) -> ReplyError {
    let name = args
        .first()
        .map(|name| String::from_utf8_lossy(name).to_ascii_lowercase())
        .unwrap_or_default();
    ReplyError::WrongArity(name)
}

/// Returns the lowercase command name in `args[0]`.
pub fn command_name(args: &[Bytes]) -> String {
    args.first()
        .map(|name| String::from_utf8_lossy(name).to_ascii_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_string2ll() {
        let table: &[(&[u8], Option<i64>)] = &[
            (b"0", Some(0)),
            (b"1", Some(1)),
            (b"-1", Some(-1)),
            (b"9223372036854775807", Some(i64::MAX)),
            (b"-9223372036854775808", Some(i64::MIN)),
            (b"9223372036854775808", None),
            (b"-9223372036854775809", None),
            (b"18446744073709551616", None),
            (b"", None),
            (b"-", None),
            (b"-0", None),
            (b"+1", None),
            (b"01", None),
            (b" 1", None),
            (b"1 ", None),
            (b"1.0", None),
            (b"1e3", None),
            (b"123456789012345678901", None),
        ];
        for (text, expected) in table {
            assert_eq!(
                parse_i64(text),
                *expected,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn floats_follow_strtold_on_the_whole_text() {
        let table: &[(&[u8], Option<f64>)] = &[
            (b"1.5", Some(1.5)),
            (b"-1.1", Some(-1.1)),
            (b"+2", Some(2.0)),
            (b".5", Some(0.5)),
            (b"5.", Some(5.0)),
            (b"1e3", Some(1000.0)),
            (b"inf", Some(f64::INFINITY)),
            (b"+inf", Some(f64::INFINITY)),
            (b"-Infinity", Some(f64::NEG_INFINITY)),
            (b"nan", None),
            (b"1e400", None),
            (b" 11", None),
            (b"11 ", None),
            (b"1\x002", None),
            (b"", None),
            (b"abc", None),
        ];
        for (text, expected) in table {
            assert_eq!(
                parse_f64(text),
                *expected,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn floats_format_like_redis_human_mode() {
        let table: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (3.0, "3"),
            (1.25, "1.25"),
            (17179869185.5, "17179869185.5"),
            (34359738368.0, "34359738368"),
            (1.23, "1.23"),
            (2.0 - 0.1, "1.9"),
            (1e20, "100000000000000000000"),
            (1e-20, "0"),
            (-1e-20, "0"),
            (1.0 / 41.0, "0.02439024390243903"),
            (5.5e-6, "0.0000055"),
        ];
        for (value, text) in table {
            assert_eq!(format_float_human(*value), *text, "{value:e}");
        }
    }

    #[test]
    fn cursors_are_unsigned_decimal() {
        assert_eq!(cursor_arg(b"0"), Ok(0));
        assert_eq!(cursor_arg(b"18446744073709551615"), Ok(u64::MAX));
        assert!(cursor_arg(b"-1").is_err());
        assert!(cursor_arg(b"18446744073709551616").is_err());
        assert!(cursor_arg(b"").is_err());
        assert!(cursor_arg(b"1x").is_err());
    }
}
