"""Sharded pub/sub: the behaviour of Redis 7.0's unit/pubsubshard (tagged
external:skip, so its runner never points it at another server) on a
polis node holding a replica of the channel's shard; SPUBLISH from one
replica's node to another's (Redis's replica test); and the
`sunsubscribe` push when a channel's slot leaves the node."""

from __future__ import annotations

import time

from polis_cluster import RespError, resp_call, wait_until
from test_pubsub import RawConnection

PUSH_TIMEOUT_S = 10.0


def text(reply):
    """`reply` with bulk strings as str, recursively."""
    if isinstance(reply, bytes):
        return reply.decode()
    if isinstance(reply, list):
        return [text(item) for item in reply]
    return reply


def call(port: int, *args: str):
    return text(resp_call(port, *args))


def next_push(raw: RawConnection):
    return text(raw.reader.reply())


def confirmations(raw: RawConnection, command: str, *channels: str) -> list[int]:
    """Sends (S)(UN)SUBSCRIBE and returns the counts of its pushes."""
    raw.send(command, *channels)
    word = command.lower()
    counts = []
    for _ in range(max(len(channels), 1)):
        push = next_push(raw)
        assert push[0] == word, push
        counts.append(push[2])
    return counts


def replica_nodes(cluster, tag: str):
    shard = cluster.shard_for(tag)
    return [cluster.node_by_id(replica["node_id"]) for replica in shard["replicas"]]


def test_spublish_ssubscribe_as_redis_unit_pubsubshard(cluster):
    node = replica_nodes(cluster, "chan1")[0]
    port = node.resp_port
    first, second = RawConnection(node), RawConnection(node)
    try:
        # Basics: two channels, unsubscribe one, then the other.
        assert confirmations(first, "SSUBSCRIBE", "chan1") == [1]
        assert confirmations(first, "SSUBSCRIBE", "chan2") == [2]
        assert call(port, "SPUBLISH", "chan1", "hello") == 1
        assert call(port, "SPUBLISH", "chan2", "world") == 1
        assert next_push(first) == ["smessage", "chan1", "hello"]
        assert next_push(first) == ["smessage", "chan2", "world"]
        assert confirmations(first, "SUNSUBSCRIBE", "chan1") == [1]
        assert call(port, "SPUBLISH", "chan1", "hello") == 0
        assert call(port, "SPUBLISH", "chan2", "world") == 1
        assert next_push(first) == ["smessage", "chan2", "world"]
        assert confirmations(first, "SUNSUBSCRIBE", "chan2") == [0]
        assert call(port, "SPUBLISH", "chan2", "world") == 0

        # Two clients on one channel; PUBSUB counts them.
        assert confirmations(first, "SSUBSCRIBE", "chan1") == [1]
        assert confirmations(second, "SSUBSCRIBE", "chan1") == [1]
        assert call(port, "SPUBLISH", "chan1", "hello") == 2
        assert next_push(first) == ["smessage", "chan1", "hello"]
        assert next_push(second) == ["smessage", "chan1", "hello"]
        assert call(port, "PUBSUB", "SHARDNUMSUB", "chan1") == ["chan1", 2]
        assert "chan1" in call(port, "PUBSUB", "SHARDCHANNELS")
        assert call(port, "PUBSUB", "SHARDNUMSUB", "abc", "def") == ["abc", 0, "def", 0]

        # SUNSUBSCRIBE without arguments ends every shard subscription.
        assert confirmations(second, "SUNSUBSCRIBE") == [0]
        assert confirmations(first, "SSUBSCRIBE", "chan1", "chan1", "chan1") == [1, 1, 1]
        assert call(port, "SPUBLISH", "chan1", "once") == 1
        assert next_push(first) == ["smessage", "chan1", "once"]
        assert confirmations(first, "SUNSUBSCRIBE") == [0]
        assert confirmations(first, "SUNSUBSCRIBE", "foo") == [0]
        assert call(port, "SPUBLISH", "chan1", "hello") == 0

        # Shard channels and plain channels of one name are apart.
        assert confirmations(first, "SSUBSCRIBE", "chan1") == [1]
        assert confirmations(second, "SUBSCRIBE", "chan1") == [1]
        assert call(port, "SPUBLISH", "chan1", "sharded") == 1
        assert call(port, "PUBLISH", "chan1", "plain") == 1
        assert next_push(first) == ["smessage", "chan1", "sharded"]
        assert next_push(second) == ["message", "chan1", "plain"]
        assert call(port, "PUBSUB", "SHARDNUMSUB", "chan1") == ["chan1", 1]
        assert call(port, "PUBSUB", "NUMSUB", "chan1") == ["chan1", 1]
    finally:
        first.close()
        second.close()


