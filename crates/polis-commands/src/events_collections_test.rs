//! The key events list, set, hash, sorted set and stream commands record
//! (their blocking forms included): the sequences Redis 7.0 notifies
//! (`notifyKeyspaceEvent` in t_list.c, t_set.c, t_hash.c, t_zset.c and
//! t_stream.c; tests/unit/pubsub.tcl, "Keyspace notifications").

use polis_store::event_class;

use crate::test_support::*;

// Reference: pubsub.tcl, "Keyspace notifications: we are able to mask
// events".
#[test]
fn mask_selects_classes() {
    let mut h = Harness::new();
    h.db.set_events_mask(event_class::LIST);
    h.run("set foo bar");
    h.run("lpush mylist a");
    h.run("lpop mylist");
    assert_eq!(
        h.events(),
        vec![("lpush", "mylist".into()), ("lpop", "mylist".into())]
    );

    // Only the generic class: the del of the list a pop emptied.
    h.db.set_events_mask(event_class::GENERIC);
    h.run("rpush mylist a");
    h.run("set s v");
    h.run("rpop mylist");
    assert_eq!(h.events(), vec![("del", "mylist".into())]);

    h.db.set_events_mask(0);
    h.run("set foo other");
    h.run("del foo");
    assert!(h.events().is_empty());
}

// Reference: pubsub.tcl, "Keyspace notifications: list events test".
#[test]
fn list_events() {
    let mut h = Harness::new();
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            ("lpush mylist a", &[("new", "mylist"), ("lpush", "mylist")]),
            ("rpush mylist a", &[("rpush", "mylist")]),
            ("rpop mylist", &[("rpop", "mylist")]),
            ("lpushx nokey a", &[]),
            ("rpushx mylist b c", &[("rpush", "mylist")]),
            ("linsert mylist before a x", &[("linsert", "mylist")]),
            ("linsert mylist before nopivot y", &[]),
            ("lset mylist 0 z", &[("lset", "mylist")]),
            ("lset mylist 99 z", &[]),
            ("lrem mylist 0 nothing", &[]),
            ("lrem mylist 1 z", &[("lrem", "mylist")]),
            // Redis records ltrim even when nothing goes.
            ("ltrim mylist 0 -1", &[("ltrim", "mylist")]),
            ("ltrim nokey 0 1", &[]),
            ("lpop mylist 0", &[]),
            ("lpop nokey", &[]),
            ("lmpop 1 nokey left", &[]),
        ],
    );
}

#[test]
fn list_left_empty_gets_del_after_the_pop() {
    let mut h = Harness::new();
    h.record_all_events();
    h.run("rpush l a b");
    h.run("rpush l3 a");
    h.run("rpush l4 a a");
    h.run("rpush l5 a");
    h.events();
    assert_events(
        &mut h,
        &[
            ("lpop l", &[("lpop", "l")]),
            ("rpop l 5", &[("rpop", "l"), ("del", "l")]),
            ("ltrim l3 1 0", &[("ltrim", "l3"), ("del", "l3")]),
            ("lrem l4 0 a", &[("lrem", "l4"), ("del", "l4")]),
            (
                "lmpop 2 nokey l5 right count 3",
                &[("rpop", "l5"), ("del", "l5")],
            ),
        ],
    );
}

// Reference: t_list.c lmoveGenericCommand: the push on the destination,
// then the pop on the source, then the source's del.
#[test]
fn lmove_records_push_then_pop_then_del() {
    let mut h = Harness::new();
    h.run("rpush src a b");
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            (
                "lmove src dst left right",
                &[("new", "dst"), ("rpush", "dst"), ("lpop", "src")],
            ),
            (
                "rpoplpush src dst",
                &[("lpush", "dst"), ("rpop", "src"), ("del", "src")],
            ),
            ("lmove src dst left left", &[]),
            // One list: rotated, never empty, so no del.
            ("rpoplpush dst dst", &[("lpush", "dst"), ("rpop", "dst")]),
            ("rpush one x", &[("new", "one"), ("rpush", "one")]),
            (
                "lmove one one left right",
                &[("rpush", "one"), ("lpop", "one")],
            ),
        ],
    );
}

