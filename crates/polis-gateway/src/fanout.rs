//! Requests that go to several nodes: fanned out to every node or leader
//! (DBSIZE, KEYS, INFO, ...), split by slot (MGET, DEL, ...), or walked
//! shard by shard (SCAN, whose cursor's top bits name the shard).

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};

use crate::merge::{Combine, Merging};
use crate::route::{lower, MergeKind, Target};
use crate::session::{OwedState, Session};
use crate::upstream::Expect;

impl Session {
    /// Sends a request to every node (or every leader) and merges the replies.
    pub(crate) async fn fan_out(
        &mut self,
        target: Target,
        merge: MergeKind,
        args: Vec<Bytes>,
        silent: bool,
    ) {
        let topology = self.cluster.topology();
        let mut nodes = match target {
            Target::All => topology.nodes(),
            _ => topology.leaders(),
        };
        if merge == MergeKind::Info {
            // The home node's text, the others' counts.
            if let Some(home) = self.resolve(&Target::Home, false) {
                nodes.retain(|node| *node != home);
                nodes.insert(0, home);
            }
        }
        if merge == MergeKind::FirstNonNull {
            // RANDOMKEY: a random node's key, not always the first's.
            rand::seq::SliceRandom::shuffle(&mut nodes[..], &mut rand::rng());
        }
        let merging = Merging::new(Combine::Kind(merge), nodes.len(), Vec::new());
        let seq = self.owe(OwedState::Merging(merging), silent);
        for (part, addr) in nodes.into_iter().enumerate() {
            let expect = Expect {
                seq,
                args: args.clone(),
                slot: None,
                attempts: 0,
                silent: false,
                retry: false,
                part: Some(part),
            };
            self.send_to(addr, expect, false).await;
        }
    }

    /// Sends each slot its part of a multi-key request and merges the replies.
    pub(crate) async fn split(
        &mut self,
        merge: MergeKind,
        parts: Vec<(u16, Vec<Bytes>, Vec<usize>)>,
        args: Vec<Bytes>,
        silent: bool,
    ) {
        let places = parts.iter().map(|(_, _, places)| places.clone()).collect();
        let merging = Merging::new(Combine::Kind(merge), parts.len(), places);
        let seq = self.owe(OwedState::Merging(merging), silent);
        let read =
            merge == MergeKind::Places || args.first().is_some_and(|name| lower(name) == "exists");
        for (part, (slot, part_args, _)) in parts.into_iter().enumerate() {
            let expect = Expect {
                seq,
                args: part_args,
                slot: Some(slot),
                attempts: 0,
                silent: false,
                retry: true,
                part: Some(part),
            };
            self.send(&Target::Slot(slot), expect, read).await;
        }
    }

    /// Sends SCAN to the leader of the shard its cursor names.
    pub(crate) async fn scan(&mut self, args: Vec<Bytes>, silent: bool) {
        let shards = self.cluster.topology().shards.len();
        let cursor: Option<u64> = args
            .get(1)
            .and_then(|cursor| std::str::from_utf8(cursor).ok())
            .and_then(|cursor| cursor.parse().ok());
        let Some(cursor) = cursor else {
            self.answer(Reply::Error(ReplyError::err("invalid cursor")), silent);
            return;
        };
        let shard = (cursor >> crate::merge::SCAN_INDEX_SHIFT) as usize;
        let Some(addr) = (shard < shards)
            .then(|| self.cluster.route_shard(shard))
            .flatten()
        else {
            self.answer(
                Reply::Array(vec![
                    Reply::Bulk(Bytes::from_static(b"0")),
                    Reply::Array(Vec::new()),
                ]),
                silent,
            );
            return;
        };
        let merging = Merging::new(Combine::Scan { shard, shards }, 1, Vec::new());
        let seq = self.owe(OwedState::Merging(merging), silent);
        let expect = Expect {
            seq,
            args,
            slot: None,
            attempts: 0,
            silent: false,
            retry: false,
            part: Some(0),
        };
        self.send_to(addr, expect, false).await;
    }
}
