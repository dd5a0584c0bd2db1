//! Where a RESP request goes: the address that owns the key's slot, as
//! CLUSTER SLOTS said (asked when a connection opens and after every
//! MOVED) or a MOVED reply taught, else the address the last MOVED pointed
//! to (in a cluster where one group owns every slot that is the leader, so
//! one redirect teaches the whole keyspace), else the first address.

use std::collections::HashMap;
use std::sync::Arc;

/// Slots in a Redis cluster.
pub const SLOTS: u16 = 16384;

/// Returns the cluster slot of `key`: CRC16 (XMODEM) of the key, or of
/// its `{hash tag}` when it has a non-empty one, modulo 16384.
pub fn slot(key: &[u8]) -> u16 {
    let hashed = hash_tag(key).unwrap_or(key);
    crc16_xmodem(hashed) % SLOTS
}

fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|b| *b == b'{')?;
    let rest = &key[open + 1..];
    let close = rest.iter().position(|b| *b == b'}')?;
    (close > 0).then(|| &rest[..close])
}

fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for byte in bytes {
        crc ^= u16::from(*byte) << 8;
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

/// The routes of one benchmark connection.
#[derive(Debug, Clone)]
pub struct Routes {
    /// The addresses given by the user, tried in turn when the default
    /// one cannot be reached.
    seeds: Vec<Arc<str>>,
    seed_next: usize,
    default: Arc<str>,
    by_slot: HashMap<u16, Arc<str>>,
}

impl Routes {
    /// Returns routes that start at `seeds[first]`.
    pub fn new(seeds: &[String], first: usize) -> Self {
        let seeds: Vec<Arc<str>> = seeds.iter().map(|s| Arc::from(s.as_str())).collect();
        let first = first % seeds.len().max(1);
        let default = seeds.get(first).cloned().unwrap_or_else(|| Arc::from(""));
        Self {
            seeds,
            seed_next: first + 1,
            default,
            by_slot: HashMap::new(),
        }
    }

    /// Returns the address to send a request for `slot` to.
    pub fn address(&self, slot: u16) -> Arc<str> {
        self.by_slot
            .get(&slot)
            .cloned()
            .unwrap_or_else(|| self.default.clone())
    }

    /// Learns a whole slot table (CLUSTER SLOTS: ranges and the address
    /// of each range's primary).
    pub fn learn(&mut self, table: &[(u16, u16, String)]) {
        for (start, end, addr) in table {
            let addr: Arc<str> = Arc::from(addr.as_str());
            for slot in *start..=(*end).min(SLOTS - 1) {
                self.by_slot.insert(slot, addr.clone());
            }
        }
    }

    /// Learns from `MOVED slot addr`.
    pub fn moved(&mut self, slot: u16, addr: &str) {
        let addr: Arc<str> = Arc::from(addr);
        self.by_slot.insert(slot, addr.clone());
        self.default = addr;
    }

    /// Forgets `addr` after it could not be reached: its slots go back to
    /// the default, and if it was the default, the next seed becomes it
    /// (which will redirect to the new owner).
    pub fn unreachable(&mut self, addr: &str) {
        self.by_slot.retain(|_, owner| &**owner != addr);
        if &*self.default == addr && !self.seeds.is_empty() {
            self.default = self.seeds[self.seed_next % self.seeds.len()].clone();
            self.seed_next = self.seed_next.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster() {
        // Values from the Redis Cluster specification and redis-cli.
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"));
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
    }

    #[test]
    fn moved_teaches_the_slot_and_the_default() {
        let seeds = vec!["a:1".to_string(), "b:2".to_string(), "c:3".to_string()];
        let mut routes = Routes::new(&seeds, 1);
        assert_eq!(&*routes.address(7), "b:2");
        routes.moved(7, "c:3");
        assert_eq!(&*routes.address(7), "c:3");
        assert_eq!(&*routes.address(8), "c:3");
        routes.moved(8, "a:1");
        assert_eq!(&*routes.address(7), "c:3");
        assert_eq!(&*routes.address(9), "a:1");
    }

    #[test]
    fn a_slot_table_routes_each_slot_to_its_primary() {
        let seeds = vec!["a:1".to_string()];
        let mut routes = Routes::new(&seeds, 0);
        routes.learn(&[(0, 99, "b:2".to_string()), (100, 16383, "c:3".to_string())]);
        assert_eq!(&*routes.address(0), "b:2");
        assert_eq!(&*routes.address(99), "b:2");
        assert_eq!(&*routes.address(100), "c:3");
        assert_eq!(&*routes.address(16383), "c:3");
    }

    #[test]
    fn an_unreachable_default_falls_back_to_the_next_seed() {
        let seeds = vec!["a:1".to_string(), "b:2".to_string()];
        let mut routes = Routes::new(&seeds, 0);
        routes.moved(3, "z:9");
        routes.unreachable("z:9");
        assert_eq!(&*routes.address(3), "b:2");
        routes.unreachable("b:2");
        assert_eq!(&*routes.address(3), "a:1");
        // Another address failing changes nothing.
        routes.unreachable("q:0");
        assert_eq!(&*routes.address(3), "a:1");
    }
}
