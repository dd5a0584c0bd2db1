#![allow(clippy::unwrap_used)] // Tests fail loudly.

use polis_resp::Reply;

use super::*;
use crate::hlc::Timestamp;
use crate::merge::Merge;

/// One replica's keys, taking commands at increasing versions.
struct Replica {
    node: NodeId,
    states: States,
    tick: u64,
}

impl Replica {
    fn new(node: u64) -> Self {
        Self {
            node: NodeId(node),
            states: States::new(),
            tick: 1_000,
        }
    }

    fn ctx(&mut self) -> Ctx {
        self.tick += 1;
        Ctx {
            actor: self.node,
            version: Version {
                time: Timestamp {
                    physical_ms: self.tick,
                    logical: 0,
                },
                node: self.node,
            },
            now_ms: self.tick,
        }
    }

    fn run(&mut self, line: &str) -> Reply {
        let args: Vec<Bytes> = line
            .split_whitespace()
            .map(|word| Bytes::from(word.to_owned()))
            .collect();
        let ctx = self.ctx();
        execute(&args, &ctx, &mut self.states)
    }

    fn take(&mut self, other: &Replica) {
        for (key, state) in &other.states {
            self.states.entry(key.clone()).or_default().merge(state);
        }
    }
}

fn bulk(text: &str) -> Reply {
    Reply::Bulk(Bytes::from(text.to_owned()))
}

