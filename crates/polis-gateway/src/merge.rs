//! Putting together the replies of a request the gateway split or fanned
//! out: each part's reply is kept until the last one comes, then one
//! reply is made, as the client would have had it from one node.

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};

use crate::route::MergeKind;

/// How a merge ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    Kind(MergeKind),
    /// One SCAN page from the shard at `shard` of `shards`: its cursor
    /// goes on to the next shard when the node's goes elsewhere.
    Scan {
        shard: usize,
        shards: usize,
    },
}

/// Replies of the parts of one request, gathering.
#[derive(Debug)]
pub struct Merging {
    combine: Combine,
    parts: Vec<Option<Reply>>,
    /// For MGET: each part's key places in the request.
    places: Vec<Vec<usize>>,
    left: usize,
}

/// The bits of a SCAN cursor below the shard's index.
pub const SCAN_INDEX_SHIFT: u32 = 52;

impl Merging {
    /// Waits for `parts` replies.
    pub fn new(combine: Combine, parts: usize, places: Vec<Vec<usize>>) -> Self {
        Self {
            combine,
            parts: vec![None; parts],
            places,
            left: parts,
        }
    }

    /// Keeps part `part`'s reply; returns the merged reply once every part
    /// has come.
    pub fn take(&mut self, part: usize, reply: Reply) -> Option<Reply> {
        let slot = self.parts.get_mut(part)?;
        if slot.is_none() {
            self.left -= 1;
        }
        *slot = Some(reply);
        (self.left == 0).then(|| self.finish())
    }

    fn finish(&mut self) -> Reply {
        let parts: Vec<Reply> = self
            .parts
            .iter_mut()
            .map(|part| part.take().unwrap_or(Reply::Null))
            .collect();
        if let Some(error) = parts.iter().find(|part| matches!(part, Reply::Error(_))) {
            return error.clone();
        }
        match self.combine {
            Combine::Kind(MergeKind::Sum) => {
                let mut total: i64 = 0;
                for part in &parts {
                    match part {
                        Reply::Integer(value) => total = total.saturating_add(*value),
                        other => return unexpected(other),
                    }
                }
                Reply::Integer(total)
            }
            Combine::Kind(MergeKind::Concat) => {
                let mut items = Vec::new();
                for part in parts {
                    match part {
                        Reply::Array(part) | Reply::Set(part) => items.extend(part),
                        other => return unexpected(&other),
                    }
                }
                Reply::Array(items)
            }
            Combine::Kind(MergeKind::Places) => {
                let count = self.places.iter().map(Vec::len).sum();
                let mut items = vec![Reply::Null; count];
                for (part, places) in parts.into_iter().zip(&self.places) {
                    let Reply::Array(values) = part else {
                        return unexpected(&part);
                    };
                    for (value, place) in values.into_iter().zip(places) {
                        if let Some(item) = items.get_mut(*place) {
                            *item = value;
                        }
                    }
                }
                Reply::Array(items)
            }
            Combine::Kind(MergeKind::AllOk) => Reply::ok(),
            Combine::Kind(MergeKind::FirstNonNull) => parts
                .into_iter()
                .find(|part| !matches!(part, Reply::Null))
                .unwrap_or(Reply::Null),
            Combine::Kind(MergeKind::Info) => crate::info::merge(parts),
            Combine::Scan { shard, shards } => scan_page(parts.into_iter().next(), shard, shards),
        }
    }
}

/// Rewrites a node's SCAN page so its cursor walks the shards in order.
fn scan_page(page: Option<Reply>, shard: usize, shards: usize) -> Reply {
    let Some(Reply::Array(mut page)) = page else {
        return unexpected(&Reply::Null);
    };
    let (Some(items), Some(Reply::Bulk(next))) = (page.pop(), page.pop()) else {
        return unexpected(&Reply::Array(page));
    };
    let next: u64 = std::str::from_utf8(&next)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0);
    let same_shard = next != 0 && (next >> SCAN_INDEX_SHIFT) as usize == shard;
    let cursor = if same_shard {
        next
    } else if shard + 1 < shards {
        ((shard + 1) as u64) << SCAN_INDEX_SHIFT
    } else {
        0
    };
    Reply::Array(vec![Reply::Bulk(Bytes::from(cursor.to_string())), items])
}

fn unexpected(reply: &Reply) -> Reply {
    Reply::Error(ReplyError::err(format!(
        "unexpected reply from a node: {reply:?}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn mget_parts_go_back_to_their_places() {
        let mut merging = Merging::new(
            Combine::Kind(MergeKind::Places),
            2,
            vec![vec![0, 2], vec![1]],
        );
        assert_eq!(merging.take(1, Reply::Array(vec![Reply::Null])), None);
        assert_eq!(
            merging.take(0, Reply::Array(vec![bulk("a"), bulk("c")])),
            Some(Reply::Array(vec![bulk("a"), Reply::Null, bulk("c")]))
        );
    }

    #[test]
    fn sums_add_and_an_error_wins() {
        let mut merging = Merging::new(Combine::Kind(MergeKind::Sum), 3, Vec::new());
        merging.take(0, Reply::Integer(2));
        merging.take(1, Reply::Integer(3));
        assert_eq!(merging.take(2, Reply::Integer(4)), Some(Reply::Integer(9)));
        let mut merging = Merging::new(Combine::Kind(MergeKind::Sum), 2, Vec::new());
        merging.take(
            0,
            Reply::Error(ReplyError::TryAgain("slot moving".to_owned())),
        );
        assert!(matches!(
            merging.take(1, Reply::Integer(1)),
            Some(Reply::Error(_))
        ));
    }

    #[test]
    fn a_scan_cursor_walks_on_to_the_next_shard() {
        let page = |next: u64| {
            Reply::Array(vec![
                Reply::Bulk(Bytes::from(next.to_string())),
                Reply::Array(vec![bulk("k")]),
            ])
        };
        let within = (1u64 << SCAN_INDEX_SHIFT) | 77;
        let mut merging = Merging::new(
            Combine::Scan {
                shard: 1,
                shards: 3,
            },
            1,
            Vec::new(),
        );
        assert_eq!(merging.take(0, page(within)), Some(page(within)));
        // The node went on to a shard of its own: the gateway goes to the
        // next shard, whoever leads it.
        let mut merging = Merging::new(
            Combine::Scan {
                shard: 1,
                shards: 3,
            },
            1,
            Vec::new(),
        );
        assert_eq!(
            merging.take(0, page(3u64 << SCAN_INDEX_SHIFT)),
            Some(page(2u64 << SCAN_INDEX_SHIFT))
        );
        let mut merging = Merging::new(
            Combine::Scan {
                shard: 2,
                shards: 3,
            },
            1,
            Vec::new(),
        );
        assert_eq!(merging.take(0, page(0)), Some(page(0)));
    }
}
