//! What the gateway knows of the cluster: the shards in map order, each
//! shard's slots and nodes (its leader first), read from `CLUSTER SHARDS`,
//! plus the moves that `MOVED` replies taught since.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use polis_resp::{ProtocolVersion, Reply};
use polis_types::SLOT_COUNT;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::frame::Frame;

/// A node's RESP address, `host:port`.
pub type Addr = Arc<str>;

/// One shard: its nodes, the one that leads it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub nodes: Vec<Addr>,
}

/// The cluster's layout as one node described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Each slot's shard, as an index into `shards` (`None`: no owner).
    slot_shard: Vec<Option<u16>>,
    /// The shards in the map's order (a SCAN cursor names one by its
    /// place here).
    pub shards: Vec<Shard>,
}

impl Topology {
    /// Returns the index of `slot`'s shard.
    pub fn shard_of(&self, slot: u16) -> Option<usize> {
        self.slot_shard
            .get(usize::from(slot))
            .copied()
            .flatten()
            .map(usize::from)
    }

    /// Returns every node, each once, in address order.
    pub fn nodes(&self) -> Vec<Addr> {
        let nodes: BTreeSet<Addr> = self
            .shards
            .iter()
            .flat_map(|shard| shard.nodes.iter().cloned())
            .collect();
        nodes.into_iter().collect()
    }

    /// Returns the nodes that lead at least one shard, each once: node-wide
    /// commands (DBSIZE, KEYS, FLUSHALL) cover the shards a node leads, so
    /// these cover every shard.
    pub fn leaders(&self) -> Vec<Addr> {
        let leaders: BTreeSet<Addr> = self
            .shards
            .iter()
            .filter_map(|shard| shard.nodes.first().cloned())
            .collect();
        leaders.into_iter().collect()
    }

    /// Reads the reply of `CLUSTER SHARDS` (RESP2: maps as flat arrays).
    ///
    /// # Errors
    /// A description of what is missing.
    pub fn from_shards_reply(reply: &Reply) -> Result<Self, String> {
        let Reply::Array(entries) = reply else {
            return Err(format!("CLUSTER SHARDS answered {reply:?}"));
        };
        let mut slot_shard = vec![None; usize::from(SLOT_COUNT)];
        let mut shards = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let fields = pairs(entry).ok_or("a shard is not a map")?;
            let index = u16::try_from(index).map_err(|_| "too many shards")?;
            let mut nodes = Vec::new();
            for (name, value) in fields {
                match (name.as_str(), value) {
                    ("slots", Reply::Array(bounds)) => {
                        for range in bounds.chunks(2) {
                            let [Reply::Integer(start), Reply::Integer(end)] = range else {
                                return Err("a slot range is not two integers".to_owned());
                            };
                            for slot in *start..=*end {
                                let slot =
                                    usize::try_from(slot).map_err(|_| "a slot out of range")?;
                                *slot_shard.get_mut(slot).ok_or("a slot out of range")? =
                                    Some(index);
                            }
                        }
                    }
                    ("nodes", Reply::Array(list)) => {
                        for node in list {
                            let fields = pairs(node).ok_or("a node is not a map")?;
                            let field = |wanted: &str| {
                                fields
                                    .iter()
                                    .find(|(name, _)| name == wanted)
                                    .map(|(_, value)| value)
                            };
                            // Over TLS, a node is reached at its TLS port.
                            let port_field = if crate::node_stream::upstream_tls() {
                                "tls-port"
                            } else {
                                "port"
                            };
                            let (Some(Reply::Bulk(ip)), Some(Reply::Integer(port))) =
                                (field("ip"), field(port_field))
                            else {
                                return Err(format!("a node has no ip or {port_field}"));
                            };
                            nodes.push(Addr::from(format!(
                                "{}:{port}",
                                String::from_utf8_lossy(ip)
                            )));
                        }
                    }
                    _ => {}
                }
            }
            shards.push(Shard { nodes });
        }
        Ok(Self { slot_shard, shards })
    }
}

