//! Glob-style matching with the semantics of Redis's `stringmatchlen`
//! (KEYS, SCAN MATCH, HSCAN MATCH): `*`, `?`, `[abc]`, `[^abc]`, `[a-z]`
//! (reversed ranges allowed), and `\` escapes, byte by byte.
//!
//! Redis matches recursively; this matcher backtracks only to the latest
//! `*`, which accepts the same strings (every other token consumes exactly
//! one byte) in O(pattern × string) time with no recursion, so a hostile
//! pattern can neither overflow the stack nor run exponentially.
//!
//! Redis 7.0.15 as Debian ships it (with the fix for abusive patterns)
//! also gives up on a match that would recurse through more than 1000
//! `*`s: a pattern with more than [`STAR_NESTING_MAX`] star groups before
//! its end matches nothing, and so it does here.

/// Largest number of `*` groups, not counting one that ends the pattern,
/// that a pattern may have and still match anything (Redis's nesting
/// limit).
pub const STAR_NESTING_MAX: usize = 1000;

/// Returns true when `text` matches `pattern`.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // Redis's loop never runs on an empty string: only an empty pattern
    // matches it (KEYS and SCAN short-circuit a lone `*` before this).
    if text.is_empty() {
        return pattern.is_empty();
    }
    if inner_star_groups(pattern) > STAR_NESTING_MAX {
        return false;
    }
    let mut p = 0;
    let mut t = 0;
    // After a `*`: where the rest of the pattern starts, and the next text
    // position to retry it from.
    let mut backtrack: Option<(usize, usize)> = None;
    // Each round advances `t`, or moves the retry point of the latest `*`
    // forward, so the loop ends within pattern.len() * text.len() rounds.
    loop {
        if t == text.len() {
            while pattern.get(p) == Some(&b'*') {
                p += 1;
            }
            if p == pattern.len() {
                return true;
            }
        } else if pattern.get(p) == Some(&b'*') {
            while pattern.get(p + 1) == Some(&b'*') {
                p += 1;
            }
            if p + 1 == pattern.len() {
                return true;
            }
            p += 1;
            backtrack = Some((p, t));
            continue;
        } else if p < pattern.len() {
            let (matched, next) = match_token(pattern, p, text[t]);
            if matched {
                p = next;
                t += 1;
                continue;
            }
        }
        // Mismatch: let the latest `*` swallow one more byte, as long as
        // at least one byte is left for the rest of the pattern.
        match backtrack {
            Some((rest, start)) if start + 1 < text.len() => {
                backtrack = Some((rest, start + 1));
                p = rest;
                t = start + 1;
            }
            _ => return false,
        }
    }
}

/// Counts the groups of consecutive `*` in `pattern`, except a group that
/// ends it: each is one level of recursion in Redis's matcher.
fn inner_star_groups(pattern: &[u8]) -> usize {
    let mut groups = 0;
    let mut p = 0;
    // Bounded: p advances every round.
    while p < pattern.len() {
        if pattern[p] == b'*' {
            while pattern.get(p) == Some(&b'*') {
                p += 1;
            }
            if p < pattern.len() {
                groups += 1;
            }
        } else {
            p = match_token(pattern, p, 0).1;
        }
    }
    groups
}

/// Matches the single non-`*` token at `pattern[p]` against `byte`;
/// returns whether it matched and where the next token starts.
fn match_token(pattern: &[u8], p: usize, byte: u8) -> (bool, usize) {
    match pattern[p] {
        b'?' => (true, p + 1),
        b'[' => match_class(pattern, p + 1, byte),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == byte, p + 2),
        literal => (literal == byte, p + 1),
    }
}