def test_sharded_pushes_reach_a_resp3_client_with_replies_off(cluster):
    node = replica_nodes(cluster, "channel")[0]
    raw = RawConnection(node)
    try:
        raw.send("HELLO", "3")
        assert isinstance(raw.reader.reply(), (dict, list))
        raw.send("CLIENT", "REPLY", "OFF")
        raw.send("SSUBSCRIBE", "channel")
        assert next_push(raw) == ["ssubscribe", "channel", 1]
        assert call(node.resp_port, "SPUBLISH", "channel", "hello") == 1
        assert next_push(raw) == ["smessage", "channel", "hello"]
        raw.send("SUNSUBSCRIBE", "channel")
        assert next_push(raw) == ["sunsubscribe", "channel", 0]
    finally:
        raw.close()


def test_spublish_on_one_replica_reaches_subscribers_of_every_replica(cluster):
    replicas = replica_nodes(cluster, "replicated")
    assert len(replicas) >= 2
    channels = "pytest:{replicated}"
    subscribers = [RawConnection(node) for node in replicas]
    try:
        for raw in subscribers:
            assert confirmations(raw, "SSUBSCRIBE", channels) == [1]
        for publisher in replicas:
            # The subscription on another node may register a moment after
            # its confirmation: publish until every subscriber has one.
            pending = set(range(len(subscribers)))
            deadline = time.monotonic() + PUSH_TIMEOUT_S
            attempt = 0
            while pending and time.monotonic() < deadline:
                attempt += 1
                resp_call(publisher.resp_port, "SPUBLISH", channels, "m%d" % attempt)
                for index in list(pending):
                    raw = subscribers[index]
                    raw.socket.settimeout(0.3)
                    try:
                        push = next_push(raw)
                    except OSError:
                        continue
                    finally:
                        raw.socket.settimeout(PUSH_TIMEOUT_S)
                    assert push[0] == "smessage" and push[1] == channels, push
                    pending.discard(index)
            assert not pending, "SPUBLISH on node %d missed subscribers %s" % (publisher.node_id, pending)
            # Drain what arrived late, so the next round starts clean.
            for raw in subscribers:
                raw.socket.settimeout(0.3)
                try:
                    while True:
                        raw.reader.reply()
                except OSError:
                    pass
                finally:
                    raw.socket.settimeout(PUSH_TIMEOUT_S)
    finally:
        for raw in subscribers:
            raw.close()


def test_a_shard_channel_whose_slot_leaves_the_node_gets_sunsubscribe(big_cluster):
    """5 nodes, 10 shards of 3 replicas: the channel's slot moves to a
    shard with no replica on the subscriber's node, which then pushes
    `sunsubscribe`; subscribing again there is MOVED to where it lives."""
    cluster = big_cluster
    channel = "pytest:{sunsub}"
    source = cluster.shard_for("sunsub")
    holders = {replica["node_id"] for replica in source["replicas"]}
    status = cluster.status(cluster.nodes[0])
    target = None
    subscriber_id = None
    for shard in status["shards"]:
        if shard["id"] == source["id"]:
            continue
        others = {replica["node_id"] for replica in shard["replicas"]}
        strangers = holders - others
        if strangers:
            target, subscriber_id = shard, sorted(strangers)[0]
            break
    assert target is not None, "every shard is on the same nodes"
    subscriber = cluster.node_by_id(subscriber_id)
    raw = RawConnection(subscriber)
    try:
        assert confirmations(raw, "SSUBSCRIBE", channel) == [1]
        slot = call(subscriber.resp_port, "CLUSTER", "KEYSLOT", channel)
        reply = call(subscriber.resp_port, "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", str(slot), str(slot),
                          "NODE", "%040x" % target["leader_node"])
        assert reply == "OK", reply
        raw.socket.settimeout(120.0)
        assert next_push(raw) == ["sunsubscribe", channel, 0]
        raw.socket.settimeout(PUSH_TIMEOUT_S)
        # Out of subscribed mode: an ordinary command answers again.
        assert raw.call("PING") == "PONG"
        error = raw.call("SSUBSCRIBE", channel)
        assert isinstance(error, RespError) and str(error).startswith("MOVED %d " % slot), error
        # Where the slot lives now, the channel works.
        home = cluster.node_by_id(target["leader_node"])
        there = RawConnection(home)
        try:
            assert confirmations(there, "SSUBSCRIBE", channel) == [1]
            assert call(home.resp_port, "SPUBLISH", channel, "moved") == 1
            assert next_push(there) == ["smessage", channel, "moved"]
        finally:
            there.close()
    finally:
        raw.close()
    wait_until(lambda: not resp_call(cluster.nodes[0].resp_port, "CLUSTER", "GETSLOTMIGRATIONS"), 60.0,
               "the migration to end")
