//! Shard channels whose slot left this node: their subscribers get
//! Redis's `sunsubscribe` push and subscribe again where the slot lives.
//!
//! A node serves a shard channel while it holds a replica of the shard
//! owning the channel's slot (leader or follower: SPUBLISH reaches every
//! replica's node, so a leader change changes nothing). When a migration
//! gives the slot to a shard with no replica here, or the node's replica
//! moves away, nothing published to the channel reaches this node any
//! more; Redis Cluster then unsubscribes the channel's clients with a
//! `sunsubscribe` push, and so does polis.

use tokio::time::Instant;

use bytes::Bytes;
use polis_resp::Reply;

use super::{Kind, PubSub};

impl PubSub {
    /// Unsubscribes every client from the shard channels for which `lost`
    /// holds, pushing each a `sunsubscribe <channel> <count>`; returns how
    /// many subscriptions ended.
    pub fn drop_shard_channels(&self, lost: impl Fn(&Bytes) -> bool) -> usize {
        let mut state = self.lock();
        let names: Vec<Bytes> = state
            .shard_channels
            .keys()
            .filter(|name| lost(name))
            .cloned()
            .collect();
        let limit = state.limit;
        let now = Instant::now();
        let mut ended = 0;
        let mut overflowed = Vec::new();
        for name in names {
            let Some(subscribers) = state.shard_channels.get(&name).cloned() else {
                continue;
            };
            for (id, mailbox) in subscribers {
                state.remove(id, Kind::Shard, &name);
                ended += 1;
                let count = state
                    .clients
                    .get(&id)
                    .map_or(0, |subs| subs.count(Kind::Shard));
                let push = Reply::Push(vec![
                    Reply::bulk(Kind::Shard.unsubscribed()),
                    Reply::Bulk(name.clone()),
                    Reply::Integer(count as i64),
                ]);
                let bytes = super::push_len(&[
                    Kind::Shard.unsubscribed().as_bytes(),
                    &name,
                    count.to_string().as_bytes(),
                ]);
                if !mailbox.deliver(push, bytes, &limit, now) {
                    overflowed.push(id);
                }
                if state.clients.get(&id).is_some_and(|subs| subs.total() == 0) {
                    state.clients.remove(&id);
                }
            }
        }
        for id in overflowed {
            state.forget(id);
        }
        ended
    }
}
