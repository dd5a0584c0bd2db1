//! The leader's timer for blocked group readers: a pending entry whose
//! ack-wait (or XNACK delay) passes is data for a read of new entries
//! (`XREADGROUP ... >`), though no write brings it. Each blocked
//! XREADGROUP on the leader looks, in the shard's applied state, for the
//! next time an entry of its group becomes due, and tries again then.
//!
//! Every blocked reader of the group on this node tries at that time; the
//! first entry applied claims the due entries, the others find nothing
//! and wait on. A reader tries once per due time: an entry due but not
//! taken (its dead-letter stream refused it, say) does not make it try
//! again and again.

use bytes::Bytes;
use polis_types::GroupId;

use crate::node::Node;

/// A blocked read of new entries of a group: the group and its streams.
pub(super) struct GroupRead {
    group: Bytes,
    keys: Vec<Bytes>,
}

/// Returns the group read of `args` when it is an XREADGROUP that reads
/// new entries (`>`) from some stream; None otherwise.
pub(super) fn group_read(args: &[Bytes]) -> Option<GroupRead> {
    if !args.first()?.eq_ignore_ascii_case(b"xreadgroup") {
        return None;
    }
    let read = polis_commands::stream::parse_read_args(args, true).ok()?;
    let (group, _) = read.group?;
    let keys: Vec<Bytes> = read
        .keys
        .into_iter()
        .zip(read.ids)
        .filter(|(_, id)| id.as_ref() == b">")
        .map(|(key, _)| key)
        .collect();
    (!keys.is_empty()).then_some(GroupRead { group, keys })
}

/// Returns the leader's time (ms) at which the next pending entry of the
/// read's group becomes due after `after_ms`, from this node's replica of
/// `shard`; None when none will (or the node holds no replica).
pub(super) fn next_due_ms(
    node: &Node,
    shard: GroupId,
    read: &GroupRead,
    after_ms: u64,
) -> Option<u64> {
    let group = node.shard(shard)?;
    let state = group.state().read();
    read.keys
        .iter()
        .filter_map(|key| {
            let stream = state.app.db.get(key, after_ms)?.as_stream()?;
            stream.groups.get(&read.group)?.next_due_after(after_ms)
        })
        .min()
}
