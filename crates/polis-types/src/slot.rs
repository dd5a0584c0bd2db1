//! Hash slots, computed exactly as Redis Cluster does: CRC16 (XMODEM) of the
//! key, or of its `{hash tag}`, modulo 16384.

/// A hash slot, `0..SLOT_COUNT`.
pub type Slot = u16;

/// Number of hash slots in the cluster.
pub const SLOT_COUNT: u16 = 16384;

/// Returns the CRC16/XMODEM checksum of `data` (polynomial 0x1021, initial
/// value 0), the checksum Redis Cluster hashes keys with.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Returns the part of `key` that is hashed: the content of the first
/// `{...}` if it is non-empty, otherwise the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    let rest = &key[open + 1..];
    match rest.iter().position(|&b| b == b'}') {
        Some(0) | None => key,
        Some(close) => &rest[..close],
    }
}

/// Returns the hash slot of `key`.
pub fn key_hash_slot(key: &[u8]) -> Slot {
    crc16(hash_tag(key)) % SLOT_COUNT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_reference_vector() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn slots_match_redis_cluster() {
        let table: &[(&[u8], u16)] = &[
            (b"foo", 12182),
            (b"{user1000}.following", 3443),
            (b"{user1000}.followers", 3443),
            (b"foo{}{bar}", 8363),
            (b"foo{{bar}}zap", key_hash_slot(b"{bar")),
            (b"foo{bar}{zap}", key_hash_slot(b"bar")),
            (b"", 0),
        ];
        for (key, slot) in table {
            assert_eq!(
                key_hash_slot(key),
                *slot,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn hash_tag_rules() {
        assert_eq!(hash_tag(b"{}x"), b"{}x");
        assert_eq!(hash_tag(b"a{b"), b"a{b");
        assert_eq!(hash_tag(b"a{b}c"), b"b");
    }
}
