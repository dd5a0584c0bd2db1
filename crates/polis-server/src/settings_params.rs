//! The parameters CONFIG GET/SET knows, with their kinds and defaults.

use polis_types::limits;

#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// An integer in `min..=max`; accepts memory units (`1mb`, `2gb`).
    Integer {
        min: i64,
        max: i64,
    },
    Bool,
    Choice(&'static [&'static str]),
    Text,
    /// `client-output-buffer-limit`: `<class> <hard> <soft> <seconds>`
    /// groups; a SET changes the classes it names and keeps the others.
    OutputBufferLimit,
    /// `notify-keyspace-events`: Redis's event class letters, printed
    /// back in Redis's order.
    KeyEvents,
}

pub(super) struct Param {
    pub(super) name: &'static str,
    pub(super) aliases: &'static [&'static str],
    pub(super) kind: Kind,
    pub(super) default: &'static str,
}

const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

pub(super) const PARAMS: &[Param] = &[
    Param {
        name: "proto-max-bulk-len",
        aliases: &[],
        kind: Kind::Integer {
            min: limits::PROTO_MAX_BULK_LEN_MIN as i64,
            max: i64::MAX,
        },
        default: "536870912",
    },
    Param {
        name: "client-query-buffer-limit",
        aliases: &[],
        kind: Kind::Integer {
            min: 1024 * 1024,
            max: i64::MAX,
        },
        default: "1073741824",
    },
    Param {
        name: "client-output-buffer-limit",
        aliases: &[],
        kind: Kind::OutputBufferLimit,
        default: "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    },
    Param {
        name: "maxclients",
        aliases: &[],
        kind: Kind::Integer {
            min: 1,
            max: 1_000_000,
        },
        default: "10000",
    },
    Param {
        name: "maxmemory",
        aliases: &[],
        kind: Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        default: "0",
    },
    Param {
        name: "maxmemory-policy",
        aliases: &[],
        kind: Kind::Choice(POLICIES),
        default: "noeviction",
    },
    Param {
        name: "maxmemory-samples",
        aliases: &[],
        kind: Kind::Integer {
            min: 1,
            max: limits::EVICTION_SAMPLES_MAX as i64,
        },
        default: "5",
    },
    Param {
        // Accepted as Redis does; a round of eviction here is bounded by
        // keys (EVICT_BATCH_KEYS_MAX), not by time.
        name: "maxmemory-eviction-tenacity",
        aliases: &[],
        kind: Kind::Integer { min: 0, max: 100 },
        default: "10",
    },
    Param {
        name: "lfu-log-factor",
        aliases: &[],
        kind: Kind::Integer {
            min: 0,
            max: i32::MAX as i64,
        },
        default: "10",
    },
    Param {
        name: "lfu-decay-time",
        aliases: &[],
        kind: Kind::Integer {
            min: 0,
            max: i32::MAX as i64,
        },
        default: "1",
    },
    Param {
        name: "hash-max-listpack-entries",
        aliases: &["hash-max-ziplist-entries"],
        kind: Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        default: "128",
    },
    Param {
        name: "hash-max-listpack-value",
        aliases: &["hash-max-ziplist-value"],
        kind: Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        default: "64",
    },
    Param {
        name: "list-max-listpack-size",
        aliases: &["list-max-ziplist-size"],
        kind: Kind::Integer {
            min: i64::MIN,
            max: i64::MAX,
        },
        default: "-2",
    },
    Param {
        name: "set-max-intset-entries",
        aliases: &[],
        kind: Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        default: "512",
    },
    Param {
        name: "zset-max-listpack-entries",
        aliases: &["zset-max-ziplist-entries"],
        kind: Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        default: "128",
    },
    Param {
        name: "zset-max-listpack-value",
        aliases: &["zset-max-ziplist-value"],
        kind: Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        default: "64",
    },
    Param {
        name: "list-compress-depth",
        aliases: &[],
        kind: Kind::Integer {
            min: 0,
            max: i32::MAX as i64,
        },
        default: "0",
    },
    Param {
        name: "stream-node-max-bytes",
        aliases: &[],
        kind: Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        default: "4096",
    },
    Param {
        name: "stream-node-max-entries",
        aliases: &[],
        kind: Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        default: "100",
    },
    Param {
        name: "lazyfree-lazy-user-del",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
    },
    Param {
        name: "lazyfree-lazy-user-flush",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
    },
    Param {
        name: "lazyfree-lazy-expire",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
    },
    Param {
        name: "lazyfree-lazy-eviction",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
    },
    Param {
        name: "lazyfree-lazy-server-del",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
    },
    Param {
        name: "activedefrag",
        aliases: &[],
        kind: Kind::Bool,
        default: "no",
    },
    Param {
        name: "appendonly",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
    },
    Param {
        name: "appendfsync",
        aliases: &[],
        kind: Kind::Choice(&["always", "everysec", "no"]),
        default: "always",
    },
    Param {
        name: "save",
        aliases: &[],
        kind: Kind::Text,
        default: "",
    },
    Param {
        name: "notify-keyspace-events",
        aliases: &[],
        kind: Kind::KeyEvents,
        default: "",
    },
    Param {
        name: "hz",
        aliases: &[],
        kind: Kind::Integer { min: 1, max: 500 },
        default: "10",
    },
    Param {
        name: "timeout",
        aliases: &[],
        kind: Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        default: "0",
    },
    Param {
        name: "slowlog-log-slower-than",
        aliases: &[],
        kind: Kind::Integer {
            min: -1,
            max: i64::MAX,
        },
        default: "10000",
    },
    Param {
        name: "slowlog-max-len",
        aliases: &[],
        kind: Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        default: "128",
    },
    Param {
        name: "latency-monitor-threshold",
        aliases: &[],
        kind: Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        default: "0",
    },
    Param {
        name: "latency-tracking",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
    },
    Param {
        name: "cluster-enabled",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
    },
    Param {
        name: "databases",
        aliases: &[],
        kind: Kind::Integer { min: 1, max: 1 },
        default: "1",
    },
    Param {
        name: "eventual-read-repair",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
    },
    Param {
        name: "eventual-hints",
        aliases: &[],
        kind: Kind::Bool,
        default: "yes",
    },
    Param {
        name: "eventual-hint-window-ms",
        aliases: &[],
        kind: Kind::Integer {
            min: 0,
            max: 7 * 24 * 3600 * 1000,
        },
        default: "10800000",
    },
    Param {
        name: "eventual-anti-entropy-ms",
        aliases: &[],
        kind: Kind::Integer {
            min: 0,
            max: 24 * 3600 * 1000,
        },
        default: "1000",
    },
    Param {
        name: "eventual-max-clock-ahead-ms",
        aliases: &[],
        kind: Kind::Integer {
            min: 1,
            max: 24 * 3600 * 1000,
        },
        default: "500",
    },
    Param {
        name: "loglevel",
        aliases: &[],
        kind: Kind::Choice(&["debug", "verbose", "notice", "warning", "nothing"]),
        default: "notice",
    },
];
