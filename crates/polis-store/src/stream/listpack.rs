//! The size Redis's listpack encoding gives a stream node, so that node
//! boundaries (`stream-node-max-bytes`) fall where Redis puts them.
//!
//! Only sizes are computed: polis keeps entries in a tree, and the
//! listpack is a model of Redis's memory layout, nothing more.

/// Bytes of a listpack's header (total bytes, element count) and end mark.
pub const LISTPACK_EMPTY_BYTES: usize = 6 + 1;

/// Returns the bytes of the back-length field for an element of `len`.
fn backlen_bytes(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_382 => 2,
        16_383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// Returns the bytes an integer element takes.
pub fn integer_bytes(value: i64) -> usize {
    let encoded = match value {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32_768..=32_767 => 3,
        -8_388_608..=8_388_607 => 4,
        -2_147_483_648..=2_147_483_647 => 5,
        _ => 9,
    };
    encoded + backlen_bytes(encoded)
}

/// Returns the bytes a string element takes; a string that reads as a
/// 64-bit integer is stored as one, as `lpStringToInt64` decides.
pub fn string_bytes(text: &[u8]) -> usize {
    if let Some(value) = parse_canonical_i64(text) {
        return integer_bytes(value);
    }
    let len = text.len();
    let encoded = match len {
        0..=63 => 1 + len,
        64..=4095 => 2 + len,
        _ => 5 + len,
    };
    encoded + backlen_bytes(encoded)
}

/// Parses `text` as Redis's `string2ll` does: optional `-`, no leading
/// zeros, no `+`, within `i64`.
fn parse_canonical_i64(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 20 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_sizes_follow_listpack_encodings() {
        assert_eq!(integer_bytes(0), 2);
        assert_eq!(integer_bytes(127), 2);
        assert_eq!(integer_bytes(128), 3);
        assert_eq!(integer_bytes(-1), 3);
        assert_eq!(integer_bytes(40_000), 5);
        assert_eq!(integer_bytes(i64::MAX), 10);
        assert_eq!(string_bytes(b"v"), 3);
        assert_eq!(string_bytes(b"12"), 2);
        assert_eq!(string_bytes(b"012"), 5);
        assert_eq!(string_bytes(&[b'x'; 100]), 103);
    }
}