fn error(reply: Reply) -> String {
    match reply {
        Reply::Error(error) => error.render(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn strings_answer_as_redis_does() {
    let mut r = Replica::new(1);
    assert_eq!(r.run("get k"), Reply::Null);
    assert_eq!(r.run("set k v"), Reply::ok());
    assert_eq!(r.run("get k"), bulk("v"));
    assert_eq!(r.run("set k w nx"), Reply::Null);
    assert_eq!(r.run("set k w xx get"), bulk("v"));
    assert_eq!(r.run("strlen k"), Reply::Integer(1));
    assert_eq!(r.run("mset a 1 b 2"), Reply::ok());
    assert_eq!(
        r.run("mget a b c"),
        Reply::Array(vec![bulk("1"), bulk("2"), Reply::Null])
    );
    assert_eq!(r.run("exists a b c"), Reply::Integer(2));
    assert_eq!(r.run("type a"), Reply::Simple("string".into()));
    assert_eq!(r.run("del a c"), Reply::Integer(1));
    assert_eq!(r.run("get a"), Reply::Null);
    assert_eq!(r.run("type a"), Reply::Simple("none".into()));
    assert_eq!(r.run("set k v bogus"), Reply::Error(ReplyError::Syntax));
    assert!(error(r.run("set k v ex 0")).contains("invalid expire time"));
}

#[test]
fn counters_count_and_refuse_what_redis_refuses() {
    let mut r = Replica::new(1);
    assert_eq!(r.run("incr c"), Reply::Integer(1));
    assert_eq!(r.run("incrby c 10"), Reply::Integer(11));
    assert_eq!(r.run("decrby c 2"), Reply::Integer(9));
    assert_eq!(r.run("decr c"), Reply::Integer(8));
    assert_eq!(r.run("get c"), bulk("8"));
    r.run("set s abc");
    assert_eq!(r.run("incr s"), Reply::Error(ReplyError::NotInteger));
    assert_eq!(r.run("incrby c x"), Reply::Error(ReplyError::NotInteger));
    r.run(&format!("set m {}", i64::MAX));
    assert_eq!(r.run("incr m"), Reply::Error(ReplyError::Overflow));
    assert_eq!(
        r.run(&format!("decrby c {}", i64::MIN)),
        Reply::Error(ReplyError::Overflow)
    );
    r.run("sadd set a");
    assert_eq!(r.run("incr set"), Reply::Error(ReplyError::WrongType));
}

#[test]
fn increments_on_two_replicas_both_count_after_they_exchange_states() {
    let mut a = Replica::new(1);
    let mut b = Replica::new(2);
    a.run("set stock 100");
    b.take(&a);
    for _ in 0..3 {
        a.run("decr stock");
    }
    b.run("incrby stock 10");
    a.take(&b);
    b.take(&a);
    assert_eq!(a.run("get stock"), bulk("107"));
    assert_eq!(b.run("get stock"), bulk("107"));
}

#[test]
fn sets_and_hashes_answer_as_redis_does() {
    let mut r = Replica::new(1);
    assert_eq!(r.run("sadd s a b a"), Reply::Integer(2));
    assert_eq!(r.run("sadd s b c"), Reply::Integer(1));
    assert_eq!(r.run("scard s"), Reply::Integer(3));
    assert_eq!(r.run("sismember s a"), Reply::Integer(1));
    assert_eq!(
        r.run("smismember s a z"),
        Reply::Array(vec![Reply::Integer(1), Reply::Integer(0)])
    );
    assert_eq!(r.run("srem s a z"), Reply::Integer(1));
    assert_eq!(r.run("smembers s"), Reply::Set(vec![bulk("b"), bulk("c")]));
    assert_eq!(r.run("get s"), Reply::Error(ReplyError::WrongType));
    assert_eq!(r.run("hset h f 1 g 2"), Reply::Integer(2));
    assert_eq!(r.run("hset h f 3"), Reply::Integer(0));
    assert_eq!(r.run("hget h f"), bulk("3"));
    assert_eq!(
        r.run("hmget h f x"),
        Reply::Array(vec![bulk("3"), Reply::Null])
    );
    assert_eq!(r.run("hlen h"), Reply::Integer(2));
    assert_eq!(r.run("hexists h g"), Reply::Integer(1));
    assert_eq!(r.run("hdel h g x"), Reply::Integer(1));
    assert_eq!(r.run("hgetall h"), Reply::Map(vec![(bulk("f"), bulk("3"))]));
    assert_eq!(r.run("hkeys h"), Reply::Array(vec![bulk("f")]));
    assert_eq!(r.run("hvals h"), Reply::Array(vec![bulk("3")]));
    assert_eq!(r.run("sadd h x"), Reply::Error(ReplyError::WrongType));
    assert_eq!(r.run("hmset h a 1"), Reply::ok());
    assert_eq!(
        r.run("hset h a"),
        Reply::Error(ReplyError::WrongArity("hset".into()))
    );
}

#[test]
fn deadlines_expire_keys_and_persist_removes_them() {
    let mut r = Replica::new(1);
    r.run("set k v");
    assert_eq!(r.run("ttl k"), Reply::Integer(-1));
    assert_eq!(r.run("ttl nothing"), Reply::Integer(-2));
    assert_eq!(r.run("expire k 100"), Reply::Integer(1));
    let Reply::Integer(ms) = r.run("pttl k") else {
        panic!("an integer")
    };
    assert!((99_000..=100_000).contains(&ms), "{ms}");
    assert_eq!(r.run("persist k"), Reply::Integer(1));
    assert_eq!(r.run("persist k"), Reply::Integer(0));
    assert_eq!(r.run("pexpire k 5"), Reply::Integer(1));
    r.tick += 10;
    assert_eq!(r.run("get k"), Reply::Null, "expired");
    assert_eq!(r.run("expire k 5"), Reply::Integer(0));
    assert_eq!(
        r.run("sadd k a"),
        Reply::Integer(1),
        "a new key, no wrong type"
    );
    assert_eq!(r.run("ttl k"), Reply::Integer(-1));
    assert_eq!(r.run("setex t 10 v"), Reply::ok());
    assert_eq!(r.run("ttl t"), Reply::Integer(10));
    assert_eq!(r.run("set t w keepttl"), Reply::ok());
    assert_eq!(r.run("ttl t"), Reply::Integer(10));
    assert_eq!(r.run("set t w"), Reply::ok());
    assert_eq!(r.run("ttl t"), Reply::Integer(-1));
    assert_eq!(r.run("expire t -1"), Reply::Integer(1));
    assert_eq!(r.run("exists t"), Reply::Integer(0));
    assert!(error(r.run("expire k 5 nx")).contains("not offered on eventual keys"));
}

#[test]
fn what_is_offered_is_listed_and_the_rest_is_refused_with_what_to_do() {
    assert_eq!(offered("get"), Some(false));
    assert_eq!(offered("hset"), Some(true));
    assert_eq!(offered("lpush"), None);
    assert_eq!(offered("xadd"), None);
    let refusal = not_offered("lpush", b"stock:").render();
    assert!(
        refusal.starts_with("ERR 'lpush' is not offered"),
        "{refusal}"
    );
    assert!(refusal.contains("stock:"), "{refusal}");
    let actors: std::collections::BTreeSet<NodeId> = (1..=3)
        .flat_map(|node| {
            (1..=3).flat_map(move |incarnation| (0..3).map(move |epoch| (node, incarnation, epoch)))
        })
        .map(|(node, incarnation, epoch)| actor(NodeId(node), incarnation, epoch))
        .collect();
    assert_eq!(
        actors.len(),
        27,
        "every node, incarnation and epoch acts apart"
    );
    assert_eq!(actor(NodeId(3), 2, 1), actor(NodeId(3), 2, 1));
}