#[test]
fn blocking_list_commands_record_their_non_blocking_events() {
    let mut h = Harness::new();
    h.run("rpush b2 x");
    h.run("rpush b3 x y z");
    h.run("rpush src a");
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            ("blpop b1 b2 0", &[("lpop", "b2"), ("del", "b2")]),
            ("blpop b1 b2 0", &[]),
            ("brpop b3 0", &[("rpop", "b3")]),
            ("blmpop 0 1 b3 left count 1", &[("lpop", "b3")]),
            (
                "blmove src dst right left 0",
                &[
                    ("new", "dst"),
                    ("lpush", "dst"),
                    ("rpop", "src"),
                    ("del", "src"),
                ],
            ),
            (
                "brpoplpush b3 dst 0",
                &[("lpush", "dst"), ("rpop", "b3"), ("del", "b3")],
            ),
            ("brpoplpush nokey dst 0", &[]),
        ],
    );
}

// Reference: pubsub.tcl, "Keyspace notifications: set events test".
#[test]
fn set_events_only_when_members_change() {
    let mut h = Harness::new();
    h.db.set_events_mask(event_class::SET);
    h.run("sadd myset a b c d");
    h.run("srem myset x");
    h.run("sadd myset x y z");
    h.run("sadd myset a b");
    h.run("srem myset x");
    assert_eq!(
        h.events(),
        vec![
            ("sadd", "myset".into()),
            ("sadd", "myset".into()),
            ("srem", "myset".into()),
        ]
    );
}

#[test]
fn set_events() {
    let mut h = Harness::new();
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            ("sadd s1 a", &[("new", "s1"), ("sadd", "s1")]),
            ("srem s1 a b", &[("srem", "s1"), ("del", "s1")]),
            ("srem s1 a", &[]),
            ("sadd p a b c", &[("new", "p"), ("sadd", "p")]),
            ("spop p", &[("spop", "p")]),
            ("spop p 0", &[]),
            ("spop p 5", &[("spop", "p"), ("del", "p")]),
            ("spop p", &[]),
            ("sadd p1 a", &[("new", "p1"), ("sadd", "p1")]),
            ("spop p1", &[("spop", "p1"), ("del", "p1")]),
        ],
    );
}

// Reference: t_set.c smoveCommand: srem on the source, its del when it
// is left empty, then sadd on the destination when the member is new
// there.
#[test]
fn smove_records_srem_del_then_sadd() {
    let mut h = Harness::new();
    h.run("sadd src a b");
    h.run("sadd s2 m");
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            (
                "smove src dst a",
                &[("srem", "src"), ("new", "dst"), ("sadd", "dst")],
            ),
            ("sadd dst b", &[("sadd", "dst")]),
            ("smove src dst b", &[("srem", "src"), ("del", "src")]),
            ("smove src dst z", &[]),
            ("smove dst dst a", &[]),
            (
                "smove s2 d2 m",
                &[("srem", "s2"), ("del", "s2"), ("new", "d2"), ("sadd", "d2")],
            ),
        ],
    );
}

#[test]
fn set_store_records_its_name_or_del() {
    let mut h = Harness::new();
    h.run("sadd x a b");
    h.run("sadd y b c");
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            (
                "sinterstore out x y",
                &[("new", "out"), ("sinterstore", "out")],
            ),
            ("sunionstore out x y", &[("sunionstore", "out")]),
            ("sdiffstore out x y", &[("sdiffstore", "out")]),
            // An empty result deletes the destination (if it existed).
            ("sinterstore out x nokey", &[("del", "out")]),
            ("sinterstore out x nokey", &[]),
            ("set out v", &[("new", "out"), ("set", "out")]),
            ("sdiffstore out x x", &[("del", "out")]),
        ],
    );
}

// Reference: pubsub.tcl, "Keyspace notifications: hash events test".
#[test]
fn hash_events() {
    let mut h = Harness::new();
    h.db.set_events_mask(event_class::HASH);
    h.run("hmset myhash yes 1 no 0");
    h.run("hincrby myhash yes 10");
    assert_eq!(
        h.events(),
        vec![("hset", "myhash".into()), ("hincrby", "myhash".into())]
    );

    h.record_all_events();
    assert_events(
        &mut h,
        &[
            ("hset h f v", &[("new", "h"), ("hset", "h")]),
            // hset even when no field is new.
            ("hset h f v", &[("hset", "h")]),
            ("hsetnx h f w", &[]),
            ("hsetnx h g w", &[("hset", "h")]),
            ("hincrbyfloat h n 1.5", &[("hincrbyfloat", "h")]),
            ("hincrby h f 1", &[]),
            ("hdel h nofield", &[]),
            ("hdel h f", &[("hdel", "h")]),
            ("hdel h g n x", &[("hdel", "h"), ("del", "h")]),
            ("hdel h f", &[]),
            ("hincrby h2 f 1", &[("new", "h2"), ("hincrby", "h2")]),
        ],
    );
}

