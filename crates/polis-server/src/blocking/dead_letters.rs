//! Blocked readers of dead-letter streams: a group read (XREADGROUP)
//! may append to its group's dead-letter stream, a key it does not name.
//! The write path notes the last ids of those streams before it proposes
//! and wakes the readers of the ones that grew, even after a blocked
//! reader's empty retry (which wakes nobody on its own keys): only a
//! stream that grew wakes anyone, so two groups dead-lettering into each
//! other's streams cannot wake each other for ever.

use bytes::Bytes;
use polis_store::StreamId;

use crate::machine::Op;
use crate::node::{now_ms, ShardGroup};

/// Returns the dead-letter streams the group reads of `op` may append
/// to, each with its last id now (None: no stream there), from the
/// shard's applied state.
pub(crate) fn tops(group: &ShardGroup, op: &Op) -> Vec<(Bytes, Option<StreamId>)> {
    let commands: Vec<&[Bytes]> = match op {
        Op::Command(logged) => vec![logged.args.as_slice()],
        Op::Batch(batch) => batch.iter().map(|logged| logged.args.as_slice()).collect(),
        Op::Exec(transaction) => transaction.commands.iter().map(Vec::as_slice).collect(),
        _ => Vec::new(),
    };
    let reads: Vec<&[Bytes]> = commands
        .into_iter()
        .filter(|args| {
            args.first()
                .is_some_and(|name| name.eq_ignore_ascii_case(b"xreadgroup"))
        })
        .collect();
    if reads.is_empty() {
        return Vec::new();
    }
    let state = group.state().read();
    let now = now_ms();
    let top = |key: &Bytes| {
        state
            .app
            .db
            .get(key, now)
            .and_then(|value| value.as_stream())
            .map(|stream| stream.last_id)
    };
    reads
        .into_iter()
        .flat_map(|args| polis_commands::stream::dead_letter_keys(&state.app.db, args, now))
        .map(|key| {
            let last = top(&key);
            (key, last)
        })
        .collect()
}

/// Returns the dead-letter streams of `before` whose last id changed
/// since: something was appended to them.
pub(crate) fn grown(group: &ShardGroup, before: Vec<(Bytes, Option<StreamId>)>) -> Vec<Bytes> {
    if before.is_empty() {
        return Vec::new();
    }
    let state = group.state().read();
    let now = now_ms();
    before
        .into_iter()
        .filter(|(key, last)| {
            let top = state
                .app
                .db
                .get(key, now)
                .and_then(|value| value.as_stream())
                .map(|stream| stream.last_id);
            top != *last
        })
        .map(|(key, _)| key)
        .collect()
}
