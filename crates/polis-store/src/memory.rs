//! The model behind the keyspace's memory figure ([`crate::Db::used_memory`],
//! what INFO reports and `maxmemory` bounds): what the allocator hands out
//! for a request, and what a standard-library B-tree spends per entry.
//!
//! The figure counts allocations, not bytes of data: glibc's malloc gives
//! every request a chunk of the request plus an 8-byte header, rounded up
//! to 16, and at least 32 bytes; a B-tree's nodes hold 11 entries each and
//! are about two-thirds full when keys arrive in no order (keys and members
//! by hash), a little over half when they arrive in ascending order (stream
//! ids, deadlines), where a full node splits in two halves and the left one
//! is never filled again. The per-entry shares below were measured (the
//! `footprint` test of polis-commands builds every type with real commands
//! and compares the figure with the process's resident set growth).

/// Bytes of a B-tree leaf's header: the parent pointer, the parent index
/// and the length.
const LEAF_HEADER_BYTES: usize = 12;
/// Entries a B-tree node holds (std's `CAPACITY`).
const NODE_ENTRIES: usize = 11;
/// Leaves (and their share of inner nodes) per entry, in hundredths:
/// measured 7.45 entries per leaf allocation when keys come in no order,
/// 5.8 when they come in ascending order.
const ENTRIES_PER_LEAF_RANDOM_CENTI: usize = 745;
const ENTRIES_PER_LEAF_ASCENDING_CENTI: usize = 580;
/// Bytes of an inner node's child pointers, beyond a leaf's.
const INNER_EDGES_BYTES: usize = 8 * (NODE_ENTRIES + 1);

/// Returns the bytes malloc takes for a request of `len` bytes (0 for
/// none): a chunk of `len` plus an 8-byte header, rounded up to 16, and
/// at least 32.
pub const fn heap_bytes(len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let chunk = (len + 8 + 15) & !15;
    if chunk < 32 {
        32
    } else {
        chunk
    }
}

/// Returns the bytes of `count` allocations of `total` bytes altogether,
/// as if each were of the average size (what a collection keeps of its
/// elements is the sum of their lengths, not each length).
pub fn heap_bytes_spread(total: usize, count: usize) -> usize {
    if count == 0 {
        return 0;
    }
    count * heap_bytes(total.div_ceil(count))
}

/// How the entries of a B-tree arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// In no particular order (keys, fields and members by hash).
    Random,
    /// In ascending order (stream ids, deadlines).
    Ascending,
}

/// Returns the bytes a std `BTreeMap` of `len` entries of `slot_bytes`
/// (key and value) holds in its nodes: one leaf up to 11 entries, past
/// that the measured share per entry and one inner node.
pub const fn btree_bytes(len: usize, slot_bytes: usize, fill: Fill) -> usize {
    let leaf = heap_bytes(LEAF_HEADER_BYTES + NODE_ENTRIES * slot_bytes);
    if len == 0 {
        return 0;
    }
    if len <= NODE_ENTRIES {
        return leaf;
    }
    let per_leaf_centi = match fill {
        Fill::Random => ENTRIES_PER_LEAF_RANDOM_CENTI,
        Fill::Ascending => ENTRIES_PER_LEAF_ASCENDING_CENTI,
    };
    len * leaf * 100 / per_leaf_centi + leaf + INNER_EDGES_BYTES
}

/// Returns one entry's share of a large B-tree's nodes.
pub const fn btree_entry_bytes(slot_bytes: usize, fill: Fill) -> usize {
    btree_bytes(1_000_000, slot_bytes, fill) / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malloc_chunks_are_the_request_and_a_header_rounded_to_16() {
        assert_eq!(heap_bytes(0), 0);
        assert_eq!(heap_bytes(1), 32);
        assert_eq!(heap_bytes(24), 32);
        assert_eq!(heap_bytes(25), 48);
        assert_eq!(heap_bytes(100), 112);
        assert_eq!(heap_bytes(144), 160);
        assert_eq!(heap_bytes_spread(36, 2), 64);
        assert_eq!(heap_bytes_spread(0, 0), 0);
    }

    #[test]
    fn a_btree_costs_one_leaf_then_a_share_per_entry() {
        // The keyspace: a 40-byte key handle and a 56-byte entry.
        let leaf = heap_bytes(12 + 11 * 96);
        assert_eq!(leaf, 1088);
        assert_eq!(btree_bytes(0, 96, Fill::Random), 0);
        assert_eq!(btree_bytes(1, 96, Fill::Random), leaf);
        assert_eq!(btree_bytes(11, 96, Fill::Random), leaf);
        assert!(btree_bytes(12, 96, Fill::Random) > 2 * leaf);
        assert_eq!(btree_entry_bytes(96, Fill::Random), 146);
        assert!(btree_entry_bytes(40, Fill::Ascending) > btree_entry_bytes(40, Fill::Random));
    }
}
