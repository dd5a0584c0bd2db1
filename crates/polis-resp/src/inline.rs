//! Inline commands: a request typed as one line (`SET k "a b"\r\n`), split
//! into words the way Redis's `sdssplitargs` splits them.
//!
//! Words are separated by spaces, tabs, `\r` and `\n` (and leading
//! vertical tabs and form feeds are skipped too, as C's `isspace` does). A
//! word may contain quoted parts:
//! - `"double quotes"` understand `\n \r \t \b \a`, `\xHH` (two hex digits)
//!   and `\<any>` for that byte (so `\\` and `\"`);
//! - `'single quotes'` understand only `\'`.
//!
//! A closing quote must be followed by a separator or the end of the line,
//! and every opened quote must be closed; otherwise the request is
//! "unbalanced quotes in request".

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::decode::{find_line_end, LineEnd, ProtocolError, Request, Scan};

/// Finds the end of the inline line at the front of `buf`.
///
/// The line ends at the first `\n`; one `\r` before it is not part of the
/// line. A line (without its `\n`) longer than `inline_len_max` is "too big
/// inline request", whether or not its `\n` has arrived yet.
pub(crate) fn scan_inline(buf: &[u8], inline_len_max: usize) -> Result<Scan, ProtocolError> {
    let newline = match find_line_end(buf, 0, b'\n', inline_len_max) {
        LineEnd::At(index) => index,
        LineEnd::Incomplete => return Ok(Scan::Incomplete { progress: None }),
        LineEnd::TooLong => return Err(ProtocolError::TooBigInlineRequest),
    };
    let line_len = match newline.checked_sub(1) {
        Some(cr) if buf.get(cr) == Some(&b'\r') => cr,
        _ => newline,
    };
    Ok(Scan::Inline {
        line_len,
        len: newline + 1,
    })
}

/// Splits the inline line found by [`scan_inline`] into words and consumes
/// it (`len` bytes) from `buf`. Words without quotes are zero-copy slices
/// of `buf`'s storage.
pub(crate) fn decode_inline(
    buf: &mut BytesMut,
    line_len: usize,
    len: usize,
) -> Result<Request, ProtocolError> {
    let words = split_words(buf.get(..line_len).unwrap_or_default())?;
    let line: Bytes = buf.split_to(len).freeze();
    let args = words
        .into_iter()
        .map(|word| match word {
            Word::Slice(range) => line.slice(range),
            Word::Owned(bytes) => Bytes::from(bytes),
        })
        .collect();
    Ok(Request { args })
}

/// One word of an inline line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    /// A word taken verbatim from the line.
    Slice(Range<usize>),
    /// A word with quotes or escapes, rebuilt byte by byte.
    Owned(Vec<u8>),
}

