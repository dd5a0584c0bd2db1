"""Basic commands through redis.Redis pointed at the leader."""

from __future__ import annotations

import time

from polis_cluster import wait_until


def test_set_get(leader_client, key):
    name = key()
    assert leader_client.get(name) is None
    assert leader_client.set(name, "hello") is True
    assert leader_client.get(name) == "hello"
    assert leader_client.set(name, "world") is True
    assert leader_client.get(name) == "world"


def test_set_nx_xx(leader_client, key):
    name = key()
    assert leader_client.set(name, "1", xx=True) is None
    assert leader_client.set(name, "1", nx=True) is True
    assert leader_client.set(name, "2", nx=True) is None
    assert leader_client.get(name) == "1"


def test_incr(leader_client, key):
    name = key()
    assert leader_client.incr(name) == 1
    assert leader_client.incr(name) == 2
    assert leader_client.incrby(name, 40) == 42
    assert leader_client.decr(name) == 41
    assert leader_client.get(name) == "41"


def test_incr_on_non_integer_is_an_error(leader_client, key):
    import redis

    name = key()
    leader_client.set(name, "not a number")
    try:
        leader_client.incr(name)
    except redis.exceptions.ResponseError as error:
        assert "not an integer" in str(error)
    else:
        raise AssertionError("INCR on a non-integer value succeeded")


def test_hset_hget(leader_client, key):
    name = key()
    assert leader_client.hset(name, mapping={"a": "1", "b": "2"}) == 2
    assert leader_client.hset(name, "a", "3") == 0
    assert leader_client.hget(name, "a") == "3"
    assert leader_client.hgetall(name) == {"a": "3", "b": "2"}
    assert leader_client.hdel(name, "a") == 1
    assert leader_client.hgetall(name) == {"b": "2"}


def test_expire_sets_ttl(leader_client, key):
    name = key()
    leader_client.set(name, "v")
    assert leader_client.ttl(name) == -1
    assert leader_client.expire(name, 100) is True
    assert 0 < leader_client.ttl(name) <= 100
    assert leader_client.persist(name) is True
    assert leader_client.ttl(name) == -1


def test_expired_key_disappears(leader_client, key):
    name = key()
    ttl_ms = 300
    started = time.monotonic()
    assert leader_client.set(name, "v", px=ttl_ms) is True
    wait_until(lambda: leader_client.get(name) is None, 10.0, "the key to expire")
    # It may not vanish before its deadline.
    assert (time.monotonic() - started) * 1000 >= ttl_ms * 0.9
    assert leader_client.exists(name) == 0