/// Matches a `[...]` class whose body starts at `pattern[p]`. An unclosed
/// class runs to the end of the pattern, as in Redis.
fn match_class(pattern: &[u8], mut p: usize, byte: u8) -> (bool, usize) {
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut matched = false;
    // Bounded: p advances every round until `]` or the end.
    while let Some(&current) = pattern.get(p) {
        if current == b'\\' && p + 1 < pattern.len() {
            matched |= pattern[p + 1] == byte;
            p += 2;
        } else if current == b']' {
            p += 1;
            break;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' {
            // Redis compares C `char`s, which are signed on x86: bytes
            // >= 0x80 sort below ASCII in ranges.
            let (mut low, mut high) = (signed(current), signed(pattern[p + 2]));
            if low > high {
                std::mem::swap(&mut low, &mut high);
            }
            matched |= (low..=high).contains(&signed(byte));
            p += 3;
        } else {
            matched |= current == byte;
            p += 1;
        }
    }
    (matched != negate, p)
}

fn signed(byte: u8) -> i16 {
    i16::from(byte as i8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_stringmatchlen() {
        let table: &[(&[u8], &[u8], bool)] = &[
            (b"*", b"anything", true),
            (b"*", b"", false),
            (b"", b"", true),
            (b"foo*", b"foo_a", true),
            (b"foo*", b"foo", true),
            (b"foo*", b"fo", false),
            (b"*bar", b"foobar", true),
            (b"*bar", b"foobaz", false),
            (b"f*o*r", b"foobar", true),
            (b"h?llo", b"hello", true),
            (b"h?llo", b"hllo", false),
            (b"h[ae]llo", b"hallo", true),
            (b"h[ae]llo", b"hillo", false),
            (b"h[^e]llo", b"hallo", true),
            (b"h[^e]llo", b"hello", false),
            (b"h[a-b]llo", b"hbllo", true),
            (b"h[b-a]llo", b"hbllo", true),
            (b"h[a-b]llo", b"hcllo", false),
            (b"h\\*llo", b"h*llo", true),
            (b"h\\*llo", b"hello", false),
            (b"[\\]]", b"]", true),
            (b"[abc", b"b", true),
            (b"[abc", b"d", false),
            (b"a\\", b"a\\", true),
            (b"**a", b"ba", true),
            (b"a*", b"a", true),
            (b"a**", b"a", true),
            (b"*a*", b"xyz", false),
            (b"?", b"", false),
            (b"a*b*c", b"abxbc", true),
            (b"a*b*c", b"abxbd", false),
            (b"[\x80-\xff]", b"a", false),
            (b"[\x80-\xff]", b"\x90", true),
            (b"[a-\xff]", b"b", false),
        ];
        for (pattern, text, expected) in table {
            assert_eq!(
                glob_match(pattern, text),
                *expected,
                "pattern {:?} text {:?}",
                String::from_utf8_lossy(pattern),
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn pathological_pattern_finishes() {
        // Redis regression test "pattern matching long nested loops".
        let text = vec![b'a'; 40];
        let pattern = b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        assert!(!glob_match(pattern, &text));
        let long_pattern: Vec<u8> = b"*a".repeat(100_000);
        assert!(!glob_match(&long_pattern, b"bbbb"));
    }

    #[test]
    fn more_than_a_thousand_inner_stars_match_nothing() {
        // Redis test "Regression for pattern matching very long nested
        // loops" (Debian's 7.0.15).
        let text = vec![b'a'; 50_000];
        assert!(!glob_match(&b"*?".repeat(50_000), &text));
        let text = vec![b'a'; 2000];
        assert!(glob_match(&b"*?".repeat(1000), &text));
        assert!(!glob_match(&b"*?".repeat(1001), &text));
        // A trailing group, escaped stars and stars in classes do not count.
        let mut pattern = b"*?".repeat(1000);
        pattern.extend_from_slice(b"***");
        assert!(glob_match(&pattern, &text));
        let escaped = b"\\*a".repeat(1500);
        assert!(glob_match(&escaped, &b"*a".repeat(1500)));
        assert!(glob_match(&b"[*]".repeat(1500), &vec![b'*'; 1500]));
    }
}
