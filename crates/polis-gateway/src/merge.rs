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
            Combine::Kind(MergeKind::Info) => info(parts),
            Combine::Scan { shard, shards } => scan_page(parts.into_iter().next(), shard, shards),
        }
    }
}

/// The INFO fields that add up over the nodes (each node counts its own
/// clients, and the keys of the shards it leads).
const INFO_SUMS: &[&str] = &["connected_clients", "blocked_clients"];

/// Returns the first part's INFO text with [`INFO_SUMS`] and the keyspace
/// counts added up over every part.
fn info(parts: Vec<Reply>) -> Reply {
    let text = |part: &Reply| match part {
        Reply::Bulk(text) | Reply::Verbatim { text, .. } => {
            Some(String::from_utf8_lossy(text).into_owned())
        }
        _ => None,
    };
    let Some(first) = parts.first() else {
        return Reply::Null;
    };
    let texts: Vec<String> = parts.iter().filter_map(text).collect();
    let Some(home) = texts.first() else {
        return first.clone();
    };
    let field_sum = |field: &str| -> i64 {
        texts
            .iter()
            .filter_map(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
                    .and_then(|value| value.trim().parse::<i64>().ok())
            })
            .sum()
    };
    let db_sum = |name: &str| -> i64 {
        texts
            .iter()
            .filter_map(|text| {
                let line = text.lines().find_map(|line| line.strip_prefix("db0:"))?;
                line.split(',')
                    .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                    .and_then(|value| value.parse::<i64>().ok())
            })
            .sum()
    };
    let merged: Vec<String> = home
        .split("\r\n")
        .map(|line| match line.split_once(':') {
            Some((field, _)) if INFO_SUMS.contains(&field) => {
                format!("{field}:{}", field_sum(field))
            }
            Some(("db0", _)) => format!(
                "db0:keys={},expires={},avg_ttl=0",
                db_sum("keys"),
                db_sum("expires")
            ),
            _ => line.to_owned(),
        })
        .collect();
    let merged = merged.join("\r\n");
    let merged = Bytes::from(merged);
    match first {
        Reply::Verbatim { format, .. } => Reply::Verbatim {
            format: format.clone(),
            text: merged,
        },
        _ => Reply::Bulk(merged),
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
    fn info_adds_up_clients_and_keys_over_the_nodes() {
        let node = |blocked: i64, keys: i64| {
            Reply::Bulk(Bytes::from(format!(
                "# Clients\r\nconnected_clients:2\r\nblocked_clients:{blocked}\r\n\r\n# Keyspace\r\ndb0:keys={keys},expires=1,avg_ttl=0\r\n"
            )))
        };
        let mut merging = Merging::new(Combine::Kind(MergeKind::Info), 3, Vec::new());
        merging.take(0, node(0, 10));
        merging.take(1, node(1, 20));
        assert_eq!(
            merging.take(2, node(0, 30)),
            Some(Reply::Bulk(Bytes::from_static(
                b"# Clients\r\nconnected_clients:6\r\nblocked_clients:1\r\n\r\n# Keyspace\r\ndb0:keys=60,expires=3,avg_ttl=0\r\n"
            )))
        );
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
