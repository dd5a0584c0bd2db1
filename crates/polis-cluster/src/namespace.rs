//! Namespaces: key prefixes with settings, of which the longest matching
//! a key decides its consistency (strong: Raft per shard; eventual:
//! leaderless quorums), its quorums, and its cache limits (strong
//! namespaces: a `maxmemory` per node and a policy). A key outside every
//! namespace is strong.
//!
//! ```text
//!   "stock:"        eventual N=3 W=2 R=2
//!   "stock:hot:"    eventual N=3 W=1 R=1     key "stock:hot:42" ──> this one
//!   "order:"        strong                   key "cart:7"       ──> none: strong
//! ```

use std::collections::BTreeMap;

use bytes::Bytes;
use polis_types::limits::{NAMESPACES_MAX, NAMESPACE_PREFIX_LEN_MAX, NAMESPACE_REPLICAS_MAX};
use polis_types::EvictionPolicy;
use serde::{Deserialize, Serialize};

/// Which side of CAP a namespace's keys are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Consistency {
    /// Linearizable, through the shard's Raft group; a minority refuses.
    #[default]
    Strong,
    /// Leaderless: writes to N replicas answered after W, reads after R;
    /// both sides of a partition stay writable and converge after it.
    Eventual,
}

impl Consistency {
    /// Returns the name the CLI, the admin API and errors use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Strong => "strong",
            Self::Eventual => "eventual",
        }
    }

    /// Reads a name as [`Consistency::name`] writes it.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "strong" => Some(Self::Strong),
            "eventual" => Some(Self::Eventual),
            _ => None,
        }
    }
}

/// The quorums of an eventual namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorums {
    /// Replicas each key is written to (N).
    pub replicas: u8,
    /// Acknowledgements a write waits for (W).
    pub write: u8,
    /// Replicas a read asks (R).
    pub read: u8,
}

/// One namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub prefix: Bytes,
    pub consistency: Consistency,
    /// Set for eventual namespaces only.
    pub quorums: Option<Quorums>,
}

/// A strong namespace's cache limits: on every node, its keys are kept
/// within `maxmemory_bytes` by `policy`, as a node keeps all its keys
/// within its own `maxmemory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheLimits {
    pub maxmemory_bytes: u64,
    pub policy: EvictionPolicy,
}

/// A namespace that cannot be set, and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamespaceError {
    #[error("a namespace needs a prefix of 1 to {max} bytes", max = NAMESPACE_PREFIX_LEN_MAX)]
    BadPrefix,
    #[error("an eventual namespace needs --replicas, --write-quorum and --read-quorum")]
    QuorumsMissing,
    #[error("a strong namespace takes no quorums: Raft decides (drop --replicas, --write-quorum and --read-quorum)")]
    QuorumsOnStrong,
    #[error("quorums need 1 <= write quorum <= replicas, 1 <= read quorum <= replicas and replicas <= {max}; got N={replicas} W={write} R={read}", max = NAMESPACE_REPLICAS_MAX)]
    BadQuorums { replicas: u8, write: u8, read: u8 },
    #[error("a cluster holds at most {max} namespaces: remove one first", max = NAMESPACES_MAX)]
    TooMany,
    #[error("cache limits are for strong namespaces: eventual keys are kept on disk, not in memory (drop --maxmemory and --maxmemory-policy)")]
    CacheOnEventual,
    #[error("--maxmemory must be above 0 (drop it and --maxmemory-policy for no limit)")]
    CacheWithoutLimit,
    #[error("no namespace has this prefix: set the namespace first")]
    CacheWithoutNamespace,
}

/// The cluster's namespaces, by prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespaces {
    by_prefix: BTreeMap<Bytes, Namespace>,
    /// The cache limits of strong namespaces, by prefix (entry format 7;
    /// the last field, see [`crate::map_wire`]).
    caches: BTreeMap<Bytes, CacheLimits>,
}

