"""LOCK and FENCED through redis-py against polis: cluster clients route
both by their keys (FENCED's are the lock's and its command's, through
COMMAND GETKEYS), a stale token is refused, and FENCED runs inside
MULTI."""

from __future__ import annotations

import re

import pytest
import redis

from polis_cluster import HOST


def leader_client(cluster, key):
    leader = cluster.leader_for(key)
    return redis.Redis(host=HOST, port=leader.resp_port, decode_responses=True, socket_timeout=10,
                       single_connection_client=True)


def test_a_cluster_client_acquires_and_writes_through_the_fence(client, key):
    lock = "{%s}" % key("order")
    status = lock + ":status"
    token = client.execute_command("LOCK", "ACQUIRE", lock, "a", 10_000)
    assert isinstance(token, int) and token > 0
    assert client.execute_command("LOCK", "ACQUIRE", lock, "b", 10_000) is None
    # The same owner again: the same token.
    assert client.execute_command("LOCK", "ACQUIRE", lock, "a", 10_000) == token
    assert client.execute_command("FENCED", lock, token, "SET", status, "paid") == "OK"
    assert client.get(status) == "paid"
    info = client.execute_command("LOCK", "INFO", lock)
    if isinstance(info, list):  # RESP2 flattens the map
        info = dict(zip(info[::2], info[1::2]))
    assert (info["owner"], info["token"]) == ("a", token)
    assert 0 < info["lease_remaining_ms"] <= 10_000
    assert client.type(lock) == "lock"

    assert client.execute_command("LOCK", "RELEASE", lock, token) == "OK"
    nobody = "token %d is not the current token of lock '%s' (nobody holds it)" % (token, lock)
    with pytest.raises(redis.ResponseError, match=re.escape(nobody)):
        client.execute_command("FENCED", lock, token, "SET", status, "stale")
    newer = client.execute_command("LOCK", "ACQUIRE", lock, "b", 10_000)
    assert newer > token
    with pytest.raises(redis.ResponseError, match="held by 'b' with token %d" % newer):
        client.execute_command("FENCED", lock, token, "SET", status, "stale")
    assert client.get(status) == "paid"


def test_fenced_keys_are_the_locks_and_its_commands(cluster, client, key):
    lock = "{%s}" % key("job")
    node = leader_client(cluster, lock)
    keys = node.command_getkeys("FENCED", lock, 7, "MSET", lock + ":a", 1,
                                 lock + ":b", 2)
    assert keys == [lock, lock + ":a", lock + ":b"]
    with pytest.raises(redis.ResponseError, match="hash to the same slot"):
        node.execute_command("FENCED", lock, 7, "SET", key("elsewhere"), "v")


def test_fenced_inside_a_transaction_is_checked_at_its_place(cluster, key):
    lock = "{%s}" % key("txn")
    counter = lock + ":n"
    client = leader_client(cluster, lock)
    token = client.execute_command("LOCK", "ACQUIRE", lock, "a", 10_000)
    pipe = client.pipeline(transaction=True)
    pipe.execute_command("FENCED", lock, token, "INCR", counter)
    pipe.execute_command("LOCK", "RELEASE", lock, token)
    pipe.execute_command("FENCED", lock, token, "INCR", counter)
    replies = pipe.execute(raise_on_error=False)
    assert replies[:2] == [1, True] or replies[:2] == [1, "OK"]
    assert isinstance(replies[2], redis.ResponseError)
    assert "nobody holds it" in str(replies[2])
    assert client.get(counter) == "1"
