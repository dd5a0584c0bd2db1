//! Node-wide data commands (DBSIZE, KEYS, SCAN, RANDOMKEY) over the shards
//! this node leads: the sum over a cluster's masters is the whole keyspace,
//! as in Redis Cluster.
//!
//! A SCAN cursor names a shard and a position in it:
//!
//! ```text
//!   cursor = shard's index in the map (12 bits) << 52 | position >> 12
//! ```
//!
//! The position is the shard's own cursor (the hash of the next key) with
//! its low 12 bits dropped, so a resumed scan starts at or before where it
//! stopped: a key may come twice, none is skipped (SCAN's guarantee), save
//! when a shard's next position is below 4096, a one in 2^52 chance per
//! key, where the scan resumes at 4096. The index is the shard's place
//! among all shards, so a change of leaders during a scan does not shift
//! it.

use bytes::Bytes;
use polis_cluster::MapView;
use polis_commands::keyspace::Scan;
use polis_commands::{Command, ReadContext};
use polis_resp::{Reply, ReplyError};
use polis_types::limits::SHARDS_MAX;

use crate::node::ShardGroup;

const INDEX_SHIFT: u32 = 52;
const POSITION_MASK: u64 = (1 << INDEX_SHIFT) - 1;
const DROPPED_BITS: u32 = 64 - INDEX_SHIFT;

const _: () = assert!(SHARDS_MAX <= 1 << (64 - INDEX_SHIFT));

/// Returns the cursor of position `position` in the shard at `index`.
pub fn encode_cursor(index: usize, position: u64) -> u64 {
    let mut kept = position >> DROPPED_BITS;
    if kept == 0 && position != 0 {
        kept = 1;
    }
    ((index as u64) << INDEX_SHIFT) | kept
}

/// Returns the shard index and position a cursor names.
pub fn decode_cursor(cursor: u64) -> (usize, u64) {
    (
        (cursor >> INDEX_SHIFT) as usize,
        (cursor & POSITION_MASK) << DROPPED_BITS,
    )
}

/// Runs `command` on each of `led` (every one read linearizably already)
/// and combines the answers.
pub fn combine(view: &MapView, led: &[ShardGroup], command: &Command, ctx: &ReadContext) -> Reply {
    match command {
        Command::Scan(scan) => self::scan(view, led, scan, ctx),
        Command::DbSize(_) => {
            let total: i64 = led
                .iter()
                .map(|group| group.state().read().app.db.len() as i64)
                .sum();
            Reply::Integer(total)
        }
        Command::Keys(_) => {
            let mut keys = Vec::new();
            for group in led {
                if let Reply::Array(part) = command.execute_read(&group.state().read().app.db, ctx)
                {
                    keys.extend(part);
                }
            }
            Reply::Array(keys)
        }
        Command::RandomKey(_) => {
            if led.is_empty() {
                return Reply::Null;
            }
            let start = (ctx.seed % led.len() as u64) as usize;
            for offset in 0..led.len() {
                let group = &led[(start + offset) % led.len()];
                let reply = command.execute_read(&group.state().read().app.db, ctx);
                if reply != Reply::Null {
                    return reply;
                }
            }
            Reply::Null
        }
        _ => Reply::Error(ReplyError::err("not a node-wide command")),
    }
}

fn scan(view: &MapView, led: &[ShardGroup], scan: &Scan, ctx: &ReadContext) -> Reply {
    let (index, position) = decode_cursor(scan.options.cursor);
    let mut shards: Vec<(usize, &ShardGroup)> = led
        .iter()
        .filter_map(|group| Some((view.shard_index(group.id())?, group)))
        .filter(|(shard_index, _)| *shard_index >= index)
        .collect();
    shards.sort_by_key(|(shard_index, _)| *shard_index);
    let Some(&(first_index, group)) = shards.first() else {
        return scan_reply(0, Vec::new());
    };
    let mut options = scan.options.clone();
    options.cursor = if first_index == index { position } else { 0 };
    let page = Command::Scan(Scan { options }).execute_read(&group.state().read().app.db, ctx);
    let Reply::Array(mut parts) = page else {
        return page;
    };
    let (Some(Reply::Array(items)), Some(Reply::Bulk(next))) = (parts.pop(), parts.pop()) else {
        return Reply::Error(ReplyError::err("unexpected SCAN page"));
    };
    let next: u64 = std::str::from_utf8(&next)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0);
    let cursor = match (next, shards.get(1)) {
        (0, Some((following, _))) => encode_cursor(*following, 0),
        (0, None) => 0,
        (position, _) => encode_cursor(first_index, position),
    };
    scan_reply(cursor, items)
}

fn scan_reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(cursor.to_string())),
        Reply::Array(items),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_name_a_shard_and_never_resume_past_the_position() {
        assert_eq!(encode_cursor(0, 0), 0, "the start is 0");
        for (index, position) in [(0usize, 1u64 << 40), (3, 12_345_678_901), (4095, u64::MAX)] {
            let (back_index, back_position) = decode_cursor(encode_cursor(index, position));
            assert_eq!(back_index, index);
            assert!(back_position <= position);
            assert!(position - back_position < 1 << DROPPED_BITS);
        }
        // A position below 4096 resumes at 4096, not at the shard's start
        // (which would loop forever).
        assert_eq!(decode_cursor(encode_cursor(2, 17)), (2, 4096));
    }
}
