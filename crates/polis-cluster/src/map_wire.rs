//! The map's stored and sent forms across versions.
//!
//! A map is postcard, field after field. Fields are only ever added at
//! the end, so a binary that knows fewer fields reads a newer map's
//! prefix (postcard leaves the rest unread), and this binary reads an
//! older map, which ends early, through its older shape:
//!
//! ```text
//!   format 1..5: cluster_id .. shards_min
//!   format 6:    cluster_id .. shards_min  namespaces
//!   format 7:    cluster_id .. shards_min  namespaces  caches
//!   format 8:    cluster_id .. shards_min  namespaces  caches  users
//!   format 9:    cluster_id .. shards_min  namespaces  caches  users  tls_addrs
//! ```
//!
//! A new map holds no namespace yet, so [`MetaCommand::Create`] carries
//! the older shape, which every binary reads.
//!
//! [`MetaCommand::Create`]: crate::meta::MetaCommand::Create

use std::collections::BTreeMap;

use polis_types::{GroupId, NodeId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::map::{ClusterMap, NodeRecord, ShardRecord};
use crate::migration::Migration;
use crate::namespace::{Namespace, Namespaces};

/// The map as binaries before entry format 6 wrote it.
#[derive(Serialize, Deserialize)]
struct MapV5 {
    cluster_id: u64,
    creator: NodeId,
    version: u64,
    cluster_version: u32,
    next_replica_id: u64,
    nodes: BTreeMap<NodeId, NodeRecord>,
    shards: BTreeMap<GroupId, ShardRecord>,
    next_migration_id: u64,
    migrations: BTreeMap<u64, Migration>,
    next_shard_id: u64,
    shards_min: u32,
}

/// The map as binaries of entry format 6 wrote it: namespaces without
/// cache limits.
#[derive(Serialize, Deserialize)]
struct MapV6 {
    v5: MapV5,
    namespaces: BTreeMap<bytes::Bytes, Namespace>,
}

/// The map as binaries of entry format 7 wrote it: no ACL users.
#[derive(Serialize, Deserialize)]
struct MapV7 {
    v5: MapV5,
    namespaces: Namespaces,
}

/// The map as binaries of entry format 8 wrote it: no TLS addresses.
#[derive(Serialize, Deserialize)]
struct MapV8 {
    v7: MapV7,
    users: BTreeMap<String, Vec<String>>,
}

impl From<MapV8> for ClusterMap {
    fn from(old: MapV8) -> Self {
        let mut map = ClusterMap::from(old.v7);
        map.users = old.users;
        map
    }
}

impl From<MapV7> for ClusterMap {
    fn from(old: MapV7) -> Self {
        let mut map = ClusterMap::from(old.v5);
        map.namespaces = old.namespaces;
        map
    }
}

impl From<MapV6> for ClusterMap {
    fn from(old: MapV6) -> Self {
        let mut map = ClusterMap::from(old.v5);
        map.namespaces = Namespaces::without_caches(old.namespaces);
        map
    }
}

impl From<MapV5> for ClusterMap {
    fn from(old: MapV5) -> Self {
        Self {
            cluster_id: old.cluster_id,
            creator: old.creator,
            version: old.version,
            cluster_version: old.cluster_version,
            next_replica_id: old.next_replica_id,
            nodes: old.nodes,
            shards: old.shards,
            next_migration_id: old.next_migration_id,
            migrations: old.migrations,
            next_shard_id: old.next_shard_id,
            shards_min: old.shards_min,
            namespaces: Namespaces::default(),
            users: BTreeMap::new(),
            tls_addrs: BTreeMap::new(),
        }
    }
}

impl From<&ClusterMap> for MapV5 {
    fn from(map: &ClusterMap) -> Self {
        Self {
            cluster_id: map.cluster_id,
            creator: map.creator,
            version: map.version,
            cluster_version: map.cluster_version,
            next_replica_id: map.next_replica_id,
            nodes: map.nodes.clone(),
            shards: map.shards.clone(),
            next_migration_id: map.next_migration_id,
            migrations: map.migrations.clone(),
            next_shard_id: map.next_shard_id,
            shards_min: map.shards_min,
        }
    }
}

impl ClusterMap {
    /// Reads a map that ends `bytes`, in this binary's form or an older
    /// one (format 8: no TLS addresses; format 7: no users; format 6: no
    /// cache limits; before it: no namespaces).
    ///
    /// # Errors
    /// The error of the newest form when no form reads the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes::<ClusterMap>(bytes).or_else(|newest| {
            postcard::from_bytes::<MapV8>(bytes)
                .map(ClusterMap::from)
                .or_else(|_| postcard::from_bytes::<MapV7>(bytes).map(ClusterMap::from))
                .or_else(|_| postcard::from_bytes::<MapV6>(bytes).map(ClusterMap::from))
                .or_else(|_| postcard::from_bytes::<MapV5>(bytes).map(ClusterMap::from))
                .map_err(|_| newest)
        })
    }

    /// Reads an optional map (the meta group's snapshot), in this
    /// binary's form or an older one.
    ///
    /// # Errors
    /// The error of the newest form when no form reads the bytes.
    pub fn decode_optional(bytes: &[u8]) -> Result<Option<Self>, postcard::Error> {
        postcard::from_bytes::<Option<ClusterMap>>(bytes).or_else(|newest| {
            postcard::from_bytes::<Option<MapV8>>(bytes)
                .map(|old| old.map(ClusterMap::from))
                .or_else(|_| {
                    postcard::from_bytes::<Option<MapV7>>(bytes)
                        .map(|old| old.map(ClusterMap::from))
                })
                .or_else(|_| {
                    postcard::from_bytes::<Option<MapV6>>(bytes)
                        .map(|old| old.map(ClusterMap::from))
                })
                .or_else(|_| {
                    postcard::from_bytes::<Option<MapV5>>(bytes)
                        .map(|old| old.map(ClusterMap::from))
                })
                .map_err(|_| newest)
        })
    }
}