impl Namespaces {
    /// Adds `namespace`, or replaces the one with its prefix, with no
    /// cache limits.
    ///
    /// # Errors
    /// A [`NamespaceError`] saying what to change; nothing is set then.
    pub fn set(&mut self, namespace: Namespace) -> Result<(), NamespaceError> {
        if namespace.prefix.is_empty() || namespace.prefix.len() > NAMESPACE_PREFIX_LEN_MAX {
            return Err(NamespaceError::BadPrefix);
        }
        match (namespace.consistency, namespace.quorums) {
            (Consistency::Strong, Some(_)) => return Err(NamespaceError::QuorumsOnStrong),
            (Consistency::Eventual, None) => return Err(NamespaceError::QuorumsMissing),
            (Consistency::Eventual, Some(quorums)) => {
                let Quorums {
                    replicas,
                    write,
                    read,
                } = quorums;
                if !(1..=NAMESPACE_REPLICAS_MAX).contains(&replicas)
                    || !(1..=replicas).contains(&write)
                    || !(1..=replicas).contains(&read)
                {
                    return Err(NamespaceError::BadQuorums {
                        replicas,
                        write,
                        read,
                    });
                }
            }
            (Consistency::Strong, None) => {}
        }
        if !self.by_prefix.contains_key(&namespace.prefix) && self.by_prefix.len() >= NAMESPACES_MAX
        {
            return Err(NamespaceError::TooMany);
        }
        self.caches.remove(&namespace.prefix);
        self.by_prefix.insert(namespace.prefix.clone(), namespace);
        Ok(())
    }

    /// Sets (`Some`) or lifts (`None`) the cache limits of the strong
    /// namespace of `prefix`.
    ///
    /// # Errors
    /// A [`NamespaceError`] saying what to change; nothing is set then.
    pub fn set_cache(
        &mut self,
        prefix: &[u8],
        limits: Option<CacheLimits>,
    ) -> Result<(), NamespaceError> {
        let namespace = self
            .by_prefix
            .get(prefix)
            .ok_or(NamespaceError::CacheWithoutNamespace)?;
        let Some(limits) = limits else {
            self.caches.remove(prefix);
            return Ok(());
        };
        if namespace.consistency != Consistency::Strong {
            return Err(NamespaceError::CacheOnEventual);
        }
        if limits.maxmemory_bytes == 0 {
            return Err(NamespaceError::CacheWithoutLimit);
        }
        self.caches.insert(namespace.prefix.clone(), limits);
        Ok(())
    }

    /// Returns the cache limits of the namespace of `prefix`, if it has
    /// any.
    pub fn cache(&self, prefix: &[u8]) -> Option<CacheLimits> {
        self.caches.get(prefix).copied()
    }

    /// Returns the namespaces with cache limits, in prefix order.
    pub fn caches(&self) -> impl Iterator<Item = (&Bytes, &CacheLimits)> {
        self.caches.iter()
    }

    /// Removes the namespace of `prefix` and its cache limits; returns
    /// it, if there was one.
    pub fn remove(&mut self, prefix: &[u8]) -> Option<Namespace> {
        self.caches.remove(prefix);
        self.by_prefix.remove(prefix)
    }

    /// Returns namespaces as a map of entry format 6 holds them: none
    /// with cache limits.
    pub(crate) fn without_caches(by_prefix: BTreeMap<Bytes, Namespace>) -> Self {
        Self {
            by_prefix,
            caches: BTreeMap::new(),
        }
    }

    /// Returns true when there is no namespace (every key is strong).
    pub fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
    }

    /// Returns the namespaces in prefix order.
    pub fn iter(&self) -> impl Iterator<Item = &Namespace> {
        self.by_prefix.values()
    }

    /// Returns the namespace of `key`: the one with the longest prefix of
    /// it, if any.
    pub fn lookup(&self, key: &[u8]) -> Option<&Namespace> {
        // A longer prefix of `key` sorts after a shorter one and not after
        // `key`: scanning down from `key`, the first prefix is the longest.
        self.by_prefix
            .range::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(key)))
            .rev()
            .map(|(_, namespace)| namespace)
            .find(|namespace| key.starts_with(&namespace.prefix))
    }

    /// Returns the consistency of `key` (strong outside every namespace).
    pub fn consistency(&self, key: &[u8]) -> Consistency {
        self.lookup(key)
            .map_or(Consistency::Strong, |namespace| namespace.consistency)
    }

    /// Returns the one consistency of `keys`, or None when they mix
    /// strong and eventual keys (a multi-key command may not).
    pub fn common_consistency<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<Consistency> {
        let mut common = None;
        for key in keys {
            let consistency = self.consistency(key);
            match common {
                None => common = Some(consistency),
                Some(seen) if seen != consistency => return None,
                Some(_) => {}
            }
        }
        Some(common.unwrap_or_default())
    }
}

#[cfg(test)]
#[path = "namespace_test.rs"]
mod tests;