/// Returns the (name, value) pairs of a map reply, RESP2 or RESP3.
fn pairs(reply: &Reply) -> Option<Vec<(String, &Reply)>> {
    let text = |reply: &Reply| match reply {
        Reply::Bulk(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Reply::Simple(text) => Some(text.clone()),
        _ => None,
    };
    match reply {
        Reply::Map(items) => items
            .iter()
            .map(|(name, value)| Some((text(name)?, value)))
            .collect(),
        Reply::Array(items) if items.len() % 2 == 0 => items
            .chunks(2)
            .map(|pair| Some((text(&pair[0])?, &pair[1])))
            .collect(),
        _ => None,
    }
}

/// Returns `args` as a RESP2 request.
pub(crate) fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> BytesMut {
    let mut request = BytesMut::new();
    polis_resp::encode_reply(
        &Reply::Array(
            args.iter()
                .map(|arg| Reply::Bulk(Bytes::copy_from_slice(arg.as_ref())))
                .collect(),
        ),
        ProtocolVersion::Resp2,
        &mut request,
    );
    request
}

/// Asks the node at `addr` one command and returns its reply (RESP2).
///
/// # Errors
/// I/O failures, an unreadable reply, or `timeout` passing.
pub async fn ask(addr: &str, args: &[&str], timeout: std::time::Duration) -> Result<Reply, String> {
    let work = async {
        let mut stream = crate::node_stream::NodeStream::dial(addr).await?;
        let mut request = crate::auth::handshake().unwrap_or_default();
        let mut replies_skipped = usize::from(!request.is_empty());
        request.extend_from_slice(&encode_command(args));
        stream
            .write_all(&request)
            .await
            .map_err(|error| error.to_string())?;
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            if let Some(frame) =
                Frame::split(&mut buf, ProtocolVersion::Resp2).map_err(|error| error.to_string())?
            {
                if replies_skipped > 0 {
                    replies_skipped -= 1;
                    if let Some(error) = frame.error() {
                        return Err(format!("{addr} refused the gateway's AUTH: {error}"));
                    }
                    continue;
                }
                return frame
                    .value(ProtocolVersion::Resp2)
                    .ok_or_else(|| "an unreadable reply".to_owned());
            }
            if stream
                .read_buf(&mut buf)
                .await
                .map_err(|error| error.to_string())?
                == 0
            {
                return Err("the node closed the connection".to_owned());
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no reply from {addr} within {timeout:?}"))?
}

/// The slots `MOVED` replies moved since the topology was read.
#[derive(Debug, Default)]
pub struct Moves {
    pub slots: HashMap<u16, Addr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
    }

    fn node(port: i64, role: &str) -> Reply {
        Reply::Array(vec![
            bulk("id"),
            bulk("abc"),
            bulk("port"),
            Reply::Integer(port),
            bulk("ip"),
            bulk("127.0.0.1"),
            bulk("role"),
            bulk(role),
        ])
    }

    #[test]
    fn shards_are_read_in_order_with_their_leader_first() {
        let reply = Reply::Array(vec![
            Reply::Array(vec![
                bulk("slots"),
                Reply::Array(vec![Reply::Integer(0), Reply::Integer(8191)]),
                bulk("nodes"),
                Reply::Array(vec![node(7001, "master"), node(7002, "replica")]),
            ]),
            Reply::Array(vec![
                bulk("slots"),
                Reply::Array(vec![Reply::Integer(8192), Reply::Integer(16383)]),
                bulk("nodes"),
                Reply::Array(vec![node(7002, "master"), node(7001, "replica")]),
            ]),
        ]);
        let topology = Topology::from_shards_reply(&reply).unwrap();
        assert_eq!(topology.shard_of(0), Some(0));
        assert_eq!(topology.shard_of(8191), Some(0));
        assert_eq!(topology.shard_of(8192), Some(1));
        assert_eq!(&*topology.shards[1].nodes[0], "127.0.0.1:7002");
        assert_eq!(topology.nodes().len(), 2);
        assert_eq!(topology.leaders().len(), 2);
    }

    #[test]
    fn a_malformed_reply_is_an_error() {
        assert!(Topology::from_shards_reply(&Reply::Integer(1)).is_err());
        let reply = Reply::Array(vec![Reply::Array(vec![
            bulk("slots"),
            Reply::Array(vec![Reply::Integer(0), Reply::Integer(99_999)]),
        ])]);
        assert!(Topology::from_shards_reply(&reply).is_err());
    }
}