// Reference: pubsub.tcl, "Keyspace notifications: zset events test".
#[test]
fn zset_events_only_when_members_change() {
    let mut h = Harness::new();
    h.db.set_events_mask(event_class::ZSET);
    h.run("zadd myzset 1 a 2 b");
    h.run("zrem myzset x");
    h.run("zadd myzset 3 x 4 y 5 z");
    h.run("zrem myzset x");
    assert_eq!(
        h.events(),
        vec![
            ("zadd", "myzset".into()),
            ("zadd", "myzset".into()),
            ("zrem", "myzset".into()),
        ]
    );
}

#[test]
fn zset_events() {
    let mut h = Harness::new();
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            ("zadd z 1 a 2 b 3 c 4 d 5 e", &[("new", "z"), ("zadd", "z")]),
            ("zadd z 1 a", &[]),
            ("zadd z ch 2 a", &[("zadd", "z")]),
            ("zadd z xx 3 nomember", &[]),
            ("zadd z nx 9 a", &[]),
            ("zadd z gt 1 a", &[]),
            ("zadd z incr 1 a", &[("zincr", "z")]),
            ("zincrby z 0 a", &[]),
            ("zincrby z 1 a", &[("zincr", "z")]),
            ("zadd z2 xx 1 a", &[]),
            ("zincrby z3 1 m", &[("new", "z3"), ("zincr", "z3")]),
            ("zrem z nomember", &[]),
            ("zrem z e", &[("zrem", "z")]),
            ("zremrangebyscore z 100 200", &[]),
            ("zremrangebyscore z 2 2", &[("zremrangebyscore", "z")]),
            ("zremrangebyrank z 5 10", &[]),
            ("zremrangebyrank z 0 0", &[("zremrangebyrank", "z")]),
            ("zremrangebylex z [x [y", &[]),
            ("zremrangebylex z [a [a", &[("zremrangebylex", "z")]),
            ("zrem z d nomember", &[("zrem", "z"), ("del", "z")]),
        ],
    );
}

#[test]
fn zset_pops_record_their_side_then_del() {
    let mut h = Harness::new();
    h.run("zadd p 1 a 2 b 3 c");
    h.run("zadd q 1 a 2 b");
    h.run("zadd r 1 a");
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            ("zpopmin p", &[("zpopmin", "p")]),
            ("zpopmax p 0", &[]),
            ("zpopmax p", &[("zpopmax", "p")]),
            ("zpopmin p 5", &[("zpopmin", "p"), ("del", "p")]),
            ("zpopmin p", &[]),
            ("zmpop 2 nokey q max count 1", &[("zpopmax", "q")]),
            ("bzpopmin nokey q 0", &[("zpopmin", "q"), ("del", "q")]),
            ("bzmpop 0 1 r min", &[("zpopmin", "r"), ("del", "r")]),
            ("bzpopmax r 0", &[]),
        ],
    );
}

#[test]
fn zset_store_records_its_name_or_del() {
    let mut h = Harness::new();
    h.run("zadd x 1 a 2 b");
    h.run("zadd y 2 b 3 c");
    h.record_all_events();
    assert_events(
        &mut h,
        &[
            (
                "zunionstore out 2 x y",
                &[("new", "out"), ("zunionstore", "out")],
            ),
            ("zinterstore out 2 x y", &[("zinterstore", "out")]),
            ("zdiffstore out 2 x y", &[("zdiffstore", "out")]),
            ("zrangestore out x 0 0", &[("zrangestore", "out")]),
            ("zinterstore out 2 x nokey", &[("del", "out")]),
            ("zinterstore out 2 x nokey", &[]),
            ("zrangestore out x 5 10", &[]),
            ("zadd out 1 m", &[("new", "out"), ("zadd", "out")]),
            ("zrangestore out x 5 10", &[("del", "out")]),
        ],
    );
}