/// Serde for a new map in [`MetaCommand::Create`]: the older shape (a new
/// map has no namespaces; creating one with namespaces is refused).
///
/// [`MetaCommand::Create`]: crate::meta::MetaCommand::Create
pub(crate) mod created {
    use super::*;

    pub fn serialize<S: Serializer>(map: &ClusterMap, serializer: S) -> Result<S::Ok, S::Error> {
        MapV5::from(map).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ClusterMap, D::Error> {
        MapV5::deserialize(deserializer).map(ClusterMap::from)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail loudly.

    use bytes::Bytes;

    use super::*;
    use crate::namespace::{Consistency, Namespace, Quorums};
    use crate::test_support::map;

    fn with_namespace() -> ClusterMap {
        let mut map = map(3, 3);
        map.namespaces
            .set(Namespace {
                prefix: Bytes::from_static(b"stock:"),
                consistency: Consistency::Eventual,
                quorums: Some(Quorums {
                    replicas: 3,
                    write: 2,
                    read: 2,
                }),
            })
            .unwrap();
        map
    }

    #[test]
    fn a_map_stored_before_namespaces_reads_as_one_without_them() {
        let map = with_namespace();
        let old = postcard::to_stdvec(&MapV5::from(&map)).unwrap();
        let read = ClusterMap::decode(&old).unwrap();
        assert_eq!(read.namespaces, Namespaces::default());
        assert_eq!(read.nodes, map.nodes);
        assert_eq!(read.shards, map.shards);
        assert_eq!(read.version, map.version);
        let snapshot = postcard::to_stdvec(&Some(MapV5::from(&map))).unwrap();
        let read = ClusterMap::decode_optional(&snapshot).unwrap().unwrap();
        assert_eq!(read.shards, map.shards);
        let empty = postcard::to_stdvec(&None::<MapV5>).unwrap();
        assert_eq!(ClusterMap::decode_optional(&empty).unwrap(), None);
    }

    #[test]
    fn a_map_with_namespaces_round_trips_and_an_older_binary_reads_its_prefix() {
        let map = with_namespace();
        let bytes = postcard::to_stdvec(&map).unwrap();
        assert_eq!(ClusterMap::decode(&bytes).unwrap(), map);
        let snapshot = postcard::to_stdvec(&Some(&map)).unwrap();
        assert_eq!(
            ClusterMap::decode_optional(&snapshot).unwrap(),
            Some(map.clone())
        );
        let older: MapV5 = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(older.shards, map.shards);
        assert!(ClusterMap::decode(&bytes[..bytes.len() / 2]).is_err());
    }

    #[test]
    fn a_map_of_format_6_reads_with_its_namespaces_and_no_cache_limits() {
        let mut map = with_namespace();
        let strong = Namespace {
            prefix: Bytes::from_static(b"cache:"),
            consistency: Consistency::Strong,
            quorums: None,
        };
        map.namespaces.set(strong).unwrap();
        let limits = crate::namespace::CacheLimits {
            maxmemory_bytes: 1 << 20,
            policy: polis_types::EvictionPolicy::AllKeysLru,
        };
        map.namespaces.set_cache(b"cache:", Some(limits)).unwrap();
        let by_prefix: BTreeMap<Bytes, Namespace> = map
            .namespaces
            .iter()
            .map(|namespace| (namespace.prefix.clone(), namespace.clone()))
            .collect();
        let old = MapV6 {
            v5: MapV5::from(&map),
            namespaces: by_prefix.clone(),
        };
        let read = ClusterMap::decode(&postcard::to_stdvec(&old).unwrap()).unwrap();
        assert_eq!(read.namespaces.iter().count(), 2);
        assert_eq!(read.namespaces.cache(b"cache:"), None);
        let snapshot = postcard::to_stdvec(&Some(old)).unwrap();
        let read = ClusterMap::decode_optional(&snapshot).unwrap().unwrap();
        assert_eq!(read.namespaces.iter().count(), 2);
        // This binary's map keeps the limits; a format 6 binary reads the
        // namespaces before them.
        let bytes = postcard::to_stdvec(&map).unwrap();
        assert_eq!(
            ClusterMap::decode(&bytes)
                .unwrap()
                .namespaces
                .cache(b"cache:"),
            Some(limits)
        );
        let older: MapV6 = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(older.namespaces, by_prefix);
    }

    /// Checks that `old`, stored as a map and as a snapshot's optional
    /// map, reads back as `map`.
    fn reads_as<T: Serialize>(old: &T, map: &ClusterMap) {
        let read = ClusterMap::decode(&postcard::to_stdvec(old).unwrap()).unwrap();
        assert_eq!(&read, map);
        let snapshot = postcard::to_stdvec(&Some(old)).unwrap();
        assert_eq!(
            ClusterMap::decode_optional(&snapshot).unwrap().as_ref(),
            Some(map)
        );
    }

    #[test]
    fn a_map_of_format_7_reads_with_no_users_and_a_format_7_binary_reads_ours() {
        let mut map = with_namespace();
        let old = MapV7 {
            v5: MapV5::from(&map),
            namespaces: map.namespaces.clone(),
        };
        reads_as(&old, &map);
        map.users
            .insert("alice".into(), vec!["on".into(), "nopass".into()]);
        let bytes = postcard::to_stdvec(&map).unwrap();
        assert_eq!(ClusterMap::decode(&bytes).unwrap(), map);
        let older: MapV7 = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(older.namespaces, map.namespaces);
    }

    #[test]
    fn a_map_of_format_8_reads_with_no_tls_addresses_and_a_format_8_binary_reads_ours() {
        let mut map = with_namespace();
        map.users
            .insert("alice".into(), vec!["on".into(), "nopass".into()]);
        let old = MapV8 {
            v7: MapV7 {
                v5: MapV5::from(&map),
                namespaces: map.namespaces.clone(),
            },
            users: map.users.clone(),
        };
        reads_as(&old, &map);
        map.tls_addrs.insert(NodeId(2), "127.0.0.1:7401".into());
        let bytes = postcard::to_stdvec(&map).unwrap();
        assert_eq!(ClusterMap::decode(&bytes).unwrap(), map);
        let older: MapV8 = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(older.users, map.users);
    }
}