/// Returns true for the bytes C's `isspace` accepts in the "C" locale.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Returns true for the bytes that end an unquoted word.
fn ends_word(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// Returns the value of an ASCII hex digit.
fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Splits `line` into words as `sdssplitargs` does (see the module docs).
fn split_words(line: &[u8]) -> Result<Vec<Word>, ProtocolError> {
    let mut words = Vec::new();
    let mut pos = 0;
    loop {
        while line.get(pos).is_some_and(|&byte| is_space(byte)) {
            pos += 1;
        }
        if pos >= line.len() {
            return Ok(words);
        }
        // Fast path: a word with no quotes is a slice of the line.
        let start = pos;
        while let Some(&byte) = line.get(pos) {
            if ends_word(byte) || byte == b'"' || byte == b'\'' {
                break;
            }
            pos += 1;
        }
        if line.get(pos).is_none_or(|&byte| ends_word(byte)) {
            words.push(Word::Slice(start..pos));
            continue;
        }
        let mut word = line[start..pos].to_vec();
        pos = read_quoted_word(line, pos, &mut word)?;
        words.push(Word::Owned(word));
    }
}

/// Reads the rest of a word that contains quotes, starting at `pos` (on an
/// opening quote or inside the word), appending its bytes to `word`.
/// Returns the index just past the word.
fn read_quoted_word(
    line: &[u8],
    mut pos: usize,
    word: &mut Vec<u8>,
) -> Result<usize, ProtocolError> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Quote {
        None,
        Double,
        Single,
    }
    let closing_ok = |after: Option<&u8>| after.is_none_or(|&byte| is_space(byte));
    let mut quote = Quote::None;
    loop {
        let byte = line.get(pos).copied();
        match quote {
            Quote::None => match byte {
                None => return Ok(pos),
                Some(byte) if ends_word(byte) => return Ok(pos + 1),
                Some(b'"') => quote = Quote::Double,
                Some(b'\'') => quote = Quote::Single,
                Some(byte) => word.push(byte),
            },
            Quote::Double => match byte {
                None => return Err(ProtocolError::UnbalancedQuotes),
                Some(b'\\') => {
                    let hex = line
                        .get(pos + 1..pos + 4)
                        .filter(|escape| escape[0] == b'x')
                        .and_then(|escape| {
                            Some(hex_value(escape[1])? * 16 + hex_value(escape[2])?)
                        });
                    if let Some(value) = hex {
                        word.push(value);
                        pos += 3;
                    } else if let Some(&escaped) = line.get(pos + 1) {
                        word.push(match escaped {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                        pos += 1;
                    } else {
                        // A backslash ending the line leaves the quote open.
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                }
                Some(b'"') => {
                    if !closing_ok(line.get(pos + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    return Ok(pos + 1);
                }
                Some(byte) => word.push(byte),
            },
            Quote::Single => match byte {
                None => return Err(ProtocolError::UnbalancedQuotes),
                Some(b'\\') if line.get(pos + 1) == Some(&b'\'') => {
                    word.push(b'\'');
                    pos += 1;
                }
                Some(b'\'') => {
                    if !closing_ok(line.get(pos + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    return Ok(pos + 1);
                }
                Some(byte) => word.push(byte),
            },
        }
        pos += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Result<Vec<Vec<u8>>, ProtocolError> {
        let line = line.as_bytes();
        Ok(split_words(line)?
            .into_iter()
            .map(|word| match word {
                Word::Slice(range) => line[range].to_vec(),
                Word::Owned(bytes) => bytes,
            })
            .collect())
    }

    #[test]
    fn splits_words_like_sdssplitargs() {
        let table: &[(&str, &[&[u8]])] = &[
            ("", &[]),
            ("   \t ", &[]),
            ("PING", &[b"PING"]),
            ("  set  k\tv  ", &[b"set", b"k", b"v"]),
            ("a\rb", &[b"a", b"b"]),
            // \v and \f are skipped before a word but belong to one.
            ("\x0b\x0ca\x0bb", &[b"a\x0bb"]),
            (r#"SET k "a b""#, &[b"SET", b"k", b"a b"]),
            (r#""""#, &[b""]),
            ("''", &[b""]),
            (r#""\n\r\t\b\a\\\"\q""#, &[b"\n\r\t\x08\x07\\\"q"]),
            (r#""\x41\x7a\xfF""#, &[b"Az\xff"]),
            // Not two hex digits: `\x` is an ordinary escape of `x`.
            (r#""\x4g""#, &[b"x4g"]),
            (r#""\x4""#, &[b"x4"]),
            (r"'it\'s' 'a\nb'", &[b"it's", b"a\\nb"]),
            // Quotes may start in the middle of a word and run on.
            (r#"ab"c d" e"#, &[b"abc d", b"e"]),
            (r#"a'b c'"#, &[b"ab c"]),
            ("x\"y\" z", &[b"xy", b"z"]),
            ("\"a\"\tb", &[b"a", b"b"]),
            ("\0a b", &[b"\0a", b"b"]),
        ];
        for (line, words) in table {
            let expected: Vec<Vec<u8>> = words.iter().map(|word| word.to_vec()).collect();
            assert_eq!(split(line), Ok(expected), "line {line:?}");
        }
    }

    #[test]
    fn rejects_unbalanced_quotes() {
        for line in [
            r#""abc"#,
            "'abc",
            r#""abc"d"#,
            "'abc'd",
            r#""abc\"#,
            r#"a "b"c"#,
            r"'a\'",
            r#""""""#,
        ] {
            assert_eq!(
                split(line),
                Err(ProtocolError::UnbalancedQuotes),
                "line {line:?}"
            );
        }
    }

    #[test]
    fn scans_line_ends() {
        let table: &[(&[u8], Scan)] = &[
            (b"PING", Scan::Incomplete { progress: None }),
            (b"PING\r", Scan::Incomplete { progress: None }),
            (
                b"PING\n",
                Scan::Inline {
                    line_len: 4,
                    len: 5,
                },
            ),
            (
                b"PING\r\nx",
                Scan::Inline {
                    line_len: 4,
                    len: 6,
                },
            ),
            (
                b"\n",
                Scan::Inline {
                    line_len: 0,
                    len: 1,
                },
            ),
            (
                b"\r\n",
                Scan::Inline {
                    line_len: 0,
                    len: 2,
                },
            ),
            (
                b"a\r\r\n",
                Scan::Inline {
                    line_len: 2,
                    len: 4,
                },
            ),
            (b"12345678", Scan::Incomplete { progress: None }),
            (
                b"12345678\n",
                Scan::Inline {
                    line_len: 8,
                    len: 9,
                },
            ),
            (
                b"1234567\r\n",
                Scan::Inline {
                    line_len: 7,
                    len: 9,
                },
            ),
        ];
        for (input, scan) in table {
            assert_eq!(scan_inline(input, 8), Ok(*scan), "input {input:?}");
        }
        assert_eq!(
            scan_inline(b"123456789", 8),
            Err(ProtocolError::TooBigInlineRequest)
        );
        assert_eq!(
            scan_inline(b"123456789\n", 8),
            Err(ProtocolError::TooBigInlineRequest)
        );
        // The `\r` counts towards the limit: the line was 9 bytes while
        // its `\n` had not arrived.
        assert_eq!(
            scan_inline(b"12345678\r\n", 8),
            Err(ProtocolError::TooBigInlineRequest)
        );
    }
}
