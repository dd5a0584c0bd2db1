//! The uniform shape of a command: a type with typed fields, a pure
//! `parse`, and an `execute` that returns a [`Reply`]; plus the
//! [`Command`] enum that dispatches to every type.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use polis_resp::{Reply, ReplyError};
use polis_store::Db;

use crate::spec::{check_arity, is_node, lookup, resolve};

/// The protocol version a client chose with HELLO; a few replies are
/// shaped differently for RESP3 in ways [`Reply`] cannot express alone
/// (arrays of pairs that RESP2 flattens).
pub use polis_resp::ProtocolVersion as Protocol;

/// What a read needs besides the keyspace: the time, the client's
/// protocol, and a seed for random picks (reads need not be deterministic
/// across replicas, but a test or a simulator can fix the seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadContext {
    pub now_ms: u64,
    pub protocol: Protocol,
    pub seed: u64,
}

/// Distinguishes random picks made within the same millisecond.
static READ_SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl ReadContext {
    /// Returns a RESP2 context at `now_ms` whose seed mixes the time with
    /// a process-wide counter, so repeated calls within one millisecond
    /// still pick differently.
    pub fn new(now_ms: u64) -> Self {
        let sequence = READ_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        Self {
            now_ms,
            protocol: Protocol::Resp2,
            seed: now_ms.rotate_left(20) ^ sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        }
    }

    /// Returns this context with `protocol`.
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Returns this context with a fixed `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// A command that only reads: it runs under a shared lock, concurrently
/// with other reads.
pub trait ReadCommand: Sized {
    /// Parses `args` (name included); pure.
    ///
    /// # Errors
    /// The syntax or value error Redis replies with.
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError>;

    /// Runs the command against `db`.
    fn execute(&self, db: &Db, ctx: &ReadContext) -> Reply;
}

/// A command that may modify the keyspace: it runs inside Raft apply on
/// every replica, so it must be deterministic and take time only from
/// `now_ms`.
pub trait WriteCommand: Sized {
    /// Parses `args` (name included); pure.
    ///
    /// # Errors
    /// The syntax or value error Redis replies with.
    fn parse(args: &[Bytes]) -> Result<Self, ReplyError>;

    /// Runs the command against `db` at the leader's time `now_ms`.
    fn execute(&self, db: &mut Db, now_ms: u64) -> Reply;

    /// Returns the reply of a form that needs no keyspace (XGROUP HELP),
    /// which the read path may serve; None for every form that writes.
    fn execute_keyless(&self) -> Option<Reply> {
        None
    }

    /// Runs a form that only reads (LOCK INFO) on the read path, under
    /// the shared lock; None for every form that writes.
    fn execute_read_only(&self, db: &Db, ctx: &ReadContext) -> Option<Reply> {
        let _ = (db, ctx);
        self.execute_keyless()
    }
}

/// Declares the [`Command`] enum and its dispatch from the list of read
/// and write commands.
macro_rules! command_set {
    (
        read { $($read_name:literal => $read_variant:ident($read_type:ty),)* }
        write { $($write_name:literal => $write_variant:ident($write_type:ty),)* }
    ) => {
        /// A parsed command of this crate, ready to execute.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Command {
            $($read_variant($read_type),)*
            $($write_variant($write_type),)*
        }

        impl Command {
            /// Parses the command whose lowercase spec name is `name`.
            pub(crate) fn parse_named(name: &str, args: &[Bytes]) -> Option<Result<Command, ReplyError>> {
                match name {
                    $($read_name => Some(
                        <$read_type as ReadCommand>::parse(args).map(Command::$read_variant)
                    ),)*
                    $($write_name => Some(
                        <$write_type as WriteCommand>::parse(args).map(Command::$write_variant)
                    ),)*
                    _ => None,
                }
            }

            /// Returns true when the command may modify the keyspace.
            pub fn is_write(&self) -> bool {
                match self {
                    $(Command::$read_variant(_) => false,)*
                    $(Command::$write_variant(_) => true,)*
                }
            }

            /// Runs a read command; a write command is refused (the node
            /// routed it to the wrong path).
            pub fn execute_read(&self, db: &Db, ctx: &ReadContext) -> Reply {
                match self {
                    $(Command::$read_variant(command) => command.execute(db, ctx),)*
                    $(Command::$write_variant(command) => command.execute_read_only(db, ctx).unwrap_or_else(
                        || Reply::Error(ReplyError::err("write command on the read path"))
                    ),)*
                }
            }

            /// Runs any command on the write path (a read command simply
            /// reads, with a seed fixed by `now_ms` so that even its reply
            /// is the same on every replica).
            pub fn execute_write(&self, db: &mut Db, now_ms: u64) -> Reply {
                match self {
                    $(Command::$write_variant(command) => command.execute(db, now_ms),)*
                    $(Command::$read_variant(command) => {
                        let ctx = ReadContext::new(now_ms).with_seed(now_ms);
                        command.execute(db, &ctx)
                    })*
                }
            }
        }
    };
}

use crate::blocking::{BLMPop, BLMove, BPop, BZPop};
use crate::hash::{
    HDel, HExists, HGet, HGetAll, HIncrBy, HIncrByFloat, HLen, HMGet, HRandField, HScan, HSet,
    HSetNx, HStrLen,
};
use crate::keyspace::{
    Copy, DbSize, Del, Exists, Expire, Flush, Keys, MemoryUsage, Object, Persist, RandomKey,
    Rename, Scan, Ttl, Type,
};
use crate::list::{
    LIndex, LInsert, LLen, LMPop, LMove, LPos, LRange, LRem, LSet, LTrim, Pop, Push,
};
use crate::lock::{Fenced, Lock};
use crate::set::{
    SAdd, SCard, SInterCard, SIsMember, SMIsMember, SMembers, SMove, SPop, SRandMember, SRem,
    SScan, SetAlgebra, SetAlgebraStore,
};
use crate::stream::{
    XAck, XAdd, XAutoClaim, XClaim, XDel, XGroup, XInfo, XLen, XNack, XPending, XRange, XRead,
    XReadGroup, XSetId, XTrim,
};
use crate::string::{
    Append, BitCount, BitPos, Get, GetBit, GetDel, GetEx, GetRange, GetSet, IncrBy, IncrByFloat,
    Lcs, MGet, MSet, Set, SetBit, SetRange, Strlen,
};
use crate::string::{BitField, BitFieldRo, BitOp};
use crate::zset::{
    ZAdd, ZCard, ZCombine, ZCombineStore, ZCount, ZIncrBy, ZInterCard, ZLexCount, ZMPop, ZMScore,
    ZPop, ZRandMember, ZRange, ZRangeStore, ZRank, ZRem, ZRemRange, ZScan, ZScore,
};

command_set! {
    read {
        "get" => Get(Get),
        "mget" => MGet(MGet),
        "strlen" => Strlen(Strlen),
        "getrange" => GetRange(GetRange),
        "substr" => Substr(GetRange),
        "lcs" => Lcs(Lcs),
        "getbit" => GetBit(GetBit),
        "bitcount" => BitCount(BitCount),
        "bitpos" => BitPos(BitPos),
        "exists" => Exists(Exists),
        "touch" => Touch(Exists),
        "type" => Type(Type),
        "ttl" => Ttl(Ttl),
        "pttl" => PTtl(Ttl),
        "expiretime" => ExpireTime(Ttl),
        "pexpiretime" => PExpireTime(Ttl),
        "keys" => Keys(Keys),
        "scan" => Scan(Scan),
        "randomkey" => RandomKey(RandomKey),
        "dbsize" => DbSize(DbSize),
        "object" => Object(Object),
        "memory" => MemoryUsage(MemoryUsage),
        "hget" => HGet(HGet),
        "hmget" => HMGet(HMGet),
        "hexists" => HExists(HExists),
        "hstrlen" => HStrLen(HStrLen),
        "hlen" => HLen(HLen),
        "hgetall" => HGetAll(HGetAll),
        "hkeys" => HKeys(HGetAll),
        "hvals" => HVals(HGetAll),
        "hscan" => HScan(HScan),
        "hrandfield" => HRandField(HRandField),
        "llen" => LLen(LLen),
        "lrange" => LRange(LRange),
        "lindex" => LIndex(LIndex),
        "lpos" => LPos(LPos),
        "smembers" => SMembers(SMembers),
        "sismember" => SIsMember(SIsMember),
        "smismember" => SMIsMember(SMIsMember),
        "scard" => SCard(SCard),
        "srandmember" => SRandMember(SRandMember),
        "sinter" => SInter(SetAlgebra),
        "sunion" => SUnion(SetAlgebra),
        "sdiff" => SDiff(SetAlgebra),
        "sintercard" => SInterCard(SInterCard),
        "sscan" => SScan(SScan),
        "bitfield_ro" => BitFieldRo(BitFieldRo),
        "zcard" => ZCard(ZCard),
        "zscore" => ZScore(ZScore),
        "zmscore" => ZMScore(ZMScore),
        "zrank" => ZRank(ZRank),
        "zrevrank" => ZRevRank(ZRank),
        "zcount" => ZCount(ZCount),
        "zlexcount" => ZLexCount(ZLexCount),
        "zrange" => ZRange(ZRange),
        "zrevrange" => ZRevRange(ZRange),
        "zrangebyscore" => ZRangeByScore(ZRange),
        "zrevrangebyscore" => ZRevRangeByScore(ZRange),
        "zrangebylex" => ZRangeByLex(ZRange),
        "zrevrangebylex" => ZRevRangeByLex(ZRange),
        "zunion" => ZUnion(ZCombine),
        "zinter" => ZInter(ZCombine),
        "zdiff" => ZDiff(ZCombine),
        "zintercard" => ZInterCard(ZInterCard),
        "zrandmember" => ZRandMember(ZRandMember),
        "zscan" => ZScan(ZScan),
        "xlen" => XLen(XLen),
        "xrange" => XRange(XRange),
        "xrevrange" => XRevRange(XRange),
        "xread" => XRead(XRead),
        "xpending" => XPending(XPending),
        "xinfo" => XInfo(XInfo),
    }
    write {
        "set" => Set(Set),
        "setnx" => SetNx(Set),
        "setex" => SetEx(Set),
        "psetex" => PSetEx(Set),
        "getset" => GetSet(GetSet),
        "getdel" => GetDel(GetDel),
        "getex" => GetEx(GetEx),
        "mset" => MSet(MSet),
        "msetnx" => MSetNx(MSet),
        "append" => Append(Append),
        "setrange" => SetRange(SetRange),
        "incr" => Incr(IncrBy),
        "decr" => Decr(IncrBy),
        "incrby" => IncrBy(IncrBy),
        "decrby" => DecrBy(IncrBy),
        "incrbyfloat" => IncrByFloat(IncrByFloat),
        "setbit" => SetBit(SetBit),
        "del" => Del(Del),
        "unlink" => Unlink(Del),
        "expire" => Expire(Expire),
        "pexpire" => PExpire(Expire),
        "expireat" => ExpireAt(Expire),
        "pexpireat" => PExpireAt(Expire),
        "persist" => Persist(Persist),
        "rename" => Rename(Rename),
        "renamenx" => RenameNx(Rename),
        "copy" => Copy(Copy),
        "flushall" => FlushAll(Flush),
        "flushdb" => FlushDb(Flush),
        "hset" => HSet(HSet),
        "hmset" => HMSet(HSet),
        "hsetnx" => HSetNx(HSetNx),
        "hdel" => HDel(HDel),
        "hincrby" => HIncrBy(HIncrBy),
        "hincrbyfloat" => HIncrByFloat(HIncrByFloat),
        "blpop" => BLPop(BPop),
        "brpop" => BRPop(BPop),
        "blmove" => BLMove(BLMove),
        "brpoplpush" => BRPopLPush(BLMove),
        "blmpop" => BLMPop(BLMPop),
        "bzpopmin" => BZPopMin(BZPop),
        "bzpopmax" => BZPopMax(BZPop),
        "bzmpop" => BZMPop(BZPop),
        "lpush" => LPush(Push),
        "rpush" => RPush(Push),
        "lpushx" => LPushX(Push),
        "rpushx" => RPushX(Push),
        "lpop" => LPop(Pop),
        "rpop" => RPop(Pop),
        "lmpop" => LMPop(LMPop),
        "lmove" => LMove(LMove),
        "rpoplpush" => RPopLPush(LMove),
        "linsert" => LInsert(LInsert),
        "lset" => LSet(LSet),
        "lrem" => LRem(LRem),
        "ltrim" => LTrim(LTrim),
        "sadd" => SAdd(SAdd),
        "srem" => SRem(SRem),
        "smove" => SMove(SMove),
        "spop" => SPop(SPop),
        "sinterstore" => SInterStore(SetAlgebraStore),
        "sunionstore" => SUnionStore(SetAlgebraStore),
        "sdiffstore" => SDiffStore(SetAlgebraStore),
        "bitop" => BitOp(BitOp),
        "bitfield" => BitField(BitField),
        "zadd" => ZAdd(ZAdd),
        "zincrby" => ZIncrBy(ZIncrBy),
        "zrem" => ZRem(ZRem),
        "zremrangebyrank" => ZRemRangeByRank(ZRemRange),
        "zremrangebyscore" => ZRemRangeByScore(ZRemRange),
        "zremrangebylex" => ZRemRangeByLex(ZRemRange),
        "zrangestore" => ZRangeStore(ZRangeStore),
        "zunionstore" => ZUnionStore(ZCombineStore),
        "zinterstore" => ZInterStore(ZCombineStore),
        "zdiffstore" => ZDiffStore(ZCombineStore),
        "zpopmin" => ZPopMin(ZPop),
        "zpopmax" => ZPopMax(ZPop),
        "zmpop" => ZMPop(ZMPop),
        "xadd" => XAdd(XAdd),
        "xtrim" => XTrim(XTrim),
        "xdel" => XDel(XDel),
        "xsetid" => XSetId(XSetId),
        "xgroup" => XGroup(XGroup),
        "xreadgroup" => XReadGroup(XReadGroup),
        "xack" => XAck(XAck),
        "xclaim" => XClaim(XClaim),
        "xautoclaim" => XAutoClaim(XAutoClaim),
        "lock" => Lock(Lock),
        "fenced" => Fenced(Fenced),
        "xnack" => XNack(XNack),
    }
}

/// Returns Redis's error for an unknown command, quoting the start of its
/// arguments.
pub fn unknown_command(args: &[Bytes]) -> ReplyError {
    let name = args
        .first()
        .map(|name| crate::spec::truncate_lossy(name, 128))
        .unwrap_or_default();
    let mut quoted = String::new();
    for arg in args.iter().skip(1) {
        if quoted.len() >= 128 {
            break;
        }
        let room = 128 - quoted.len();
        quoted.push('\'');
        quoted.push_str(&crate::spec::truncate_lossy(arg, room));
        quoted.push_str("' ");
    }
    // Newlines in user input would break the protocol line.
    let clean = |text: String| text.replace(['\r', '\n'], " ");
    ReplyError::UnknownCommand {
        name: clean(name),
        args: clean(quoted),
    }
}

/// Parses a request (name included) into a [`Command`]: looks the name
/// up, checks the arity, then parses the arguments. Pure: the node calls
/// it before proposing, so syntax errors never enter the log.
///
/// # Errors
/// Unknown command, wrong arity, or the command's own syntax/value error.
/// A command the node executes itself (PING, INFO, ...) is an error here.
pub fn parse(args: &[Bytes]) -> Result<Command, ReplyError> {
    let name = args.first().ok_or_else(|| unknown_command(args))?;
    let spec = lookup(name).ok_or_else(|| unknown_command(args))?;
    check_arity(spec, args)?;
    let governing = resolve(spec, args);
    if is_node(governing) {
        return Err(ReplyError::err(format!(
            "'{}' is executed by the node, not the command layer",
            governing.name
        )));
    }
    Command::parse_named(spec.name, args).unwrap_or_else(|| Err(unknown_command(args)))
}

/// Parses and runs `args` inside Raft apply. Deterministic: time comes
/// only from `now_ms`, the leader's timestamp carried in the log entry.
///
/// The key events the command records (see [`polis_store::events`]) are
/// complete when it returns: the collections it left empty get their
/// `del` after its own events.
pub fn execute_write(db: &mut Db, args: &[Bytes], now_ms: u64) -> Reply {
    let reply = match parse(args) {
        Ok(command) => command.execute_write(db, now_ms),
        Err(error) => Reply::Error(error),
    };
    db.end_command();
    reply
}

/// Parses and runs a read-only command with RESP2 reply shapes.
pub fn execute_read(db: &Db, args: &[Bytes], now_ms: u64) -> Reply {
    execute_read_with(db, args, &ReadContext::new(now_ms))
}

/// Parses and runs a read-only command in `ctx` (protocol, seed).
pub fn execute_read_with(db: &Db, args: &[Bytes], ctx: &ReadContext) -> Reply {
    match parse(args) {
        Ok(command) => command.execute_read(db, ctx),
        Err(error) => Reply::Error(error),
    }
}
