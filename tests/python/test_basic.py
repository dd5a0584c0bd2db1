"""Basic commands through redis-py's RedisCluster, which follows the
shards of the default `polis dev`."""

from __future__ import annotations

import time

from polis_cluster import wait_until


def test_set_get(client, key):
    name = key()
    assert client.get(name) is None
    assert client.set(name, "hello") is True
    assert client.get(name) == "hello"
    assert client.set(name, "world") is True
    assert client.get(name) == "world"


def test_set_nx_xx(client, key):
    name = key()
    assert client.set(name, "1", xx=True) is None
    assert client.set(name, "1", nx=True) is True
    assert client.set(name, "2", nx=True) is None
    assert client.get(name) == "1"


def test_incr(client, key):
    name = key()
    assert client.incr(name) == 1
    assert client.incr(name) == 2
    assert client.incrby(name, 40) == 42
    assert client.decr(name) == 41
    assert client.get(name) == "41"


def test_incr_on_non_integer_is_an_error(client, key):
    import redis

    name = key()
    client.set(name, "not a number")
    try:
        client.incr(name)
    except redis.exceptions.ResponseError as error:
        assert "not an integer" in str(error)
    else:
        raise AssertionError("INCR on a non-integer value succeeded")


def test_hset_hget(client, key):
    name = key()
    assert client.hset(name, mapping={"a": "1", "b": "2"}) == 2
    assert client.hset(name, "a", "3") == 0
    assert client.hget(name, "a") == "3"
    assert client.hgetall(name) == {"a": "3", "b": "2"}
    assert client.hdel(name, "a") == 1
    assert client.hgetall(name) == {"b": "2"}


def test_expire_sets_ttl(client, key):
    name = key()
    client.set(name, "v")
    assert client.ttl(name) == -1
    assert client.expire(name, 100) is True
    assert 0 < client.ttl(name) <= 100
    assert client.persist(name) is True
    assert client.ttl(name) == -1


def test_expired_key_disappears(client, key):
    name = key()
    ttl_ms = 300
    started = time.monotonic()
    assert client.set(name, "v", px=ttl_ms) is True
    wait_until(lambda: client.get(name) is None, 10.0, "the key to expire")
    # It may not vanish before its deadline.
    assert (time.monotonic() - started) * 1000 >= ttl_ms * 0.9
    assert client.exists(name) == 0
