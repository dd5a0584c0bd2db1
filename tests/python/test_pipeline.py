"""Pipelined commands: consecutive writes become one Raft log entry in
polis, yet each takes effect in the order sent, with its own reply, errors
included, and reads in between see the writes before them."""

from __future__ import annotations

import redis

from polis_cluster import HOST


def test_pipelined_writes_keep_order_and_their_own_replies(cluster, key):
    # One hash tag: every key in one slot, so the whole pipeline goes to
    # one node (the leader of that slot's shard) as one pipeline.
    tag = "{%s}" % key("tag")
    a, b, c, h = tag + "a", tag + "b", tag + "c", tag + "h"
    leader = cluster.leader_for(a)
    client = redis.Redis(host=HOST, port=leader.resp_port, decode_responses=True, socket_timeout=10)
    pipe = client.pipeline(transaction=False)
    pipe.set(a, 1)
    pipe.incr(a)
    pipe.get(a)
    pipe.set(b, "x")
    pipe.append(b, "y")
    pipe.incr(b)
    pipe.set(c, 1, nx=True)
    pipe.set(c, 2, nx=True)
    pipe.hset(h, "f", "v")
    pipe.incr(h)
    pipe.get(b)
    pipe.delete(a)
    pipe.get(a)
    replies = pipe.execute(raise_on_error=False)
    assert replies[:5] == [True, 2, "2", True, 2]
    assert isinstance(replies[5], redis.ResponseError)
    assert "not an integer" in str(replies[5])
    assert replies[6:9] == [True, None, 1]
    assert isinstance(replies[9], redis.ResponseError)
    assert str(replies[9]).startswith("WRONGTYPE")
    assert replies[10:] == ["xy", 1, None]
    assert client.get(c) == "1"
    client.close()
