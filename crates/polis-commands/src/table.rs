//! The command table, transcribed from Redis 7.0's command metadata
//! (arity, flags, key positions, ACL categories, tips, group, version).
//! Commands flagged `NODE` are executed by the node; the others by this
//! crate. One line per command: the table is data, so rustfmt leaves it.

use crate::spec::{spec, CommandSpec};
#[allow(unused_imports)]
use crate::spec::{
    ADMIN, ALLOW_BUSY, BLOCKING, DENYOOM, FAST, LOADING, MAY_REPLICATE, MOVABLE_KEYS, NODE,
    NOSCRIPT, NO_ASYNC_LOADING, NO_AUTH, NO_MANDATORY_KEYS, NO_MULTI, PROTECTED, PUBSUB, READONLY,
    SKIP_MONITOR, SKIP_SLOWLOG, STALE, WRITE,
};

/// Every top-level command polis knows.
#[rustfmt::skip]
pub(crate) static COMMANDS: &[CommandSpec] = &[
    // Executed by this crate.
    spec!("get", 2, READONLY | FAST, [1, 1, 1], &["string"], &[], "string", "1.0.0"),
    spec!("set", -3, WRITE | DENYOOM, [1, 1, 1], &["string"], &[], "string", "1.0.0"),
    spec!("setnx", 3, WRITE | DENYOOM | FAST, [1, 1, 1], &["string"], &[], "string", "1.0.0"),
    spec!("setex", 4, WRITE | DENYOOM, [1, 1, 1], &["string"], &[], "string", "2.0.0"),
    spec!("psetex", 4, WRITE | DENYOOM, [1, 1, 1], &["string"], &[], "string", "2.6.0"),
    spec!("mget", -2, READONLY | FAST, [1, -1, 1], &["string"], &["request_policy:multi_shard"], "string", "1.0.0"),
    spec!("mset", -3, WRITE | DENYOOM, [1, -1, 2], &["string"], &["request_policy:multi_shard", "response_policy:all_succeeded"], "string", "1.0.1"),
    spec!("msetnx", -3, WRITE | DENYOOM, [1, -1, 2], &["string"], &["request_policy:multi_shard", "response_policy:agg_min"], "string", "1.0.1"),
    spec!("getset", 3, WRITE | DENYOOM | FAST, [1, 1, 1], &["string"], &[], "string", "1.0.0"),
    spec!("getdel", 2, WRITE | FAST, [1, 1, 1], &["string"], &[], "string", "6.2.0"),
    spec!("getex", -2, WRITE | FAST, [1, 1, 1], &["string"], &[], "string", "6.2.0"),
    spec!("append", 3, WRITE | DENYOOM | FAST, [1, 1, 1], &["string"], &[], "string", "2.0.0"),
    spec!("strlen", 2, READONLY | FAST, [1, 1, 1], &["string"], &[], "string", "2.2.0"),
    spec!("incr", 2, WRITE | DENYOOM | FAST, [1, 1, 1], &["string"], &[], "string", "1.0.0"),
    spec!("incrby", 3, WRITE | DENYOOM | FAST, [1, 1, 1], &["string"], &[], "string", "1.0.0"),
    spec!("incrbyfloat", 3, WRITE | DENYOOM | FAST, [1, 1, 1], &["string"], &[], "string", "2.6.0"),
    spec!("decr", 2, WRITE | DENYOOM | FAST, [1, 1, 1], &["string"], &[], "string", "1.0.0"),
    spec!("decrby", 3, WRITE | DENYOOM | FAST, [1, 1, 1], &["string"], &[], "string", "1.0.0"),
    spec!("getrange", 4, READONLY, [1, 1, 1], &["string"], &[], "string", "2.4.0"),
    spec!("setrange", 4, WRITE | DENYOOM, [1, 1, 1], &["string"], &[], "string", "2.2.0"),
    spec!("substr", 4, READONLY, [1, 1, 1], &["string"], &[], "string", "1.0.0"),
    spec!("lcs", -3, READONLY, [1, 2, 1], &["string"], &[], "string", "7.0.0"),
    spec!("setbit", 4, WRITE | DENYOOM, [1, 1, 1], &["bitmap"], &[], "bitmap", "2.2.0"),
    spec!("getbit", 3, READONLY | FAST, [1, 1, 1], &["bitmap"], &[], "bitmap", "2.2.0"),
    spec!("bitcount", -2, READONLY, [1, 1, 1], &["bitmap"], &[], "bitmap", "2.6.0"),
    spec!("bitpos", -3, READONLY, [1, 1, 1], &["bitmap"], &[], "bitmap", "2.8.7"),
    spec!("del", -2, WRITE, [1, -1, 1], &["keyspace"], &["request_policy:multi_shard", "response_policy:agg_sum"], "generic", "1.0.0"),
    spec!("unlink", -2, WRITE | FAST, [1, -1, 1], &["keyspace"], &["request_policy:multi_shard", "response_policy:agg_sum"], "generic", "4.0.0"),
    spec!("exists", -2, READONLY | FAST, [1, -1, 1], &["keyspace"], &["request_policy:multi_shard", "response_policy:agg_sum"], "generic", "1.0.0"),
    spec!("type", 2, READONLY | FAST, [1, 1, 1], &["keyspace"], &[], "generic", "1.0.0"),
    spec!("expire", -3, WRITE | FAST, [1, 1, 1], &["keyspace"], &[], "generic", "1.0.0"),
    spec!("pexpire", -3, WRITE | FAST, [1, 1, 1], &["keyspace"], &[], "generic", "2.6.0"),
    spec!("expireat", -3, WRITE | FAST, [1, 1, 1], &["keyspace"], &[], "generic", "1.2.0"),
    spec!("pexpireat", -3, WRITE | FAST, [1, 1, 1], &["keyspace"], &[], "generic", "2.6.0"),
    spec!("ttl", 2, READONLY | FAST, [1, 1, 1], &["keyspace"], &["nondeterministic_output"], "generic", "1.0.0"),
    spec!("pttl", 2, READONLY | FAST, [1, 1, 1], &["keyspace"], &["nondeterministic_output"], "generic", "2.6.0"),
    spec!("expiretime", 2, READONLY | FAST, [1, 1, 1], &["keyspace"], &[], "generic", "7.0.0"),
    spec!("pexpiretime", 2, READONLY | FAST, [1, 1, 1], &["keyspace"], &[], "generic", "7.0.0"),
    spec!("persist", 2, WRITE | FAST, [1, 1, 1], &["keyspace"], &[], "generic", "2.2.0"),
    spec!("rename", 3, WRITE, [1, 2, 1], &["keyspace"], &[], "generic", "1.0.0"),
    spec!("renamenx", 3, WRITE | FAST, [1, 2, 1], &["keyspace"], &[], "generic", "1.0.0"),
    spec!("copy", -3, WRITE | DENYOOM, [1, 2, 1], &["keyspace"], &[], "generic", "6.2.0"),
    spec!("keys", 2, READONLY, [0, 0, 0], &["keyspace", "dangerous"], &["request_policy:all_shards", "nondeterministic_output_order"], "generic", "1.0.0"),
    spec!("scan", -2, READONLY, [0, 0, 0], &["keyspace"], &["nondeterministic_output", "request_policy:special"], "generic", "2.8.0"),
    spec!("randomkey", 1, READONLY, [0, 0, 0], &["keyspace"], &["request_policy:all_shards", "nondeterministic_output"], "generic", "1.0.0"),
    spec!("touch", -2, READONLY | FAST, [1, -1, 1], &["keyspace"], &["request_policy:multi_shard", "response_policy:agg_sum"], "generic", "3.2.1"),
    spec!("object", -2, 0, [0, 0, 0], &[], &[], "generic", "2.2.3", OBJECT_SUBCOMMANDS),
    spec!("memory", -2, 0, [0, 0, 0], &[], &[], "server", "4.0.0", MEMORY_SUBCOMMANDS),
    spec!("dbsize", 1, READONLY | FAST, [0, 0, 0], &["keyspace"], &["request_policy:all_shards", "response_policy:agg_sum"], "server", "1.0.0"),
    spec!("flushall", -1, WRITE, [0, 0, 0], &["keyspace", "dangerous"], &["request_policy:all_shards", "response_policy:all_succeeded"], "server", "1.0.0"),
    spec!("flushdb", -1, WRITE, [0, 0, 0], &["keyspace", "dangerous"], &["request_policy:all_shards", "response_policy:all_succeeded"], "server", "1.0.0"),
    spec!("hset", -4, WRITE | DENYOOM | FAST, [1, 1, 1], &["hash"], &[], "hash", "2.0.0"),
    spec!("hsetnx", 4, WRITE | DENYOOM | FAST, [1, 1, 1], &["hash"], &[], "hash", "2.0.0"),
    spec!("hget", 3, READONLY | FAST, [1, 1, 1], &["hash"], &[], "hash", "2.0.0"),
    spec!("hmset", -4, WRITE | DENYOOM | FAST, [1, 1, 1], &["hash"], &[], "hash", "2.0.0"),
    spec!("hmget", -3, READONLY | FAST, [1, 1, 1], &["hash"], &[], "hash", "2.0.0"),
    spec!("hdel", -3, WRITE | FAST, [1, 1, 1], &["hash"], &[], "hash", "2.0.0"),
    spec!("hexists", 3, READONLY | FAST, [1, 1, 1], &["hash"], &[], "hash", "2.0.0"),
    spec!("hgetall", 2, READONLY, [1, 1, 1], &["hash"], &["nondeterministic_output_order"], "hash", "2.0.0"),
    spec!("hkeys", 2, READONLY, [1, 1, 1], &["hash"], &["nondeterministic_output_order"], "hash", "2.0.0"),
    spec!("hvals", 2, READONLY, [1, 1, 1], &["hash"], &["nondeterministic_output_order"], "hash", "2.0.0"),
    spec!("hlen", 2, READONLY | FAST, [1, 1, 1], &["hash"], &[], "hash", "2.0.0"),
    spec!("hstrlen", 3, READONLY | FAST, [1, 1, 1], &["hash"], &[], "hash", "3.2.0"),
    spec!("hincrby", 4, WRITE | DENYOOM | FAST, [1, 1, 1], &["hash"], &[], "hash", "2.0.0"),
    spec!("hincrbyfloat", 4, WRITE | DENYOOM | FAST, [1, 1, 1], &["hash"], &[], "hash", "2.6.0"),
    spec!("hscan", -3, READONLY, [1, 1, 1], &["hash"], &["nondeterministic_output"], "hash", "2.8.0"),
    spec!("hrandfield", -2, READONLY, [1, 1, 1], &["hash"], &["nondeterministic_output"], "hash", "6.2.0"),
    spec!("blpop", -3, WRITE | NOSCRIPT | BLOCKING, [1, -2, 1], &["list"], &[], "list", "2.0.0"),
    spec!("brpop", -3, WRITE | NOSCRIPT | BLOCKING, [1, -2, 1], &["list"], &[], "list", "2.0.0"),
    spec!("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, [1, 2, 1], &["list"], &[], "list", "2.2.0"),
    spec!("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, [1, 2, 1], &["list"], &[], "list", "6.2.0"),
    spec!("blmpop", -5, WRITE | BLOCKING | MOVABLE_KEYS, [0, 0, 0], &["list"], &[], "list", "7.0.0"),
    spec!("bzpopmin", -3, WRITE | NOSCRIPT | FAST | BLOCKING, [1, -2, 1], &["sortedset"], &[], "sorted_set", "5.0.0"),
    spec!("bzpopmax", -3, WRITE | NOSCRIPT | FAST | BLOCKING, [1, -2, 1], &["sortedset"], &[], "sorted_set", "5.0.0"),
    spec!("bzmpop", -5, WRITE | BLOCKING | MOVABLE_KEYS, [0, 0, 0], &["sortedset"], &[], "sorted_set", "7.0.0"),
    spec!("lpush", -3, WRITE | DENYOOM | FAST, [1, 1, 1], &["list"], &[], "list", "1.0.0"),
    spec!("rpush", -3, WRITE | DENYOOM | FAST, [1, 1, 1], &["list"], &[], "list", "1.0.0"),
    spec!("lpushx", -3, WRITE | DENYOOM | FAST, [1, 1, 1], &["list"], &[], "list", "2.2.0"),
    spec!("rpushx", -3, WRITE | DENYOOM | FAST, [1, 1, 1], &["list"], &[], "list", "2.2.0"),
    spec!("lpop", -2, WRITE | FAST, [1, 1, 1], &["list"], &[], "list", "1.0.0"),
    spec!("rpop", -2, WRITE | FAST, [1, 1, 1], &["list"], &[], "list", "1.0.0"),
    spec!("llen", 2, READONLY | FAST, [1, 1, 1], &["list"], &[], "list", "1.0.0"),
    spec!("lrange", 4, READONLY, [1, 1, 1], &["list"], &[], "list", "1.0.0"),
    spec!("lindex", 3, READONLY, [1, 1, 1], &["list"], &[], "list", "1.0.0"),
    spec!("lset", 4, WRITE | DENYOOM, [1, 1, 1], &["list"], &[], "list", "1.0.0"),
    spec!("linsert", 5, WRITE | DENYOOM, [1, 1, 1], &["list"], &[], "list", "2.2.0"),
    spec!("lrem", 4, WRITE, [1, 1, 1], &["list"], &[], "list", "1.0.0"),
    spec!("ltrim", 4, WRITE, [1, 1, 1], &["list"], &[], "list", "1.0.0"),
    spec!("lpos", -3, READONLY, [1, 1, 1], &["list"], &[], "list", "6.0.6"),
    spec!("lmove", 5, WRITE | DENYOOM, [1, 2, 1], &["list"], &[], "list", "6.2.0"),
    spec!("rpoplpush", 3, WRITE | DENYOOM, [1, 2, 1], &["list"], &[], "list", "1.2.0"),
    spec!("lmpop", -4, WRITE | crate::spec::MOVABLE_KEYS, [0, 0, 0], &["list"], &[], "list", "7.0.0"),
    spec!("sadd", -3, WRITE | DENYOOM | FAST, [1, 1, 1], &["set"], &[], "set", "1.0.0"),
    spec!("srem", -3, WRITE | FAST, [1, 1, 1], &["set"], &[], "set", "1.0.0"),
    spec!("smembers", 2, READONLY, [1, 1, 1], &["set"], &["nondeterministic_output_order"], "set", "1.0.0"),
    spec!("sismember", 3, READONLY | FAST, [1, 1, 1], &["set"], &[], "set", "1.0.0"),
    spec!("smismember", -3, READONLY | FAST, [1, 1, 1], &["set"], &[], "set", "6.2.0"),
    spec!("scard", 2, READONLY | FAST, [1, 1, 1], &["set"], &[], "set", "1.0.0"),
    spec!("spop", -2, WRITE | FAST, [1, 1, 1], &["set"], &["nondeterministic_output"], "set", "1.0.0"),
    spec!("srandmember", -2, READONLY, [1, 1, 1], &["set"], &["nondeterministic_output"], "set", "1.0.0"),
    spec!("smove", 4, WRITE | FAST, [1, 2, 1], &["set"], &[], "set", "1.0.0"),
    spec!("sinter", -2, READONLY, [1, -1, 1], &["set"], &["nondeterministic_output_order"], "set", "1.0.0"),
    spec!("sintercard", -3, READONLY | crate::spec::MOVABLE_KEYS, [0, 0, 0], &["set"], &[], "set", "7.0.0"),
    spec!("sunion", -2, READONLY, [1, -1, 1], &["set"], &["nondeterministic_output_order"], "set", "1.0.0"),
    spec!("sdiff", -2, READONLY, [1, -1, 1], &["set"], &["nondeterministic_output_order"], "set", "1.0.0"),
    spec!("sinterstore", -3, WRITE | DENYOOM, [1, -1, 1], &["set"], &[], "set", "1.0.0"),
    spec!("sunionstore", -3, WRITE | DENYOOM, [1, -1, 1], &["set"], &[], "set", "1.0.0"),
    spec!("sdiffstore", -3, WRITE | DENYOOM, [1, -1, 1], &["set"], &[], "set", "1.0.0"),
    spec!("sscan", -3, READONLY, [1, 1, 1], &["set"], &["nondeterministic_output"], "set", "2.8.0"),
    spec!("bitop", -4, WRITE | DENYOOM, [2, -1, 1], &["bitmap"], &[], "bitmap", "2.6.0"),
    spec!("bitfield", -2, WRITE | DENYOOM, [1, 1, 1], &["bitmap"], &[], "bitmap", "3.2.0"),
    spec!("bitfield_ro", -2, READONLY | FAST, [1, 1, 1], &["bitmap"], &[], "bitmap", "6.0.0"),
    spec!("zadd", -4, WRITE | DENYOOM | FAST, [1, 1, 1], &["sortedset"], &[], "sorted_set", "1.2.0"),
    spec!("zincrby", 4, WRITE | DENYOOM | FAST, [1, 1, 1], &["sortedset"], &[], "sorted_set", "1.2.0"),
    spec!("zrem", -3, WRITE | FAST, [1, 1, 1], &["sortedset"], &[], "sorted_set", "1.2.0"),
    spec!("zremrangebyscore", 4, WRITE, [1, 1, 1], &["sortedset"], &[], "sorted_set", "1.2.0"),
    spec!("zremrangebyrank", 4, WRITE, [1, 1, 1], &["sortedset"], &[], "sorted_set", "2.0.0"),
    spec!("zremrangebylex", 4, WRITE, [1, 1, 1], &["sortedset"], &[], "sorted_set", "2.8.9"),
    spec!("zunionstore", -4, WRITE | DENYOOM | crate::spec::MOVABLE_KEYS, [1, 1, 1], &["sortedset"], &[], "sorted_set", "2.0.0"),
    spec!("zinterstore", -4, WRITE | DENYOOM | crate::spec::MOVABLE_KEYS, [1, 1, 1], &["sortedset"], &[], "sorted_set", "2.0.0"),
    spec!("zdiffstore", -4, WRITE | DENYOOM | crate::spec::MOVABLE_KEYS, [1, 1, 1], &["sortedset"], &[], "sorted_set", "6.2.0"),
    spec!("zunion", -3, READONLY | crate::spec::MOVABLE_KEYS, [0, 0, 0], &["sortedset"], &[], "sorted_set", "6.2.0"),
    spec!("zinter", -3, READONLY | crate::spec::MOVABLE_KEYS, [0, 0, 0], &["sortedset"], &[], "sorted_set", "6.2.0"),
    spec!("zintercard", -3, READONLY | crate::spec::MOVABLE_KEYS, [0, 0, 0], &["sortedset"], &[], "sorted_set", "7.0.0"),
    spec!("zdiff", -3, READONLY | crate::spec::MOVABLE_KEYS, [0, 0, 0], &["sortedset"], &[], "sorted_set", "6.2.0"),
    spec!("zrange", -4, READONLY, [1, 1, 1], &["sortedset"], &[], "sorted_set", "1.2.0"),
    spec!("zrangestore", -5, WRITE | DENYOOM, [1, 2, 1], &["sortedset"], &[], "sorted_set", "6.2.0"),
    spec!("zrangebyscore", -4, READONLY, [1, 1, 1], &["sortedset"], &[], "sorted_set", "1.0.5"),
    spec!("zrevrangebyscore", -4, READONLY, [1, 1, 1], &["sortedset"], &[], "sorted_set", "2.2.0"),
    spec!("zrangebylex", -4, READONLY, [1, 1, 1], &["sortedset"], &[], "sorted_set", "2.8.9"),
    spec!("zrevrangebylex", -4, READONLY, [1, 1, 1], &["sortedset"], &[], "sorted_set", "2.8.9"),
    spec!("zcount", 4, READONLY | FAST, [1, 1, 1], &["sortedset"], &[], "sorted_set", "2.0.0"),
    spec!("zlexcount", 4, READONLY | FAST, [1, 1, 1], &["sortedset"], &[], "sorted_set", "2.8.9"),
    spec!("zrevrange", -4, READONLY, [1, 1, 1], &["sortedset"], &[], "sorted_set", "1.2.0"),
    spec!("zcard", 2, READONLY | FAST, [1, 1, 1], &["sortedset"], &[], "sorted_set", "1.2.0"),
    spec!("zscore", 3, READONLY | FAST, [1, 1, 1], &["sortedset"], &[], "sorted_set", "1.2.0"),
    spec!("zmscore", -3, READONLY | FAST, [1, 1, 1], &["sortedset"], &[], "sorted_set", "6.2.0"),
    spec!("zrank", 3, READONLY | FAST, [1, 1, 1], &["sortedset"], &[], "sorted_set", "2.0.0"),
    spec!("zrevrank", 3, READONLY | FAST, [1, 1, 1], &["sortedset"], &[], "sorted_set", "2.0.0"),
    spec!("zscan", -3, READONLY, [1, 1, 1], &["sortedset"], &["nondeterministic_output"], "sorted_set", "2.8.0"),
    spec!("zpopmin", -2, WRITE | FAST, [1, 1, 1], &["sortedset"], &[], "sorted_set", "5.0.0"),
    spec!("zpopmax", -2, WRITE | FAST, [1, 1, 1], &["sortedset"], &[], "sorted_set", "5.0.0"),
    spec!("zmpop", -4, WRITE | crate::spec::MOVABLE_KEYS, [0, 0, 0], &["sortedset"], &[], "sorted_set", "7.0.0"),
    spec!("zrandmember", -2, READONLY, [1, 1, 1], &["sortedset"], &["nondeterministic_output"], "sorted_set", "6.2.0"),
    spec!("xadd", -5, WRITE | DENYOOM | FAST, [1, 1, 1], &["stream"], &["nondeterministic_output"], "stream", "5.0.0"),
    spec!("xtrim", -4, WRITE, [1, 1, 1], &["stream"], &["nondeterministic_output"], "stream", "5.0.0"),
    spec!("xdel", -3, WRITE | FAST, [1, 1, 1], &["stream"], &[], "stream", "5.0.0"),
    spec!("xsetid", -3, WRITE | DENYOOM | FAST, [1, 1, 1], &["stream"], &[], "stream", "5.0.0"),
    spec!("xlen", 2, READONLY | FAST, [1, 1, 1], &["stream"], &[], "stream", "5.0.0"),
    spec!("xrange", -4, READONLY, [1, 1, 1], &["stream"], &[], "stream", "5.0.0"),
    spec!("xrevrange", -4, READONLY, [1, 1, 1], &["stream"], &[], "stream", "5.0.0"),
    spec!("xread", -4, READONLY | BLOCKING | MOVABLE_KEYS, [0, 0, 0], &["stream"], &[], "stream", "5.0.0"),
    spec!("xreadgroup", -7, WRITE | BLOCKING | MOVABLE_KEYS, [0, 0, 0], &["stream"], &[], "stream", "5.0.0"),
    spec!("xack", -4, WRITE | FAST, [1, 1, 1], &["stream"], &[], "stream", "5.0.0"),
    spec!("xpending", -3, READONLY, [1, 1, 1], &["stream"], &["nondeterministic_output"], "stream", "5.0.0"),
    spec!("xclaim", -6, WRITE | FAST, [1, 1, 1], &["stream"], &["nondeterministic_output"], "stream", "5.0.0"),
    spec!("xautoclaim", -6, WRITE | FAST, [1, 1, 1], &["stream"], &["nondeterministic_output"], "stream", "6.2.0"),
    // polis's queue extension: not a Redis command (docs/queues.md).
    spec!("xnack", -4, WRITE | FAST, [1, 1, 1], &["stream"], &[], "stream", "polis 0.1.0"),
    spec!("xgroup", -2, 0, [0, 0, 0], &[], &[], "stream", "5.0.0", XGROUP_SUBCOMMANDS),
    spec!("xinfo", -2, 0, [0, 0, 0], &[], &[], "stream", "5.0.0", XINFO_SUBCOMMANDS),
    // polis's own: locks with fencing tokens (docs/locks.md).
    spec!("lock", -2, 0, [0, 0, 0], &[], &[], "lock", "polis-0.1", LOCK_SUBCOMMANDS),
    spec!("fenced", -4, WRITE | DENYOOM | MOVABLE_KEYS, [0, 0, 0], &["lock"], &[], "lock", "polis-0.1"),
    // Executed by the node.
    spec!("ping", -1, FAST | NODE, [0, 0, 0], &["connection"], &["request_policy:all_shards", "response_policy:all_succeeded"], "connection", "1.0.0"),
    spec!("echo", 2, LOADING | STALE | FAST | NODE, [0, 0, 0], &["connection"], &[], "connection", "1.0.0"),
    spec!("hello", -1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY | NODE, [0, 0, 0], &["connection"], &[], "connection", "6.0.0"),
    spec!("quit", -1, ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | NODE, [0, 0, 0], &["connection"], &[], "connection", "1.0.0"),
    spec!("select", 2, LOADING | STALE | FAST | NODE, [0, 0, 0], &["connection"], &[], "connection", "1.0.0"),
    spec!("client", -2, NODE, [0, 0, 0], &[], &[], "connection", "2.4.0", CLIENT_SUBCOMMANDS),
    spec!("command", -1, LOADING | STALE | NODE, [0, 0, 0], &["connection"], &["nondeterministic_output_order"], "server", "2.8.13", COMMAND_SUBCOMMANDS),
    spec!("info", -1, LOADING | STALE | NODE, [0, 0, 0], &["dangerous"], &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"], "server", "1.0.0"),
    spec!("config", -2, NODE, [0, 0, 0], &[], &[], "server", "2.0.0", CONFIG_SUBCOMMANDS),
    spec!("cluster", -2, NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0", CLUSTER_SUBCOMMANDS),
    spec!("readonly", 1, FAST | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "cluster", "3.0.0"),
    spec!("readwrite", 1, FAST | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "cluster", "3.0.0"),
    spec!("asking", 1, FAST | NODE, [0, 0, 0], &["connection"], &[], "cluster", "3.0.0"),
    spec!("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED | NODE, [0, 0, 0], &[], &[], "server", "1.0.0"),
    spec!("function", -2, NODE, [0, 0, 0], &[], &[], "scripting", "7.0.0", FUNCTION_SUBCOMMANDS),
    spec!("time", 1, LOADING | STALE | FAST | NODE, [0, 0, 0], &[], &["nondeterministic_output"], "server", "2.6.0"),
    spec!("acl", -2, NODE, [0, 0, 0], &[], &[], "server", "6.0.0", ACL_SUBCOMMANDS),
    spec!("auth", -2, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY | NODE, [0, 0, 0], &["connection"], &[], "connection", "1.0.0"),
    spec!("reset", 1, NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY | NODE, [0, 0, 0], &["connection"], &[], "connection", "6.2.0"),
    spec!("save", 1, NOSCRIPT | NO_ASYNC_LOADING | ADMIN | NO_MULTI | NODE, [0, 0, 0], &["dangerous"], &[], "server", "1.0.0"),
    spec!("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY | NODE, [0, 0, 0], &["dangerous"], &[], "server", "1.0.0"),
    spec!("multi", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NODE, [0, 0, 0], &["transaction"], &[], "transactions", "1.2.0"),
    spec!("exec", 1, NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG | NODE, [0, 0, 0], &["transaction"], &[], "transactions", "1.2.0"),
    spec!("discard", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NODE, [0, 0, 0], &["transaction"], &[], "transactions", "2.0.0"),
    spec!("watch", -2, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NO_MULTI | NODE, [1, -1, 1], &["transaction"], &[], "transactions", "2.2.0"),
    spec!("unwatch", 1, NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | NODE, [0, 0, 0], &["transaction"], &[], "transactions", "2.2.0"),
    spec!("slowlog", -2, NODE, [0, 0, 0], &[], &[], "server", "2.2.12", SLOWLOG_SUBCOMMANDS),
    spec!("latency", -2, NODE, [0, 0, 0], &[], &[], "server", "2.8.13", LATENCY_SUBCOMMANDS),
    spec!("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "1.0.0"),
    spec!("subscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "pubsub", "2.0.0"),
    spec!("psubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "pubsub", "2.0.0"),
    spec!("unsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "pubsub", "2.0.0"),
    spec!("punsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "pubsub", "2.0.0"),
    spec!("publish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE | NODE, [0, 0, 0], &[], &[], "pubsub", "2.0.0"),
    spec!("pubsub", -2, NODE, [0, 0, 0], &[], &[], "pubsub", "2.8.0", PUBSUB_SUBCOMMANDS),
    // Sharded pub/sub: the channel is no key, but its slot routes the
    // command (Redis's `not_key` key spec).
    spec!("ssubscribe", -2, PUBSUB | NOSCRIPT | LOADING | STALE | NODE, [1, -1, 1], &[], &[], "pubsub", "7.0.0"),
    spec!("sunsubscribe", -1, PUBSUB | NOSCRIPT | LOADING | STALE | NODE, [1, -1, 1], &[], &[], "pubsub", "7.0.0"),
    spec!("spublish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE | NODE, [1, 1, 1], &[], &[], "pubsub", "7.0.0"),
];

/// Subcommands of `PUBSUB`.
#[rustfmt::skip]
const PUBSUB_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("pubsub|channels", -2, PUBSUB | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "pubsub", "2.8.0"),
    spec!("pubsub|help", 2, LOADING | STALE | NODE, [0, 0, 0], &[], &[], "pubsub", "6.2.0"),
    spec!("pubsub|numpat", 2, PUBSUB | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "pubsub", "2.8.0"),
    spec!("pubsub|numsub", -2, PUBSUB | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "pubsub", "2.8.0"),
    spec!("pubsub|shardchannels", -2, PUBSUB | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "pubsub", "7.0.0"),
    spec!("pubsub|shardnumsub", -2, PUBSUB | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "pubsub", "7.0.0"),
];

/// Subcommands of `OBJECT`.
#[rustfmt::skip]
const OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("object|encoding", 3, READONLY, [2, 2, 1], &["keyspace"], &["nondeterministic_output"], "generic", "2.2.3"),
    spec!("object|freq", 3, READONLY, [2, 2, 1], &["keyspace"], &["nondeterministic_output"], "generic", "4.0.0"),
    spec!("object|help", 2, LOADING | STALE, [0, 0, 0], &["keyspace"], &[], "generic", "6.2.0"),
    spec!("object|idletime", 3, READONLY, [2, 2, 1], &["keyspace"], &["nondeterministic_output"], "generic", "2.2.3"),
    spec!("object|refcount", 3, READONLY, [2, 2, 1], &["keyspace"], &["nondeterministic_output"], "generic", "2.2.3"),
];

/// Subcommands of `XGROUP`.
#[rustfmt::skip]
const XGROUP_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("xgroup|create", -5, WRITE | DENYOOM, [2, 2, 1], &["stream"], &[], "stream", "5.0.0"),
    spec!("xgroup|createconsumer", 5, WRITE | DENYOOM, [2, 2, 1], &["stream"], &[], "stream", "6.2.0"),
    spec!("xgroup|delconsumer", 5, WRITE, [2, 2, 1], &["stream"], &[], "stream", "5.0.0"),
    spec!("xgroup|destroy", 4, WRITE, [2, 2, 1], &["stream"], &[], "stream", "5.0.0"),
    spec!("xgroup|help", 2, LOADING | STALE, [0, 0, 0], &["stream"], &[], "stream", "5.0.0"),
    spec!("xgroup|setid", -5, WRITE, [2, 2, 1], &["stream"], &[], "stream", "5.0.0"),
    // polis's queue extension: not a Redis subcommand (docs/queues.md).
    spec!("xgroup|setoptions", -5, WRITE, [2, 2, 1], &["stream"], &[], "stream", "polis 0.1.0"),
];

/// Subcommands of `LOCK`.
#[rustfmt::skip]
const LOCK_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("lock|acquire", 5, WRITE | DENYOOM | FAST, [2, 2, 1], &["lock"], &[], "lock", "polis-0.1"),
    spec!("lock|help", 2, LOADING | STALE, [0, 0, 0], &["lock"], &[], "lock", "polis-0.1"),
    spec!("lock|info", 3, READONLY | FAST, [2, 2, 1], &["lock"], &[], "lock", "polis-0.1"),
    spec!("lock|refresh", 5, WRITE | FAST, [2, 2, 1], &["lock"], &[], "lock", "polis-0.1"),
    spec!("lock|release", 4, WRITE | FAST, [2, 2, 1], &["lock"], &[], "lock", "polis-0.1"),
];

/// Subcommands of `XINFO`.
#[rustfmt::skip]
const XINFO_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("xinfo|consumers", 4, READONLY, [2, 2, 1], &["stream"], &["nondeterministic_output"], "stream", "5.0.0"),
    spec!("xinfo|groups", 3, READONLY, [2, 2, 1], &["stream"], &[], "stream", "5.0.0"),
    spec!("xinfo|help", 2, LOADING | STALE, [0, 0, 0], &["stream"], &[], "stream", "5.0.0"),
    spec!("xinfo|stream", -3, READONLY, [2, 2, 1], &["stream"], &[], "stream", "5.0.0"),
];

/// Subcommands of `MEMORY`.
#[rustfmt::skip]
const MEMORY_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("memory|doctor", 2, NODE, [0, 0, 0], &[], &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"], "server", "4.0.0"),
    spec!("memory|help", 2, LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "4.0.0"),
    spec!("memory|malloc-stats", 2, NODE, [0, 0, 0], &[], &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"], "server", "4.0.0"),
    spec!("memory|purge", 2, NODE, [0, 0, 0], &[], &["request_policy:all_shards", "response_policy:all_succeeded"], "server", "4.0.0"),
    spec!("memory|stats", 2, NODE, [0, 0, 0], &[], &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"], "server", "4.0.0"),
    spec!("memory|usage", -3, READONLY, [2, 2, 1], &[], &[], "server", "4.0.0"),
];

/// Subcommands of `CLIENT`.
#[rustfmt::skip]
const CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("client|caching", 3, NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "connection", "6.0.0"),
    spec!("client|getname", 2, NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "connection", "2.6.9"),
    spec!("client|getredir", 2, NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "connection", "6.0.0"),
    spec!("client|help", 2, LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "connection", "5.0.0"),
    spec!("client|id", 2, NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "connection", "5.0.0"),
    spec!("client|info", 2, NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &["nondeterministic_output"], "connection", "6.2.0"),
    spec!("client|kill", -3, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "connection", "2.4.0"),
    spec!("client|list", -2, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &["nondeterministic_output"], "connection", "2.4.0"),
    spec!("client|no-evict", 3, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "connection", "7.0.0"),
    spec!("client|pause", -3, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "connection", "2.9.50"),
    spec!("client|reply", 3, NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "connection", "3.2.0"),
    spec!("client|setname", 3, NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "connection", "2.6.9"),
    spec!("client|tracking", -3, NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "connection", "6.0.0"),
    spec!("client|trackinginfo", 2, NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "connection", "6.2.0"),
    spec!("client|unblock", -3, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "connection", "5.0.0"),
    spec!("client|unpause", 2, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "connection", "6.2.0"),
];

/// Subcommands of `COMMAND`.
#[rustfmt::skip]
const COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("command|count", 2, LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "server", "2.8.13"),
    spec!("command|docs", -2, LOADING | STALE | NODE, [0, 0, 0], &["connection"], &["nondeterministic_output_order"], "server", "7.0.0"),
    spec!("command|getkeys", -4, LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "server", "2.8.13"),
    spec!("command|getkeysandflags", -4, LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "server", "7.0.0"),
    spec!("command|help", 2, LOADING | STALE | NODE, [0, 0, 0], &["connection"], &[], "server", "5.0.0"),
    spec!("command|info", -2, LOADING | STALE | NODE, [0, 0, 0], &["connection"], &["nondeterministic_output_order"], "server", "2.8.13"),
    spec!("command|list", -2, LOADING | STALE | NODE, [0, 0, 0], &["connection"], &["nondeterministic_output_order"], "server", "7.0.0"),
];

/// Subcommands of `CONFIG`.
#[rustfmt::skip]
const CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("config|get", -3, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "2.0.0"),
    spec!("config|help", 2, LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "5.0.0"),
    spec!("config|resetstat", 2, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "2.0.0"),
    spec!("config|rewrite", 2, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "2.8.0"),
    spec!("config|set", -4, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &["request_policy:all_nodes", "response_policy:all_succeeded"], "server", "2.0.0"),
];

/// Subcommands of `CLUSTER`.
#[rustfmt::skip]
const CLUSTER_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("cluster|addslots", -3, NO_ASYNC_LOADING | ADMIN | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0"),
    spec!("cluster|addslotsrange", -4, NO_ASYNC_LOADING | ADMIN | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "7.0.0"),
    spec!("cluster|bumpepoch", 2, NO_ASYNC_LOADING | ADMIN | STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output"], "cluster", "3.0.0"),
    spec!("cluster|count-failure-reports", 3, ADMIN | STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output"], "cluster", "3.0.0"),
    spec!("cluster|cancelslotmigrations", 2, ADMIN | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "9.0.0"),
    spec!("cluster|countkeysinslot", 3, STALE | NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0"),
    spec!("cluster|delslots", -3, NO_ASYNC_LOADING | ADMIN | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0"),
    spec!("cluster|delslotsrange", -4, NO_ASYNC_LOADING | ADMIN | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "7.0.0"),
    spec!("cluster|failover", -2, NO_ASYNC_LOADING | ADMIN | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0"),
    spec!("cluster|flushslots", 2, NO_ASYNC_LOADING | ADMIN | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0"),
    spec!("cluster|forget", 3, NO_ASYNC_LOADING | ADMIN | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0"),
    spec!("cluster|getkeysinslot", 4, STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output"], "cluster", "3.0.0"),
    spec!("cluster|getslotmigrations", 2, ADMIN | STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output"], "cluster", "9.0.0"),
    spec!("cluster|help", 2, LOADING | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "5.0.0"),
    spec!("cluster|info", 2, STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output"], "cluster", "3.0.0"),
    spec!("cluster|keyslot", 3, STALE | NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0"),
    spec!("cluster|links", 2, STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output"], "cluster", "7.0.0"),
    spec!("cluster|meet", -4, NO_ASYNC_LOADING | ADMIN | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0"),
    spec!("cluster|migrateslots", -6, ADMIN | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "9.0.0"),
    spec!("cluster|myid", 2, STALE | NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0"),
    spec!("cluster|nodes", 2, STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output"], "cluster", "3.0.0"),
    spec!("cluster|replicas", 3, ADMIN | STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output"], "cluster", "5.0.0"),
    spec!("cluster|replicate", 3, NO_ASYNC_LOADING | ADMIN | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0"),
    spec!("cluster|reset", -2, ADMIN | STALE | NOSCRIPT | NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0"),
    spec!("cluster|saveconfig", 2, NO_ASYNC_LOADING | ADMIN | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0"),
    spec!("cluster|set-config-epoch", 3, NO_ASYNC_LOADING | ADMIN | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0"),
    spec!("cluster|setslot", -4, NO_ASYNC_LOADING | ADMIN | STALE | NODE, [0, 0, 0], &[], &[], "cluster", "3.0.0"),
    spec!("cluster|shards", 2, STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output"], "cluster", "7.0.0"),
    spec!("cluster|slaves", 3, ADMIN | STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output"], "cluster", "3.0.0"),
    spec!("cluster|slots", 2, STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output"], "cluster", "3.0.0"),
];

/// Subcommands of `ACL`.
#[rustfmt::skip]
const ACL_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("acl|cat", -2, NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "6.0.0"),
    spec!("acl|deluser", -3, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &["request_policy:all_nodes", "response_policy:all_succeeded"], "server", "6.0.0"),
    spec!("acl|dryrun", -4, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "7.0.0"),
    spec!("acl|genpass", -2, NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "6.0.0"),
    spec!("acl|getuser", 3, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "6.0.0"),
    spec!("acl|help", 2, LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "6.0.0"),
    spec!("acl|list", 2, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "6.0.0"),
    spec!("acl|load", 2, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "6.0.0"),
    spec!("acl|log", -2, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "6.0.0"),
    spec!("acl|save", 2, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &["request_policy:all_nodes", "response_policy:all_succeeded"], "server", "6.0.0"),
    spec!("acl|setuser", -3, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &["request_policy:all_nodes", "response_policy:all_succeeded"], "server", "6.0.0"),
    spec!("acl|users", 2, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "6.0.0"),
    spec!("acl|whoami", 2, NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "6.0.0"),
];

/// Subcommands of `FUNCTION`.
#[rustfmt::skip]
const FUNCTION_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("function|delete", 3, NOSCRIPT | WRITE | NODE, [0, 0, 0], &["scripting"], &["request_policy:all_shards", "response_policy:all_succeeded"], "scripting", "7.0.0"),
    spec!("function|dump", 2, NOSCRIPT | NODE, [0, 0, 0], &["scripting"], &[], "scripting", "7.0.0"),
    spec!("function|flush", -2, NOSCRIPT | WRITE | NODE, [0, 0, 0], &["scripting"], &["request_policy:all_shards", "response_policy:all_succeeded"], "scripting", "7.0.0"),
    spec!("function|help", 2, LOADING | STALE | NODE, [0, 0, 0], &["scripting"], &[], "scripting", "7.0.0"),
    spec!("function|kill", 2, NOSCRIPT | ALLOW_BUSY | NODE, [0, 0, 0], &["scripting"], &["request_policy:all_shards", "response_policy:one_succeeded"], "scripting", "7.0.0"),
    spec!("function|list", -2, NOSCRIPT | NODE, [0, 0, 0], &["scripting"], &["nondeterministic_output_order"], "scripting", "7.0.0"),
    spec!("function|load", -3, NOSCRIPT | WRITE | DENYOOM | NODE, [0, 0, 0], &["scripting"], &["request_policy:all_shards", "response_policy:all_succeeded"], "scripting", "7.0.0"),
    spec!("function|restore", -3, NOSCRIPT | WRITE | DENYOOM | NODE, [0, 0, 0], &["scripting"], &["request_policy:all_shards", "response_policy:all_succeeded"], "scripting", "7.0.0"),
    spec!("function|stats", 2, NOSCRIPT | ALLOW_BUSY | NODE, [0, 0, 0], &["scripting"], &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"], "scripting", "7.0.0"),
];

/// Subcommands of `SLOWLOG`.
#[rustfmt::skip]
const SLOWLOG_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("slowlog|get", -2, ADMIN | LOADING | STALE | NODE, [0, 0, 0], &[], &["request_policy:all_nodes", "nondeterministic_output"], "server", "2.2.12"),
    spec!("slowlog|help", 2, LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "6.2.0"),
    spec!("slowlog|len", 2, ADMIN | LOADING | STALE | NODE, [0, 0, 0], &[], &["request_policy:all_nodes", "response_policy:agg_sum", "nondeterministic_output"], "server", "2.2.12"),
    spec!("slowlog|reset", 2, ADMIN | LOADING | STALE | NODE, [0, 0, 0], &[], &["request_policy:all_nodes", "response_policy:all_succeeded"], "server", "2.2.12"),
];

/// Subcommands of `LATENCY`.
#[rustfmt::skip]
const LATENCY_SUBCOMMANDS: &[CommandSpec] = &[
    spec!("latency|doctor", 2, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output", "request_policy:all_nodes", "response_policy:special"], "server", "2.8.13"),
    spec!("latency|graph", 3, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output", "request_policy:all_nodes", "response_policy:special"], "server", "2.8.13"),
    spec!("latency|help", 2, LOADING | STALE | NODE, [0, 0, 0], &[], &[], "server", "2.8.13"),
    spec!("latency|histogram", -2, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output", "request_policy:all_nodes", "response_policy:special"], "server", "7.0.0"),
    spec!("latency|history", 3, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output", "request_policy:all_nodes", "response_policy:special"], "server", "2.8.13"),
    spec!("latency|latest", 2, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &["nondeterministic_output", "request_policy:all_nodes", "response_policy:special"], "server", "2.8.13"),
    spec!("latency|reset", -2, ADMIN | NOSCRIPT | LOADING | STALE | NODE, [0, 0, 0], &[], &["request_policy:all_nodes", "response_policy:agg_sum"], "server", "2.8.13"),
];
